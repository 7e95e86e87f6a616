"""The runs each figure needs, in Table 1's setting (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import ConfigError
from ..experiments import RunResult, RunSpec, config_of, labeled_count, table_dataset, train_size

FIGURES = ("lesion-size", "gradcam", "curves", "overlays")
TABLE = 1  # the figures use Table 1's setting
PERCENT = 10
SNAPSHOTS = (0.1, 0.5, 1.0)
REFERENCE = "DyCON"


def check_figure(name: str) -> str:
    if name not in FIGURES:
        raise ConfigError(f"unknown figure {name!r}; valid figures: {', '.join(FIGURES)}")
    return name


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


def figure_runs(
    name: str,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: Sequence[int] = (1337,),
    root: str | Path | None = None,
) -> list[RunSpec]:
    """The runs of figure ``name`` (rows in the package docstring), one per row and seed; the
    Grad-CAM and overlay figures picture one run per row, that of the first seed."""
    check_figure(name)
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
    tracked = (*val, f"train.snapshots=[{','.join(str(float(f)) for f in SNAPSHOTS)}]")
    rows = {
        "lesion-size": [
            (REFERENCE, "dycon", ()),
            ("DyCON w/o FeCL", "dycon", ("method.use_fecl=false",)),
            ("MT", "mt", ()),
        ],
        "overlays": [(REFERENCE, "dycon", ()), ("MT", "mt", ())],
        "curves": [(REFERENCE, "dycon", tracked), ("MT", "mt", val)],
        "gradcam": [(REFERENCE, "dycon", tracked)],
    }[name]
    if name in ("gradcam", "overlays"):  # pictures of one run: the first seed
        seeds = seeds[:1]
    return [spec(row, m, o, int(s)) for row, m, o in rows for s in seeds]


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
