"""Overlap metrics: Dice and IoU (Jaccard) in %, as medpy's ``dc`` and ``jc`` times 100."""

from __future__ import annotations

import numpy as np

from ._checks import check_pair


def dice(pred: object, ref: object, *, spacing: object = None) -> float:
    """Dice similarity coefficient in %.

    ``Dice = 100 * 2 |P ∩ R| / (|P| + |R|)`` with P, R the foreground voxels (nonzero) of the
    prediction and the reference. Both masks empty -> 100, as medpy's ``dc`` (1.0); an empty
    prediction against a non-empty reference -> 0.

    Args:
        pred: binary prediction, 2-D or 3-D (bool, integer, or float holding only 0 and 1).
        ref: binary reference of the same shape.
        spacing: voxel size per axis in mm. Validated but unused: every voxel has the same
            volume, so Dice does not depend on it (accepted so all metrics share one signature).
    """
    p, r, _ = check_pair(pred, ref, spacing)
    return _dice(p, r)


def iou(pred: object, ref: object, *, spacing: object = None) -> float:
    """Intersection over union (Jaccard index) in %.

    ``IoU = 100 * |P ∩ R| / |P ∪ R|``; both masks empty -> 100, as medpy's ``jc`` (1.0).
    Arguments as in :func:`dice`; ``spacing`` is validated and unused.
    """
    p, r, _ = check_pair(pred, ref, spacing)
    return _iou(p, r)


def _dice(p: np.ndarray, r: np.ndarray) -> float:
    total = np.count_nonzero(p) + np.count_nonzero(r)
    if total == 0:
        return 100.0
    return 100.0 * (2.0 * np.count_nonzero(p & r) / float(total))


def _iou(p: np.ndarray, r: np.ndarray) -> float:
    union = np.count_nonzero(p | r)
    if union == 0:
        return 100.0
    return 100.0 * (np.count_nonzero(p & r) / float(union))
