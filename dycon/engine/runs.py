"""Run folders: the id of a configuration, the config file that claims its folder, and the stamp
of the data it was trained on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import yaml

from ..config import ConfigError, config_hash, to_dict
from ..data.files import write_text_atomic
from .checkpoint import remove_interrupted_writes
from .schema import ExperimentConfig


def require_writable(folder: Path, *, what: str) -> None:
    """``folder`` (or its nearest existing parent) is a folder this process may write in.

    Raises:
        ConfigError: naming the option and the path.
    """
    probe = Path(folder)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {str(folder)!r}: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{what} {str(folder)!r} is not writable ({str(probe)!r}); pass a folder you can "
            "write to"
        )


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


def data_hash(folder: Path, *, length: int = 16) -> str | None:
    """The prepared dataset's ``content_hash`` (cases and list sizes, not the time it was
    prepared); None when its manifest cannot be read."""
    from dycon.data.prepare.manifest import content_hash

    try:
        return content_hash(json.loads((Path(folder) / "manifest.json").read_text()), length=length)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def data_stamp(folder: Path) -> dict:
    """The ``data.json`` of a run trained on the dataset in ``folder``."""
    return {"data_version": data_version(folder), "data_hash": data_hash(folder)}


def read_stamp(run_dir: Path) -> dict | None:
    """The data stamp (``data.json``) of the run in ``run_dir``: None when it has none, or one
    that is not a JSON object (a run from before the stamp, or a half-copied folder)."""
    try:
        made = json.loads((Path(run_dir) / DATA_STAMP).read_text())
    except (OSError, ValueError):
        return None
    return made if isinstance(made, dict) else None


def claim_run(run_dir: Path, cfg: ExperimentConfig, *, data_folder: Path) -> None:
    """Claim ``run_dir`` for ``cfg`` trained on the dataset in ``data_folder``.

    The run id hashes the configuration, not the data, so the data stamp (``data.json``) says
    what the run was trained on. A run trained on an earlier version of a generated dataset (a
    new isles-sim generator, whose old data is gone) is moved aside to ``<run>.stale``
    (replacing an older one there) and the folder starts afresh. A run trained on other data
    of the same name (``--data-root`` elsewhere: other cases, another copy) is an error: it is
    kept, and the message says which data it needs. Temp files that a kill left behind are
    removed, since this process now owns the run.
    """
    stamp_path = run_dir / DATA_STAMP
    now = data_stamp(data_folder)
    if run_dir.is_dir() and any(run_dir.iterdir()):
        # no stamp: a run from before the stamp, which only generated data had
        made = read_stamp(run_dir) or {"data_version": None}
        if made.get("data_version") != now["data_version"]:
            aside = run_dir.with_name(run_dir.name + ".stale")
            print(
                f"[dycon] {run_dir.name}: trained on data version {made.get('data_version')}, "
                f"the data is now {now['data_version']}: moved to {aside.name}, training again"
            )
            shutil.rmtree(aside, ignore_errors=True)
            run_dir.rename(aside)
        # A stamp written before stamps held the data hash has only the version: it is accepted
        # for any data of that version, as before (the committed runs of results/ were stamped
        # so), and is left as it is rather than claimed for data it may not have been trained on.
        elif made.get("data_hash") is not None and made["data_hash"] != now["data_hash"]:
            raise ConfigError(
                f"run {str(run_dir)!r} was trained on {cfg.data.dataset} data {made['data_hash']}, "
                f"the data in {str(data_folder)!r} is {now['data_hash']} (other cases or another "
                "copy): pass the --data-root it was trained on, or another --runs-dir to train "
                "on this data"
            )
    write_run_config(run_dir, cfg)
    if not stamp_path.is_file():
        write_text_atomic(stamp_path, json.dumps(now) + "\n")
    remove_interrupted_writes(run_dir)


# What claim_run writes; a folder holding nothing else after a failure holds no work.
_CLAIM_FILES = {"config.yaml", DATA_STAMP, "log.jsonl"}


def release_unstarted(run_dir: Path) -> bool:
    """After a failed or interrupted train: remove ``run_dir`` if it holds nothing to resume
    from (no checkpoint, no summary), so no folder holding only ``config.yaml`` and
    ``data.json`` is left behind. Returns whether it was removed."""
    if not run_dir.is_dir():
        return False
    ckpts = run_dir / "checkpoints"
    kept = [p for p in ckpts.iterdir() if not p.name.endswith(".tmp")] if ckpts.is_dir() else []
    others = [p for p in run_dir.iterdir() if p.name not in _CLAIM_FILES | {"checkpoints"}]
    if kept or others:
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True
