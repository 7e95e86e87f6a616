"""Aggregation over cases or seeds: mean with a percentile-bootstrap confidence interval, and the
paired difference of two methods bootstrapped over seeds and test cases."""

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


class PairedCI(NamedTuple):
    """Mean paired difference ``a - b`` and its CI ``[low, high]`` over seeds and test cases.

    ``n_seeds`` x ``n_cases`` differences entered; ``n_dropped`` cases were left out because a
    value of either side was NaN on some seed.
    """

    mean: float
    low: float
    high: float
    n_seeds: int
    n_cases: int
    n_dropped: int


def paired_bootstrap(
    a: object, b: object, *, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> PairedCI:
    r"""Paired difference of two methods, bootstrapped over seeds and test cases together.

    ``a[s, i]`` and ``b[s, i]`` are the scores of the two methods on test case ``i`` for training
    seed ``s`` (the same seeds, labeled sets and test cases on both sides). With
    :math:`d_{si} = a_{si} - b_{si}` the estimate is :math:`\bar d = \frac{1}{SN}\sum_{s,i} d_{si}`;
    each resample draws ``S`` seeds and ``N`` cases with replacement, independently (a two-way
    bootstrap of the crossed seed x case design, since the cases are shared across seeds), and
    takes the mean of :math:`d` over the drawn rows and columns. The interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the resampled means. One seed
    (``S = 1``) resamples cases only: the interval then ignores seed-to-seed variation.

    Args:
        a: (S, N) scores of the first method (a 1-D array is one seed).
        b: (S, N) scores of the second method, same shape.
        level: confidence level in (0, 1).
        n_boot: number of resamples (>= 1).
        seed: seed of the ``numpy`` generator.

    Returns:
        ``PairedCI``; all NaN with ``n_cases = 0`` when no case is finite on every seed.

    Raises:
        ValueError: shapes differ or are not 1-D/2-D, an infinite value, bad level or n_boot.
    """
    a2, b2 = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a2.shape != b2.shape or a2.ndim != 2:
        raise ValueError(
            f"a and b must both be (seeds, cases) of one shape, got {np.shape(a)} and {np.shape(b)}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be an int >= 1, got {n_boot!r}")
    diff = a2 - b2  # (S, N)
    if np.isinf(diff).any():
        raise ValueError("scores hold an infinity: give a finite penalty or NaN instead")
    keep = ~np.isnan(diff).any(axis=0)  # a case enters only if it is finite on every seed
    diff = diff[:, keep]  # (S, N')
    s, n, dropped = diff.shape[0], diff.shape[1], int((~keep).sum())
    if n == 0:
        return PairedCI(math.nan, math.nan, math.nan, s, 0, dropped)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK // (s * n))
    means = []
    for start in range(0, n_boot, rows):
        k = min(rows, n_boot - start)
        seeds = rng.integers(0, s, size=(k, s, 1))  # (k, S, 1)
        cases = rng.integers(0, n, size=(k, 1, n))  # (k, 1, N)
        means.append(diff[seeds, cases].mean(axis=(1, 2)))  # (k,)
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(np.concatenate(means), [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return PairedCI(float(diff.mean()), float(low), float(high), s, n, dropped)
