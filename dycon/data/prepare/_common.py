"""Pieces the prepare modules share: folders, NIfTI, resampling, boxes, normalisation, lists.

Every failure is a one-line ``DataError`` naming the file or value and the fix.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from dycon.data import datasets
from dycon.data.files import sha256_file
from dycon.data.readers._common import bare_id
from dycon.data.readers.bids import load_nifti as load_nifti_file
from dycon.data.splits import PINNED_LISTS, fetch_split_lists, read_split, write_split
from dycon.data.volume import DATA_PAGE, DataError, data_root

PathLike = str | os.PathLike
DATASETS = tuple(datasets.DATASETS)  # the names, in the order of dycon.data.datasets
FOLDS_DIR = "folds"  # Pancreas 4-fold lists, kept apart from the default pair


def resolve_dest(dataset: str, dest: PathLike | None) -> Path:
    """The dataset folder: ``dest`` as given, else ``$DYCON_DATA/<dataset>`` (default ./data)."""
    if dest is not None:
        return Path(dest)
    return data_root(None, must_exist=False) / dataset


def require_raw(raw: PathLike | None, *, dataset: str, what: str) -> Path:
    """The raw download folder, which must exist.

    Args:
        raw: the folder the user passed.
        dataset: for the message.
        what: what the folder should be, e.g. "the BraTS 2019 training folder".
    """
    if raw is None:
        raise DataError(
            f"{dataset}: no raw folder given; pass --raw <{what}> (download: see {DATA_PAGE})"
        )
    path = Path(raw)
    if not path.is_dir():
        raise DataError(
            f"{dataset}: raw folder {str(path)!r} does not exist; pass --raw <{what}> "
            f"(download: see {DATA_PAGE})"
        )
    return path


def require_outside(raw: Path, dest: Path) -> None:
    """Refuse a raw folder inside the dataset folder: the final rename would replace it."""
    raw_abs, dest_abs = raw.resolve(), dest.resolve()
    if raw_abs == dest_abs or dest_abs in raw_abs.parents:
        raise DataError(
            f"raw folder {str(raw)!r} lies inside the destination {str(dest)!r}, which prepare "
            "replaces; move the download elsewhere"
        )


def load_nifti(path: Path, *, fix: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A 3-D NIfTI volume in its stored voxel order (no reorientation) and its voxel size in mm.

    Raises:
        DataError: unreadable, truncated or not 3-D (a trailing axis of length 1 is dropped).
    """
    data, _, spacing = load_nifti_file(path, canonical=False, fix=fix)
    return data, spacing


def require_finite(array: np.ndarray, path: PathLike, *, fix: str) -> None:
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{str(path)!r}: image contains {bad} NaN/Inf voxel(s); {fix}")


def require_same_shape(image: np.ndarray, label: np.ndarray, label_path: PathLike, *, fix: str):
    if image.shape != label.shape:
        raise DataError(
            f"{str(label_path)!r}: label shape {label.shape} differs from the image shape "
            f"{image.shape}; {fix}"
        )


