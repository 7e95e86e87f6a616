"""The one volume type every reader returns, and the data-layer error type."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ENV = "DYCON_DATA"
DATA_PAGE = "book/data.md"


class DataError(ValueError):
    """Bad or missing data. The message is one line naming the file or value and the fix."""


@dataclass(frozen=True)
class Volume:
    """One case: image (C, X, Y, Z) float32, label (X, Y, Z) uint8, spacing in mm, case id."""

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    case_id: str

    def __post_init__(self) -> None:
        where = f"case {self.case_id!r}"
        if self.image.ndim != 4 or self.image.dtype != np.float32:
            raise DataError(
                f"{where}: image must be (C, X, Y, Z) float32, got "
                f"{self.image.shape} {self.image.dtype}"
            )
        if self.label.ndim != 3 or self.label.dtype != np.uint8:
            raise DataError(
                f"{where}: label must be (X, Y, Z) uint8, got {self.label.shape} {self.label.dtype}"
            )
        if self.image.shape[1:] != self.label.shape:
            raise DataError(
                f"{where}: image shape {self.image.shape[1:]} and label shape "
                f"{self.label.shape} differ; re-run the prepare step for this dataset"
            )
        if len(self.spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in self.spacing):
            raise DataError(
                f"{where}: spacing must be three positive numbers in mm, got {self.spacing}"
            )
        if not np.isfinite(self.image).all():
            raise DataError(
                f"{where}: image contains NaN or Inf; re-run the prepare step or replace the file"
            )


def data_root(root: str | os.PathLike | None = None, *, must_exist: bool = True) -> Path:
    """The prepared-data folder: ``root``, else $DYCON_DATA, else ./data."""
    path = Path(root if root is not None else os.environ.get(DATA_ENV, "data"))
    if must_exist and not path.is_dir():
        raise DataError(
            f"data root {str(path)!r} does not exist; set {DATA_ENV} to the folder "
            f"holding prepared datasets or prepare one (see {DATA_PAGE})"
        )
    return path
