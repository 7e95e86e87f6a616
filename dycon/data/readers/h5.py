"""Readers for the h5 layouts of the SSL literature: LA (UA-MT), BraTS'19 (SSL4MIS), Pancreas
(DyCON, MC-Net, CoraNet) and DyCON's prepared ISLES files.

Upstream files store no spacing; each reader uses the dataset's native spacing unless the file
carries a ``spacing_mm`` attribute (always in (x, y, z) order, the order of the returned arrays).
"""

from __future__ import annotations

import re
from pathlib import Path

from dycon.data.readers._common import (
    PathLike,
    bare_id,
    check_h5_header,
    first_existing,
    read_h5_volume,
)
from dycon.data.volume import DataError, Volume

LA_SPACING = (0.625, 0.625, 0.625)
LA_FOLDERS = ("2018LA_Seg_Training Set", "LA_data")
_PANCREAS_ID = re.compile(r"^(?:PANCREAS_|image)?(\d{1,4})(?:_norm)?$")


def read_la(root: PathLike, case_id: str) -> Volume:
    """Read one Left Atrium case in the UA-MT format (``mri_norm2.h5``, keys image/label).

    Args:
        root: the dataset folder holding ``2018LA_Seg_Training Set/`` (UA-MT, MC-Net, BCP) or
            ``LA_data/`` (DyCON); a folder of ``<id>/mri_norm2.h5`` directly (as in the shared
            copy) is accepted too.
        case_id: the UA-MT id, e.g. ``06SR5RBREL16DQ6M8LWS``.

    Returns:
        The Volume, spacing 0.625 mm isotropic unless the file's ``spacing_mm`` says otherwise.
    """
    case = bare_id(case_id)
    return read_h5_volume(la_file(root, case), case, **H5_FORMATS["la-h5"])


def la_file(root: PathLike, case_id: str) -> Path:
    """The ``mri_norm2.h5`` of an LA case in any of the layouts ``read_la`` accepts."""
    root, case = Path(root), bare_id(case_id)
    candidates = [root / folder / case / "mri_norm2.h5" for folder in LA_FOLDERS]
    candidates.append(root / case / "mri_norm2.h5")
    return first_existing(candidates, what=f"LA case {case!r}")


def read_brats19(root: PathLike, case_id: str) -> Volume:
    """Read one BraTS'19 case in the SSL4MIS format (FLAIR image, whole-tumour label).

    The upstream arrays are (z, y, x) as SimpleITK writes them; they are returned as (x, y, z),
    the ``transpose(2, 1, 0)`` of the official DyCON code. Labels > 0 become 1 (whole tumour),
    so a file holding the raw BraTS classes (1, 2, 4) reads the same as a binarised one.

    Args:
        root: the folder holding ``data/<id>.h5`` (SSL4MIS: ``data/BraTS2019``).
        case_id: e.g. ``BraTS19_TCIA02_370_1``.
    """
    case = bare_id(case_id)
    return read_h5_volume(brats19_file(root, case), case, **H5_FORMATS["brats19-h5"])


def brats19_file(root: PathLike, case_id: str) -> Path:
    case = bare_id(case_id)
    return first_existing([Path(root) / "data" / f"{case}.h5"], what=f"BraTS'19 case {case!r}")


def pancreas_candidates(root: PathLike, case_id: str) -> list[Path]:
    """Every file name a Pancreas case may have, the style of ``case_id`` first.

    Accepts ``PANCREAS_0001`` (DyCON), ``image0001`` / ``image0001_norm`` (MC-Net) and ``0001``
    (CoraNet), each with or without ``.h5``.
    """
    case = bare_id(case_id)
    match = _PANCREAS_ID.match(case)
    if match is None:
        raise DataError(
            f"Pancreas case id {case!r} is not of the form PANCREAS_0001, image0001 or 0001; "
            "fix the split list"
        )
    n = int(match.group(1))
    root = Path(root)
    # Each scheme in its upstream folder, then directly under root (a user pointing at it).
    schemes = [
        [root / "Pancreas_data" / f"PANCREAS_{n:04d}.h5", root / f"PANCREAS_{n:04d}.h5"],
        [root / "Pancreas_h5" / f"image{n:04d}_norm.h5", root / f"image{n:04d}_norm.h5"],
        [root / f"{n:04d}.h5"],
    ]
    first = 0 if case.startswith("PANCREAS_") else 1 if case.startswith("image") else 2
    schemes.insert(0, schemes.pop(first))
    return [path for scheme in schemes for path in scheme]


