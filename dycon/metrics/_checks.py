"""Input checks shared by the metrics: one-line ValueErrors that say what was wrong."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def as_mask(name: str, value: object) -> np.ndarray:
    """Return ``value`` as a boolean mask (nonzero = foreground).

    Bool and integer arrays are taken as they are (nonzero = foreground). Floating arrays must
    hold only 0 and 1: anything else is almost always a probability map passed by mistake.
    """
    a = np.asarray(value)
    if a.ndim not in (2, 3):
        raise ValueError(f"{name} must be a 2-D or 3-D mask, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return a != 0
    if np.issubdtype(a.dtype, np.floating):
        bad = (a != 0) & (a != 1)
        if bad.any():
            raise ValueError(
                f"{name} is not binary (holds {a[bad].flat[0]!r}, dtype {a.dtype}): threshold "
                "the probability map first, e.g. prob > 0.5"
            )
        return a != 0
    raise ValueError(f"{name} must be a bool, integer or 0/1 float mask, got dtype {a.dtype}")


def check_spacing(spacing: object, ndim: int) -> tuple[float, ...] | None:
    """``None`` (voxel units) or one finite, positive voxel size in mm per axis."""
    if spacing is None:
        return None
    if isinstance(spacing, (str, bytes)) or not isinstance(spacing, (Sequence, np.ndarray)):
        raise ValueError(f"spacing must be a sequence of {ndim} voxel sizes in mm, got {spacing!r}")
    try:
        values = tuple(float(v) for v in np.asarray(spacing, dtype=float).ravel())
    except (TypeError, ValueError):
        raise ValueError(f"spacing must hold numbers, got {spacing!r}") from None
    if len(values) != ndim:
        raise ValueError(f"spacing {spacing!r} has {len(values)} values for a {ndim}-D mask")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing {spacing!r} must be finite and > 0 on every axis")
    return values


def check_pair(
    pred: object, ref: object, spacing: object
) -> tuple[np.ndarray, np.ndarray, tuple[float, ...] | None]:
    """Validate a prediction / reference pair and its spacing; return boolean masks."""
    p, r = as_mask("pred", pred), as_mask("ref", ref)
    if p.shape != r.shape:
        raise ValueError(f"pred and ref must have the same shape, got {p.shape} and {r.shape}")
    return p, r, check_spacing(spacing, p.ndim)


def check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
