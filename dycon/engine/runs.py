"""Run folders: the id of a configuration, the config file that claims its folder, and the stamp
of the data it was trained on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from ..config import ConfigError, config_hash, to_dict
from ..data._io import write_text_atomic
from .schema import ExperimentConfig


def run_id(cfg: ExperimentConfig) -> str:
    """Readable prefix + config hash: the same config always maps to the same run folder."""
    return f"{cfg.data.dataset}-{cfg.method_name}-{cfg.scale}-s{cfg.train.seed}-{config_hash(cfg)}"


def write_run_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    """Write ``config.yaml`` once; a folder holding another configuration is an error."""
    path = run_dir / "config.yaml"
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if path.is_file() and path.read_text() != text:
        raise ConfigError(
            f"{str(path)!r} holds a different configuration with the same run id; "
            "move the run folder away"
        )
    if not path.is_file():
        write_text_atomic(path, text)


DATA_STAMP = "data.json"


def data_version(folder: Path) -> str | None:
    """The version of a prepared dataset that changes its content: isles-sim's generator version;
    None for real data, whose content is fixed by its source."""
    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("source", {}).get("generator_version")
    return None if version is None else str(version)


def claim_run(run_dir: Path, cfg: ExperimentConfig, *, data_folder: Path) -> None:
    """Claim ``run_dir`` for ``cfg`` trained on the dataset in ``data_folder``.

    The run id hashes the configuration, not the data, so a run trained on an earlier version of a
    generated dataset (a new isles-sim generator) would otherwise be reused silently. Such a run
    is moved aside to ``<run>.stale`` (replacing an older one there) and the folder starts afresh.
    """
    version = data_version(data_folder)
    stamp = run_dir / DATA_STAMP
    if run_dir.is_dir() and any(run_dir.iterdir()):
        try:
            made = json.loads(stamp.read_text()).get("data_version")
        except (OSError, ValueError):
            made = None  # runs from before the stamp: only generated data can be stale
        if made != version:
            aside = run_dir.with_name(run_dir.name + ".stale")
            print(
                f"[dycon] {run_dir.name}: trained on data version {made}, the data is now "
                f"{version}: moved to {aside.name}, training again"
            )
            shutil.rmtree(aside, ignore_errors=True)
            run_dir.rename(aside)
    write_run_config(run_dir, cfg)
    if not stamp.is_file():
        write_text_atomic(stamp, json.dumps({"data_version": version}) + "\n")
