"""Table 4 or 5 at the cpu scale (real LA, 4x downsampled): converged runs on paired seeds, each
method's paired difference with a bootstrap CI over seeds and test cases, and that CI's width
against the smallest margin the paper claims in the table.

    python -m dycon data prepare la --downsample 4 --dest data-4x/la   # once (2.5 mm LA)
    python bench/cpu_scale.py --data-root data-4x --seeds 1337-1346     # resumes where it stopped
    python bench/cpu_scale.py --table 5 --data-root data-4x --seeds 1337-1339   # the ablation

Runs are Table 4's single-network rows (``ROWS``: supervised-only, UA-MT, DTC, AC-MT and DyCON on
the V-Net, DyCON on the 3D U-Net; ``--rows all`` adds MCF, BCP and CML) at 5 % and 10 % labeled
(4 and 8 of LA's 80), trained and evaluated by ``dycon.experiments.ensure`` into
``results/runs``: run ids are config hashes, so a finished run is reused (and ``make reproduce
TABLE=4 SCALE=cpu`` with the same data root reuses these runs, and they reuse its). Seeds
run one after the other, every row and fraction of a seed before the next seed, so that a stop
leaves complete pairs. The JSON and CSVs are rewritten (atomically) after every finished run, so a
session that ends mid-way keeps what finished; the next call resumes.

A run is flagged ``collapsed`` when its prediction is empty on at least half of the test cases
(Eq. 5's failure mode with a constant eta); paired differences leave out the seeds on which
either side collapsed, and name them. Seconds are those each run recorded (train + evaluate),
on a shared machine whose load the record states at the start, with the torch thread count:
training repeats bit for bit only at the same count (the default: one per core).

Writes results/bench/cpu_scale-cpu.json, cpu_scale-cpu.csv (one row per run) and
cpu_scale-cpu-paired.csv (one row per paired difference), and keeps each finished run's small
files (summary, per-case table, config, log; no checkpoint) in results/bench/cpu_scale-runs/, from
which a fresh checkout's runs folder is refilled, so a clone resumes without the run folders.
The page book/tables/table4-cpu.ipynb is rendered from the record (notebooks/cpu_scale.ipynb).

``--table 5`` runs the ablation's five DyCON configurations (``experiments.TABLES[5]``, "row 1"
everything off to "row 5" full DyCON) at 10 % labeled (8 of 80) into the same kept-runs folder, and
writes results/bench/cpu_scale-table5-cpu.{json,csv}, its -paired.csv and the page
book/tables/table5-cpu.ipynb (notebooks/cpu_scale_table5.ipynb). Its claims
(``dycon.claims.ablation_claims``): each row minus row 1 and minus the row before it. Row 5 at 10 %
is Table 4's "DyCON (3D-UNet)" 10 % run, not "DyCON (VNet)": the same config, so the same run id
(Table 5's rows keep LA's default 3D U-Net), so every seed Table 4 has finished at 10 % already
holds Table 5's row 5, and is reused from the kept runs.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_info  # noqa: E402

from dycon.engine.runs import DATA_STAMP  # noqa: E402

SUPERVISED = "Supervised (labeled only)"
BASELINES = (SUPERVISED, "UA-MT", "DTC", "AC-MT")  # DyCON is paired with each
# The rows this bench runs by default: Table 4's single-network rows. MCF and CML (two networks,
# 1.1-1.6x MT's step in results/bench/method_step-cpu.csv) and BCP (a pre-training stage) would
# take ten paired seeds from about 18 hours (the committed runs' seconds) to about 27 (estimated)
# on 2 cores; they run at the quick scale (book/tables/table4), and here with --rows all.
ROWS = (*BASELINES, "DyCON (VNet)", "DyCON (3D-UNet)")
COLLAPSE_SHARE = 0.5  # empty predictions on at least this share of test cases
# DATA_STAMP is the data stamp (engine.runs.data_stamp): without it a kept run cannot say which
# copy of LA it was trained on (the runs kept before it was kept are retrained, see restore_runs)
KEPT_FILES = ("summary.json", "per_case.csv", "config.yaml", "log.jsonl", DATA_STAMP)
# Per table: the rows run by default ('all': all of experiments.TABLES[t]), the labeled percents,
# the record, its page and the page's template (Table 4's page predates Table 5's: two templates
# keep it as it was).
BENCH_TABLES = {
    4: {
        "rows": ",".join(ROWS),
        "percents": "5,10",
        "out": "results/bench/cpu_scale-cpu.json",
        "page": "book/tables/table4-cpu.ipynb",
        "template": "notebooks/cpu_scale.ipynb",
    },
    5: {
        "rows": "all",
        "percents": "10",  # experiments.TABLES[5]: the poster does not say; its Fig. 4 uses 10 %
        "out": "results/bench/cpu_scale-table5-cpu.json",
        "page": "book/tables/table5-cpu.ipynb",
        "template": "notebooks/cpu_scale_table5.ipynb",
    },
}


def parse_seeds(text: str) -> list[int]:
    """``1337,1340`` or ``1337-1346`` (inclusive) or a mix, in order, without repeats."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, _, hi = part.partition("-")
        try:
            chunk = range(int(lo), int(hi or lo) + 1)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: seeds are integers, e.g. 1337-1346"
            ) from None
        if not chunk:
            raise argparse.ArgumentTypeError(f"{part!r}: an empty seed range")
        seeds += [s for s in chunk if s not in seeds]
    return seeds