def read_pancreas(root: PathLike, case_id: str) -> Volume:
    """Read one Pancreas-CT case (keys image/label) under any of the three naming schemes.

    Args:
        root: the folder holding ``Pancreas_data/PANCREAS_00XX.h5`` (DyCON),
            ``Pancreas_h5/imageXXXX_norm.h5`` (MC-Net) or ``NNNN.h5`` (CoraNet).
        case_id: in any of those styles; it is reported as given (without ``.h5``).

    Returns:
        The Volume, spacing 1 mm isotropic (all three pipelines resample to 1 mm) unless the file
        has ``spacing_mm``.
    """
    case = bare_id(case_id)
    return read_h5_volume(pancreas_file(root, case), case, **H5_FORMATS["pancreas-h5"])


def pancreas_file(root: PathLike, case_id: str) -> Path:
    case = bare_id(case_id)
    return first_existing(pancreas_candidates(root, case), what=f"Pancreas case {case!r}")


def read_isles_h5(root: PathLike, case_id: str) -> Volume:
    """Read one prepared ISLES case in DyCON's format: ``<root>/<case>.h5``, keys image/mask.

    ``mask`` is float64 upstream and is thresholded at 0.5. The image may be (X, Y, Z) or
    (C, X, Y, Z) (DWI, then ADC). Prepared ISLES grids are resampled, so no default spacing is
    safe: the ``spacing_mm`` attribute is required.
    """
    case = bare_id(case_id)
    return read_h5_volume(isles_h5_file(root, case), case, **H5_FORMATS["isles-h5"])


def isles_h5_file(root: PathLike, case_id: str) -> Path:
    case = bare_id(case_id)
    return first_existing([Path(root) / f"{case}.h5"], what=f"ISLES case {case!r}")


_ISLES = {
    "label_key": "mask",
    "rule": "half",
    "default_spacing": None,
    "spacing_fix": "re-run prepare for this dataset (it stores spacing_mm), or add the "
    "attribute spacing_mm=(x, y, z) in mm with h5py",
}
# The prepared formats, by the keys that ``data/datasets.py`` names (``Dataset.format``): how
# each one's files are read (``read_h5_volume`` options), found, and read into a Volume.
H5_FORMATS: dict[str, dict] = {
    "la-h5": {"default_spacing": LA_SPACING},  # UA-MT's mri_norm2.h5
    "brats19-h5": {"axes": "zyx", "rule": "positive"},  # SSL4MIS
    "pancreas-h5": {},  # DyCON, MC-Net, CoraNet
    "isles-h5": _ISLES,  # DyCON's ISLES files: ISLES'22 and isles-sim
}
H5_FILES = {
    "la-h5": la_file,
    "brats19-h5": brats19_file,
    "pancreas-h5": pancreas_file,
    "isles-h5": isles_h5_file,
}
H5_READERS = {
    "la-h5": read_la,
    "brats19-h5": read_brats19,
    "pancreas-h5": read_pancreas,
    "isles-h5": read_isles_h5,
}


def check_case_header(file_format: str, root: PathLike, case_id: str) -> tuple[int, int, int]:
    """Find a case's file in ``file_format`` (a key of ``H5_FORMATS``) and check its header
    (keys, shapes, dtypes, spacing) without reading its voxels; returns the (X, Y, Z) shape. See
    ``check_h5_header``."""
    options = {k: v for k, v in H5_FORMATS[file_format].items() if k != "rule"}
    return check_h5_header(H5_FILES[file_format](root, case_id), **options)
