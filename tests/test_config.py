"""Typed configs: YAML, overrides, errors, hashes."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from dycon.config import (
    ConfigError,
    apply_overrides,
    config_hash,
    from_dict,
    load_config,
    to_dict,
)
from dycon.engine.presets import compose


@dataclass(frozen=True)
class Optim:
    lr: float = 0.01
    schedule: Literal["constant", "poly"] = "constant"
    grad_clip: float | None = 1.0


@dataclass(frozen=True)
class Train:
    iterations: int = 100
    patch: tuple[int, int, int] = (96, 96, 96)
    amp: bool = False
    seeds: tuple[int, ...] = (0,)
    name: str = "run"


@dataclass(frozen=True)
class Root:
    optim: Optim = field(default_factory=Optim)
    train: Train = field(default_factory=Train)


def test_defaults_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1\n  schedule: poly\ntrain:\n  patch: [112, 112, 80]\n")
    cfg = load_config(
        Root,
        path,
        overrides=[
            "train.iterations=7",
            "optim.grad_clip=null",
            "train.seeds=[1, 2, 3]",
            "train.amp=true",
        ],
    )
    assert cfg.optim == Optim(lr=1.0, schedule="poly", grad_clip=None)
    assert cfg.train.patch == (112, 112, 80) and isinstance(cfg.optim.lr, float)
    assert cfg.train.iterations == 7 and cfg.train.seeds == (1, 2, 3) and cfg.train.amp is True
    assert from_dict(Root, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["train.iteration=5"],
            "unknown config key 'train.iteration'; did you mean 'train.iterations'",
        ),
        (["trian.iterations=5"], "unknown config key 'trian'"),
        (["train.iterations=five"], "train.iterations must be int, got 'five'"),
        (["train.iterations=2.5"], "train.iterations must be int"),
        (["train.amp=1"], "train.amp must be bool"),
        (["optim.schedule=cosine"], "optim.schedule must be one of 'constant', 'poly'"),
        (["train.patch=[96, 96]"], "train.patch must have 3 items"),
        (["optim.grad_clip=off"], "optim.grad_clip must be float or null"),
        (["train.iterations"], "must look like section.key=value"),
        (["train=3"], "train must be a mapping"),
    ],
)
def test_bad_overrides(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        apply_overrides(Root(), overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(Root, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Root, bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("optim:\n  lr: 0.1\n  momentum: 0.9\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'optim\.momentum'"):
        load_config(Root, typo)


def test_hash_is_stable_and_sensitive():
    assert config_hash(Root()) == config_hash(Root())
    assert config_hash(Root()) != config_hash(apply_overrides(Root(), ["optim.lr=0.02"]))
    assert len(config_hash(Root())) == 12


def test_a_dataset_adjusts_a_scale_for_itself_only():
    la_quick = compose(dataset="la", method="dycon", scale="quick")
    sim_quick = compose(dataset="isles-sim", method="dycon", scale="quick")
    assert (la_quick.train.iterations, la_quick.optim.lr) == (200, 0.01)
    assert (sim_quick.train.iterations, sim_quick.optim.lr) == (90, 0.05)
    assert la_quick.data.patch == sim_quick.data.patch  # the rest of the scale still applies
    la_smoke = compose(dataset="la", method="dycon", scale="smoke")
    assert (
        la_smoke.train.iterations
        == compose(dataset="isles-sim", method="dycon", scale="smoke").train.iterations
    )
    # an override still wins over the dataset's scale settings
    assert (
        compose(dataset="la", method="dycon", scale="quick", overrides=["optim.lr=0.02"]).optim.lr
        == 0.02
    )


def test_an_added_field_stays_out_of_the_dict_and_hash_at_its_default():
    from dycon.config import added_field

    @dataclass(frozen=True)
    class Later:
        a: int = 1
        b: bool = added_field(False)  # added after runs were hashed

    @dataclass(frozen=True)
    class Before:
        a: int = 1

    assert to_dict(Later()) == {"a": 1} and config_hash(Later()) == config_hash(Before())
    assert to_dict(Later(b=True)) == {"a": 1, "b": True}
    assert to_dict(Later(), every_field=True) == {"a": 1, "b": False}
    assert apply_overrides(Later(), ["b=true"]) == Later(b=True)  # settable though not listed
    assert from_dict(Later, {"a": 1}) == Later()
