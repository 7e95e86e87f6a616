"""The figures, each declared once in its own module, and the runs each one needs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import ConfigError
from ..experiments import RunSpec, config_of, labeled_count, table_dataset, train_size
from . import curves, frameworks, gradcam, lesion_size, overlays
from .base import PERCENT, REFERENCE, SNAPSHOTS, TABLE, Figure, has_validation, val_every

FIGURES: dict[str, Figure] = {
    f.name: f
    for f in (
        lesion_size.FIGURE,
        gradcam.FIGURE,
        curves.FIGURE,
        overlays.FIGURE,
        frameworks.FIGURE,
    )
}


def check_figure(name: str) -> str:
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid figures: {', '.join(FIGURES)}")
    return name


def figure(name: str) -> Figure:
    """The declaration of figure ``name`` (a one-line error naming the valid ones otherwise)."""
    return FIGURES[check_figure(name)]


def figure_runs(
    name: str,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: Sequence[int] = (1337,),
    root: str | Path | None = None,
) -> list[RunSpec]:
    """The runs of figure ``name``, one per row and seed (the first seed only for a figure that
    pictures one run per row)."""
    fig = figure(name)
    if not seeds:
        raise ConfigError("give at least one seed")
    dataset = table_dataset(TABLE, dataset=dataset, root=root)
    n_labeled = labeled_count(PERCENT, train_size(dataset, root=root))

    def spec(row: str, method: str, overrides: tuple[str, ...], seed: int) -> RunSpec:
        return RunSpec(TABLE, row, method, dataset, PERCENT, n_labeled, scale, seed, overrides)

    iterations = config_of(spec(REFERENCE, "dycon", (), seeds[0])).train.iterations
    val = (
        (f"train.val_every={val_every(iterations)}",) if has_validation(dataset, root=root) else ()
    )
    track = {
        "none": (),
        "validation": val,
        "all": (*val, f"train.snapshots=[{','.join(str(float(f)) for f in SNAPSHOTS)}]"),
    }
    seeds = seeds[:1] if fig.first_seed_only else seeds
    return [
        spec(r.label, r.method, (*r.overrides, *track[r.track]), int(s))
        for r in fig.rows
        for s in seeds
    ]
