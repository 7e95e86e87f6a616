"""What each table of the paper needs, as runs; finished runs are reused, missing ones trained.

A run is (dataset, method preset + options, labeled count, scale, seed). Its id is a hash of the
full configuration (``engine.runs.run_id``), so asking twice for the same table trains nothing
the second time and an interrupted run resumes. Notebooks call :func:`table_runs` then
:func:`ensure`; they never train by hand.

Where the table's dataset is not prepared under ``DYCON_DATA``, the embedded synthetic
``isles-sim`` stands in and every result says so (``data_kind: synthetic``). Labeled counts are
the paper's percentages of the training list actually used (5 % of isles-sim's 40 is 2).
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from .config import ConfigError
from .data.splits import read_split
from .data.volume import DATA_ENV, data_root
from .paper import TABLES as PAPER_TABLES

# The rows of Tables 1-3 this engine implements: (label as printed, method preset, overrides).
# "Supervised (labeled only)" is ours, the lower bound at the same labeled count.
COMPARISON_ROWS = (
    ("Supervised (labeled only)", "supervised", ()),
    ("MT", "mt", ()),
    ("UA-MT", "ua-mt", ()),
    ("MCF", "mcf", ()),
    ("CML", "cml", ()),
    ("DTC", "dtc", ()),
    ("AC-MT", "acmt", ()),
    ("MagicNet", "magicnet", ()),
    ("BCP", "bcp", ()),
    ("GALoss", "galoss", ()),
    ("DyCON", "dycon", ()),
)
# Printed rows this engine does not re-run, and why: the report shows the reason in their cells.
NOT_RERUN = {
    "W-Net": "an architecture this library does not build",
    "PAMSNet": "an architecture this library does not build",
    "UPC": "not identified (results/paper/README.md)",
}
# Rows a table of the paper does not print are not run for it.
_NOT_IN = {2: ("MagicNet", "GALoss"), 3: ("AC-MT", "MagicNet", "GALoss")}


def _rows_of(table: int) -> tuple:
    return tuple(r for r in COMPARISON_ROWS if r[0] not in _NOT_IN.get(table, ()))


# The 100 % row of a table ("upper_bound"): supervised with every training volume labeled, at
# labeled percentage FULL. It runs when FULL is among the requested percentages.
FULL = 100
# table -> the paper's dataset, labeled percentages, rows and fully supervised row; an ablation
# ("kind") and the metrics it prints where they differ from a comparison's. The tables are
# the paper's (paper.TABLES, checked below). "UPC [23]"
# of Table 4 is not identified (results/paper/README.md) and is not re-run.
TABLES: dict[int, dict] = {
    1: {
        "dataset": "isles22",
        "percents": (5, 10, 20),
        "rows": _rows_of(1),
    },
    2: {
        "dataset": "brats19",
        "percents": (10, 20),
        "rows": (*_rows_of(2)[:3], ("URPC", "urpc", ()), *_rows_of(2)[3:]),
        "upper_bound": ("3D-UNet", "supervised", ("model.name=unet3d",)),
    },
    3: {
        "dataset": "pancreas",
        "percents": (20,),
        "rows": _rows_of(3),
        "upper_bound": ("V-Net", "supervised", ("model.name=vnet",)),
    },
    4: {
        "dataset": "la",
        "percents": (5, 10),
        "rows": (
            ("Supervised (labeled only)", "supervised", ("model.name=vnet",)),
            ("UA-MT", "ua-mt", ("model.name=vnet",)),
            ("DTC", "dtc", ("model.name=vnet",)),
            ("MCF", "mcf", ()),  # its own pair of subnets (V-Net and 3D U-Net)
            ("BCP", "bcp", ("model.name=vnet",)),
            ("CML", "cml", ("model.name=vnet",)),
            ("AC-MT", "acmt", ("model.name=vnet",)),
            ("DyCON (VNet)", "dycon", ("model.name=vnet",)),
            ("DyCON (3D-UNet)", "dycon", ("model.name=unet3d",)),
        ),
        "upper_bound": ("3D-UNet", "supervised", ("model.name=unet3d",)),
    },
    # Table 5: the FeCL elements and UnCL switched as in the poster's rows; the poster does not
    # say which labeled fraction, so 10 % (its training-curve figure uses "10% labels").
    5: {
        "kind": "ablation",  # rows switch components; the report labels them by what is on
        "metrics": ("dice", "hd95", "asd"),  # the poster's Table 5 prints no IoU
        "dataset": "isles22",
        "percents": (10,),
        "rows": tuple(
            (
                f"row {i}",
                "dycon",
                (
                    f"method.focal={f}",
                    f"method.hard_negatives={hn}",
                    f"method.entropy_weighting={ent}",
                    f"method.use_uncl={uncl}",
                    f"method.use_fecl={f or hn or ent}",
                ),
            )
            for i, (f, hn, ent, uncl) in enumerate(
                [
                    (False, False, False, False),
                    (True, False, False, True),
                    (True, True, False, True),
                    (True, False, True, True),
                    (True, True, True, True),
                ],
                start=1,
            )
        ),
    },
}
if tuple(TABLES) != PAPER_TABLES:  # one list of tables: the paper's
    raise ImportError(f"experiments.TABLES {tuple(TABLES)} differ from the paper's {PAPER_TABLES}")
FALLBACK = "isles-sim"


@dataclass(frozen=True)
class RunSpec:
    """One run of a table: a row of the paper's table at one labeled count and seed."""

    table: int
    row: str  # the row label, as the paper prints it
    method: str  # method preset
    dataset: str
    percent: int  # the paper's labeled percentage this run stands for
    num_labeled: int
    scale: str
    seed: int
    overrides: tuple[str, ...] = ()

    def all_overrides(self, device: str) -> list[str]:
        return [
            f"data.num_labeled={self.num_labeled}",
            f"train.seed={self.seed}",
            f"train.device={device}",
            *self.overrides,
        ]


