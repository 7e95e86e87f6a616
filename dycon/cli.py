"""Command line: ``python -m dycon data | train | evaluate | run | config | reproduce``.

Bad input exits with status 2 and one line saying what was wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from .config import ConfigError, available, parse_assignment, to_dict
from .data import datasets
from .data.volume import DataError
from .experiments import TABLES
from .figures.registry import FIGURES

DATASETS = tuple(datasets.DATASETS)  # the names, declared in data/datasets.py


def _presets(kind: str, sep: str = ", ") -> str:
    """The presets of ``kind`` shipped in ``dycon/configs``, for a help text."""
    return sep.join(available(kind))


def _experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--method", required=True, help=f"method preset: {_presets('methods')}")
    p.add_argument("--scale", default="quick", help=f"{_presets('scales', ' | ')} (default quick)")
    p.add_argument("--config", help="a YAML file merged over the presets")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value, e.g. --set train.iterations=100",
    )
    p.add_argument("--runs-dir", default="results/runs", help="where run folders live")
    p.add_argument("--data-root", help="prepared data (default $DYCON_DATA or ./data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dycon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="prepare datasets and show what is prepared")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    status = data_sub.add_parser("status", help="what is prepared under DYCON_DATA")
    status.add_argument("--root", help="data root (default $DYCON_DATA or ./data)")
    prep = data_sub.add_parser("prepare", help="official download -> training files")
    prep.add_argument("dataset", choices=DATASETS)
    prep.add_argument("--raw", help="the downloaded files (not needed for isles-sim and la)")
    prep.add_argument("--dest", help="output folder (default $DYCON_DATA/<dataset>)")
    prep.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a prepare option, e.g. --option verify=false "
        "(YAML value; the options of each dataset are listed in book/data.md)",
    )
    prep.add_argument(
        "--downsample",
        type=int,
        metavar="F",
        help="la only: shrink every axis F-fold (2, 4 or 8; block mean / majority), "
        "as --option downsample=F",
    )
    for name, help_text in (
        ("train", "train a configuration (resumes if interrupted)"),
        ("evaluate", "evaluate a trained configuration on its test list"),
        ("run", "train then evaluate"),
        ("config", "print the composed configuration"),
    ):
        p = sub.add_parser(name, help=help_text)
        _experiment_args(p)
        if name in ("evaluate", "run"):
            p.add_argument("--force", action="store_true", help="re-evaluate a finished run")
    rep = sub.add_parser(
        "reproduce", help="run a table or figure notebook into the book (papermill)"
    )
    which = rep.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", type=int, help=f"paper table: {', '.join(map(str, TABLES))}")
    which.add_argument("--fig", help=f"figure: {', '.join(FIGURES)}")
    rep.add_argument("--dataset", help="default: the paper's if prepared, else isles-sim")
    rep.add_argument(
        "--scale", default="quick", help=f"{_presets('scales', ' | ')} (default quick)"
    )
    rep.add_argument("--seeds", type=_int_list, help="comma-separated, default 1337")
    rep.add_argument("--percents", type=_int_list, help="labeled %%, default the paper's")
    rep.add_argument("--rows", type=lambda v: v.split(","), help="comma-separated row labels")
    rep.add_argument("--device", default="auto", help="auto | cpu | cuda")
    rep.add_argument("--data-root", help="prepared data (default $DYCON_DATA or ./data)")
    rep.add_argument("--runs-dir", default="results/runs")
    rep.add_argument("--results-dir", help="default results/table<N> or results/fig-<name>")
    rep.add_argument("--output-dir", help="executed notebooks (default book/tables, book/figures)")
    rep.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a figure notebook parameter (YAML value), e.g. --param n_cases=2",
    )
    rep.add_argument("--quiet", action="store_true")
    return parser


def _int_list(value: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a comma-separated list of integers"
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "data":
            return _data(args)
        if args.command == "reproduce":
            from .reproduce import main as reproduce

            return reproduce(args)
        return _experiment(args)
    except (ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a folder that cannot be written or read, found only on use
        where = f" {err.filename!r}" if err.filename else ""
        print(
            f"error: cannot use{where}: {err.strerror or err}; check that the path exists and "
            "is writable (--runs-dir, --data-root, DYCON_DATA)",
            file=sys.stderr,
        )
        return 2
    except RuntimeError as err:  # training that cannot go on (TrainingError), a failed notebook
        print(f"error: {err}", file=sys.stderr)
        return 1


def _data(args) -> int:
    from .data.prepare import prepare, status
    from .data.volume import data_root

    if args.data_command == "status":
        for row in status(args.root):
            todo = "" if row["state"] == "prepared" else f"  -> {row['command']}"
            print(
                f"{row['dataset']:10s} {row['state']:9s} {row['cases']:4d} cases  "
                f"{row['path']}{todo}"
            )
            if row.get("detail"):
                print(f"{'':10s} {row['detail']}")
        return 0
    dest = Path(args.dest) if args.dest else data_root(must_exist=False) / args.dataset
    options = dict(parse_assignment(item, what="--option") for item in args.options)
    if args.downsample is not None:
        options["downsample"] = args.downsample
    path = prepare(args.dataset, raw=args.raw, dest=dest, **options)
    print(f"prepared {args.dataset} in {path}")
    return 0


def _experiment(args) -> int:
    from .engine.pipeline import run_config
    from .engine.presets import compose

    cfg = compose(
        dataset=args.dataset,
        method=args.method,
        scale=args.scale,
        config_file=args.config,
        overrides=args.overrides,
    )
    if args.command == "config":
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    outcome = run_config(
        cfg,
        runs_dir=args.runs_dir,
        command=args.command,
        root=args.data_root,
        force=getattr(args, "force", False),
        progress=not args.quiet,
    )
    if not outcome.is_main:  # under torchrun rank 0 alone reports
        return 0
    if outcome.trained:
        print(f"trained {outcome.run_dir}")
    if outcome.reused:
        print(f"already evaluated: {outcome.summary_path} (--force to redo)")
    elif outcome.summary is not None:
        print(_result_line(outcome.summary, outcome.summary_path))
    return 0


def _result_line(summary: dict, path: Path) -> str:
    m = summary["metrics"]
    return (
        f"{summary['run_id']}: Dice {m['dice']['mean']:.2f} % "
        f"(95% CI {m['dice']['ci95'][0]:.2f}-{m['dice']['ci95'][1]:.2f}), "
        f"HD95 {m['hd95']['mean']:.2f} {summary['units']['hd95']} "
        f"({m['hd95']['n_nan']} undefined), {summary['cases']} cases"
        + (" of SYNTHETIC data" if summary["data_kind"] == "synthetic" else "")
        + f" -> {path}"
    )


if __name__ == "__main__":
    sys.exit(main())
