"""Table 4 at the cpu scale (real LA, 4x downsampled): converged runs on paired seeds, each method's
paired difference with a bootstrap CI over seeds and test cases, and that CI's width against the
smallest margin the paper claims in the table.

    python -m dycon data prepare la --downsample 4 --dest data-4x/la   # once (2.5 mm LA)
    python bench/cpu_scale.py --data-root data-4x --seeds 1337-1346     # resumes where it stopped

Runs are Table 4's rows (supervised-only, UA-MT and DyCON on the V-Net, DyCON on the 3D U-Net) at
5 % and 10 % labeled (4 and 8 of LA's 80), trained and evaluated by ``dycon.experiments.ensure``
into ``results/runs``: run ids are config hashes, so a finished run is reused (and ``make
reproduce TABLE=4 SCALE=cpu`` with the same data root reuses these runs, and they reuse its). Seeds
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

TABLE = 4
SUPERVISED = "Supervised (labeled only)"
BASELINES = (SUPERVISED, "UA-MT")
COLLAPSE_SHARE = 0.5  # empty predictions on at least this share of test cases
KEPT_FILES = ("summary.json", "per_case.csv", "config.yaml", "log.jsonl")


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


def paper_margins() -> dict[tuple[int, str, str], float]:
    """(percent, DyCON row, baseline row) -> the paper's Dice margin, for the rows we run."""
    from dycon.paper import paper_rows

    dice = {(round(r["labeled_pct"]), r["method"]): r["dice"] for r in paper_rows(TABLE)}
    out = {}
    for (pct, method), value in dice.items():
        if method.startswith("DyCON") and (pct, "UA-MT") in dice and value is not None:
            out[(pct, method, "UA-MT")] = round(value - dice[(pct, "UA-MT")], 2)
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


def paired(runs: list[dict], margins: dict, smallest: float) -> list[dict]:
    """Each row minus supervised-only, and each DyCON row minus each baseline, per fraction."""
    from dycon.metrics import paired_bootstrap

    by = {(r["row"], r["percent"], r["seed"]): r for r in runs}
    rows = list(dict.fromkeys(r["row"] for r in runs))
    out = []
    for pct in sorted({r["percent"] for r in runs}):
        for a in (row for row in rows if row != SUPERVISED):
            for b in BASELINES:
                if a == b or (b == "UA-MT" and not a.startswith("DyCON")):
                    continue
                seeds = sorted(
                    s for (row, p, s) in by if row == a and p == pct and (b, pct, s) in by
                )
                bad = [
                    s for s in seeds if by[(a, pct, s)]["collapsed"] or by[(b, pct, s)]["collapsed"]
                ]
                use = [s for s in seeds if s not in bad]
                if not use:
                    continue
                cases = sorted(by[(a, pct, use[0])]["dice_per_case"])
                sa = [[by[(a, pct, s)]["dice_per_case"][c] for c in cases] for s in use]
                sb = [[by[(b, pct, s)]["dice_per_case"][c] for c in cases] for s in use]
                ci = paired_bootstrap(sa, sb)  # (seeds, cases) each
                low, high = round(ci.low, 2), round(ci.high, 2)
                width = high - low
                per_seed = [
                    statistics.fmean(x) - statistics.fmean(y) for x, y in zip(sa, sb, strict=True)
                ]
                out.append(
                    {
                        "percent": pct,
                        "a": a,
                        "b": b,
                        "seeds": use,
                        "collapsed_seeds_left_out": bad,
                        "n_cases": ci.n_cases,
                        "mean_difference": round(ci.mean, 2),
                        "ci95": [low, high],
                        "ci_width": round(width, 2),
                        "difference_per_seed": [round(d, 2) for d in per_seed],
                        "seed_sd_of_difference": round(statistics.stdev(per_seed), 2)
                        if len(per_seed) > 1
                        else None,
                        "excludes_zero": low > 0 or high < 0,
                        "paper_margin": margins.get((pct, a, b)),
                        "smallest_paper_margin": smallest,
                        "ci_narrower_than_smallest_margin": width < smallest,
                        # width ~ 1/sqrt(seeds) when seed spread dominates: an estimate only
                        "seeds_for_smallest_margin": math.ceil(len(use) * (width / smallest) ** 2)
                        if len(use) > 1
                        else None,
                    }
                )
    return out


