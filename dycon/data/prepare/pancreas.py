"""Pancreas-CT (NIH, TCIA) -> ``Pancreas_data/PANCREAS_00XX.h5``: HU, 1 mm, CT window, bbox crop.

Recipe (MC-Net / CoraNet): DICOM -> HU (RescaleSlope/Intercept), resample to 1 mm isotropic
(linear for the image, nearest for the label), window [-125, 275] HU scaled to [0, 1], crop to
the pancreas bounding box +-25 voxels on every axis (at least 96 voxels per axis, clamped to the
volume; CoraNet's 3-D crop - MC-Net crops x/y only).

Axis convention of the stored (x, y, z) arrays: x = DICOM column index, y = DICOM row index
(``pixel_array.T``, the voxel order nibabel gives the TCIA label files), z = slices sorted by
ImagePositionPatient along the slice normal, ascending (feet to head for axial head-first CT).
The TCIA labels (``label00XX.nii.gz``) number their slices in InstanceNumber order, the order
every published pipeline pairs them with; the label is re-ordered by the same permutation as the
image, so both agree whatever the direction of InstanceNumber.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from dycon.data.prepare._common import (
    FOLDS_DIR,
    PathLike,
    bbox,
    expand_box,
    load_nifti,
    pinned_lists,
    require_listed,
    require_outside,
    require_raw,
    require_same_shape,
    resample,
    resolve_dest,
)
from dycon.data.prepare.manifest import case_file, finish, staging
from dycon.data.readers import bare_id, write_case_h5
from dycon.data.readers._common import make_volume, one_line
from dycon.data.splits import RAW_BASE_URL, read_split
from dycon.data.volume import DataError, Volume

log = logging.getLogger("dycon.data.prepare")

FIX = "re-download the case from TCIA Pancreas-CT (and TCIA_pancreas_labels-02-05-2017)"
_PATIENT = re.compile(r"^PANCREAS_(\d{4})$")
_LABEL = re.compile(r"^label(\d{4})\.nii(?:\.gz)?$")
_ROOT_LISTS = ("train.list", "test.list")  # the rest (train1..3, test1..3) go to folds/
_DICOM_ERRORS = (InvalidDicomError, OSError, EOFError, ValueError, TypeError, KeyError,
                 AttributeError, NotImplementedError, RuntimeError)  # fmt: skip


def find_cases(raw: Path) -> dict[str, tuple[Path, Path | None]]:
    """Case id (``PANCREAS_00XX``) -> (DICOM folder, ``label00XX.nii.gz`` or None)."""
    labels: dict[int, Path] = {}
    for path in raw.rglob("label*.nii*"):
        match = _LABEL.match(path.name)
        if match:
            labels.setdefault(int(match.group(1)), path)
    found: dict[str, tuple[Path, Path | None]] = {}
    for folder in sorted(raw.rglob("PANCREAS_*")):
        match = _PATIENT.match(folder.name)
        if not (match and folder.is_dir()):
            continue
        if folder.name in found:
            raise DataError(
                f"Pancreas-CT case {folder.name} found twice ({str(found[folder.name][0])!r}, "
                f"{str(folder)!r}); keep one copy under --raw"
            )
        found[folder.name] = (folder, labels.get(int(match.group(1))))
    return found


def _read_slice(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
            if key not in ds:
                raise AttributeError(f"missing {key}")
    except _DICOM_ERRORS as exc:
        raise DataError(
            f"{str(path)!r}: cannot read DICOM slice, truncated, corrupt or incomplete "
            f"({one_line(exc)}); {FIX}"
        ) from exc
    hu = pixels.astype(np.float32) * float(getattr(ds, "RescaleSlope", 1) or 1)
    return ds, hu + np.float32(getattr(ds, "RescaleIntercept", 0) or 0)


def read_dicom_series(folder: Path) -> tuple[np.ndarray, tuple[float, float, float], np.ndarray]:
    """A CT series as HU (x, y, z), its spacing in mm, and each z slice's InstanceNumber rank.

    Raises:
        DataError: no ``*.dcm``, unreadable slices, several series, inconsistent geometry,
            repeated or unevenly spaced slice positions.
    """
    files = sorted(folder.rglob("*.dcm"))
    if not files:
        raise DataError(f"{str(folder)!r}: no DICOM file (searched '**/*.dcm'); {FIX}")
    slices = [_read_slice(path) for path in files]
    first = slices[0][0]
    if len({getattr(ds, "SeriesInstanceUID", None) for ds, _ in slices}) > 1:
        raise DataError(f"{str(folder)!r}: several DICOM series in one case; keep the CT series")
    geometry = {
        (tuple(map(float, ds.ImageOrientationPatient)), tuple(map(float, ds.PixelSpacing)),
         hu.shape)
        for ds, hu in slices
    }  # fmt: skip
    if len(geometry) > 1:
        raise DataError(f"{str(folder)!r}: slices differ in orientation, pixel spacing or size")
    iop = np.asarray(first.ImageOrientationPatient, dtype=np.float64)
    normal = np.cross(iop[:3], iop[3:])
    position = np.array([np.dot(np.asarray(ds.ImagePositionPatient, float), normal)
                         for ds, _ in slices])  # fmt: skip
    order = np.argsort(position, kind="stable")
    steps = np.diff(position[order])
    dz = float(np.median(steps)) if steps.size else float(getattr(first, "SliceThickness", 1))
    if steps.size and (steps.min() <= 1e-3 or np.abs(steps - dz).max() > 0.1 * dz):
        raise DataError(
            f"{str(folder)!r}: slice positions are repeated or unevenly spaced (steps "
            f"{steps.min():.3g}..{steps.max():.3g} mm); {FIX}"
        )
    volume = np.stack([slices[i][1].T for i in order], axis=-1)
    row_mm, col_mm = (float(v) for v in first.PixelSpacing)
    instances = [getattr(ds, "InstanceNumber", None) for ds, _ in slices]
    if None in instances or len(set(instances)) != len(instances):
        rank = np.arange(len(slices))  # no usable InstanceNumber: the label follows positions
    else:
        rank = np.argsort(np.argsort([int(n) for n in instances]))[order]
    return volume, (col_mm, row_mm, dz), rank


def convert_case(
    folder: Path,
    label_path: Path | None,
    case_id: str,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: Sequence[float] = (-125.0, 275.0),
    margin: int = 25,
    min_size: int = 96,
) -> tuple[Volume, dict]:
    """One case: (Volume, extra manifest fields: source spacing, resampled shape, crop box)."""
    if label_path is None:
        raise DataError(
            f"{str(folder)!r}: no label{case_id[-4:]}.nii.gz under --raw (searched "
            f"'**/label00XX.nii.gz' of TCIA_pancreas_labels-02-05-2017); {FIX}"
        )
    hu, source_spacing, rank = read_dicom_series(folder)
    label, _ = load_nifti(label_path, fix=FIX)
    require_same_shape(hu, label, label_path, fix=FIX)
    label = (np.asarray(label)[:, :, rank] > 0).astype(np.uint8)
    image, label, exact = resample(hu[None], label, source_spacing, spacing)
    low, high = window
    image = (np.clip(image, low, high) - low) / (high - low)
    if not label.any():
        raise DataError(f"{str(label_path)!r}: the pancreas label is empty; cannot crop; {FIX}")
    lo, hi = expand_box(*bbox(label), label.shape, margin=margin, min_size=min_size)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    volume = make_volume(folder, image[(slice(None), *box)], label[box], exact, case_id)
    extra = {
        "source_spacing": [round(s, 6) for s in source_spacing],
        "resampled_shape": list(label.shape),
        "crop_box": [lo.tolist(), hi.tolist()],
    }
    return volume, extra


def _fetch_lists(tmp: Path, *, look_in: list[Path], base_url: str, timeout: float) -> dict:
    """DyCON's lists: train.list/test.list at the root, the 4-fold lists under folds/."""
    (tmp / FOLDS_DIR).mkdir()
    with tempfile.TemporaryDirectory(dir=tmp) as upstream:
        paths = pinned_lists(
            "pancreas", Path(upstream), look_in=look_in, base_url=base_url, timeout=timeout
        )
        for path in paths:
            target = tmp / path.name if path.name in _ROOT_LISTS else tmp / FOLDS_DIR / path.name
            shutil.copyfile(path, target)
    return {name: read_split(tmp / name) for name in _ROOT_LISTS}


