"""From a config's data section to the cases the engine trains and evaluates on."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..config import ConfigError
from ..data import datasets
from ..data.readers import check_case, read_case
from ..data.splits import check_split, read_split
from ..data.volume import DATA_ENV, DataError, Volume, data_root
from .schema import ExperimentConfig
from .train_data import TrainData
from .validation import validation_interval

SYNTHETIC = {name for name, d in datasets.DATASETS.items() if d.synthetic}  # generated on use


def dataset_folder(cfg: ExperimentConfig, *, root: str | Path | None = None) -> Path:
    """``$DYCON_DATA/<dataset>``; isles-sim is generated on first use, with a banner."""
    name = cfg.data.dataset
    base = data_root(root, must_exist=False)
    if base.exists() and not base.is_dir():
        raise DataError(
            f"data root {str(base)!r} is a file, not a folder; point {DATA_ENV} or --data-root "
            "at the folder holding prepared datasets"
        )
    data_root(root, must_exist=name not in SYNTHETIC)  # a real dataset's root must exist
    folder = base / name
    if name not in SYNTHETIC:
        if not (folder / "manifest.json").is_file():
            raise DataError(
                f"dataset {name!r} is not prepared under {str(base)!r}; run "
                f"`{datasets.dataset(name).command}` (see book/data.md)"
            )
        return folder
    if (folder / "manifest.json").is_file() and not _stale_generator(folder):
        return folder  # complete and current: nothing to write, so a read-only root is fine
    if not _writable(base):
        raise DataError(
            f"{name} must be generated under {str(base)!r}, which is not writable; point "
            f"{DATA_ENV} or --data-root at a writable folder"
        )
    base.mkdir(parents=True, exist_ok=True)
    # Several processes may ask at once (notebooks, torchrun ranks): one generates, the others
    # wait for it and then find it complete.
    with (base / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _generate_if_needed(name, folder)
    return folder


def _writable(folder: Path) -> bool:
    """``folder`` (or, if missing, its nearest existing parent) accepts new files."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def _generate_if_needed(name: str, folder: Path) -> None:
    stale = _stale_generator(folder)
    if not (folder / "manifest.json").is_file() or stale:
        from ..data.prepare import prepare  # generation pulls in the template only when needed

        why = (
            f"made by generator {stale[0]}, now {stale[1]}: regenerating" if stale else "generating"
        )
        print(
            f"[dycon] {name}: SYNTHETIC data (not a real dataset), {why} it under {str(folder)!r}"
        )
        options = stale[2] if stale else {}
        prepare(name, dest=folder, **options)


def _stale_generator(folder: Path):
    """(old version, current version, options) when isles-sim came from another generator."""
    from ..data.isles_sim import GENERATOR_VERSION

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    made = manifest.get("source", {}).get("generator_version")
    if made is None or str(made) == str(GENERATOR_VERSION):
        return None
    options = manifest.get("prepared_with", {}).get("options", {})
    options = {k: v for k, v in options.items() if k in ("preset", "seed", "adc")}
    return made, GENERATOR_VERSION, options


class CaseLoader:
    """Picklable loader of the cases of one split, cached in memory (cases are small)."""

    def __init__(self, dataset: str, folder: Path, ids: list[str], *, cache: bool = True) -> None:
        self.dataset, self.folder, self.ids, self.cache = dataset, folder, ids, cache
        self._cache: dict[int, Volume] = {}

    def __call__(self, index: int) -> Volume:
        if index not in self._cache:
            volume = read_case(self.dataset, self.folder, self.ids[index])
            if not self.cache:
                return volume
            self._cache[index] = volume
        return self._cache[index]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class SplitData:
    ids: list[str]
    load: CaseLoader


def split_cases(
    cfg: ExperimentConfig, split_file: str, *, folder: Path, check_files: bool = False
) -> SplitData:
    """The cases of one split list; ``check_files`` also checks each case's file header
    (``check_case_files``)."""
    path = folder / split_file
    ids = read_split(path)
    check_split(ids, prepared_cases(folder), split_file=path)
    if check_files:
        check_case_files(cfg, ids, folder=folder, split_file=split_file)
    return SplitData(ids=ids, load=CaseLoader(cfg.data.dataset, folder, ids))


def check_case_files(
    cfg: ExperimentConfig, ids: list[str], *, folder: Path, split_file: str
) -> None:
    """Every listed case exists with a readable header of the expected keys, shapes, dtypes and
    spacing, checked before training from the headers alone (milliseconds a case): volumes are
    otherwise read only when first sampled, and a broken unlabeled case would surface mid-run.
    """
    for case in ids:
        try:
            check_case(cfg.data.dataset, folder, case)
        except DataError as err:
            raise DataError(f"{split_file}, case {case!r}: {err}") from None


def prepared_cases(folder: Path) -> set[str]:
    """Case ids the prepare step wrote (its manifest is written last, so it is complete)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        return {str(case["case"]) for case in manifest["cases"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(
            f"cannot read {str(folder / 'manifest.json')!r} ({type(err).__name__}); "
            "re-run the prepare step for this dataset"
        ) from None


def train_data(
    cfg: ExperimentConfig, *, root: str | Path | None = None, folder: Path | None = None
) -> TrainData:
    """The train list, plus the validation list when the run validates (``train.val_every`` or
    ``eval.select=best_val``), every case's file checked (``check_case_files``); the test list
    is never opened here. ``folder``: the dataset folder if already looked up."""
    folder = dataset_folder(cfg, root=root) if folder is None else folder
    split = split_cases(cfg, cfg.data.train_list, folder=folder, check_files=True)
    # Every case labeled is a fully supervised run (the tables' 100 % rows): the sampler then
    # fills the unlabeled rows of each batch from the labeled cases, their labels hidden.
    if cfg.data.num_labeled > len(split.ids):
        raise DataError(
            f"data.num_labeled={cfg.data.num_labeled} exceeds the {len(split.ids)} cases of "
            f"{cfg.data.train_list}; lower it"
        )
    if not validation_interval(cfg):
        return TrainData(train_ids=split.ids, load=split.load)
    if cfg.data.val_list is None:
        raise ConfigError(
            f"dataset {cfg.data.dataset!r} has no validation list (data.val_list is null), so "
            "it cannot validate: use eval.select=final and train.val_every=0"
        )
    val = split_cases(cfg, cfg.data.val_list, folder=folder, check_files=True)
    return TrainData(train_ids=split.ids, load=split.load, val_ids=val.ids, val_load=val.load)
