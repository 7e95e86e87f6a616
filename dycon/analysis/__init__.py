"""Analyses behind the figures: lesion-size sensitivity, Grad-CAM, training curves, overlays.

- :mod:`.lesion_study` - per-lesion detection and Dice by lesion volume, per-bin rates with Wilson
  intervals, per-case records, two-method comparisons (numpy / scipy only).
- :mod:`.gradcam` - Grad-CAM maps of UNet3D / VNet through pytorch-grad-cam (imports torch; its
  names load on first use, so the rest of the package does not pay for torch).
- :mod:`.curves` - ``log.jsonl`` series and loss / validation-Dice plots.
- :mod:`.overlays` - TP / FN / FP slice overlays with the ground-truth contour.

Plots return ``matplotlib.figure.Figure`` objects (matplotlib imported on first plot).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .curves import RunLog, plot_curves, read_log, smooth_ema
from .lesion_stats import LESION_METRICS, bin_summary, compare_methods, wilson_interval
from .lesion_study import (
    BINS,
    LesionStudy,
    analyze_case,
    analyze_cases,
    analyze_run,
    assign_bin,
    check_bins,
)
from .overlays import FN, FP, GT_CONTOUR, TP, OverlayCase, overlay_grid, overlay_rgb, pick_slices

if TYPE_CHECKING:
    from .gradcam import (
        CAM_METHODS,
        SCORES,
        LogitsOnly,
        MaskedLogitTarget,
        default_target_layer,
        gradcam_volume,
    )

_LAZY = {
    "CAM_METHODS": "gradcam",
    "SCORES": "gradcam",
    "LogitsOnly": "gradcam",
    "MaskedLogitTarget": "gradcam",
    "default_target_layer": "gradcam",
    "gradcam_volume": "gradcam",
}

__all__ = [
    "BINS",
    "CAM_METHODS",
    "FN",
    "FP",
    "GT_CONTOUR",
    "LESION_METRICS",
    "SCORES",
    "TP",
    "LesionStudy",
    "LogitsOnly",
    "MaskedLogitTarget",
    "OverlayCase",
    "RunLog",
    "analyze_case",
    "analyze_cases",
    "analyze_run",
    "assign_bin",
    "bin_summary",
    "check_bins",
    "compare_methods",
    "default_target_layer",
    "gradcam_volume",
    "overlay_grid",
    "overlay_rgb",
    "pick_slices",
    "plot_curves",
    "read_log",
    "smooth_ema",
    "wilson_interval",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
