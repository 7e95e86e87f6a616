"""Configuration as plain typed dataclasses: YAML in, ``--set key=value`` overrides, stable hashes.

Every config is a tree of dataclasses with defaults. Loading a YAML mapping or applying an override
checks each key against the schema and each value against the field's type, so that a typo or a
wrong type fails at once with one line naming the key, instead of silently training something else.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad configuration key or value; the message is one line naming it."""


def from_dict(cls: type[T], data: dict[str, Any] | None, *, where: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; keys missing from ``data`` keep defaults."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(_unknown(key, fields, where))
    values = {}
    for name in fields:
        if name in data:
            values[name] = _coerce(hints[name], data[name], _join(where, name))
    return cls(**values)


# Metadata of a field added after runs were committed: left out of ``to_dict`` (and so of the
# run id and config.yaml) while it holds its default, so existing run ids do not change.
OMIT_DEFAULT = {"omit_default": True}


def added_field(default: Any) -> Any:
    """A dataclass field that appears in ``to_dict`` only when set to a non-default value."""
    return dataclasses.field(default=default, metadata=OMIT_DEFAULT)


def _plain(value: Any, omit: bool) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name), omit)
            for f in dataclasses.fields(value)
            if not (omit and f.metadata.get("omit_default") and getattr(value, f.name) == f.default)
        }
    if isinstance(value, list | tuple):
        return [_plain(v, omit) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v, omit) for k, v in value.items()}
    return value


def to_dict(cfg: Any, *, every_field: bool = False) -> dict[str, Any]:
    """Plain nested dict (tuples become lists), ready for YAML or JSON; ``added_field`` fields
    at their default are left out unless ``every_field``."""
    return json.loads(json.dumps(_plain(cfg, not every_field)))


def parse_assignment(item: str, *, what: str = "override", form: str = "key=value"):
    """``key=value`` -> ``(key, value)``, the value parsed as YAML (a scalar or a list)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{what} {item!r} must look like {form}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"{what} {item!r}: the value is not valid YAML") from None
    return key.strip(), value


def apply_overrides(cfg: T, overrides: list[str] | tuple[str, ...]) -> T:
    """Apply ``section.key=value`` strings; values are parsed as YAML scalars or lists."""
    data = to_dict(cfg, every_field=True)  # an added field at its default can be overridden
    for item in overrides:
        key, value = parse_assignment(item, form="section.key=value")
        node, parts = data, key.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                scope = ".".join(parts[:depth])
                known = node if isinstance(node, dict) else {}
                raise ConfigError(_unknown(part, known, scope) + f" (in override {item!r})")
            if depth == len(parts) - 1:
                node[part] = value
            else:
                node = node[part]
    return from_dict(type(cfg), data)


def load_config(
    cls: type[T], path: str | Path | None = None, *, overrides: list[str] | tuple[str, ...] = ()
) -> T:
    """Defaults of ``cls``, then the YAML file at ``path`` (if any), then ``overrides``."""
    data = {} if path is None else read_yaml_mapping(path)
    return apply_overrides(from_dict(cls, data, where=""), list(overrides))


def available(kind: str) -> list[str]:
    """The preset names of ``kind`` (datasets, methods, scales) shipped in ``dycon/configs``.

    Here, not in ``engine.presets``, so that the command line can list them in its help texts
    without importing torch.
    """
    folder = resources.files("dycon") / "configs" / kind
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def read_yaml_mapping(path: str | Path, *, what: str = "config") -> dict[str, Any]:
    """The mapping at the top of a YAML file (empty file: ``{}``).

    Raises:
        ConfigError: unreadable, not valid YAML (with the line), or not a mapping at the top.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read {what} {str(path)!r}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {str(path)!r} is not a text (YAML) file") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"{what} {str(path)!r} is not valid YAML{where}: {problem}; fix the file"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {str(path)!r} must hold a mapping of sections (data:, train: ...) at the "
            f"top, got a {type(data).__name__}; e.g. 'train: {{iterations: 100}}'"
        )
    return data


def config_hash(cfg: Any, *, length: int = 12) -> str:
    """Stable short hash of a config: the run id of everything it determines."""
    canonical = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _unknown(key: str, known, where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"; did you mean {_join(where, close[0])!r}?" if close else ""
    return f"unknown config key {_join(where, key)!r}{hint} (known: {', '.join(known)})"


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` (converting lists to tuples and ints to floats)."""
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=key)
    if origin in (Union, types.UnionType):
        return _coerce_union(tp, value, key)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(map(repr, get_args(tp)))
            raise ConfigError(f"{key} must be one of {choices}, got {value!r}")
        return value
    if origin is tuple:
        return _coerce_tuple(tp, value, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and (type(value) is not tp):
        raise ConfigError(f"{key} must be {_describe(tp)}, got {value!r}")
    return value


def _coerce_union(tp: Any, value: Any, key: str) -> Any:
    """The first option of ``A | B | None`` that takes ``value``, in the order written."""
    options = get_args(tp)
    if value is None and type(None) in options:
        return None
    for option in (o for o in options if o is not type(None)):
        try:
            return _coerce(option, value, key)
        except ConfigError:
            continue
    raise ConfigError(f"{key} must be {_describe(tp)}, got {value!r}")


def _coerce_tuple(tp: Any, value: Any, key: str) -> tuple:
    """``tuple[X, ...]`` (any length) or ``tuple[X, Y]`` (that length) from a list or tuple."""
    args = get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{key} must have {len(args)} items, got {list(value)!r}")
    return tuple(
        _coerce(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
    )


def _describe(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


__all__ = [
    "ConfigError",
    "added_field",
    "apply_overrides",
    "config_hash",
    "from_dict",
    "load_config",
    "read_yaml_mapping",
    "to_dict",
]