def paper_margins(table: int = 4, *, percents=(10,)) -> dict[tuple[int, str, str], float]:
    """(percent, A row, B row) -> the paper's Dice margin of A over B. Table 4: each DyCON row
    over each baseline the paper prints at its fractions; Table 5: each ablation claim
    (``dycon.claims.ablation_claims``) at each of ``percents`` (the poster names no fraction)."""
    from dycon.claims import ablation_claims
    from dycon.paper import paper_rows

    if table == 5:
        return {(p, c["a"], c["b"]): c["margin"] for p in percents for c in ablation_claims()}
    dice = {(round(r["labeled_pct"]), r["method"]): r["dice"] for r in paper_rows(table)}
    out = {}
    for (pct, method), value in dice.items():
        if not method.startswith("DyCON") or value is None:
            continue
        for other in BASELINES[1:]:
            if dice.get((pct, other)) is not None:
                out[(pct, method, other)] = round(value - dice[(pct, other)], 2)
    return out


def run_record(result) -> dict:
    s, cases = result.summary, result.per_case
    empty = sum(str(c.get("empty_pred")) == "True" for c in cases)
    return {
        "row": result.spec.row,
        "method": result.spec.method,
        "percent": result.spec.percent,
        "num_labeled": result.spec.num_labeled,
        "seed": result.spec.seed,
        "run_id": result.run_id,
        # the copy of LA it was trained on (engine.runs.data_hash); None: not recorded (runs
        # kept before the stamp was kept)
        "data_hash": _stamp_hash(result.run_dir),
        "dice": s["metrics"]["dice"]["mean"],
        "dice_ci95_cases": s["metrics"]["dice"]["ci95"],
        "hd95": s["metrics"]["hd95"]["mean"],
        "empty_prediction_cases": empty,
        "collapsed": empty >= COLLAPSE_SHARE * max(len(cases), 1),
        "train_seconds": s["train"]["seconds"],
        "eval_seconds": s["eval_seconds"],
        "seconds": s["train"]["seconds"] + s["eval_seconds"],
        "dice_per_case": {c["case"]: float(c["dice"]) for c in cases},
    }


def _stamp_hash(run_dir: Path) -> str | None:
    from dycon.engine.runs import read_stamp

    return (read_stamp(run_dir) or {}).get("data_hash")


def per_method(runs: list[dict]) -> list[dict]:
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["row"], r["percent"]), []).append(r)
    out = []
    for (row, pct), rs in groups.items():
        ok = [r["dice"] for r in rs if not r["collapsed"]]
        out.append(
            {
                "row": row,
                "percent": pct,
                "seeds": [r["seed"] for r in rs],
                "dice_per_seed": {str(r["seed"]): round(r["dice"], 2) for r in rs},
                "collapsed_seeds": [r["seed"] for r in rs if r["collapsed"]],
                "mean_dice": round(statistics.fmean(ok), 2) if ok else None,
                "seed_sd": round(statistics.stdev(ok), 2) if len(ok) > 1 else None,
                "seconds_per_run": round(statistics.fmean(r["seconds"] for r in rs), 1),
            }
        )
    return out


