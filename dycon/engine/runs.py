"""Run folders: the id of a configuration and the config file that claims its folder."""

from __future__ import annotations

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
