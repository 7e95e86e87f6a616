"""BraTS 2019 -> SSL4MIS format: FLAIR, whole tumour, cropped to the brain, stored z-first.

Recipe of ``HiLab-git/SSL4MIS`` ``code/dataloaders/brats_proprecessing.py``: crop to the bounding
box of non-zero FLAIR voxels, clip at the 99.9th percentile of the cropped volume, z-score with
the mean and std of voxels > 0 (applied to the whole crop, so the background becomes a negative
constant, as upstream), label = seg > 0. Arrays keep the NIfTI voxel order (no reorientation, as
SimpleITK reads them) and are stored (z, y, x) like SSL4MIS's files.

One deliberate difference: upstream slices ``min:max`` and so drops the last non-zero plane of
each axis; here the box includes it (``min:max + 1``).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dycon.data.prepare._common import (
    PathLike,
    bbox,
    load_nifti,
    pinned_lists,
    require_finite,
    require_listed,
    require_outside,
    require_raw,
    require_same_shape,
    resolve_dest,
)
from dycon.data.prepare.manifest import case_file, finish, staging
from dycon.data.readers import bare_id, write_case_h5
from dycon.data.readers._common import make_volume
from dycon.data.splits import RAW_BASE_URL, read_split, write_split
from dycon.data.volume import DataError, Volume

log = logging.getLogger("dycon.data.prepare")

FIX = "re-download the BraTS 2019 training data (CBICA IPP)"
CLIP_PERCENTILE = 99.9
_SUFFIXES = (".nii.gz", ".nii")
_LISTS = {"train.txt": "train.list", "val.txt": "val.list", "test.txt": "test.list"}


def find_cases(raw: Path) -> dict[str, tuple[Path, Path | None]]:
    """Case id -> (FLAIR, seg or None) for every ``**/<id>_flair.nii[.gz]`` under raw."""
    found: dict[str, tuple[Path, Path | None]] = {}
    for suffix in _SUFFIXES:
        for flair in sorted(raw.rglob(f"*_flair{suffix}")):
            case = flair.name.removesuffix(f"_flair{suffix}")
            if case in found:
                raise DataError(
                    f"BraTS'19 case {case!r} found twice ({str(found[case][0])!r} and "
                    f"{str(flair)!r}); keep one copy under --raw"
                )
            segs = [flair.with_name(f"{case}_seg{s}") for s in _SUFFIXES]
            found[case] = (flair, next((p for p in segs if p.is_file()), None))
    return found


def convert_case(flair_path: Path, seg_path: Path | None, case_id: str) -> Volume:
    """One case in the SSL4MIS format, as a Volume in (x, y, z) voxel order.

    Raises:
        DataError: missing or unreadable files, shapes that differ, NaN/Inf, an empty FLAIR.
    """
    if seg_path is None:
        raise DataError(
            f"{str(flair_path)!r}: no {case_id}_seg.nii.gz beside it (training cases carry a "
            f"segmentation); {FIX}"
        )
    flair, zooms = load_nifti(flair_path, fix=FIX)
    require_finite(flair, flair_path, fix=FIX)
    seg, _ = load_nifti(seg_path, fix=FIX)
    require_same_shape(flair, seg, seg_path, fix=FIX)
    if not np.any(flair != 0):
        raise DataError(f"{str(flair_path)!r}: the FLAIR image is all zero; {FIX}")
    lo, hi = bbox(flair != 0)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    image = np.asarray(flair[box], dtype=np.float64)
    # SSL4MIS clips at the first value whose cumulative share reaches 99.9% (no interpolation).
    top = np.quantile(image, CLIP_PERCENTILE / 100, method="inverted_cdf")
    image = np.clip(image, image.min(), top)
    brain = image[image > 0]
    image = (image - brain.mean()) / (brain.std() or 1.0)
    label = (np.asarray(seg[box]) > 0).astype(np.uint8)
    return make_volume(flair_path, image[None].astype(np.float32), label, zooms, case_id)


def _fetch_lists(
    tmp: Path, *, look_in: list[Path], base_url: str, timeout: float
) -> dict[str, list[str]]:
    """SSL4MIS train/val/test.txt, written as train/val/test.list (same ids, LF endings)."""
    with tempfile.TemporaryDirectory(dir=tmp) as upstream:
        paths = pinned_lists(
            "brats19", Path(upstream), look_in=look_in, base_url=base_url, timeout=timeout
        )
        lists = {_LISTS[p.name]: read_split(p) for p in paths}
    for name, ids in lists.items():
        write_split(tmp / name, ids)
    return lists


def prepare_brats19(
    *,
    raw: PathLike | None = None,
    dest: PathLike | None = None,
    cases: Sequence[str] | None = None,
    base_url: str = RAW_BASE_URL,
    lists_dir: PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """Prepare BraTS 2019 into ``data/<id>.h5`` plus ``train/val/test.list`` (SSL4MIS 250/25/60).

    Args:
        raw: the BraTS 2019 training download (``<HGG|LGG>/<id>/<id>_flair.nii.gz`` and
            ``_seg.nii.gz``; searched recursively).
        dest: the dataset folder (default ``$DYCON_DATA/brats19``).
        cases: prepare only these ids (split lists are restricted to them).
        base_url: raw-file server for the split lists.
        lists_dir: a folder with SSL4MIS ``train.txt``/``val.txt``/``test.txt`` (default: raw).
        timeout: seconds per list download.

    Returns:
        The dataset folder.
    """
    dest = resolve_dest("brats19", dest)
    raw = require_raw(raw, dataset="brats19", what="MICCAI_BraTS_2019_Data_Training")
    require_outside(raw, dest)
    found = find_cases(raw)
    where = f"{str(raw)!r} (searched '**/<id>_flair.nii.gz')"
    if not found:
        raise DataError(f"BraTS'19: no case found under {where}; {FIX} and pass its folder")
    look_in = [Path(p) for p in (lists_dir, raw) if p is not None]
    with staging(dest) as tmp:
        lists = _fetch_lists(tmp, look_in=look_in, base_url=base_url, timeout=timeout)
        wanted = [bare_id(c) for c in cases] if cases is not None else _union(lists)
        require_listed({"cases=[...]": wanted} if cases is not None else lists, found, where=where)
        for case in wanted:
            volume = convert_case(*found[case], case)
            write_case_h5(tmp / case_file("brats19", case), volume, layout="zyx")
            log.info("brats19: %s %s", case, volume.label.shape)
        finish(
            tmp,
            dataset="brats19",
            case_ids=wanted,
            source=_source(raw),
            options=dict(cases=cases, base_url=base_url, lists_dir=lists_dir),
            subset=cases is not None,
        )
    return dest


def _union(lists: dict[str, list[str]]) -> list[str]:
    """Every listed id once, in list order (train, val, test)."""
    return list(dict.fromkeys(bare_id(c) for ids in lists.values() for c in ids))


def _source(raw: Path) -> dict:
    return {
        "name": "BraTS 2019 training data (FLAIR, whole tumour), SSL4MIS preprocessing",
        "url": "https://www.med.upenn.edu/cbica/brats2019/data.html",
        "raw": str(raw),
        "lists": "HiLab-git/SSL4MIS@06df6047 data/BraTS2019/{train,val,test}.txt",
        "storage": "h5 arrays (z, y, x) of the NIfTI voxel grid, attribute axes='zyx'",
    }