@dataclass
class RunResult:
    spec: RunSpec
    run_id: str
    run_dir: Path
    summary: dict
    per_case: list[dict] = field(default_factory=list)


def check_table(table: int) -> int:
    if table not in TABLES:
        valid = ", ".join(str(t) for t in TABLES)
        raise ConfigError(f"unknown table {table!r}; valid tables: {valid}")
    return table


def table_dataset(table: int, *, dataset: str | None = None, root: str | Path | None = None):
    """The dataset a table runs on: ``dataset`` if given, else the paper's when it is prepared
    under ``DYCON_DATA``, else the synthetic isles-sim."""
    if dataset:
        return dataset
    paper = TABLES[check_table(table)]["dataset"]
    base = data_root(root, must_exist=False)
    return paper if (base / paper / "manifest.json").is_file() else FALLBACK


def train_size(dataset: str, *, root: str | Path | None = None) -> int:
    """Cases in the prepared training list (isles-sim: generated now if needed)."""
    from .engine.datasets import dataset_folder
    from .engine.presets import compose

    cfg = compose(dataset=dataset, method="supervised", scale="smoke")
    folder = dataset_folder(cfg, root=root)
    return len(read_split(folder / cfg.data.train_list))


def labeled_count(percent: float, n_train: int) -> int:
    """``percent`` % of ``n_train``, at least 1 and leaving at least one unlabeled case."""
    return min(max(1, round(percent * n_train / 100)), n_train - 1)


