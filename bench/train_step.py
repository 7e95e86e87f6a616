"""One DyCON training step: iterations/s and peak memory, fp32 and bf16 autocast.

    python bench/train_step.py                      # current device, both settings, both precisions
    python bench/train_step.py --steps 3 --only la  # fewer timed steps, one setting

Settings: BraTS (UNet3D, 96^3 patches, batch 8 = 4 labeled + 4 unlabeled) and LA (VNet,
112x112x80, batch 4 = 2 + 2), random inputs with a cube of foreground. Each setting and precision
runs in a fresh process so that peak memory is its own; writes
results/bench/train_step-<device>.json.
The trainer autocasts to bf16 on CUDA only, so on CPU the bf16 rows are skipped and recorded as
such (timing them would time fp32 under another name). CPU numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_info  # noqa: E402

SETTINGS = {
    "brats-unet3d": {"model": "unet3d", "patch": (96, 96, 96), "batch": 8, "labeled": 4},
    "la-vnet": {"model": "vnet", "patch": (112, 112, 80), "batch": 4, "labeled": 2},
}


def run_one(name: str, precision: str, device: str, steps: int) -> dict:
    import torch

    from dycon.engine.presets import compose
    from dycon.engine.trainer import _step, build_method, build_networks

    s = SETTINGS[name]
    cfg = compose(
        dataset="brats19" if s["model"] == "unet3d" else "la",
        method="dycon",
        scale="paper",
        overrides=[
            f"model.name={s['model']}",
            f"data.batch_size={s['batch']}",
            f"data.labeled_batch_size={s['labeled']}",
            f"train.amp={'true' if precision == 'bf16' else 'false'}",
            f"train.device={device}",
        ],
    )
    dev = torch.device(device)
    torch.manual_seed(0)
    method = build_method(cfg)
    nets = build_networks(cfg, method, dev)
    opt = {"student": torch.optim.SGD(nets["student"].parameters(), lr=0.01, momentum=0.9)}
    label = torch.zeros(s["batch"], *s["patch"], dtype=torch.long)
    label[:, 30:60, 30:60, 20:50] = 1
    items = {"image": torch.randn(s["batch"], 1, *s["patch"]) + label[:, None], "label": label}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def timed(step: int) -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        _step(cfg, method, nets, opt, {k: v.clone() for k, v in items.items()}, step, dev)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    timed(0)  # warm-up
    times = [timed(i + 1) for i in range(steps)]
    peak = (
        torch.cuda.max_memory_allocated()
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ) / 2**30
    median = statistics.median(times)
    return {
        "setting": name,
        "precision": precision,
        **s,
        "patch": list(s["patch"]),
        "seconds_per_step": median,
        "iterations_per_second": 1.0 / median,
        "seconds_all": times,
        "peak_gb": peak,
        "peak_kind": "cuda max allocated" if device == "cuda" else "process peak RSS",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if available)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--only", default="", help="settings whose name contains this")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.one:
        print(json.dumps(run_one(args.one[0], args.one[1], args.device, args.steps)))
        return 0
    machine = machine_info("torch", "numpy", device=args.device)
    rows, skipped = [], []
    for name in (n for n in SETTINGS if args.only in n):
        for precision in args.precisions.split(","):
            if precision == "bf16" and args.device != "cuda":
                skipped.append({"setting": name, "precision": "bf16", "why": "no autocast on CPU"})
                continue
            cmd = [
                sys.executable,
                __file__,
                "--device",
                args.device,
                "--steps",
                str(args.steps),
                "--one",
                name,
                precision,
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if proc.returncode != 0:
                print(f"error: {name} {precision} failed:\n{proc.stderr}", file=sys.stderr)
                return 1
            row = json.loads(proc.stdout)
            rows.append(row)
            print(
                f"{name:14s} {precision:5s} {row['seconds_per_step']:8.2f} s/step "
                f"{row['iterations_per_second']:7.3f} it/s  {row['peak_gb']:6.2f} GB",
                flush=True,
            )
    import torch

    machine["gpu"] = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    report = {"machine": machine, "steps_timed": args.steps, "results": rows, "skipped": skipped}
    out = ROOT / "results" / "bench" / f"train_step-{args.device}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(out)
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