def claim_pairs(table: int, runs: list[dict]) -> list[tuple[int, str, str]]:
    """(percent, A, B) to pair. Table 4: each row minus supervised-only and each DyCON row minus
    each baseline; Table 5: its claims (each row minus row 1 and minus the row before it)."""
    from dycon.claims import ablation_claims

    percents = sorted({r["percent"] for r in runs})
    rows = list(dict.fromkeys(r["row"] for r in runs))
    if table == 5:
        return [(p, c["a"], c["b"]) for p in percents for c in ablation_claims()]
    return [
        (pct, a, b)
        for pct in percents
        for a in rows
        for b in BASELINES
        if a != b and b in rows and (b == SUPERVISED or a.startswith("DyCON"))
    ]


def paired(runs: list[dict], margins: dict, smallest: float, *, table: int = 4) -> list[dict]:
    """Each of ``table``'s pairs (:func:`claim_pairs`) per fraction, collapsed seeds left out
    (``dycon.claims.paired_claims``: the book page computes the same from the same runs)."""
    from dycon.claims import paired_claims

    pairs = claim_pairs(table, runs)
    labels = {}
    if table == 5:  # "row k" names no component: say which are on
        from dycon.report import ablation_labels

        labels = ablation_labels()
    out = []
    for c in paired_claims(runs, pairs=pairs, margins=margins):
        low, high = (round(x, 2) for x in c["ci95"])
        var = c["variance"]  # None with one seed: the seed spread is not identified
        need = var.seeds_for_width(smallest) if var else None
        floor_note = "none: below the case floor"
        out.append(
            {
                "percent": c["percent"],
                "a": c["a"],
                "b": c["b"],
                **(
                    {"a_components": labels[c["a"]], "b_components": labels[c["b"]]}
                    if labels
                    else {}
                ),
                "seeds": c["seeds"],
                "collapsed_seeds_left_out": c["collapsed_seeds_left_out"],
                "n_cases": c["n_cases"],
                "mean_difference": round(c["difference"], 2),
                "ci95": [low, high],
                "ci_width": round(high - low, 2),
                "difference_per_seed": [round(d, 2) for d in c["difference_per_seed"]],
                "seed_sd_of_difference": round(math.sqrt(var.seed), 2) if var else None,
                "excludes_zero": low > 0 or high < 0,
                "paper_margin": c["paper_margin"],
                "verdict": c["verdict"].verdict if c["verdict"] else None,
                "smallest_paper_margin": smallest,
                "ci_narrower_than_smallest_margin": high - low < smallest,
                # the test cases' spread sets a floor no number of seeds removes
                "ci_width_floor_any_seeds": round(var.ci_width(math.inf), 2) if var else None,
                "seeds_for_smallest_margin": (
                    None if var is None else (floor_note if need is None else need)
                ),
            }
        )
    return out


def keep_run(run_dir: Path, kept: Path) -> None:
    """Copy a finished run's small files to ``kept/<run-id>/`` (each file atomically)."""
    from dycon.data.files import atomic_path

    for name in KEPT_FILES:
        if (run_dir / name).is_file():
            with atomic_path(kept / run_dir.name / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)


def restore_runs(kept: Path, runs_dir: Path, *, data_hash: str | None) -> tuple[int, list[str]]:
    """Refill ``runs_dir`` with the kept runs it lacks that were trained on the data of hash
    ``data_hash`` (a finished run is then reused). Returns (runs restored, run ids left out):
    a run whose stamp names other data, or that has no stamp, is left out and retrained, since
    reusing it would pair runs of two different copies of LA."""
    restored, other_data = 0, []
    for folder in sorted(kept.glob("*/summary.json")):
        target = runs_dir / folder.parent.name
        if (target / "summary.json").is_file() or target.exists():
            continue
        made = _stamp_hash(folder.parent)
        if data_hash is None or made != data_hash:
            other_data.append(folder.parent.name)
            continue
        shutil.copytree(folder.parent, target)
        restored += 1
    return restored, other_data


def write_outputs(report: dict, out: Path) -> None:
    from dycon.data.files import write_text_atomic

    write_text_atomic(out, json.dumps(report, indent=1) + "\n")
    write_text_atomic(out.with_suffix(".csv"), _csv(report["runs"], drop=("dice_per_case",)))
    write_text_atomic(out.with_name(out.stem + "-paired.csv"), _csv(report["paired"]))


