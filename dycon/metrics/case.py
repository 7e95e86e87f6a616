"""Per-case metrics with an explicit empty-mask policy: ``honest`` (default) or ``official``."""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_choice, check_pair
from .overlap import _dice, _iou
from .surface import _directed, _hd95, _surfaces

# The per-case metrics of every table, in the paper's column order (case_metrics computes them).
CASE_METRICS = ("dice", "iou", "hd95", "asd")

CONVENTIONS = ("honest", "official")
EMPTY_PENALTIES = (None, "diagonal")


def case_metrics(
    pred: object,
    ref: object,
    *,
    spacing: object = None,
    convention: str = "honest",
    empty_penalty: str | None = None,
) -> dict[str, float | bool | str]:
    """Dice and IoU (%), HD95 and ASD (mm, or voxels without ``spacing``) of one case.

    Returns a flat dict (one row of a per-case table): ``dice``, ``iou``, ``hd95``, ``asd``,
    ``empty_pred``, ``empty_ref``, ``distance_unit`` (``"mm"`` or ``"voxel"``), ``convention``.
    Definitions: :func:`~dycon.metrics.dice`, :func:`~dycon.metrics.hd95` (medpy's pooled
    percentile), :func:`~dycon.metrics.asd` (directed, prediction -> reference). The surfaces
    are computed once and shared by HD95 and ASD.

    ``convention="honest"`` (default):
        Dice and IoU as usual: both masks empty -> 100 (nothing to find, nothing found), empty
        prediction against a non-empty reference -> 0. HD95 and ASD are undefined when either
        mask is empty -> NaN, with ``empty_pred`` / ``empty_ref`` saying why. With
        ``empty_penalty="diagonal"`` a case where exactly one mask is empty (a missed lesion or
        a false alarm) scores the image diagonal ``sqrt(sum((shape_i * spacing_i)^2))`` instead,
        an upper bound on any distance in the image; both empty stays NaN.
    ``convention="official"``:
        The official DyCON evaluation (medpy ``dc/jc/hd95/asd``, no voxel spacing): distances in
        **voxels whatever ``spacing`` is passed**; an empty prediction scores Dice 0, IoU 0,
        HD95 0, ASD 0 (so a missed case looks perfect on distances); an empty reference gives
        HD95 = ASD = 0 too. Dice and IoU are still in % so that tables stay uniform.
    """
    check_choice("convention", convention, CONVENTIONS)
    check_choice("empty_penalty", empty_penalty, EMPTY_PENALTIES)
    if convention == "official" and empty_penalty is not None:
        raise ValueError("empty_penalty applies to convention='honest' only; 'official' scores 0")
    p, r, spacing = check_pair(pred, ref, spacing)
    empty_pred, empty_ref = not p.any(), not r.any()
    if convention == "official":
        spacing = None  # the official code calls medpy without voxelspacing
    row: dict[str, float | bool | str] = {
        "dice": _dice(p, r),
        "iou": _iou(p, r),
        "hd95": math.nan,
        "asd": math.nan,
        "empty_pred": empty_pred,
        "empty_ref": empty_ref,
        "distance_unit": "voxel" if spacing is None else "mm",
        "convention": convention,
    }
    if not (empty_pred or empty_ref):
        sp, sr = _surfaces(p, r)
        d_pr, d_rp = _directed(sp, sr, spacing), _directed(sr, sp, spacing)
        row.update(hd95=_hd95(d_pr, d_rp), asd=float(d_pr.mean()))
    elif convention == "official":
        # the official code returns (0, 0, 0, 0) for an empty prediction, whatever the reference
        row.update(hd95=0.0, asd=0.0, **({"dice": 0.0, "iou": 0.0} if empty_pred else {}))
    elif empty_penalty == "diagonal" and empty_pred != empty_ref:
        worst = image_diagonal(p.shape, spacing=spacing)
        row.update(hd95=worst, asd=worst)
    return row


def image_diagonal(shape: tuple[int, ...], *, spacing: tuple[float, ...] | None = None) -> float:
    """Length of the image's diagonal, ``sqrt(sum((shape_i * spacing_i)^2))`` (mm or voxels)."""
    extent = np.asarray(shape, dtype=float) * (1.0 if spacing is None else np.asarray(spacing))
    return float(np.sqrt(np.sum(extent**2)))
