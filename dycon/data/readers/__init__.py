"""Readers for every on-disk format, each returning a ``Volume``.

- ``h5``: LA (UA-MT), BraTS'19 (SSL4MIS), Pancreas (DyCON / MC-Net / CoraNet), DyCON's ISLES h5;
- ``bids``: the ISLES'22 BIDS NIfTI release;
- ``write``: ``write_case_h5``, the prepared-file writer the readers read back exactly.

``read_case`` dispatches on the dataset name used across the project.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dycon.data.readers._common import PathLike, bare_id
from dycon.data.readers.bids import list_isles_bids_cases, read_isles_bids
from dycon.data.readers.h5 import (
    H5_FILES,
    check_case_header,
    pancreas_candidates,
    read_brats19,
    read_isles_h5,
    read_la,
    read_pancreas,
)
from dycon.data.readers.write import write_case_h5
from dycon.data.volume import DataError, Volume

READERS: dict[str, Callable[[PathLike, str], Volume]] = {
    "la": read_la,
    "brats19": read_brats19,
    "pancreas": read_pancreas,
    "isles22": read_isles_h5,  # prepared from the BIDS release by the prepare step
    "isles-sim": read_isles_h5,
}


def read_case(dataset: str, root: PathLike, case_id: str) -> Volume:
    """Read one case of a prepared dataset.

    Args:
        dataset: one of ``la``, ``brats19``, ``pancreas``, ``isles22``, ``isles-sim``.
        root: the dataset's folder (see each reader for the layouts it accepts).
        case_id: as written in the split lists (a ``.h5`` suffix is accepted).
    """
    try:
        reader = READERS[dataset]
    except KeyError:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {sorted(READERS)}") from None
    return reader(Path(root), case_id)


def check_case(dataset: str, root: PathLike, case_id: str) -> tuple[int, int, int]:
    """Check that a case of a prepared dataset exists and that its header is readable, with the
    expected keys, shapes, dtypes and spacing, without reading the volume; returns its
    (X, Y, Z) shape.

    Raises:
        DataError: one line naming the file (or the paths tried) and the fix.
    """
    if dataset not in H5_FILES:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {sorted(H5_FILES)}")
    return check_case_header(dataset, Path(root), case_id)


__all__ = [
    "READERS",
    "bare_id",
    "check_case",
    "list_isles_bids_cases",
    "pancreas_candidates",
    "read_brats19",
    "read_case",
    "read_isles_bids",
    "read_isles_h5",
    "read_la",
    "read_pancreas",
    "write_case_h5",
]