def render_page(record: Path, page: Path) -> int:
    """Execute the template of the record's table (``BENCH_TABLES``) on ``record`` into ``page``
    (replaced on success)."""
    from dycon.reproduce import render_page as render
    from dycon.reproduce import repo_relative

    if not record.is_file():
        print(f"error: {record} does not exist; run the bench first", file=sys.stderr)
        return 2
    table = json.loads(record.read_text()).get("table", 4)
    if table not in BENCH_TABLES:
        print(f"error: {record} holds table {table!r}; this bench renders 4 or 5", file=sys.stderr)
        return 2
    try:
        template = ROOT / BENCH_TABLES[table]["template"]
        render(template, page, {"record_path": str(repo_relative(record))})
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {repo_relative(page)}", flush=True)
    return 0


def _csv(rows: list[dict], *, drop: tuple[str, ...] = ()) -> str:
    import pandas as pd

    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in drop} for r in rows])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not table_defaults(args):
        return 2
    if args.page_only:
        return render_page(ROOT / args.out, ROOT / args.page)
    if not args.data_root:
        parser.error("--data-root is required to train (or give --page-only)")
    planned = _planned_runs(args)
    if planned is None:
        return 2
    specs, percents, notes = planned
    margins = paper_margins(args.table, percents=percents)
    smallest = min(margins.values())
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    report = _report_head(args, argv, specs, percents, notes, margins, smallest)
    runs_dir = ROOT / args.runs_dir
    kept = out.with_name("cpu_scale-runs")
    restored, other_data = restore_runs(kept, runs_dir, data_hash=_data_hash(args))
    if restored:
        print(f"refilled {runs_dir} from {kept}: {restored} runs", flush=True)
    if other_data:
        print(
            f"{len(other_data)} kept runs were trained on other or unrecorded data: not reused, "
            "retrained on this copy",
            flush=True,
        )
    _run_all(specs, report, args, out=out, runs_dir=runs_dir, kept=kept, margins=margins)
    render_page(out, ROOT / args.page)
    for p in report.get("paired", []):
        print(
            f"{p['percent']:2d} % {p['a']} - {p['b']}: {p['mean_difference']:+.2f} "
            f"[{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}] over {len(p['seeds'])} seed(s); width "
            f"{p['ci_width']:.2f} vs the paper's smallest margin {smallest:.2f}"
        )
    print(f"wrote {out}")
    return 0


def _data_hash(args) -> str | None:
    from dycon.data.volume import data_root
    from dycon.engine.runs import data_hash

    return data_hash(data_root(args.data_root) / "la")


def table_defaults(args) -> bool:
    """Fill the options left unset with ``args.table``'s (``BENCH_TABLES``); False (the error
    printed) for a table this bench does not run."""
    if args.table not in BENCH_TABLES:
        print(
            f"error: --table {args.table}: this bench runs Table 4 or 5 (LA at the cpu scale); "
            "Tables 1-3 run with `make reproduce TABLE=N`",
            file=sys.stderr,
        )
        return False
    for name in ("rows", "percents", "out", "page"):
        if getattr(args, name) is None:
            setattr(args, name, BENCH_TABLES[args.table][name])
    return True


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, default=4, help="4 (default) or 5 (the ablation)")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1337-1346"))
    parser.add_argument(
        "--percents", help="labeled %% of the 80 train cases (default: Table 4 5,10; Table 5 10)"
    )
    parser.add_argument(
        "--rows",
        help="comma-separated row labels or presets, or 'all' (default: Table 4's single-network "
        "rows; all of Table 5's)",
    )
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--data-root", help="holds la/ prepared --downsample 4 (for training)")
    parser.add_argument("--runs-dir", default="results/runs")
    parser.add_argument(
        "--out", help="the record (default: results/bench/cpu_scale-cpu.json; Table 5's: -table5-)"
    )
    parser.add_argument("--page", help="the book page rendered from --out (book/tables/)")
    parser.add_argument(
        "--page-only", action="store_true", help="render the page from --out; train nothing"
    )
    return parser


