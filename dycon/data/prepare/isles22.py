"""ISLES'22 (BIDS release) -> DyCON's ISLES h5: ``<case>.h5`` with ``image``, ``mask``, spacing.

Grid (a keyword, recorded in the manifest): DWI (and ADC with ``adc=True``) reoriented to RAS+
by ``read_isles_bids``, resampled to 2.0 mm isotropic (linear; mask nearest), then cropped or
zero-padded to 112 x 112 x 72 voxels centred on the brain's bounding box. 2 mm and 112 x 112
are the native grid of most ISLES'22 DWI (112 x 112 x 73 at 2 mm); 72 slices (144 mm) keeps a
whole brain and is divisible by 8 for a 4-level U-Net. Lesion voxels cut by the crop are counted
in the manifest (``mask_voxels_cropped``) and logged. Intensities: each channel z-scored over the
brain (non-zero DWI voxels), background 0.

The split is seeded (``make_isles_split``): 200 train / 50 test of the 250 public cases.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from dycon.data.prepare._common import (
    PathLike,
    bbox,
    crop_pad_centred,
    require_outside,
    require_raw,
    resample,
    resolve_dest,
    zscore_in_mask,
)
from dycon.data.prepare.manifest import case_file, finish, staging
from dycon.data.readers import list_isles_bids_cases, read_isles_bids, write_case_h5
from dycon.data.readers._common import make_volume
from dycon.data.splits import make_isles_split
from dycon.data.volume import DataError, Volume

log = logging.getLogger("dycon.data.prepare")

FIX = "re-download the ISLES'22 release (Zenodo record 7960856)"
SPACING = (2.0, 2.0, 2.0)
SHAPE = (112, 112, 72)


def convert_case(
    raw: Path,
    case_id: str,
    *,
    adc: bool = False,
    spacing: Sequence[float] | None = SPACING,
    shape: Sequence[int] | None = SHAPE,
) -> tuple[Volume, dict]:
    """One BIDS case as a prepared Volume and its extra manifest fields.

    Args:
        raw: the BIDS root.
        case_id: ``sub-strokecaseXXXX``.
        adc: add ADC as a second channel.
        spacing: target voxel size in mm; None keeps the native grid (isles-sim).
        shape: output grid in voxels, cropped/padded around the brain; None keeps the extent.
    """
    volume = read_isles_bids(raw, case_id, adc=adc)  # rejects NaN/Inf and mismatched grids
    image, mask, exact = volume.image, volume.label, volume.spacing
    if spacing is not None:
        image, mask, exact = resample(image, mask, exact, spacing)
    brain = image[0] != 0
    if not brain.any():
        raise DataError(f"ISLES case {case_id!r} under {str(raw)!r}: the DWI is all zero; {FIX}")
    extra = {"source_spacing": [round(s, 6) for s in volume.spacing]}
    if shape is not None:
        lo, hi = bbox(brain)
        before = int(mask.sum())
        image, mask, brain = crop_pad_centred([image, mask, brain], (lo + hi) // 2, shape)
        extra["mask_voxels_cropped"] = before - int(mask.sum())
        if extra["mask_voxels_cropped"]:
            log.warning(
                "%s: %d lesion voxels outside the %s grid",
                case_id,
                extra["mask_voxels_cropped"],
                tuple(shape),
            )
    image = zscore_in_mask(image, brain)
    return make_volume(f"{raw}/{case_id}", image, mask, exact, case_id), extra


def convert_all(
    raw: Path, folder: Path, case_ids: Sequence[str], *, dataset: str, **grid
) -> dict[str, dict]:
    """Write every case to ``folder/<case>.h5``; returns the extra manifest fields per case."""
    extra = {}
    for case in case_ids:
        volume, extra[case] = convert_case(raw, case, **grid)
        write_case_h5(folder / case_file(dataset, case), volume, label_key="mask", layout="xyz")
        log.info("%s: %s %s", dataset, case, volume.label.shape)
    return extra


def prepare_isles22(
    *,
    raw: PathLike | None = None,
    dest: PathLike | None = None,
    cases: Sequence[str] | None = None,
    adc: bool = False,
    spacing: Sequence[float] | None = SPACING,
    shape: Sequence[int] | None = SHAPE,
    split_seed: int = 0,
    n_train: int = 200,
    n_test: int = 50,
) -> Path:
    """Prepare ISLES'22 into ``<case>.h5`` files plus a seeded ``train.list``/``test.list``.

    Args:
        raw: the BIDS release (Zenodo ``ISLES-2022/`` or the GitHub sample's folder).
        dest: the dataset folder (default ``$DYCON_DATA/isles22``).
        cases: prepare only these ids; the split is drawn from them.
        adc: store ADC as a second channel after DWI.
        spacing: target voxel size in mm (None: native grid).
        shape: output grid in voxels (None: no crop/pad).
        split_seed: seed of ``make_isles_split``.
        n_train: training cases in the split (the first N of train.list are the labeled ones).
        n_test: test cases in the split.
    """
    dest = resolve_dest("isles22", dest)
    raw = require_raw(raw, dataset="isles22", what="ISLES-2022")
    require_outside(raw, dest)
    found = list_isles_bids_cases(raw)
    if not found:
        raise DataError(
            f"ISLES'22: no case found under {str(raw)!r} (searched "
            f"'**/sub-strokecaseXXXX_ses-0001_dwi.nii.gz'); {FIX}"
        )
    wanted = found if cases is None else [str(c).strip() for c in cases]
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise DataError(f"ISLES'22: case(s) {missing[:5]} not found under {str(raw)!r}; {FIX}")
    grid = dict(adc=adc, spacing=spacing, shape=shape)
    with staging(dest) as tmp:
        make_isles_split(wanted, seed=split_seed, n_train=n_train, n_test=n_test, dest_dir=tmp)
        extra = convert_all(raw, tmp, wanted, dataset="isles22", **grid)
        finish(
            tmp,
            dataset="isles22",
            case_ids=wanted,
            source=_source(raw),
            options=dict(cases=cases, split_seed=split_seed, n_train=n_train, n_test=n_test,
                         **grid),
            subset=False,  # the split is drawn from the prepared cases: nothing to restrict
            extra=extra,
        )  # fmt: skip
    return dest


def _source(raw: Path) -> dict:
    return {
        "name": "ISLES'22 training set (BIDS), DWI",
        "url": "https://zenodo.org/records/7960856",
        "raw": str(raw),
        "axes": "RAS+ voxel order (nibabel.as_closest_canonical)",
    }