def resample(
    image: np.ndarray, label: np.ndarray, spacing: Sequence[float], target: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Resample (C, X, Y, Z) image (linear) and (X, Y, Z) label (nearest) to ``target`` mm.

    ``grid_mode=True`` maps voxel edges onto voxel edges, so the field of view is kept; the
    output has round(n * s / t) voxels per axis and the returned spacing is the exact one,
    n * s / round(n * s / t), which differs from ``target`` by under half a voxel over the volume.
    """
    spacing = np.asarray(spacing, dtype=np.float64)
    factors = spacing / np.asarray(target, dtype=np.float64)
    if np.allclose(factors, 1.0):
        return image, label, tuple(float(s) for s in spacing)
    # Edge replication: a constant border would blend CT air (-1000 HU) with 0 at the rim.
    zoom = dict(grid_mode=True, mode="nearest")
    out = np.stack([ndimage.zoom(c, factors, order=1, **zoom) for c in image]).astype(np.float32)
    lab = ndimage.zoom(label, factors, order=0, **zoom).astype(np.uint8)
    exact = spacing * np.asarray(label.shape) / np.asarray(lab.shape)
    return out, lab, tuple(float(s) for s in exact)


def bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the non-zero voxels per axis, hi exclusive; the mask must not be empty."""
    coords = np.nonzero(mask)
    lo = np.array([c.min() for c in coords])
    hi = np.array([c.max() + 1 for c in coords])
    return lo, hi


def expand_box(
    lo: np.ndarray, hi: np.ndarray, shape: Sequence[int], *, margin: int, min_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """A box grown by ``margin`` per side, then to at least ``min_size`` per axis, in the volume.

    The growth to ``min_size`` is centred on the box; at a border it shifts inwards, and an axis
    shorter than ``min_size`` is kept whole.
    """
    shape = np.asarray(shape)
    lo = np.maximum(np.asarray(lo) - margin, 0)
    hi = np.minimum(np.asarray(hi) + margin, shape)
    size = np.minimum(np.maximum(hi - lo, min_size), shape)
    lo = np.clip((lo + hi) // 2 - size // 2, 0, shape - size)
    return lo, lo + size


def crop_pad_centred(
    arrays: Sequence[np.ndarray], centre: Sequence[int], shape: Sequence[int]
) -> list[np.ndarray]:
    """Cut windows of ``shape`` centred on ``centre`` from (..., X, Y, Z) arrays, zero-padded.

    Axes longer than ``shape`` are cropped (the window is shifted to stay inside), shorter ones
    are padded evenly.
    """
    spatial = np.asarray(arrays[0].shape[-3:])
    shape = np.asarray(shape)
    start = np.clip(np.asarray(centre) - shape // 2, 0, np.maximum(spatial - shape, 0))
    pad_before = np.maximum(shape - spatial, 0) // 2
    out = []
    for array in arrays:
        box = np.zeros(array.shape[:-3] + tuple(shape), dtype=array.dtype)
        take = np.minimum(shape, spatial)
        src = tuple(slice(s, s + n) for s, n in zip(start, take, strict=True))
        dst = tuple(slice(p, p + n) for p, n in zip(pad_before, take, strict=True))
        box[(..., *dst)] = array[(..., *src)]
        out.append(box)
    return out


def zscore_in_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Each channel of (C, X, Y, Z) standardised over ``mask``; voxels outside are set to 0.

    Zero outside is the brain mean after standardisation, so padding and background agree.
    """
    out = np.zeros_like(image, dtype=np.float32)
    for c, channel in enumerate(image):
        values = channel[mask].astype(np.float64)
        std = values.std()
        out[c][mask] = (values - values.mean()) / (std if std > 0 else 1.0)
    return out


def pinned_lists(
    dataset: str,
    dest_dir: Path,
    *,
    look_in: Sequence[Path],
    base_url: str,
    timeout: float,
) -> list[Path]:
    """The dataset's pinned upstream split lists in ``dest_dir``, offline when possible.

    A list found in one of ``look_in`` (the raw download, a ``lists_dir``) with the pinned
    sha256 is copied; the others are downloaded from ``base_url`` and checked by
    ``fetch_split_lists``.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    for pinned in PINNED_LISTS[dataset]:
        for folder in look_in:
            candidate = folder / pinned.name
            if candidate.is_file() and sha256_file(candidate) == pinned.sha256:
                shutil.copyfile(candidate, dest_dir / pinned.name)
                break
    try:
        return fetch_split_lists(dataset, dest_dir, base_url=base_url, timeout=timeout)
    except DataError as exc:
        # The message points at the staging folder, which is deleted: point at a folder the
        # user controls instead, where the next run looks for the lists.
        hint = str(look_in[0]) if look_in else "a folder passed as lists_dir"
        raise DataError(str(exc).replace(str(dest_dir), hint)) from exc


# ---------------------------------------------------------------- split lists


def list_files(folder: Path) -> list[Path]:
    """The split lists of a prepared folder: ``*.list`` at its root and under ``folds/``."""
    return sorted(folder.glob("*.list")) + sorted((folder / FOLDS_DIR).glob("*.list"))


def require_listed(lists: Mapping[str, Iterable[str]], found: Iterable[str], *, where: str):
    """Fail before any work when a split names a case that the raw data lacks.

    Args:
        lists: list name -> case ids.
        found: the case ids available.
        where: what was searched, for the message (folder and file pattern).
    """
    present = {bare_id(c) for c in found}
    for name, ids in lists.items():
        missing = [c for c in ids if bare_id(c) not in present]
        if missing:
            shown = ", ".join(repr(bare_id(c)) for c in missing[:5]) + (
                " ..." if len(missing) > 5 else ""
            )
            raise DataError(
                f"{len(missing)} case(s) listed in {name} are missing from {where}: {shown}; "
                "download them, or pass cases=[...] to prepare a subset"
            )


def restrict_lists(folder: Path, keep: Iterable[str]) -> list[str]:
    """Rewrite every split list of ``folder`` to the ids in ``keep`` (order kept).

    Lists left empty are removed. Returns the names of the removed lists.
    """
    keep = {bare_id(c) for c in keep}
    dropped = []
    for path in list_files(folder):
        ids = [c for c in read_split(path) if bare_id(c) in keep]
        if ids:
            write_split(path, ids)
        else:
            path.unlink()
            dropped.append(path.relative_to(folder).as_posix())
    return dropped


def check_lists(folder: Path, case_ids: Iterable[str]) -> dict[str, int]:
    """Every id of every split list is a prepared case; returns list name -> number of ids."""
    prepared = {bare_id(c) for c in case_ids}
    counts = {}
    for path in list_files(folder):
        ids = read_split(path)
        name = path.relative_to(folder).as_posix()
        require_listed({name: ids}, prepared, where="the prepared cases")
        counts[name] = len(ids)
    return counts