def table_runs(
    table: int,
    *,
    dataset: str | None = None,
    scale: str = "quick",
    seeds: tuple[int, ...] | list[int] = (1337,),
    percents: tuple[int, ...] | list[int] | None = None,
    rows: tuple[str, ...] | list[str] | None = None,
    root: str | Path | None = None,
) -> list[RunSpec]:
    """The runs of ``table``: every (row, labeled percentage, seed), in the paper's order.

    Args:
        table: 1-5.
        dataset: the dataset to run on; default: the paper's when prepared, else isles-sim.
        scale: ``smoke``, ``quick`` or ``paper``.
        seeds: one run per seed; results are pooled over seeds.
        percents: labeled percentages. Default: the paper's at the paper scale; at the smoke
            and quick scales only the paper's middle one (10 % for Table 1), so that a table
            fits in minutes on a CPU; pass the others explicitly to run them. 100 runs the
            table's fully supervised row (``upper_bound``) with every training volume labeled.
        rows: row labels or method presets to keep (default: all rows the engine implements);
            the fully supervised row is kept at 100 % unless ``rows`` leaves its label out.
        root: the data root (default ``$DYCON_DATA``).
    """
    spec = TABLES[check_table(table)]
    dataset = table_dataset(table, dataset=dataset, root=root)
    upper = spec.get("upper_bound")
    if not percents:
        paper = spec["percents"]
        full = (FULL,) if upper else ()
        percents = (*paper, *full) if scale == "paper" else (paper[len(paper) // 2],)
    percents = tuple(percents)
    keep = spec["rows"]
    if rows:
        known = {r[0] for r in keep} | {r[1] for r in keep} | ({upper[0]} if upper else set())
        unknown = set(rows) - known
        if unknown:
            valid = ", ".join(sorted(known))
            raise ConfigError(f"unknown rows {sorted(unknown)} for table {table}; valid: {valid}")
        keep = tuple(r for r in keep if r[0] in rows or r[1] in rows)
    if FULL in percents and not upper:
        raise ConfigError(f"table {table} has no {FULL} % row; its percentages: {spec['percents']}")
    if rows and upper and upper[0] not in rows:
        upper = None
    n_train = train_size(dataset, root=root)
    return [
        RunSpec(
            table=table,
            row=label,
            method=method,
            dataset=dataset,
            percent=pct,
            # every volume labeled at 100 %; else at least one left unlabeled
            num_labeled=n_train if pct == FULL else labeled_count(pct, n_train),
            scale=scale,
            seed=seed,
            overrides=tuple(overrides),
        )
        for pct in percents
        for label, method, overrides in ((upper,) if pct == FULL and upper else keep)
        for seed in seeds
        if pct != FULL or upper
    ]


def config_of(spec: RunSpec, *, device: str = "auto"):
    from .engine.presets import compose

    return compose(
        dataset=spec.dataset,
        method=spec.method,
        scale=spec.scale,
        overrides=spec.all_overrides(device),
    )


def ensure(
    specs: list[RunSpec],
    *,
    runs_dir: str | Path = "results/runs",
    root: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
) -> list[RunResult]:
    """Train and evaluate what is missing, reuse what is done; one result per spec, in order.

    Each run goes through ``engine.pipeline.run_config``, as ``python -m dycon run`` does, so a
    run made here has the same files (``train.json`` included) as one made on the command line.
    """
    from .engine.pipeline import run_config
    from .engine.runs import run_id

    results = []
    for i, spec in enumerate(specs, start=1):
        cfg = config_of(spec, device=device)
        line = f"[{i}/{len(specs)}] {run_id(cfg)}"
        outcome = run_config(
            cfg,
            runs_dir=runs_dir,
            root=root,
            progress=progress,
            eval_progress=False,
            on_train=partial(_say, f"{line}: training") if progress else None,
        )
        if outcome.reused and progress:
            _say(f"{line}: reused")
        results.append(load_result(spec, outcome.run_dir))
    return results


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_result(spec: RunSpec, run_dir: Path) -> RunResult:
    import csv

    summary = json.loads((run_dir / "summary.json").read_text())
    with (run_dir / "per_case.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return RunResult(
        spec=spec, run_id=summary["run_id"], run_dir=run_dir, summary=summary, per_case=rows
    )


def data_notes(dataset: str, *, root: str | Path | None = None) -> list[str]:
    """What the prepare step recorded about the data (e.g. 'LA, 2x downsampled')."""
    path = data_root(root, must_exist=False) / dataset / "manifest.json"
    try:
        return list(json.loads(path.read_text()).get("notes", []))
    except (OSError, ValueError):
        return []


def save_results(
    results: list[RunResult], dest: str | Path, *, files: dict[str, str] | None = None
) -> Path:
    """Copy each run's summary, per-case table, config and log into ``dest/runs/<run-id>/``
    (committable: no checkpoints), plus ``files`` (name -> text) at the top.

    ``dest`` is replaced whole, through a staging folder and renames, so it never mixes two
    reproductions and an interruption leaves the previous one in place.
    """
    from .data.files import staged_folder

    dest = Path(dest)
    with staged_folder(dest) as staging:
        for result in results:
            target = staging / "runs" / result.run_id
            target.mkdir(parents=True, exist_ok=True)
            for name in ("summary.json", "per_case.csv", "config.yaml", "log.jsonl"):
                if (result.run_dir / name).is_file():
                    shutil.copy2(result.run_dir / name, target / name)
        for name, text in (files or {}).items():
            (staging / name).write_text(text)
    return dest


__all__ = [
    "DATA_ENV",
    "FALLBACK",
    "TABLES",
    "RunResult",
    "RunSpec",
    "data_notes",
    "ensure",
    "labeled_count",
    "save_results",
    "table_dataset",
    "table_runs",
]
