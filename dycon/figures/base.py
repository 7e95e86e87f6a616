"""What every figure shares: Table 1's setting, the declaration of a figure, and run helpers.

A figure is declared once, by a :class:`Figure` at the bottom of its own module (its rows, how
its numbers become glue values and a table, how they read back from JSON);
:mod:`dycon.figures.registry` collects the declarations, and everything else (the run list,
the CLI's choices, the record, the Makefile's help) is derived from there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..experiments import RunResult, RunSpec, config_of

TABLE = 1  # the figures use Table 1's setting
PERCENT = 10
SNAPSHOTS = (0.1, 0.5, 1.0)
REFERENCE = "DyCON"


@dataclass(frozen=True)
class Row:
    """One row of a figure: a labelled method and its overrides.

    Attributes:
        label: The row's name on the page (``REFERENCE`` is the row others are compared with).
        method: A method preset (``dycon/configs/methods``).
        overrides: ``--set`` assignments on top of Table 1's configuration.
        track: ``"validation"`` adds ``train.val_every`` (where the dataset has a validation
            list); ``"all"`` adds the snapshots too (the Grad-CAM's and curves' DyCON is one run).
    """

    label: str
    method: str
    overrides: tuple[str, ...] = ()
    track: Literal["none", "validation", "all"] = "none"


def _same(numbers: dict) -> dict:
    return numbers


@dataclass(frozen=True)
class Figure:
    """One figure of the poster.

    Attributes:
        name: ``make reproduce FIG=<name>``; the notebook is ``notebooks/fig_<slug>.ipynb``.
        rows: Its runs, one per row and seed.
        first_seed_only: The figure pictures one run per row (the first seed's).
        glue: ``(prefix, numbers) -> {key: text}`` for myst-nb glue (keys start with prefix).
        markdown: ``numbers -> `` the key numbers as a Markdown table (``summary.md``; the HTML
            and CSV are parsed from it).
        decode: ``numbers`` read back from ``figure.json`` -> as the figure computed them (JSON
            turns integer keys into strings).
    """

    name: str
    rows: tuple[Row, ...]
    first_seed_only: bool
    glue: Callable[[str, dict], dict[str, str]]
    markdown: Callable[[dict], str]
    decode: Callable[[dict], dict] = _same


def val_every(iterations: int) -> int:
    """Validation interval of the tracked runs: a tenth of the run, at least every step."""
    return max(1, round(iterations / 10))


def has_validation(dataset: str, *, root: str | Path | None = None) -> bool:
    """Whether ``dataset`` has a prepared validation list (isles-sim ``tiny`` and ISLES'22 not)."""
    from ..engine.datasets import dataset_folder
    from ..engine.presets import compose

    cfg = compose(dataset=dataset, method="supervised", scale="smoke")
    if cfg.data.val_list is None:
        return False
    return (dataset_folder(cfg, root=root) / cfg.data.val_list).is_file()


def by_row(results: Sequence[RunResult]) -> dict[str, list[RunResult]]:
    out: dict[str, list[RunResult]] = {}
    for r in results:
        out.setdefault(r.spec.row, []).append(r)
    return out


def held_out(spec: RunSpec, *, root: str | Path | None = None):
    """The test cases (the test list) of ``spec``'s dataset (``.ids``, ``.load(i)`` -> Volume)."""
    from ..engine.datasets import dataset_folder, split_cases

    cfg = config_of(spec, device="cpu")
    return split_cases(cfg, cfg.data.test_list, folder=dataset_folder(cfg, root=root))
