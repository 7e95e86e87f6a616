"""Prepare datasets from their official downloads into the layout the training engine reads.

``prepare(dataset, raw=..., dest=...)`` writes ``$DYCON_DATA/<dataset>/`` all-or-nothing (staged
in ``<dest>.partial/``, renamed when complete, ``manifest.json`` last); ``status()`` says which
datasets are prepared, partial or missing and how to get them. One module per dataset
(``la``, ``brats19``, ``pancreas``, ``isles22``, ``isles_sim``), named by its declaration in
``dycon.data.datasets``; ``manifest`` owns the folder contract. Sources, licences, commands,
time and disk: book/data.md.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path

from dycon.data import datasets
from dycon.data.datasets import ISLES_SIM_BANNER
from dycon.data.prepare._common import DATASETS, PathLike
from dycon.data.prepare.manifest import (
    CASE_FILES,
    COMMANDS,
    MANIFEST,
    read_manifest,
    status,
)
from dycon.data.volume import DataError


def _import_preparer(declared: datasets.Dataset) -> Callable[..., Path]:
    module, function = declared.preparer.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


# Derived from data/datasets.py, whose ``Dataset.preparer`` names each function.
PREPARERS: dict[str, Callable[..., Path]] = {
    name: _import_preparer(d) for name, d in datasets.DATASETS.items()
}


def options_of(dataset: str) -> dict[str, object]:
    """The keyword options ``prepare`` accepts for a dataset, with their defaults."""
    params = inspect.signature(_preparer(dataset)).parameters
    return {n: p.default for n, p in params.items() if n not in ("raw", "dest")}


def _preparer(dataset: str) -> Callable[..., Path]:
    return PREPARERS[datasets.dataset(dataset).name]


def prepare(
    dataset: str, *, raw: PathLike | None = None, dest: PathLike | None = None, **options
) -> Path:
    """Prepare one dataset from its official download (see book/data.md).

    Args:
        dataset: ``la``, ``brats19``, ``pancreas``, ``isles22`` or ``isles-sim``.
        raw: the download folder (None: LA downloads from GitHub, isles-sim generates).
        dest: the dataset folder; default ``$DYCON_DATA/<dataset>`` (``./data/<dataset>``).
        **options: dataset options, e.g. ``cases=[...]`` (a subset), ``base_url`` (split-list
            server), ``verify`` (LA), ``spacing``/``shape``/``adc`` (ISLES), ``preset``/``seed``
            (isles-sim); ``options_of(dataset)`` lists them with their defaults.

    Returns:
        The prepared dataset folder; it holds ``manifest.json`` and is complete.

    Raises:
        DataError: one line naming the file or value and the fix (unknown dataset or option,
            missing raw folder, no cases, checksum mismatch, corrupt file, shape mismatch,
            NaN/Inf, a listed case missing). The previous folder is then left untouched.
    """
    preparer = _preparer(dataset)
    unknown = sorted(set(options) - set(options_of(dataset)))
    if unknown:
        raise DataError(
            f"unknown option(s) {unknown} for {dataset}; accepted: {sorted(options_of(dataset))}"
        )
    return preparer(raw=raw, dest=dest, **options)


__all__ = [
    "CASE_FILES",
    "COMMANDS",
    "DATASETS",
    "ISLES_SIM_BANNER",
    "MANIFEST",
    "PREPARERS",
    "options_of",
    "prepare",
    "read_manifest",
    "status",
]