def _planned_runs(args) -> tuple[list, list[int], list[str]] | None:
    """The table's run specs, whole seeds one after the other, the labeled percents and the data's
    manifest notes; None (the error printed) for a bad option or data not LA at 4x."""
    from dycon.config import ConfigError
    from dycon.data.volume import DataError
    from dycon.experiments import data_notes, table_runs

    try:
        percents = [int(p) for p in args.percents.split(",")]
        specs = table_runs(
            args.table,
            dataset="la",
            scale=args.scale,
            seeds=args.seeds,
            percents=percents,
            rows=None if args.rows == "all" else args.rows.split(","),
            root=args.data_root,
        )
    except (ConfigError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    notes = data_notes("la", root=args.data_root)
    if not any("4x downsampled" in n for n in notes) and args.scale == "cpu":
        print(
            f"error: {args.data_root}/la is not LA prepared with --downsample 4 (its manifest "
            f"notes: {notes}); run `python -m dycon data prepare la --downsample 4 --dest "
            f"{args.data_root}/la`",
            file=sys.stderr,
        )
        return None
    specs.sort(key=lambda s: args.seeds.index(s.seed))  # a whole seed before the next one
    return specs, percents, notes


def _report_head(args, argv, specs, percents, notes, margins, smallest) -> dict:
    """The record's fields known before the first run: what is run, on what, and by which rule."""
    import torch

    head = {
        "bench": "cpu_scale",
        "table": args.table,
        "scale": args.scale,
        "data": "LA (real), 4x downsampled (2.5 mm); 80 train / 20 test; " + "; ".join(notes),
        "protocol": "final checkpoint, student network, honest metrics, test list test.list",
        "command": "python bench/cpu_scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
        # CPU training repeats bit for bit only at the same thread count: 1 and 2 threads give
        # different losses from step 20 on (LA 4x, supervised V-Net, seed 1337), so it is recorded.
        "machine": machine_info(
            "torch", "numpy", device="auto (cpu here)", torch_threads=torch.get_num_threads()
        ),
        "seeds": args.seeds,
        "percents": percents,
        "planned_runs": len(specs),
        "paper_margins": {f"{a} - {b} at {p} %": m for (p, a, b), m in margins.items()},
        "smallest_paper_margin": smallest,
        "collapse_rule": f"empty prediction on >= {COLLAPSE_SHARE:.0%} of test cases",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.table == 5:  # the page and CSV readers name rows by the components they switch on
        from dycon.report import ablation_labels

        head["row_labels"] = ablation_labels()
        head["margin_rule"] = (
            "the smaller of the poster's ISLES'22 and BraTS'19 differences "
            "(dycon.claims.ablation_claims): the poster's ablation is not on LA"
        )
    return head


def _run_all(specs, report: dict, args, *, out: Path, runs_dir: Path, kept: Path, margins) -> None:
    """Train (or reuse) each run in order, rewriting the record and its CSVs after each one."""
    from dycon.engine.trainer import TrainingError
    from dycon.experiments import ensure

    smallest = report["smallest_paper_margin"]
    runs: list[dict] = []
    failed: list[dict] = []  # a run that cannot train (TrainingError) is named, the rest go on
    for i, spec in enumerate(specs, start=1):
        try:
            (result,) = ensure([spec], runs_dir=runs_dir, root=args.data_root, progress=False)
        except TrainingError as err:
            failed.append(
                {"row": spec.row, "percent": spec.percent, "seed": spec.seed, "error": str(err)}
            )
            print(f"[{i}/{len(specs)}] {spec.row} {spec.percent} % seed {spec.seed}: FAILED {err}")
            report["failed_runs"] = failed
            write_outputs({**report, "runs": runs, "paired": report.get("paired", [])}, out)
            continue
        trained = not (kept / result.run_dir.name / "summary.json").is_file()
        keep_run(result.run_dir, kept)
        runs.append(run_record(result))
        r = runs[-1]
        print(
            f"[{i}/{len(specs)}] {r['row']:26s} {r['percent']:2d} % seed {r['seed']}: Dice "
            f"{r['dice']:6.2f} %  {r['seconds']:6.0f} s"
            + ("  COLLAPSED" if r["collapsed"] else ""),
            flush=True,
        )
        report.update(
            finished_runs=len(runs),
            complete=len(runs) == len(specs),
            total_seconds=round(sum(x["seconds"] for x in runs)),
            per_method=per_method(runs),
            paired=paired(runs, margins, smallest, table=args.table),
            runs=runs,
        )
        write_outputs(report, out)
        if trained:  # while a resume walks the kept runs, the page would show a partial record
            render_page(out, ROOT / args.page)


if __name__ == "__main__":
    sys.exit(main())
