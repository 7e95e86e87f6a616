"""Metric benchmark: HD95 + ASD, ours against medpy 0.5.2 in the same run.

    python bench/metrics.py                  # -> results/bench/metrics-cpu.json
    python bench/metrics.py --repeats 3      # fewer timed runs

Pairs, 256 x 256 x 160 voxels at (0.7, 0.7, 2.5) mm, fixed seeds:

- ``lesion``: two overlapping ellipsoids of different sizes and positions, each roughened by
  smoothed noise: a tumour-sized prediction against its reference (~2% of the volume each,
  joint bounding box 9% of the array);
- ``organ``: the same spanning most of the array (~40% each, joint box = the whole array, ~400k
  surface voxels each), so the crop saves nothing: the worst case for our implementation.

Timed (median of ``--repeats`` runs, no warm-up needed: nothing is cached between calls):
``medpy`` = ``hd95`` + ``asd`` with ``voxelspacing``; ``ours`` = our ``hd95`` + ``asd``, the
same two public calls; ``ours_case_metrics`` = ``case_metrics`` (Dice, IoU, HD95 and ASD with
the surfaces shared). Wall-clock seconds: medpy runs on one core, ours too except the KD-tree
queries for the few far surface voxels (all cores). Values are checked equal to medpy's
(``max_abs_diff``); ``targets`` asks for a 3x speed-up on both pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine_info
from scipy.ndimage import gaussian_filter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dycon.metrics import asd, case_metrics, hd95  # noqa: E402

SHAPE = (256, 256, 160)
SPACING = (0.7, 0.7, 2.5)
# name -> ((centre, radii) of the reference, (centre, radii) of the prediction)
PAIRS = {
    "lesion": (((128, 120, 80), (45, 38, 28)), ((134, 116, 83), (52, 34, 25))),
    "organ": (((128, 128, 80), (118, 112, 72)), ((131, 125, 82), (112, 116, 70))),
}
TARGET_SPEEDUP = 3.0
IMPLS = ("ours", "ours_case_metrics")


def blob(centre, radii, *, seed: int) -> np.ndarray:
    """Ellipsoid ``|x - c| / r < 1`` with its boundary roughened by smoothed Gaussian noise."""
    grid = np.ogrid[tuple(slice(0, n) for n in SHAPE)]
    radius = np.sqrt(sum(((x - c) / r) ** 2 for x, c, r in zip(grid, centre, radii, strict=True)))
    noise = gaussian_filter(np.random.default_rng(seed).standard_normal(SHAPE, np.float32), 4.0)
    return radius + 0.15 * noise / noise.std() < 1.0


def hd95_asd(row: dict) -> tuple[float, float]:
    """The two distances of one ``case_metrics`` row (one call: a generator would call it twice)."""
    return row["hd95"], row["asd"]


def timed(fn, repeats: int) -> tuple[list[float], object]:
    seconds, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        seconds.append(time.perf_counter() - start)
    return seconds, value


def run_pair(name: str, repeats: int) -> dict:
    from medpy.metric import binary as mb

    (c_ref, r_ref), (c_pred, r_pred) = PAIRS[name]
    ref, pred = blob(c_ref, r_ref, seed=1), blob(c_pred, r_pred, seed=2)
    union = np.argwhere(pred | ref)
    box = union.max(axis=0) - union.min(axis=0) + 1
    runs = {
        "medpy": lambda: (
            float(mb.hd95(pred, ref, voxelspacing=SPACING)),
            float(mb.asd(pred, ref, voxelspacing=SPACING)),
        ),
        "ours": lambda: (hd95(pred, ref, spacing=SPACING), asd(pred, ref, spacing=SPACING)),
        "ours_case_metrics": lambda: hd95_asd(case_metrics(pred, ref, spacing=SPACING)),
    }
    result: dict = {
        "ref_voxels": int(ref.sum()),
        "pred_voxels": int(pred.sum()),
        "joint_box": box.tolist(),
        "joint_box_fraction": float(np.prod(box) / np.prod(SHAPE)),
    }
    for key, fn in runs.items():
        seconds, value = timed(fn, repeats)
        print(f"{name:7s} {key:18s} median {statistics.median(seconds):7.3f} s  {value}")
        result[key] = {"seconds": seconds, "seconds_median": statistics.median(seconds)}
        result[key]["hd95_mm"], result[key]["asd_mm"] = value
    for key in IMPLS:
        result[key]["speedup_vs_medpy"] = (
            result["medpy"]["seconds_median"] / result[key]["seconds_median"]
        )
        result[key]["max_abs_diff"] = max(
            abs(result[key][m] - result["medpy"][m]) for m in ("hd95_mm", "asd_mm")
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "metrics-cpu.json")
    args = parser.parse_args()
    info = machine_info("numpy", "scipy", "medpy")  # before the timings: their load average
    pairs = {name: run_pair(name, args.repeats) for name in PAIRS}
    report = {
        "benchmark": "hd95 + asd, dycon.metrics against medpy",
        "shape": list(SHAPE),
        "spacing_mm": list(SPACING),
        "repeats": args.repeats,
        "machine": info,
        "pairs": pairs,
        "targets": [
            *(
                {
                    "goal": f"hd95 + asd >= {TARGET_SPEEDUP:g}x faster than medpy ({name} pair)",
                    "value": p["ours"]["speedup_vs_medpy"],
                    "met": p["ours"]["speedup_vs_medpy"] >= TARGET_SPEEDUP,
                }
                for name, p in pairs.items()
            ),
            {
                "goal": "values equal to medpy's within 1e-6 (all pairs)",
                "value": max(p[k]["max_abs_diff"] for p in pairs.values() for k in IMPLS),
                "met": all(p[k]["max_abs_diff"] <= 1e-6 for p in pairs.values() for k in IMPLS),
            },
        ],
    }
    for name, p in pairs.items():
        print(
            f"{name}: speed-up {p['ours']['speedup_vs_medpy']:.1f}x (hd95 + asd), "
            f"{p['ours_case_metrics']['speedup_vs_medpy']:.1f}x (case_metrics)"
        )
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")
    return 0 if all(t["met"] for t in report["targets"]) else 1


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    raise SystemExit(main())
