"""The quick scale's promise, checked: supervised-only and DyCON on isles-sim with 8 labeled cases
each train and evaluate within minutes on a 2-core CPU, and which of the two wins on test Dice.

    python bench/quick_scale.py                       # seeds 1337-1339, reusing finished runs
    python bench/quick_scale.py --seeds 1337 --limit 300

Runs are Table 1's rows at 20 % (8 of isles-sim's 40 training cases), trained and evaluated by
``dycon.experiments.ensure`` into ``results/runs`` (so a reproduced Table 1 reuses them and they
reuse its). Seconds are those each run recorded (train + evaluate, in-process; an interpreter's
start is not included); a reused run keeps the seconds and the load of its own day, which the
record states. Writes results/bench/quick_scale-cpu.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_info  # noqa: E402

ROWS = (("Supervised (labeled only)", "supervised"), ("DyCON", "dycon"))
PERCENT = 20  # of isles-sim's 40 training cases: 8 labeled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1337,1338,1339")
    parser.add_argument("--limit", type=float, default=300.0, help="seconds allowed per run")
    parser.add_argument("--runs-dir", default="results/runs")
    args = parser.parse_args()
    from dycon.experiments import RunSpec, ensure, labeled_count, train_size

    machine = machine_info("torch", "numpy", device="auto (cpu here)")
    seeds = [int(s) for s in args.seeds.split(",")]
    n_labeled = labeled_count(PERCENT, train_size("isles-sim"))
    specs = [
        RunSpec(1, row, method, "isles-sim", PERCENT, n_labeled, "quick", seed)
        for row, method in ROWS
        for seed in seeds
    ]
    results = ensure(specs, runs_dir=ROOT / args.runs_dir, device="auto")
    runs = []
    for r in results:
        s = r.summary
        runs.append(
            {
                "method": r.spec.method,
                "seed": r.spec.seed,
                "run_id": r.run_id,
                "num_labeled": s["protocol"]["num_labeled"],
                "dice": s["metrics"]["dice"]["mean"],
                "dice_ci95": s["metrics"]["dice"]["ci95"],
                "train_seconds": s["train"]["seconds"],
                "eval_seconds": s["eval_seconds"],
                "total_seconds": s["train"]["seconds"] + s["eval_seconds"],
                "data_version": s.get("data_version"),
            }
        )
    by = {m: [x for x in runs if x["method"] == m] for _, m in ROWS}
    paired = [d["dice"] - b["dice"] for d, b in zip(by["dycon"], by["supervised"], strict=True)]
    verdict = {
        "mean_dice": {m: statistics.fmean(x["dice"] for x in v) for m, v in by.items()},
        "dycon_minus_supervised_per_seed": dict(zip(map(str, seeds), paired, strict=True)),
        "dycon_minus_supervised_mean": statistics.fmean(paired),
        "dycon_ahead_on_seeds": sum(d > 0 for d in paired),
        "slowest_run_seconds": max(x["total_seconds"] for x in runs),
        "all_within_limit": all(x["total_seconds"] <= args.limit for x in runs),
        "limit_seconds": args.limit,
    }
    report = {
        "machine": machine,
        "data": "isles-sim (SYNTHETIC), test list of 24 cases; Table 1's rows at 20 % = 8 labeled",
        "note": "seconds are recorded by each run when it ran (reused runs keep theirs)",
        "runs": runs,
        "verdict": verdict,
    }
    out = ROOT / "results" / "bench" / "quick_scale-cpu.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)
    for x in runs:
        print(
            f"{x['method']:10s} seed {x['seed']}  Dice {x['dice']:6.2f} %  "
            f"train {x['train_seconds']:6.1f} s  evaluate {x['eval_seconds']:5.1f} s"
        )
    print(
        f"DyCON - supervised: {verdict['dycon_minus_supervised_mean']:+.2f} Dice points "
        f"(ahead on {verdict['dycon_ahead_on_seeds']} of {len(seeds)} seeds); slowest run "
        f"{verdict['slowest_run_seconds']:.0f} s (limit {args.limit:.0f} s)"
    )
    print(f"wrote {out.relative_to(ROOT)}")
    return 0 if verdict["all_within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
