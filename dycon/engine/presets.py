"""Compose an experiment from presets: dataset < method < scale < the dataset's own settings for
that scale < config file < --set overrides.

A scale (or a dataset's settings for it) may hold ``methods: {<method>: {...}}``: settings of one
method's ``method:`` block at that scale only (e.g. the cpu scale's ramp of DyCON's eta, the
ramp MT and UA-MT already have), so a scale can align what all methods do without a new field.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from ..config import ConfigError, apply_overrides, available, from_dict, read_yaml_mapping
from ..methods import METHODS
from .schema import ExperimentConfig, normalise


def preset(kind: str, name: str) -> dict:
    path = resources.files("dycon") / "configs" / kind / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {kind[:-1]} {name!r}; available: {', '.join(available(kind))}")
    return yaml.safe_load(path.read_text()) or {}


def merge(base: dict, update: dict) -> dict:
    """Deep merge: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _scale_method_settings(data: dict, method_name: str) -> dict:
    """``{"method": {...}}`` from a scale's ``methods:`` block for ``method_name`` (removed)."""
    per_method = data.pop("methods", None) or {}
    if not isinstance(per_method, dict) or not all(
        isinstance(v, dict) for v in per_method.values()
    ):
        raise ConfigError(
            f"scale {data.get('scale')!r}: methods must map a method name to its settings, "
            f"got {per_method!r}"
        )
    unknown = sorted(set(per_method) - set(METHODS))
    if unknown:
        raise ConfigError(
            f"scale {data.get('scale')!r}: methods.{unknown[0]} is not a method; known: "
            f"{', '.join(METHODS)}"
        )
    return {"method": per_method[method_name]} if method_name in per_method else {}


def compose(
    *,
    dataset: str,
    method: str,
    scale: str = "quick",
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> ExperimentConfig:
    """The experiment config of ``dataset`` x ``method`` at ``scale``, then file and overrides."""
    data: dict = {}
    dataset_preset = preset("datasets", dataset)
    # A dataset may adjust a scale (`scales: {quick: {...}}` in its YAML): merged over the
    # scale preset, because what trains in minutes on one dataset may not on another.
    at_scale = (dataset_preset.pop("scales", None) or {}).get(scale) or {}
    if not isinstance(at_scale, dict):
        raise ConfigError(
            f"datasets/{dataset}.yaml: scales.{scale} must be a mapping of settings, "
            f"got {at_scale!r}"
        )
    method_preset = preset("methods", method)
    for layer in (dataset_preset, method_preset, preset("scales", scale), at_scale):
        data = merge(data, layer)
    data = merge(data, _scale_method_settings(data, method_preset.get("method_name", method)))
    if config_file is not None:
        data = merge(data, read_yaml_mapping(config_file))
    # Ranges are checked once, on the final configuration: a preset value that an override
    # replaces must not fail first.
    cfg = normalise(from_dict(ExperimentConfig, data), check=False, every_field=True)
    return normalise(apply_overrides(cfg, list(overrides)))
