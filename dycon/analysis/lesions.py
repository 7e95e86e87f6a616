"""Lesion-size sensitivity: detection and per-lesion Dice by ground-truth lesion volume.

Definitions (one ground-truth lesion ``C`` = one connected component of the reference):

- **Components** are those of :func:`dycon.metrics.lesion_table`, which this module calls:
  ``scipy.ndimage.label`` with ``generate_binary_structure(3, connectivity)``, default
  ``connectivity=3`` (26-neighbours, skimage's default and the official post-processing's), and
  ids in ``scipy.ndimage.label`` order (raster order of each component's first voxel). The same
  labelling is applied to the prediction.
- **Volume** ``volume_ml = |C| * prod(spacing) / 1000`` (spacing in mm).
- **Matched prediction** ``P_C`` = the union of the prediction components that share at least
  one voxel with ``C``, minus the voxels of the *other* ground-truth lesions (a prediction that
  merges two lesions is not held against either for covering the other one; the part of it
  outside every lesion counts against both). ``|C ∩ P_C| = |C ∩ P|``.
- **Per-lesion IoU and Dice** (in %): ``iou = 100 |C ∩ P_C| / |C ∪ P_C|`` and
  ``dice = 100 * 2 |C ∩ P_C| / (|C| + |P_C|)``; both 0 for a missed lesion. ``dice_near`` is
  :func:`~dycon.metrics.lesion_table`'s variant (prediction judged within 2 voxels of ``C``).
- **Detection**: ``detected`` = ``|C ∩ P| >= 1`` voxel; ``detected_iou`` = ``iou / 100 >=
  iou_threshold`` (default 0.1, a fraction).
- **Bins** are ``(name, low_ml, high_ml)`` with ``low <= volume < high``; a volume outside every
  bin gets ``bin=None`` and is left out of the per-bin summaries.
- **Per-bin summaries**: detection rates in % with Wilson score intervals
  (:func:`wilson_interval`), mean per-lesion Dice (missed lesions count as 0) with a percentile
  bootstrap interval (:func:`dycon.metrics.mean_ci`). Lesions are resampled as if independent,
  which ignores that lesions of one case are correlated: read the intervals as a guide.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import generate_binary_structure, label
from scipy.special import ndtri

from ..metrics import dice, lesion_table, mean_ci
from ..metrics._checks import check_pair

Bin = tuple[str, float, float]
BINS: tuple[Bin, ...] = (
    ("tiny", 0.0, 0.5),
    ("small", 0.5, 2.0),
    ("medium", 2.0, 10.0),
    ("large", 10.0, math.inf),
)
METRICS = ("detection_rate", "detection_iou_rate", "dice")
COLUMNS = ("bin", "metric", "method", "kind", "value", "low", "high", "n")
# metric -> (record field, bin_summary prefix, bin_summary value, scale of a paired difference)
_FIELDS = {
    "detection_rate": ("detected", "detection", "detection_rate", 100.0),
    "detection_iou_rate": ("detected_iou", "detection_iou", "detection_iou_rate", 100.0),
    "dice": ("dice", "dice", "dice_mean", 1.0),
}


@dataclass(frozen=True)
class LesionStudy:
    """Per-lesion and per-case records of one or more cases (see the module docstring).

    Attributes:
        lesions: one dict per ground-truth lesion: ``case``, ``lesion`` (component id),
            ``voxels``, ``volume_ml``, ``bin``, ``overlap_voxels`` (``|C ∩ P|``),
            ``pred_voxels`` (``|P_C|``), ``pred_components`` (prediction components touching
            ``C``), ``iou``, ``dice``, ``dice_near`` (%), ``detected``, ``detected_iou``.
        cases: one dict per case: ``case``, ``dice`` (case Dice in %, both masks empty -> 100),
            ``n_lesions``, ``n_detected``, ``n_detected_iou``, ``total_volume_ml``,
            ``pred_volume_ml``, ``pred_components``, ``false_positives`` (prediction components
            touching no lesion).
    """

    lesions: list[dict] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)


def check_bins(bins: object) -> tuple[Bin, ...]:
    """Validate ``bins``: ``(name, low_ml, high_ml)`` triples, unique names, increasing."""
    if isinstance(bins, (str, bytes)) or not isinstance(bins, Sequence) or not bins:
        raise ValueError(
            f"bins must be a non-empty sequence of (name, low_ml, high_ml), got {bins!r}"
        )
    out: list[Bin] = []
    for b in bins:
        if isinstance(b, (str, bytes)) or not isinstance(b, Sequence) or len(b) != 3:
            raise ValueError(f"each bin must be (name, low_ml, high_ml), got {b!r}")
        name, low, high = b
        if not isinstance(name, str) or not name:
            raise ValueError(f"bin names must be non-empty strings, got {name!r} in {b!r}")
        try:
            low, high = float(low), float(high)
        except (TypeError, ValueError):
            raise ValueError(f"bin bounds must be numbers (mL), got {b!r}") from None
        if math.isnan(low) or math.isnan(high) or low < 0 or not low < high:
            raise ValueError(f"bin {b!r} needs 0 <= low_ml < high_ml")
        if out and low < out[-1][2]:
            raise ValueError(
                f"bins must be increasing and disjoint: {b!r} starts inside {out[-1]!r}"
            )
        out.append((name, low, high))
    names = [b[0] for b in out]
    if len(set(names)) != len(names):
        raise ValueError(f"bin names must be unique, got {names}")
    return tuple(out)


def assign_bin(volume_ml: float, *, bins: Sequence[Bin] = BINS) -> str | None:
    """Name of the bin with ``low <= volume_ml < high``, or ``None`` if no bin holds it."""
    for name, low, high in check_bins(bins):
        if low <= volume_ml < high:
            return name
    return None


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


def analyze_case(
    pred: object,
    gt: object,
    *,
    case: str,
    spacing: Sequence[float],
    bins: Sequence[Bin] = BINS,
    iou_threshold: float = 0.1,
    connectivity: int | None = None,
) -> LesionStudy:
    """Per-lesion and per-case records of one case (definitions in the module docstring).

    Args:
        pred: binary prediction, 3-D (bool, integer, or float holding only 0 and 1).
        gt: binary ground truth of the same shape.
        case: case id, copied into every record.
        spacing: voxel size per axis in mm.
        bins: volume bins, ``(name, low_ml, high_ml)``, lower bound inclusive.
        iou_threshold: IoU (a fraction in (0, 1]) from which a lesion counts as ``detected_iou``.
        connectivity: 1 (6-), 2 (18-) or 3 (26-neighbours, the default).

    Raises:
        ValueError: masks of different shapes, not 3-D or not binary; bad spacing, bins,
            threshold or connectivity.
    """
    p, r, sp = check_pair(pred, gt, spacing)
    if p.ndim != 3:
        raise ValueError(f"pred and gt must be 3-D volumes, got shape {p.shape}")
    if sp is None:
        raise ValueError("spacing (mm per axis) is required to report volumes in mL")
    bins = check_bins(bins)
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, (int, float)):
        raise ValueError(f"iou_threshold must be a number in (0, 1], got {iou_threshold!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold is a fraction in (0, 1] (0.1 = 10 %), got {iou_threshold}")
    table = lesion_table(p, r, spacing=sp, connectivity=connectivity)  # validates connectivity
    structure = generate_binary_structure(3, 3 if connectivity is None else connectivity)
    ref_lab, n_ref = label(r, structure=structure)
    pred_lab, n_pred = label(p, structure=structure)
    if n_ref != len(table.lesions):  # same labelling as lesion_table, so never expected
        raise RuntimeError("lesion labelling disagrees with dycon.metrics.lesion_table")

    # (lesion, prediction component) pairs that share voxels, and how many
    both = p & r
    key = ref_lab[both].astype(np.int64) * (n_pred + 1) + pred_lab[both]
    keys, counts = np.unique(key, return_counts=True)
    ref_ids, pred_ids = np.divmod(keys, n_pred + 1)
    pred_sizes = np.bincount(pred_lab.ravel(), minlength=n_pred + 1)
    pred_outside = pred_sizes - np.bincount(pred_lab[r], minlength=n_pred + 1)  # |k \ R|
    matched = np.zeros(n_ref + 1)  # |P_C| = sum over touching k of |k \ R| + |k ∩ C|
    np.add.at(matched, ref_ids, pred_outside[pred_ids] + counts)
    touching = np.bincount(ref_ids, minlength=n_ref + 1)

    lesions = []
    for row in table.lesions:
        k, size, inter = row["component"], row["voxels"], row["overlap_voxels"]
        union = size + matched[k] - inter
        iou_frac = inter / union if union else 0.0
        lesions.append(
            {
                "case": case,
                "lesion": k,
                "voxels": size,
                "volume_ml": row["volume_ml"],
                "bin": _bin_of(row["volume_ml"], bins),
                "overlap_voxels": inter,
                "pred_voxels": int(matched[k]),
                "pred_components": int(touching[k]),
                "iou": 100.0 * iou_frac,
                "dice": 100.0 * 2.0 * inter / (size + matched[k]),
                "dice_near": row["dice"],
                "detected": bool(row["detected"]),
                "detected_iou": bool(iou_frac >= iou_threshold),
            }
        )
    voxel_ml = float(np.prod(sp)) / 1000.0
    summary = {
        "case": case,
        "dice": dice(p, r),
        "n_lesions": len(lesions),
        "n_detected": sum(x["detected"] for x in lesions),
        "n_detected_iou": sum(x["detected_iou"] for x in lesions),
        "total_volume_ml": int(np.count_nonzero(r)) * voxel_ml,
        "pred_volume_ml": int(np.count_nonzero(p)) * voxel_ml,
        "pred_components": int(n_pred),
        "false_positives": table.false_positives,
    }
    return LesionStudy(lesions, [summary])


def analyze_cases(
    cases: Iterable[tuple[str, object, object, Sequence[float]]],
    *,
    bins: Sequence[Bin] = BINS,
    iou_threshold: float = 0.1,
    connectivity: int | None = None,
) -> LesionStudy:
    """:func:`analyze_case` over ``(case, pred, gt, spacing)`` tuples, records concatenated."""
    study = LesionStudy()
    seen: set[str] = set()
    for item in cases:
        if not (isinstance(item, tuple) and len(item) == 4):
            raise ValueError("cases must yield (case, pred, gt, spacing) tuples")
        case, pred, gt, spacing = item
        if case in seen:
            raise ValueError(f"case {case!r} appears twice")
        seen.add(case)
        one = analyze_case(
            pred,
            gt,
            case=case,
            spacing=spacing,
            bins=bins,
            iou_threshold=iou_threshold,
            connectivity=connectivity,
        )
        study.lesions.extend(one.lesions)
        study.cases.extend(one.cases)
    return study


def analyze_run(
    run_dir: str | Path,
    gts: Mapping[str, object],
    *,
    bins: Sequence[Bin] = BINS,
    iou_threshold: float = 0.1,
    connectivity: int | None = None,
) -> LesionStudy:
    """:func:`analyze_cases` on a run's saved predictions, ``<run_dir>/predictions/<case>.npz``.

    The files are those of ``dycon.engine.evaluate.save_prediction`` (keys ``pred`` and
    ``spacing``; the spacing is taken from them). ``gts`` maps every predicted case id to its
    ground truth (extra ground truths, e.g. of training cases, are ignored).
    """
    folder = Path(run_dir) / "predictions"
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise ValueError(f"no saved predictions in {folder}: evaluate the run first")
    missing = [f.stem for f in files if f.stem not in gts]
    if missing:
        raise ValueError(f"no ground truth given for case(s) {missing[:5]} of {folder}")

    def items():
        for f in files:
            with np.load(f) as data:
                pred, spacing = data["pred"].astype(bool), data["spacing"].tolist()
            yield f.stem, pred, gts[f.stem], spacing

    return analyze_cases(items(), bins=bins, iou_threshold=iou_threshold, connectivity=connectivity)


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
    for each bin and each metric of ``METRICS`` (``detection_rate``, ``detection_iou_rate``,
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


def _bin_of(volume_ml: float, bins: tuple[Bin, ...]) -> str | None:
    for name, low, high in bins:
        if low <= volume_ml < high:
            return name
    return None


def _groups(lesions, bins, include_all):
    bins = check_bins(bins)
    groups = [(name, low, high, []) for name, low, high in bins]
    for x in lesions:
        name = _bin_of(float(x["volume_ml"]), bins)
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
