"""Readers for every on-disk format, each returning a ``Volume``.

- ``h5``: LA (UA-MT), BraTS'19 (SSL4MIS), Pancreas (DyCON / MC-Net / CoraNet), DyCON's ISLES h5;
- ``bids``: the ISLES'22 BIDS NIfTI release;
- ``write``: ``write_case_h5``, the prepared-file writer the readers read back exactly.

``read_case`` dispatches on the dataset name: ``READERS`` is derived from each dataset's prepared
format in ``dycon.data.datasets``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dycon.data import datasets
from dycon.data.readers._common import PathLike, bare_id
from dycon.data.readers.bids import list_isles_bids_cases, read_isles_bids
from dycon.data.readers.h5 import (
    H5_READERS,
    check_case_header,
    pancreas_candidates,
    read_brats19,
    read_isles_h5,
    read_la,
    read_pancreas,
)
from dycon.data.readers.write import write_case_h5
from dycon.data.volume import Volume

# Derived from data/datasets.py: a dataset is read by the reader of its prepared format.
READERS: dict[str, Callable[[PathLike, str], Volume]] = {
    name: H5_READERS[d.format] for name, d in datasets.DATASETS.items()
}


def read_case(dataset: str, root: PathLike, case_id: str) -> Volume:
    """Read one case of a prepared dataset.

    Args:
        dataset: a key of ``dycon.data.datasets.DATASETS`` (``isles-sim``, ``isles22``,
            ``brats19``, ``pancreas``, ``la``).
        root: the dataset's folder (see each reader for the layouts it accepts).
        case_id: as written in the split lists (a ``.h5`` suffix is accepted).

    Raises:
        DataError: an unknown dataset (one line listing the valid ones), or the reader's.
    """
    return READERS[datasets.dataset(dataset).name](Path(root), case_id)


def check_case(dataset: str, root: PathLike, case_id: str) -> tuple[int, int, int]:
    """Check that a case of a prepared dataset exists and that its header is readable, with the
    expected keys, shapes, dtypes and spacing, without reading the volume; returns its
    (X, Y, Z) shape.

    Raises:
        DataError: one line naming the file (or the paths tried) and the fix.
    """
    return check_case_header(datasets.dataset(dataset).format, Path(root), case_id)


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
