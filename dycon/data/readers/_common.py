"""Shared pieces of the h5 readers: locating files, reading keys, turning arrays into a Volume.

Every failure is a one-line ``DataError`` that names the file and the fix; nothing here writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from dycon.data.volume import DATA_PAGE, DataError, Volume

SPACING_ATTR = "spacing_mm"
CASE_ATTR = "case_id"
AXES_ATTR = "axes"  # "xyz" or "zyx": the storage order of the spatial axes in the file
REPREPARE = "re-download it or re-run prepare for this dataset"

PathLike = str | os.PathLike


def one_line(exc: BaseException) -> str:
    """The exception's text collapsed to one line (library messages often span several)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def bare_id(case_id: str) -> str:
    """A case id without surrounding whitespace or a ``.h5`` suffix.

    DyCON's Pancreas lists name files (``PANCREAS_0001.h5``), the other lists name cases; readers
    accept both and always report the bare id.
    """
    return str(case_id).strip().removesuffix(".h5")


def first_existing(candidates: Sequence[Path], *, what: str) -> Path:
    """The first candidate that is a file, else a DataError naming every path tried."""
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(repr(str(p)) for p in candidates)
    raise DataError(
        f"{what}: no file found (tried {tried}); download or prepare the dataset (see {DATA_PAGE})"
    )


def read_h5(path: Path, keys: Iterable[str]) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Read the named datasets and all root attributes of an h5 file.

    Raises:
        DataError: the file cannot be opened or read (truncated, corrupt, not HDF5), or a key is
            missing (the message lists the keys found).
    """
    keys = tuple(keys)
    with _open_h5(path, keys) as f:
        return {k: f[k][()] for k in keys}, dict(f.attrs)


@contextmanager
def _open_h5(path: Path, keys: tuple[str, ...]) -> Iterator[h5py.File]:
    """An h5 file open for reading that holds every dataset in ``keys``; any failure to open or
    read it inside the ``with`` block is a DataError naming the file."""
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in keys if not isinstance(f.get(k), h5py.Dataset)]
            if missing:
                raise DataError(
                    f"{str(path)!r}: missing key(s) {missing} (found {sorted(f.keys())}); the "
                    f"file is not in the expected format: {REPREPARE}"
                )
            yield f
    except DataError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        # h5py reports truncation and corruption as OSError (sometimes others) at open or read.
        raise DataError(
            f"{str(path)!r}: cannot read HDF5 file, truncated or corrupt ({one_line(exc)}); "
            f"{REPREPARE}"
        ) from exc


def spacing_from_attrs(
    attrs: Mapping[str, object], path: Path, default: tuple[float, float, float] | None
) -> tuple[float, float, float] | None:
    """Voxel spacing in mm, (x, y, z) order, from the ``spacing_mm`` attribute, else ``default``.

    A scalar attribute means isotropic spacing.
    """
    if SPACING_ATTR not in attrs:
        return default
    values = np.asarray(attrs[SPACING_ATTR], dtype=np.float64).ravel()
    if values.size == 1:
        values = np.repeat(values, 3)
    if values.size != 3 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise DataError(
            f"{str(path)!r}: attribute {SPACING_ATTR}={values.tolist()} is not one or three "
            f"positive numbers in mm; {REPREPARE}"
        )
    return tuple(float(v) for v in values)


def storage_axes(attrs: Mapping[str, object], path: Path, default: str) -> str:
    """The file's spatial axis order: the ``axes`` attribute if present, else the upstream one."""
    axes = attrs.get(AXES_ATTR, default)
    axes = axes.decode() if isinstance(axes, bytes) else str(axes)
    if axes not in ("xyz", "zyx"):
        raise DataError(f"{str(path)!r}: attribute {AXES_ATTR}={axes!r} is not 'xyz' or 'zyx'")
    return axes


def image_cxyz(array: np.ndarray, path: Path, *, axes: str) -> np.ndarray:
    """A stored image, (X, Y, Z) / (C, X, Y, Z) or their z-first forms, as float32 (C, X, Y, Z)."""
    if array.ndim not in (3, 4):
        raise DataError(
            f"{str(path)!r}: image has shape {array.shape}, expected 3-D or 4-D with channels "
            f"first; {REPREPARE}"
        )
    if array.ndim == 3:
        array = array[None]
    if axes == "zyx":
        array = array.transpose(0, 3, 2, 1)
    return np.ascontiguousarray(array, dtype=np.float32)


