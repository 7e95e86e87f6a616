"""The paper's published numbers (DyCON poster, CVPR 2025, Tables 1-5), read from ``results/paper``.

The CSVs there are the only hand-typed numbers in the project; ``results/paper/README.md`` says
where each came from and why some cells are empty. This module only reads them: numeric cells
become ``float`` (``None`` when empty), volume counts ``int`` (``None`` when empty), the ablation
switches of Table 5 ``bool``; text cells stay strings (``""`` when empty).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

TABLES = (1, 2, 3, 4, 5)  # the poster's tables; experiments.TABLES declares their runs
ABLATION = 5  # the one with its own CSV

# Tables 1-4 share one file; Table 5 (the ablation) has its own columns.
_COMPARISON_FILE = "tables.csv"
_ABLATION_FILE = "table5.csv"

_INT_COLUMNS = frozenset({"table", "labeled", "unlabeled", "row"})
_FLOAT_COLUMNS = frozenset({"labeled_pct", "dice", "iou", "hd95", "asd"})
_BOOL_COLUMNS = frozenset({"fecl_focal", "fecl_hard_negatives", "fecl_entropy", "uncl"})


def paper_dir() -> Path:
    """Return the folder holding the paper's CSVs: ``results/paper`` at the repository root.

    Returns:
        The directory path.

    Raises:
        FileNotFoundError: If the folder is missing (e.g. an installed package without the
            repository checkout beside it).
    """
    directory = Path(__file__).resolve().parents[1] / "results" / "paper"
    if not directory.is_dir():
        raise FileNotFoundError(
            f"paper results folder not found at {directory}; the paper's tables live in "
            "results/paper/ of the repository checkout"
        )
    return directory


def paper_rows(table: int) -> list[dict[str, Any]]:
    """Read one of the paper's Tables 1-5 as a list of rows, in the order printed.

    Tables 1-4 (comparisons on ISLES'22, BraTS'19, Pancreas-CT, LA) have the columns ``table,
    dataset, method, method_key, architecture, labeled, unlabeled, labeled_pct, dice, iou, hd95,
    asd, note``; Table 5 (ablation) has ``row, fecl_focal, fecl_hard_negatives, fecl_entropy, uncl,
    dataset, dice, hd95, asd, note`` with one row per ablation line and dataset.

    Args:
        table: The table number, 1 to 5.

    Returns:
        One dict per row. Metrics and ``labeled_pct`` are ``float`` or ``None`` (cell empty, the
        ``note`` says why); ``labeled``, ``unlabeled``, ``table`` and ``row`` are ``int`` or
        ``None``; Table 5's switches are ``bool``; text cells are ``str``.

    Raises:
        ValueError: If ``table`` is not one of 1-5, or a cell cannot be parsed.
        FileNotFoundError: If the CSV files are missing.
    """
    if isinstance(table, bool) or table not in TABLES:
        raise ValueError(f"unknown paper table {table!r}; valid tables are 1, 2, 3, 4, 5")
    directory = paper_dir()
    if table == ABLATION:
        return _read(directory / _ABLATION_FILE)
    return [row for row in _read(directory / _COMPARISON_FILE) if row["table"] == table]


def _read(path: Path) -> list[dict[str, Any]]:
    """Read a CSV file and parse each cell by its column name."""
    if not path.is_file():
        raise FileNotFoundError(f"paper table file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            {key: _parse(key, value, path, line) for key, value in record.items()}
            for line, record in enumerate(csv.DictReader(handle), start=2)
        ]


def _parse(column: str, value: str | None, path: Path, line: int) -> Any:
    """Convert one cell: ints, floats and bools by column, ``None`` for an empty number."""
    text = (value or "").strip()
    try:
        if column in _INT_COLUMNS:
            return int(text) if text else None
        if column in _FLOAT_COLUMNS:
            return float(text) if text else None
        if column in _BOOL_COLUMNS:
            if text not in ("true", "false"):
                raise ValueError(f"expected true or false, got {text!r}")
            return text == "true"
    except ValueError as error:
        raise ValueError(f"{path.name} line {line}, column {column}: {error}") from None
    return text