def keep_run(run_dir: Path, kept: Path) -> None:
    """Copy a finished run's small files to ``kept/<run-id>/`` (each file atomically)."""
    from dycon.data._io import atomic_path

    for name in KEPT_FILES:
        if (run_dir / name).is_file():
            with atomic_path(kept / run_dir.name / name) as tmp:
                shutil.copyfile(run_dir / name, tmp)


def restore_runs(kept: Path, runs_dir: Path) -> int:
    """Refill ``runs_dir`` with the kept runs it lacks (a finished run is then reused)."""
    restored = 0
    for folder in sorted(kept.glob("*/summary.json")):
        target = runs_dir / folder.parent.name
        if not (target / "summary.json").is_file() and not target.exists():
            shutil.copytree(folder.parent, target)
            restored += 1
    return restored


def write_outputs(report: dict, out: Path) -> None:
    from dycon.data._io import write_text_atomic

    write_text_atomic(out, json.dumps(report, indent=1) + "\n")
    write_text_atomic(out.with_suffix(".csv"), _csv(report["runs"], drop=("dice_per_case",)))
    write_text_atomic(out.with_name(out.stem + "-paired.csv"), _csv(report["paired"]))


def _csv(rows: list[dict], *, drop: tuple[str, ...] = ()) -> str:
    import pandas as pd

    frame = pd.DataFrame([{k: v for k, v in r.items() if k not in drop} for r in rows])
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1337-1346"))
    parser.add_argument("--percents", default="5,10", help="labeled %% of the 80 train cases")
    parser.add_argument("--rows", help="comma-separated row labels or presets (default: all)")
    parser.add_argument("--scale", default="cpu")
    parser.add_argument("--data-root", required=True, help="holds la/ prepared --downsample 4")
    parser.add_argument("--runs-dir", default="results/runs")
    parser.add_argument("--out", default="results/bench/cpu_scale-cpu.json")
    args = parser.parse_args(argv)
    import torch

    from dycon.config import ConfigError
    from dycon.data.volume import DataError
    from dycon.engine.trainer import TrainingError
    from dycon.experiments import data_notes, ensure, table_runs

    try:
        percents = [int(p) for p in args.percents.split(",")]
        specs = table_runs(
            TABLE,
            dataset="la",
            scale=args.scale,
            seeds=args.seeds,
            percents=percents,
            rows=args.rows.split(",") if args.rows else None,
            root=args.data_root,
        )
    except (ConfigError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    notes = data_notes("la", root=args.data_root)
    if not any("4x downsampled" in n for n in notes) and args.scale == "cpu":
        print(
            f"error: {args.data_root}/la is not LA prepared with --downsample 4 (its manifest "
            f"notes: {notes}); run `python -m dycon data prepare la --downsample 4 --dest "
            f"{args.data_root}/la`",
            file=sys.stderr,
        )
        return 2
    specs.sort(key=lambda s: args.seeds.index(s.seed))  # a whole seed before the next one
    margins = paper_margins()
    smallest = min(margins.values())
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    report = {
        "bench": "cpu_scale",
        "table": TABLE,
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
    runs_dir = ROOT / args.runs_dir
    kept = out.with_name("cpu_scale-runs")
    if restore_runs(kept, runs_dir):
        print(f"refilled {runs_dir} from {kept}", flush=True)
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
            paired=paired(runs, margins, smallest),
            runs=runs,
        )
        write_outputs(report, out)
    for p in report.get("paired", []):
        print(
            f"{p['percent']:2d} % {p['a']} - {p['b']}: {p['mean_difference']:+.2f} "
            f"[{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}] over {len(p['seeds'])} seed(s); width "
            f"{p['ci_width']:.2f} vs the paper's smallest margin {smallest:.2f}"
        )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
