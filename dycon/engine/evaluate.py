"""Evaluate a trained run on its test list: per-case CSV and a summary with CIs and provenance."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi
import torch

from ..config import ConfigError, config_hash, to_dict
from ..data.files import atomic_path, write_text_atomic
from ..metrics import CASE_METRICS, case_metrics, mean_ci
from .checkpoint import load_checkpoint
from .datasets import SYNTHETIC, SplitData
from .distributed import resolve_device
from .inference import sliding_window_predict
from .networks import build_network_of, eval_members
from .runs import data_hash, data_version, run_id
from .schema import ExperimentConfig


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 26-connected component (the official ``--nms 1``); empty stays empty."""
    labels, count = ndi.label(mask, structure=np.ones((3,) * mask.ndim))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def save_prediction(path: Path, pred: np.ndarray, spacing) -> None:
    """The binary prediction of one case (``pred``, uint8) and its spacing, written atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, pred=pred.astype(np.uint8), spacing=np.asarray(spacing, float))


def load_prediction(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    with np.load(path) as data:
        return data["pred"].astype(bool), tuple(float(v) for v in data["spacing"])


def evaluate(
    cfg: ExperimentConfig,
    *,
    run_dir: Path,
    test: SplitData,
    train_info: dict | None = None,
    progress: bool = True,
) -> dict:
    """Sliding-window predictions of the selected checkpoint on ``test``; writes per_case.csv
    and summary.json atomically and returns the summary.

    ``eval.select=final`` (default) scores the last checkpoint; ``best_val`` the one with the best
    validation Dice, kept by the trainer (``train.val_every``). Nothing here ever selects on test.
    """
    device = resolve_device(cfg.train.device)
    model = build_network_of(cfg, cfg.eval.model).to(device)
    last = run_dir / "checkpoints" / "last.pt"
    if not last.is_file():
        raise ConfigError(f"no checkpoint at {str(last)!r}: train this configuration first")
    info = load_checkpoint(last, nets={}, optimizers={}, restore_rng=False)
    if info["step"] != cfg.train.iterations:
        raise ConfigError(
            f"{str(last)!r} is at step {info['step']} of {cfg.train.iterations}: "
            "finish training (the same command resumes) before evaluating"
        )
    ckpt = last if cfg.eval.select == "final" else run_dir / "checkpoints" / "best.pt"
    if not ckpt.is_file():
        raise ConfigError(
            f"eval.select=best_val but {str(ckpt)!r} is missing: this run was trained without "
            "validation; retrain with train.val_every > 0 or use eval.select=final"
        )
    selected = load_checkpoint(
        ckpt, nets=eval_members(cfg.eval.model, model), optimizers={}, restore_rng=False
    )
    model.eval()
    patch = cfg.eval.patch or cfg.data.patch
    rows, start = [], time.perf_counter()
    for i, case in enumerate(test.ids):
        t0 = time.perf_counter()
        volume = test.load(i)
        probs = sliding_window_predict(
            model,
            volume.image,
            patch=patch,
            stride=cfg.eval.stride,
            batch_size=cfg.eval.batch_size,
            gaussian=cfg.eval.gaussian,
            device=device,
            autocast=cfg.train.amp,
        )
        pred = probs.argmax(0).numpy() > 0  # (X, Y, Z) foreground
        if cfg.eval.largest_component:
            pred = largest_component(pred)
        if cfg.eval.save_predictions:  # for the lesion-size analysis and the overlays
            save_prediction(run_dir / "predictions" / f"{case}.npz", pred, volume.spacing)
        row = case_metrics(
            pred, volume.label > 0, spacing=volume.spacing, convention=cfg.eval.convention
        )
        rows.append({"case": case, **row, "seconds": round(time.perf_counter() - t0, 3)})
        if progress:
            print(f"  {case}: dice {row['dice']:.2f}", file=sys.stderr)
    train_info = {**(train_info or {}), "selected_step": selected["step"]}
    summary = _summary(cfg, rows, train_info, time.perf_counter() - start, device)
    summary["data_version"] = data_version(test.load.folder)
    # which copy of the data: a committed run is reused only on the copy it was trained on
    summary["data_hash"] = data_hash(test.load.folder)
    _write_csv(run_dir / "per_case.csv", rows)
    write_text_atomic(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _write_csv(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _summary(cfg, rows, train_info, eval_seconds, device) -> dict:
    metrics = {}
    for name in CASE_METRICS:
        values = [float(r[name]) for r in rows]
        ci = mean_ci(values)
        finite = [v for v in values if not math.isnan(v)]
        metrics[name] = {
            "mean": ci.mean,
            "ci95": [ci.low, ci.high],
            "n": ci.n,
            "n_nan": ci.n_nan,
            "std": float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan,
        }
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return {
        "run_id": run_id(cfg),
        "config_hash": config_hash(cfg),
        "dataset": cfg.data.dataset,
        "data_kind": "synthetic" if cfg.data.dataset in SYNTHETIC else "real",
        "scale": cfg.scale,
        "method": cfg.method_name,
        "seed": cfg.train.seed,
        "protocol": {
            "model_selection": cfg.eval.select,
            "selected_step": train_info.get("selected_step"),
            "model": cfg.eval.model,
            "convention": cfg.eval.convention,
            "test_list": cfg.data.test_list,
            "largest_component": cfg.eval.largest_component,
            "num_labeled": cfg.data.num_labeled,
        },
        "metrics": metrics,
        "units": {
            "dice": "%",
            "iou": "%",
            "hd95": rows[0]["distance_unit"],
            "asd": rows[0]["distance_unit"],
        },
        "cases": len(rows),
        "train": train_info,
        "eval_seconds": round(eval_seconds, 2),
        "peak_rss_gb": round(peak_rss, 3),
        "environment": _environment(device),
        "config": to_dict(cfg),
    }


def _environment(device) -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
