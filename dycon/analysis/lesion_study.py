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
- **Per-bin summaries** (:mod:`dycon.analysis.lesion_stats`): detection rates in % with Wilson
  score intervals, mean per-lesion Dice (missed lesions count as 0) with a percentile bootstrap
  interval (:func:`dycon.metrics.mean_ci`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import generate_binary_structure, label

from ..metrics import check_pair, dice, lesion_table

Bin = tuple[str, float, float]
BINS: tuple[Bin, ...] = (
    ("tiny", 0.0, 0.5),
    ("small", 0.5, 2.0),
    ("medium", 2.0, 10.0),
    ("large", 10.0, math.inf),
)


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
                "bin": bin_of(row["volume_ml"], bins),
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


def bin_of(volume_ml: float, bins: tuple[Bin, ...]) -> str | None:
    for name, low, high in bins:
        if low <= volume_ml < high:
            return name
    return None
