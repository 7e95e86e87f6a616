"""Lesion-wise statistics: one row per connected component of the reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import binary_dilation, find_objects, generate_binary_structure, label

from ._checks import check_pair


@dataclass(frozen=True)
class LesionTable:
    """Result of :func:`lesion_table`.

    Attributes:
        lesions: one dict per reference component, in label order: ``component`` (1-based id,
            ``scipy.ndimage.label`` numbering, raster order of each component's first voxel),
            ``voxels``, ``volume_ml``, ``overlap_voxels`` (voxels also predicted), ``detected``
            (``overlap_voxels >= 1``) and ``dice`` (component Dice in %, see :func:`lesion_table`).
        false_positives: prediction components that share no voxel with the reference.
        pred_components: all prediction components.
    """

    lesions: list[dict[str, float | int | bool]] = field(default_factory=list)
    false_positives: int = 0
    pred_components: int = 0


def lesion_table(
    pred: object,
    ref: object,
    *,
    spacing: object,
    connectivity: int | None = None,
    neighbourhood: int = 2,
) -> LesionTable:
    """Per-lesion detection and Dice, and the count of false-positive prediction components.

    Components are connected with ``generate_binary_structure(ndim, connectivity)``; the default
    ``connectivity=ndim`` (26-neighbours in 3-D) is ``skimage.measure.label``'s default, used by
    the official largest-component post-processing. For each reference component ``C``:

    - ``N`` = voxels within Chebyshev distance ``neighbourhood`` (voxels) of ``C`` (``C``
      dilated by a full 3^d cube that many times), minus the voxels of the other reference
      components, so that a prediction of a neighbouring lesion is not held against ``C``;
    - ``dice = 100 * 2 |C ∩ P| / (|C| + |P ∩ N|)``: the prediction is judged only near the
      lesion, so predictions elsewhere in the image do not lower its score;
    - ``detected = |C ∩ P| >= 1``; ``volume_ml = |C| * prod(spacing) / 1000`` (spacing in mm).

    A prediction component is a false positive when it overlaps no reference voxel.
    """
    p, r, spacing = check_pair(pred, ref, spacing)
    if p.ndim != 3:
        raise ValueError(f"lesion_table needs 3-D masks (volumes in ml), got shape {p.shape}")
    if spacing is None:
        raise ValueError("lesion_table needs spacing (mm) to report volumes in ml")
    if connectivity is None:
        connectivity = p.ndim
    if not (_is_int(connectivity) and 1 <= connectivity <= p.ndim):
        raise ValueError(f"connectivity must be an int in 1..{p.ndim}, got {connectivity!r}")
    if not (_is_int(neighbourhood) and neighbourhood >= 0):
        raise ValueError(f"neighbourhood must be an int >= 0 (voxels), got {neighbourhood!r}")
    structure = generate_binary_structure(p.ndim, connectivity)
    ref_lab, _ = label(r, structure=structure)
    pred_lab, n_pred = label(p, structure=structure)
    hit = np.unique(pred_lab[p & r])  # prediction components touching the reference
    voxel_ml = float(np.prod(spacing)) / 1000.0
    rows = [
        _lesion_row(k, box, ref_lab, p, neighbourhood, voxel_ml)
        for k, box in enumerate(find_objects(ref_lab), start=1)
    ]
    return LesionTable(rows, int(n_pred - hit.size), int(n_pred))


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _lesion_row(k, box, ref_lab, p, neighbourhood, voxel_ml) -> dict[str, float | int | bool]:
    # grow the component's box so the dilation is never cut short inside the array
    win = tuple(
        slice(max(s.start - int(neighbourhood), 0), min(s.stop + int(neighbourhood), n))
        for s, n in zip(box, ref_lab.shape, strict=True)
    )
    labels, pw = ref_lab[win], p[win]
    comp = labels == k
    near = comp
    if neighbourhood > 0:
        cube = np.ones((3,) * comp.ndim, dtype=bool)
        near = binary_dilation(comp, structure=cube, iterations=int(neighbourhood))
    near = near & ((labels == 0) | comp)
    voxels, overlap = int(np.count_nonzero(comp)), int(np.count_nonzero(comp & pw))
    pred_near = int(np.count_nonzero(pw & near))
    return {
        "component": k,
        "voxels": voxels,
        "volume_ml": voxels * voxel_ml,
        "overlap_voxels": overlap,
        "detected": overlap >= 1,
        "dice": 100.0 * 2.0 * overlap / (voxels + pred_near),
    }