def label_xyz(array: np.ndarray, path: Path, *, axes: str, rule: str) -> np.ndarray:
    """A stored label as uint8 (X, Y, Z).

    Args:
        array: the stored label.
        path: the file, for messages.
        axes: "xyz" or "zyx", the storage order.
        rule: "values" keeps integer values, which must be 0 or 1 (``require_binary``);
            "positive" maps > 0 to 1 (BraTS whole tumour: classes 1, 2, 4); "half" maps > 0.5
            to 1 (masks in [0, 1] such as DyCON's float ISLES ``mask``).
    """
    if array.ndim != 3:
        raise DataError(f"{str(path)!r}: label has shape {array.shape}, expected 3-D; {REPREPARE}")
    if axes == "zyx":
        array = array.transpose(2, 1, 0)
    if rule in ("positive", "half"):
        if not np.all(np.isfinite(array)):
            raise DataError(f"{str(path)!r}: label contains NaN or Inf; {REPREPARE}")
        if rule == "half" and array.size and (array.min() < 0 or array.max() > 1):
            # A probability-like mask: a value beyond [0, 1] (255, a class id) is not one.
            raise DataError(
                f"{str(path)!r}: mask values span [{array.min():g}, {array.max():g}], outside "
                f"[0, 1]; {REPREPARE}"
            )
        out = array > (0 if rule == "positive" else 0.5)
    else:
        out = array
        if array.size and (
            not np.all(np.isfinite(array))
            or np.any(array != np.round(array))
            or array.min() < 0
            or array.max() > 255
        ):
            raise DataError(
                f"{str(path)!r}: label values must be integers in 0..255 "
                f"(dtype {array.dtype}); {REPREPARE}"
            )
        require_binary(array, path)
    return np.ascontiguousarray(out, dtype=np.uint8)


def require_binary(label: np.ndarray, path: Path | str) -> None:
    """Refuse a label with values outside {0, 1}: every dataset here has one foreground class,
    and a 2 or a 255 would otherwise be scored as foreground without a word.

    Raises:
        DataError: naming the file and the values found.
    """
    if label.size == 0 or (label.min() >= 0 and label.max() <= 1):
        return
    values = np.unique(label)
    shown = ", ".join(f"{v:g}" for v in values[:8]) + (" ..." if values.size > 8 else "")
    raise DataError(
        f"{str(path)!r}: label values {{{shown}}} lie outside {{0, 1}} (one foreground class); "
        "binarise the source label (e.g. label > 0) and prepare the dataset again"
    )


def check_h5_header(
    path: Path,
    *,
    label_key: str = "label",
    axes: str = "xyz",
    default_spacing: tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    spacing_fix: str = "",
) -> tuple[int, int, int]:
    """What ``read_h5_volume`` would find, from the header alone (no voxel is read): the keys,
    image and label shapes that agree, numeric dtypes, the spacing. Returns the (X, Y, Z) shape.

    Cheap enough to run on every listed case before training, so that a missing or corrupt case
    fails at once rather than when a long run first samples it.
    """
    with _open_h5(path, ("image", label_key)) as f:
        image, label = f["image"], f[label_key]
        image_shape, label_shape = tuple(image.shape), tuple(label.shape)
        kinds = {"image": image.dtype, label_key: label.dtype}
        attrs = dict(f.attrs)
    for key, dtype in kinds.items():
        if dtype.kind not in "biuf":
            raise DataError(f"{str(path)!r}: {key} has dtype {dtype}, not numeric; {REPREPARE}")
    if spacing_from_attrs(attrs, path, default_spacing) is None:
        raise DataError(
            f"{str(path)!r}: the file has no spacing (attribute {SPACING_ATTR}); {spacing_fix}"
        )
    order = storage_axes(attrs, path, axes)
    if len(image_shape) not in (3, 4) or len(label_shape) != 3:
        raise DataError(
            f"{str(path)!r}: image {image_shape} / label {label_shape} are not 3-D (image may "
            f"have channels first); {REPREPARE}"
        )
    if image_shape[-3:] != label_shape:
        raise DataError(
            f"{str(path)!r}: image shape {image_shape[-3:]} and label shape {label_shape} "
            f"differ; {REPREPARE}"
        )
    return label_shape[::-1] if order == "zyx" else label_shape


def make_volume(
    path: Path | str, image: np.ndarray, label: np.ndarray, spacing, case_id: str
) -> Volume:
    """Build the Volume, adding the file name to any validation message."""
    try:
        return Volume(image=image, label=label, spacing=tuple(spacing), case_id=case_id)
    except DataError as exc:
        raise DataError(f"{str(path)!r}: {exc}") from None


def read_h5_volume(
    path: Path,
    case_id: str,
    *,
    label_key: str = "label",
    axes: str = "xyz",
    rule: str = "values",
    default_spacing: tuple[float, float, float] | None = (1.0, 1.0, 1.0),
    spacing_fix: str = "",
) -> Volume:
    """Read an ``image`` / ``label_key`` h5 file into a Volume (the common path of all h5 readers).

    Args:
        path: the h5 file.
        case_id: reported as ``Volume.case_id``.
        label_key: dataset name of the label (``mask`` for DyCON's ISLES files).
        axes: the upstream storage order, used when the file has no ``axes`` attribute.
        rule: label conversion, see ``label_xyz``.
        default_spacing: used when the file has no ``spacing_mm`` attribute; None makes the
            attribute mandatory.
        spacing_fix: what to tell the user when a mandatory spacing is missing.
    """
    arrays, attrs = read_h5(path, ("image", label_key))
    spacing = spacing_from_attrs(attrs, path, default_spacing)
    if spacing is None:
        raise DataError(
            f"{str(path)!r}: the file has no spacing (attribute {SPACING_ATTR}); {spacing_fix}"
        )
    order = storage_axes(attrs, path, axes)
    image = image_cxyz(arrays["image"], path, axes=order)
    label = label_xyz(arrays[label_key], path, axes=order, rule=rule)
    return make_volume(path, image, label, spacing, bare_id(case_id))
