"""Command line: ``python -m dycon data | train | evaluate | run | config | reproduce``.

Bad input exits with status 2 and one line saying what was wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from .config import ConfigError, parse_assignment, to_dict
from .data.volume import DataError

DATASETS = ("isles-sim", "isles22", "brats19", "pancreas", "la")


def _experiment_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(DATASETS)}")
    p.add_argument(
        "--method",
        required=True,
        help="method preset: dycon, dycon-reference, mt, ua-mt, supervised",
    )
    p.add_argument("--scale", default="quick", help="smoke | quick | paper (default quick)")
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
    which.add_argument("--table", type=int, help="paper table, 1-5")
    which.add_argument("--fig", help="figure: lesion-size, gradcam, curves or overlays")
    rep.add_argument("--dataset", help="default: the paper's if prepared, else isles-sim")
    rep.add_argument("--scale", default="quick", help="smoke | quick | paper (default quick)")
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
    except RuntimeError as err:  # a notebook that failed: nothing was replaced
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
    from .engine.datasets import dataset_folder, split_cases, train_data
    from .engine.distributed import barrier, init_world
    from .engine.evaluate import evaluate
    from .engine.presets import compose
    from .engine.runs import claim_run, release_unstarted, require_writable, run_id
    from .engine.trainer import TrainingError, resolve_device, train

    cfg = compose(
        dataset=args.dataset,
        method=args.method,
        scale=args.scale,
        config_file=args.config,
        overrides=args.overrides,
    )
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if args.command == "config":
        print(text, end="")
        return 0
    run_dir = Path(args.runs_dir) / run_id(cfg)
    summary_path = run_dir / "summary.json"
    folder = data = test = None
    if args.command in ("train", "run"):
        require_writable(Path(args.runs_dir), what="--runs-dir")
        world, _ = init_world(resolve_device(cfg.train.device))
        # Rank 0 alone generates or checks the data and claims the run folder; the others wait.
        # Every listed case is checked before the claim, so bad data leaves no run folder.
        if world.is_main:
            folder = dataset_folder(cfg, root=args.data_root)
            data = train_data(cfg, folder=folder)
            if args.command == "run":
                test = split_cases(cfg, cfg.data.test_list, folder=folder, check_files=True)
            claim_run(run_dir, cfg, data_folder=folder)
        if world.size > 1:
            barrier(world)
        try:
            info = train(
                cfg,
                data=data or train_data(cfg, root=args.data_root),
                run_dir=run_dir,
                progress=not args.quiet,
            )
        except TrainingError as err:
            if world.is_main:
                release_unstarted(run_dir)
            print(f"error: {err}", file=sys.stderr)
            return 1
        except BaseException:
            if world.is_main:
                release_unstarted(run_dir)  # kept if it holds a checkpoint to resume from
            raise
        if not world.is_main:  # under torchrun rank 0 alone records and evaluates
            return 0
        _write_json(run_dir / "train.json", info)
        print(f"trained {run_dir}")
    if args.command in ("evaluate", "run"):
        if folder is None:  # `evaluate` alone; `run` claimed the folder before training
            last = run_dir / "checkpoints" / "last.pt"
            if not last.is_file():  # before the claim, which would make the folder
                raise ConfigError(f"no checkpoint at {str(last)!r}: train this configuration first")
            folder = dataset_folder(cfg, root=args.data_root)
            claim_run(run_dir, cfg, data_folder=folder)
        if summary_path.is_file() and not args.force:
            print(f"already evaluated: {summary_path} (--force to redo)")
            return 0
        if test is None:
            test = split_cases(cfg, cfg.data.test_list, folder=folder, check_files=True)
        train_info = _read_json(run_dir / "train.json")
        summary = evaluate(
            cfg, run_dir=run_dir, test=test, train_info=train_info, progress=not args.quiet
        )
        m = summary["metrics"]
        print(
            f"{summary['run_id']}: Dice {m['dice']['mean']:.2f} % "
            f"(95% CI {m['dice']['ci95'][0]:.2f}-{m['dice']['ci95'][1]:.2f}), "
            f"HD95 {m['hd95']['mean']:.2f} {summary['units']['hd95']} "
            f"({m['hd95']['n_nan']} undefined), {summary['cases']} cases"
            + (" of SYNTHETIC data" if summary["data_kind"] == "synthetic" else "")
            + f" -> {summary_path}"
        )
    return 0


def _write_json(path: Path, data: dict) -> None:
    from .data._io import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
