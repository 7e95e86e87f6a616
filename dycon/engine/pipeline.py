"""The run of one composed configuration, the same for every caller: ``python -m dycon train``,
``evaluate`` and ``run``, and the notebooks' ``experiments.ensure``.

run id -> dataset folder -> every listed case checked -> claim the run folder -> train ->
``train.json`` -> evaluate -> ``per_case.csv`` + ``summary.json``. Cases are checked before the
claim, so bad data leaves no run folder; a failed train leaves the folder only when it holds a
checkpoint to resume from; a finished evaluation is kept unless ``force``. Under torchrun every
rank trains, rank 0 alone checks the data, claims, records and evaluates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import ConfigError
from ..data.files import write_text_atomic
from .datasets import SplitData, TrainData, dataset_folder, split_cases, train_data
from .distributed import World, barrier, init_world, resolve_device
from .evaluate import evaluate
from .runs import claim_run, release_unstarted, require_writable, run_id
from .schema import ExperimentConfig
from .trainer import train

COMMANDS = ("train", "evaluate", "run")  # run = train then evaluate
TRAIN_INFO = "train.json"  # what train() returned: steps, seconds, memory, the best step
SUMMARY = "summary.json"


@dataclass(frozen=True)
class RunOutcome:
    """What one call did to the run folder ``run_dir``."""

    run_dir: Path
    trained: bool  # train() ran (a finished run resumes at its last step and returns)
    reused: bool  # the evaluation was already there and kept
    summary: dict | None  # None: not evaluated here (``train``, or a rank other than 0)
    is_main: bool  # rank 0, the one process that records and evaluates

    @property
    def summary_path(self) -> Path:
        return self.run_dir / SUMMARY


@dataclass(frozen=True)
class _Checked:
    """The cases of a run, every listed file's header checked (None: not needed)."""

    data: TrainData | None
    test: SplitData | None


def run_config(
    cfg: ExperimentConfig,
    *,
    runs_dir: str | Path,
    command: str = "run",
    root: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
    eval_progress: bool | None = None,
    on_train: Callable[[], object] | None = None,
) -> RunOutcome:
    """Train and/or evaluate ``cfg`` in ``runs_dir/<run id>``.

    Args:
        cfg: a composed, validated configuration.
        runs_dir: the folder of run folders.
        command: ``train``, ``evaluate`` (a trained run) or ``run`` (both).
        root: the data root (default ``$DYCON_DATA``).
        force: evaluate again even if ``summary.json`` exists.
        progress: the training progress bar; ``eval_progress`` (default: the same) one line
            per test case.
        on_train: called on rank 0 just before training starts (a caller's progress line).

    Raises:
        ConfigError, DataError: bad configuration or data, before the run folder is claimed.
        TrainingError: training cannot go on; the folder is released unless resumable.
    """
    if command not in COMMANDS:
        raise ValueError(f"command={command!r}; must be one of {', '.join(COMMANDS)}")
    trains, evaluates = command in ("train", "run"), command in ("evaluate", "run")
    runs_dir = Path(runs_dir)
    run_dir = runs_dir / run_id(cfg)
    world = _world(cfg, run_dir, runs_dir=runs_dir, trains=trains)
    keep = evaluates and not force
    checked = None
    if world.is_main:
        checked = _claim(cfg, run_dir, root=root, trains=trains, evaluates=evaluates, keep=keep)
    barrier(world)  # the other ranks wait for the claim
    if keep and (run_dir / SUMMARY).is_file():
        summary = json.loads((run_dir / SUMMARY).read_text()) if world.is_main else None
        return RunOutcome(
            run_dir, trained=False, reused=True, summary=summary, is_main=world.is_main
        )
    info = None
    if trains:
        if on_train is not None and world.is_main:
            on_train()
        data = checked.data if checked is not None else train_data(cfg, root=root)
        info = _train(cfg, data, run_dir, world=world, progress=progress)
    summary = None
    if evaluates and world.is_main:
        summary = evaluate(
            cfg,
            run_dir=run_dir,
            test=checked.test,
            train_info=info if info is not None else recorded_train_info(run_dir),
            progress=progress if eval_progress is None else eval_progress,
        )
    return RunOutcome(run_dir, trained=trains, reused=False, summary=summary, is_main=world.is_main)


def _world(cfg: ExperimentConfig, run_dir: Path, *, runs_dir: Path, trains: bool) -> World:
    """The processes of this call; checks made before anything is written."""
    if not trains:  # evaluate alone: one process, on a trained run
        last = run_dir / "checkpoints" / "last.pt"
        if not last.is_file():  # before the claim, which would make the folder
            raise ConfigError(f"no checkpoint at {str(last)!r}: train this configuration first")
        return World()
    require_writable(runs_dir, what="--runs-dir")
    world, _ = init_world(resolve_device(cfg.train.device))
    return world


def _claim(
    cfg: ExperimentConfig,
    run_dir: Path,
    *,
    root: str | Path | None,
    trains: bool,
    evaluates: bool,
    keep: bool,
) -> _Checked:
    """Check the cases this call reads, then claim ``run_dir`` (rank 0 only)."""
    folder = dataset_folder(cfg, root=root)
    done = keep and (run_dir / SUMMARY).is_file()  # nothing will be read: no check
    checked = None if done else _check_cases(cfg, folder, trains=trains, evaluates=evaluates)
    claim_run(run_dir, cfg, data_folder=folder)
    if checked is None and not (run_dir / SUMMARY).is_file():
        # the claim moved a stale run aside (data of an older version): it is trained afresh
        checked = _check_cases(cfg, folder, trains=trains, evaluates=evaluates)
    return checked or _Checked(data=None, test=None)


def _check_cases(cfg: ExperimentConfig, folder: Path, *, trains: bool, evaluates: bool):
    data = train_data(cfg, folder=folder) if trains else None
    test = None
    if evaluates:
        test = split_cases(cfg, cfg.data.test_list, folder=folder, check_files=True)
    return _Checked(data=data, test=test)


def _train(cfg: ExperimentConfig, data: TrainData, run_dir: Path, *, world, progress) -> dict:
    """``train`` then ``train.json`` (rank 0); a failure releases a folder with nothing in it."""
    try:
        info = train(cfg, data=data, run_dir=run_dir, progress=progress)
    except BaseException:
        if world.is_main:
            release_unstarted(run_dir)  # kept if it holds a checkpoint to resume from
        raise
    # CPU training repeats bit for bit only at the same thread count (MT, isles-sim quick, seed
    # 1337: test Dice 53.94 at 2 threads, 53.11 at 1), so the run records it.
    info = {**info, "torch_threads": torch.get_num_threads()}
    if world.is_main:
        write_text_atomic(run_dir / TRAIN_INFO, json.dumps(info, indent=2) + "\n")
    return info


def recorded_train_info(run_dir: Path) -> dict:
    """What training recorded for the run in ``run_dir``: ``train.json``; for a run made before
    every path wrote it, the ``train`` record of its summary; else ``{}``."""
    for name, key in ((TRAIN_INFO, None), (SUMMARY, "train")):
        try:
            record = json.loads((run_dir / name).read_text())
        except (OSError, ValueError):
            continue
        record = record.get(key) if key and isinstance(record, dict) else record
        if isinstance(record, dict):
            return {k: v for k, v in record.items() if k != "selected_step"}
    return {}
