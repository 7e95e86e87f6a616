"""Seconds per quick-scale training step of each baseline against MT, in the same process.

    python bench/method_step.py  # MT, supervised, UA-MT, DyCON and every baseline
    python bench/method_step.py --methods mt,dtc --rounds 3

Each method is built from its preset at the quick scale on isles-sim's shapes (32^3 patches,
batch 4 = 2 labeled + 2 unlabeled, the quick U-Net) with a fixed random batch; the methods are
timed in interleaved rounds (one step of each per round, after one warm-up step each), so a load
that changes during the run weighs on all of them alike. Reported: the median seconds per step
and its ratio to MT's. Writes results/bench/method_step-<device>.json and a CSV beside it.
CPU numbers on a shared machine are indicative only; they say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_info  # noqa: E402


def build(method: str, device: str):
    import torch

    from dycon.engine.presets import compose
    from dycon.engine.trainer import (
        _step,
        build_method,
        build_networks,
        build_optimizers,
        trainable_names,
    )

    overrides = [f"train.device={device}"]
    cfg = compose(dataset="isles-sim", method=method, scale="quick", overrides=overrides)
    torch.manual_seed(0)
    m = build_method(cfg)
    dev = torch.device(device)
    nets = build_networks(cfg, m, dev)
    opts = build_optimizers(cfg, nets, trainable_names(m))
    b, patch = cfg.data.batch_size, tuple(cfg.data.patch)
    label = torch.zeros(b, *patch, dtype=torch.long)
    label[:, 8:20, 8:20, 8:20] = 1
    items = {"image": torch.randn(b, 1, *patch) + label[:, None], "label": label}

    def step(i: int) -> float:
        start = time.perf_counter()
        _step(cfg, m, nets, opts, {k: v.clone() for k, v in items.items()}, i, dev)
        return time.perf_counter() - start

    return step


def default_methods() -> list[str]:
    """MT first (the reference), then every method preset but the official-code ones
    (``*-reference``: the same method, another recipe)."""
    from dycon.config import available

    presets = [m for m in available("methods") if not m.endswith("-reference") and m != "mt"]
    return ["mt", *presets]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(default_methods()))
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per method")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if "mt" not in methods:
        parser.error("--methods must include mt (the reference)")
    machine = machine_info("torch")  # the load average as the timings start
    steps = {m: build(m, args.device) for m in methods}
    for m in methods:
        steps[m](0)  # warm-up
    times = {m: [] for m in methods}
    for r in range(args.rounds):
        for m in methods:
            times[m].append(steps[m](r + 1))
    mt = statistics.median(times["mt"])
    table = pd.DataFrame(
        [
            {
                "method": m,
                "seconds_per_step": statistics.median(t),
                "ratio_to_mt": statistics.median(t) / mt,
                "rounds": len(t),
            }
            for m, t in times.items()
        ]
    )
    out = ROOT / "results" / "bench" / f"method_step-{args.device}.json"
    record = {
        "what": "seconds per quick-scale training step (isles-sim shapes), median over rounds",
        "scale": "quick",
        "dataset": "isles-sim shapes, random batch (synthetic)",
        "machine": machine,
        "rows": table.to_dict(orient="records"),
        "seconds_all": times,
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    csv_tmp = out.with_suffix(".csv.tmp")
    table.to_csv(csv_tmp, index=False)
    csv_tmp.replace(out.with_suffix(".csv"))
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