def prepare_pancreas(
    *,
    raw: PathLike | None = None,
    dest: PathLike | None = None,
    cases: Sequence[str] | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    window: Sequence[float] = (-125.0, 275.0),
    margin: int = 25,
    min_size: int = 96,
    base_url: str = RAW_BASE_URL,
    lists_dir: PathLike | None = None,
    timeout: float = 60.0,
) -> Path:
    """Prepare Pancreas-CT into ``Pancreas_data/PANCREAS_00XX.h5`` with DyCON's lists.

    ``train.list`` (0001-0062) and ``test.list`` (0063-0082) sit at the root; ``folds/`` keeps
    ``train1..3.list``/``test1..3.list``. DyCON's scripts evaluate on ``test1.list``, which lies
    inside ``train.list``: read it only through ``pancreas_eval_list("folds/test1.list",
    split_dir=<dataset folder>)``, which warns.

    Args:
        raw: the TCIA download: ``PANCREAS_00XX/**/*.dcm`` per case, plus ``label00XX.nii.gz``
            (TCIA_pancreas_labels-02-05-2017) anywhere below.
        dest: the dataset folder (default ``$DYCON_DATA/pancreas``).
        cases: prepare only these ids (``PANCREAS_0001`` style); lists are restricted to them.
        spacing: target voxel size in mm.
        window: HU window mapped to [0, 1].
        margin: voxels kept around the pancreas bounding box on each side.
        min_size: minimum crop size per axis (clamped to the volume).
        base_url: raw-file server for the split lists.
        lists_dir: a folder with DyCON's pinned lists (default: raw).
        timeout: seconds per list download.
    """
    dest = resolve_dest("pancreas", dest)
    raw = require_raw(raw, dataset="pancreas", what="Pancreas-CT download with the labels")
    require_outside(raw, dest)
    found = find_cases(raw)
    where = f"{str(raw)!r} (searched '**/PANCREAS_00XX/**/*.dcm')"
    if not found:
        raise DataError(f"Pancreas-CT: no case found under {where}; {FIX}")
    look_in = [Path(p) for p in (lists_dir, raw) if p is not None]
    options = dict(spacing=spacing, window=window, margin=margin, min_size=min_size)
    with staging(dest) as tmp:
        lists = _fetch_lists(tmp, look_in=look_in, base_url=base_url, timeout=timeout)
        if cases is None:
            wanted = list(dict.fromkeys(bare_id(c) for ids in lists.values() for c in ids))
        else:
            wanted = [bare_id(c) for c in cases]
        require_listed({"cases=[...]": wanted} if cases is not None else lists, found, where=where)
        extra = {}
        for case in wanted:
            volume, extra[case] = convert_case(*found[case], case, **options)
            write_case_h5(tmp / case_file("pancreas", case), volume, layout="xyz")
            log.info("pancreas: %s %s", case, volume.label.shape)
        finish(
            tmp,
            dataset="pancreas",
            case_ids=wanted,
            source=_source(raw),
            options=dict(cases=cases, base_url=base_url, lists_dir=lists_dir, **options),
            subset=cases is not None,
            extra=extra,
            notes=["folds/test1.list lies inside train.list (DyCON's evaluation leak): use "
                   "test.list, or read folds lists through pancreas_eval_list (it warns)"],
        )  # fmt: skip
    return dest


def _source(raw: Path) -> dict:
    return {
        "name": "NIH Pancreas-CT (TCIA), labels TCIA_pancreas_labels-02-05-2017",
        "url": "https://www.cancerimagingarchive.net/collection/pancreas-ct/",
        "raw": str(raw),
        "lists": "KU-CVML/DyCON@69c13841 data/Pancreas/*.list",
        "axes": "x = DICOM column, y = DICOM row, z = ascending position along the slice normal",
    }
