"""Writing prepared h5 files that the readers read back exactly."""

from __future__ import annotations

import h5py
import numpy as np

from dycon.data.files import atomic_path
from dycon.data.readers._common import AXES_ATTR, CASE_ATTR, SPACING_ATTR, PathLike
from dycon.data.volume import DataError, Volume

LAYOUTS = ("xyz", "zyx")


def write_case_h5(
    path: PathLike, volume: Volume, *, label_key: str = "label", layout: str = "xyz"
) -> None:
    """Write one case as an h5 file in the upstream layout, atomically.

    A single-channel image is stored without its channel axis, as every upstream file does;
    several channels are stored channels-first. Attributes: ``spacing_mm`` (always (x, y, z),
    the order of the Volume, whatever the storage order), ``case_id`` and ``axes`` (the storage
    order, which the readers honour).

    Args:
        path: the h5 file to create or replace; nothing is left behind if writing fails.
        volume: the case to store.
        label_key: ``label`` (LA, BraTS, Pancreas) or ``mask`` (DyCON's ISLES files).
        layout: ``xyz`` (LA, Pancreas, ISLES) or ``zyx`` (BraTS'19 as SSL4MIS/SimpleITK stores it).
    """
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r} is not one of {LAYOUTS}")
    image, label = volume.image, volume.label
    if image.shape[0] == 1:
        image = image[0]
    if layout == "zyx":
        image = image.transpose(*range(image.ndim - 3), -1, -2, -3)
        label = label.transpose(2, 1, 0)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        # gzip level 1: labels shrink ~20x, images a little, reading stays fast.
        options = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        f.create_dataset("image", data=np.ascontiguousarray(image), **options)
        f.create_dataset(label_key, data=np.ascontiguousarray(label), **options)
        f.attrs[SPACING_ATTR] = np.asarray(volume.spacing, dtype=np.float64)
        f.attrs[CASE_ATTR] = volume.case_id
        f.attrs[AXES_ATTR] = layout
