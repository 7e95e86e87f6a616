"""Aggregation over cases or seeds: mean with a percentile-bootstrap confidence interval."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

_CHUNK = 1 << 20  # resampled values held at once, so long inputs stay within a few MB


class MeanCI(NamedTuple):
    """``mean`` and its CI ``[low, high]`` over the ``n`` finite values; ``n_nan`` left out."""

    mean: float
    low: float
    high: float
    n: int
    n_nan: int


def mean_ci(values: object, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> MeanCI:
    """Mean and percentile-bootstrap confidence interval, NaNs excluded and counted.

    ``n_boot`` resamples of the ``n`` non-NaN values (with replacement, ``numpy`` generator
    seeded by ``seed``); the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
    percentiles of the resampled means. ``n = 1`` gives ``low = high = mean``; ``n = 0`` gives
    NaN for all three. NaN marks an undefined value (e.g. HD95 of an empty mask under the honest
    convention): report ``n_nan`` beside the mean. Infinite values raise ``ValueError``.
    """
    x = np.asarray(values, dtype=float).ravel()
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    nan = np.isnan(x)
    x = x[~nan]
    if np.isinf(x).any():
        raise ValueError("values hold an infinity: give a finite penalty or NaN instead")
    n, n_nan = int(x.size), int(nan.sum())
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0, n_nan)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK // n)
    means = np.concatenate(
        [
            x[rng.integers(0, n, size=(min(rows, n_boot - start), n))].mean(axis=1)
            for start in range(0, n_boot, rows)
        ]
    )
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(means, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return MeanCI(float(x.mean()), float(low), float(high), n, n_nan)
