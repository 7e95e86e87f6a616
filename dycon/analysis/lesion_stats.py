"""Per-bin summaries of lesion records (:mod:`dycon.analysis.lesion_study`): detection rates with
Wilson intervals, mean per-lesion Dice with bootstrap intervals, and paired method differences.

Lesions are resampled as if independent, which ignores that lesions of one case are correlated:
read the intervals as a guide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.special import ndtri

from ..metrics import mean_ci
from .lesion_study import BINS, Bin, bin_of, check_bins

LESION_METRICS = ("detection_rate", "detection_iou_rate", "dice")
COLUMNS = ("bin", "metric", "method", "kind", "value", "low", "high", "n")
# metric -> (record field, bin_summary prefix, bin_summary value, scale of a paired difference)
_FIELDS = {
    "detection_rate": ("detected", "detection", "detection_rate", 100.0),
    "detection_iou_rate": ("detected_iou", "detection_iou", "detection_iou_rate", 100.0),
    "dice": ("dice", "dice", "dice_mean", 1.0),
}


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion, as fractions in [0, 1].

    With ``p = successes / n`` and ``z`` the ``(1 + level) / 2`` normal quantile:
    ``(p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``. ``n = 0`` gives ``(nan, nan)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not isinstance(successes, (int, np.integer)) or not 0 <= successes <= n:
        raise ValueError(f"successes must be an int in [0, n={n}], got {successes!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n == 0:
        return math.nan, math.nan
    z = float(ndtri((1.0 + level) / 2.0))
    p, z2n = successes / n, z * z / n
    center = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return max(0.0, center - half), min(1.0, center + half)


def bin_summary(
    lesions: Sequence[Mapping],
    *,
    bins: Sequence[Bin] = BINS,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    include_all: bool = False,
) -> list[dict]:
    """One row per bin (in ``bins`` order, empty bins included) of per-lesion records.

    Lesions are binned again from ``volume_ml`` with ``bins``, so the bins may differ from those
    the records were made with. Each row: ``bin``, ``low_ml``, ``high_ml``, ``n_lesions``,
    ``n_detected``, ``detection_rate`` with ``detection_low`` / ``detection_high`` (Wilson, %),
    the same three for ``detection_iou_*`` and ``n_detected_iou``, and ``dice_mean``,
    ``dice_low``, ``dice_high`` (bootstrap, %). Empty bins give NaN. ``include_all`` appends a
    row ``"all"`` over every binned lesion.
    """
    rows = []
    for name, low, high, group in _groups(lesions, bins, include_all):
        row: dict = {"bin": name, "low_ml": low, "high_ml": high, "n_lesions": len(group)}
        for key, out in (("detected", "detection"), ("detected_iou", "detection_iou")):
            hits = sum(bool(x[key]) for x in group)
            lo, hi = wilson_interval(hits, len(group), level=level)
            row[f"n_{key}"] = hits
            row[f"{out}_rate"] = 100.0 * hits / len(group) if group else math.nan
            row[f"{out}_low"], row[f"{out}_high"] = 100.0 * lo, 100.0 * hi
        ci = mean_ci([x["dice"] for x in group], level=level, n_boot=n_boot, seed=seed)
        row["dice_mean"], row["dice_low"], row["dice_high"] = ci.mean, ci.low, ci.high
        rows.append(row)
    return rows


def compare_methods(
    lesions_a: Sequence[Mapping],
    lesions_b: Sequence[Mapping],
    *,
    names: tuple[str, str] = ("A", "B"),
    bins: Sequence[Bin] = BINS,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    include_all: bool = False,
) -> list[dict]:
    """Two methods' per-bin results on the same lesions, and their paired differences.

    ``lesions_a`` and ``lesions_b`` are per-lesion records of the same cases (same ground truth),
    paired by ``(case, lesion)``. Tidy rows ``{bin, metric, method, kind, value, low, high, n}``
    for each bin and each metric of ``LESION_METRICS`` (``detection_rate``, ``detection_iou_rate``,
    ``dice``, all in %): ``kind="method"`` rows as in :func:`bin_summary` (Wilson intervals for
    rates, bootstrap for Dice), and a ``kind="difference"`` row, method ``"<B> - <A>"``: the mean
    per-lesion difference (detection as 0 / 100) with a paired percentile-bootstrap interval.
    """
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"names must be two different method names, got {names!r}")
    index_a, index_b = _index(lesions_a, names[0]), _index(lesions_b, names[1])
    if index_a.keys() != index_b.keys():
        only = sorted(index_a.keys() ^ index_b.keys())[:5]
        raise ValueError(f"the methods were scored on different lesions, e.g. {only}")
    for k, x in index_a.items():
        if x["voxels"] != index_b[k]["voxels"]:
            raise ValueError(f"lesion {k} has different sizes: not the same ground truth")
    summaries = [
        bin_summary(x, bins=bins, level=level, n_boot=n_boot, seed=seed, include_all=include_all)
        for x in (lesions_a, lesions_b)
    ]
    groups = _groups(list(index_a.values()), bins, include_all)
    diff_name = f"{names[1]} - {names[0]}"
    rows = []
    for i, (name, _, _, group) in enumerate(groups):
        for metric, (fld, pre, val, scale) in _FIELDS.items():
            for method, summary in zip(names, summaries, strict=True):
                s = summary[i]
                ci = (s[val], s[f"{pre}_low"], s[f"{pre}_high"], s["n_lesions"])
                rows.append(dict(zip(COLUMNS, (name, metric, method, "method", *ci), strict=True)))
            diffs = [scale * (float(index_b[_key(x)][fld]) - float(x[fld])) for x in group]
            ci = mean_ci(diffs, level=level, n_boot=n_boot, seed=seed)
            values = (name, metric, diff_name, "difference", ci.mean, ci.low, ci.high, ci.n)
            rows.append(dict(zip(COLUMNS, values, strict=True)))
    return rows


def _groups(lesions, bins, include_all):
    bins = check_bins(bins)
    groups = [(name, low, high, []) for name, low, high in bins]
    for x in lesions:
        name = bin_of(float(x["volume_ml"]), bins)
        if name is not None:
            groups[[g[0] for g in groups].index(name)][3].append(x)
    if include_all:
        if "all" in (b[0] for b in bins):
            raise ValueError('include_all adds a row "all": rename the bin called "all"')
        everything = [x for g in groups for x in g[3]]
        groups.append(("all", bins[0][1], bins[-1][2], everything))
    return groups


def _key(x: Mapping) -> tuple:
    return (x["case"], x["lesion"])


def _index(lesions: Sequence[Mapping], method: str) -> dict[tuple, Mapping]:
    index = {}
    for x in lesions:
        if _key(x) in index:
            raise ValueError(f"lesion {_key(x)} appears twice in the records of {method!r}")
        index[_key(x)] = x
    return index
