"""The experiment configuration: what a run is. Its hash is the run id."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigError, added_field, from_dict, to_dict
from ..methods import METHODS
from ..models import ModelConfig  # re-exported: the model's config lives with the models


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "isles-sim"
    train_list: str = "train.list"
    val_list: str | None = "val.list"
    test_list: str = "test.list"
    num_labeled: int = 8  # the first N ids of the train list
    patch: tuple[int, int, int] = (48, 48, 32)
    batch_size: int = 4
    labeled_batch_size: int = 2
    foreground_fraction: float = 0.5  # labeled crops centred on foreground (0 = official uniform)
    rot_flip: bool = True
    num_workers: int = 0


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: Literal["constant", "poly", "step"] = "constant"  # official DyCON: constant
    poly_power: float = 0.9
    grad_clip: float | None = 1.0
    # "step": lr * step_gamma ** floor(t / (step_every * steps)); UA-MT/DTC: x0.1 every 2500 of
    # 6000 iterations. A fraction of the stage, so every scale decays alike.
    step_every: float = added_field(2500 / 6000)
    step_gamma: float = added_field(0.1)


@dataclass(frozen=True)
class TrainConfig:
    iterations: int = 20000
    seed: int = 1337
    ema_decay: float = 0.99
    amp: bool = False  # bf16 autocast, CUDA only
    checkpoint_every: int = 1000
    val_every: int = 0  # validation Dice every N steps (0: never, or checkpoint_every for best_val)
    snapshots: tuple[float, ...] = ()  # fractions of the run whose weights are kept (Grad-CAM)
    log_every: int = 10
    max_nonfinite: int = 10  # consecutive non-finite losses before aborting
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class EvalConfig:
    patch: tuple[int, int, int] | None = None  # None: the training patch
    stride: tuple[int, int, int] = (16, 16, 4)
    batch_size: int = 4
    gaussian: bool = False
    largest_component: bool = False
    convention: Literal["honest", "official"] = "honest"
    # A network of the method (student, its EMA teacher, a co-trained peer), or "ensemble":
    # the mean of the softmaxes of its trainable networks (CPS, MCF, CML); checked at composition.
    model: Literal["student", "teacher", "peer", "ensemble"] = "student"
    select: Literal["final", "best_val"] = "final"  # never selection on test
    save_predictions: bool = True  # predictions/<case>.npz in the run folder


@dataclass(frozen=True)
class ExperimentConfig:
    method_name: str = "dycon"
    method: dict[str, Any] = field(default_factory=dict)  # fields of the method's config class
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    scale: str = "custom"


def method_config(cfg: ExperimentConfig):
    """The typed config of ``cfg.method_name`` built from ``cfg.method`` (checked)."""
    if cfg.method_name not in METHODS:
        raise ConfigError(f"unknown method {cfg.method_name!r}; known: {', '.join(METHODS)}")
    return from_dict(METHODS[cfg.method_name][0], cfg.method, where="method")


def normalise(
    cfg: ExperimentConfig, *, check: bool = True, every_field: bool = False
) -> ExperimentConfig:
    """Fill every method field with its default, so hashes and overrides see the full config;
    then ``validate`` it (``check=False`` for an intermediate that overrides will change).

    ``every_field`` also keeps the method's ``added_field`` fields at their defaults, which
    the run id leaves out: an intermediate that overrides may set them on."""
    full = to_dict(cfg)
    full["method"] = to_dict(method_config(cfg), every_field=every_field)
    cfg = from_dict(ExperimentConfig, full)
    if check:
        validate(cfg)
    return cfg


# ---------------------------------------------------------------- value ranges
# Types are checked by ``from_dict``; ranges here, once, when a configuration is composed (before
# any folder is made or step trained), so a bad value is one line naming the key, not a
# traceback at the first forward pass or after training.


def _at_least(n):
    return lambda v: v >= n, f"an integer >= {n}"


def _in_unit(*, closed_top: bool):
    top = "]" if closed_top else ")"
    return (lambda v: 0 <= v <= 1 if closed_top else 0 <= v < 1), f"a number in [0, 1{top}"


def _positive_float():
    return lambda v: math.isfinite(v) and v > 0, "a finite number > 0"


def _patch():
    return (
        lambda v: all(p > 0 and p % 16 == 0 for p in v),
        "three positive multiples of 16 (the networks halve the patch four times)",
    )


def _optional(rule):
    test, allowed = rule
    return lambda v: v is None or test(v), f"null or {allowed}"


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")

RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "data.num_labeled": _at_least(1),
    "data.patch": _patch(),
    "data.batch_size": (lambda v: v >= 2, "an integer >= 2 (labeled rows + unlabeled rows)"),
    "data.labeled_batch_size": _at_least(1),
    "data.foreground_fraction": _in_unit(closed_top=True),
    "data.num_workers": _at_least(0),
    "model.in_channels": _at_least(1),
    "model.num_classes": (lambda v: v >= 2, "an integer >= 2 (background + foreground)"),
    "model.widths": (lambda v: all(w >= 1 for w in v), "five integers >= 1"),
    "model.base_filters": _at_least(1),
    "model.dropout": _optional(_in_unit(closed_top=False)),
    "model.embedding_dim": _at_least(1),
    "model.location_head": _at_least(0),
    "optim.lr": _positive_float(),
    "optim.momentum": _in_unit(closed_top=False),
    "optim.weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "optim.poly_power": _positive_float(),
    "optim.grad_clip": _optional(_positive_float()),
    "optim.step_every": (lambda v: 0 < v <= 1, "a fraction of the run in (0, 1]"),
    "optim.step_gamma": (lambda v: 0 < v <= 1, "a factor in (0, 1]"),
    "train.iterations": _at_least(1),
    "train.seed": _at_least(0),
    "train.ema_decay": _in_unit(closed_top=True),
    "train.checkpoint_every": _at_least(1),
    "train.val_every": _at_least(0),
    "train.snapshots": (lambda v: all(0 < f <= 1 for f in v), "fractions in (0, 1]"),
    "train.log_every": _at_least(1),
    "train.max_nonfinite": _at_least(1),
    "train.device": (lambda v: bool(_DEVICE.match(v)), "auto, cpu, cuda or cuda:N"),
    "eval.patch": _optional(_patch()),
    "eval.stride": (lambda v: all(s >= 1 for s in v), "three integers >= 1"),
    "eval.batch_size": _at_least(1),
}


_NON_NEGATIVE = (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")
# Fields of the methods' configs, by name, wherever a method has them (loss weights, ramps ...).
METHOD_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    **dict.fromkeys(
        (
            *("sup_weight", "eta", "mt_weight", "consistency"),
            *("eta_rampup", "fecl_rampup", "mt_rampup", "consistency_rampup"),
            *("noise_std", "noise_clip", "gamma", "beta"),
            *("cross_weight", "cross_rampup"),  # CPS, DyCON-CT
            *("review_weight", "compete_weight", "compete_rampup"),  # MCF
            *("conflict_weight", "unlabeled_weight"),  # CML
            *("pseudo_weight", "location_weight"),  # BCP, MagicNet
        ),
        _NON_NEGATIVE,
    ),
    "k": _positive_float(),
    **dict.fromkeys(("temperature", "beta_min", "beta_max"), _positive_float()),
    **dict.fromkeys(("threshold_start", "threshold_end"), _positive_float()),
    "blend_temperature": _positive_float(),
    "beta_lam": _optional(_positive_float()),
    "top_k": _at_least(1),
    "mc_passes": _at_least(1),
    # the mixing methods (BCP, MagicNet, CML)
    "pretrain_fraction": (lambda v: 0 < v < 1, "a fraction of the run in (0, 1)"),
    "cube_fraction": (lambda v: 0 < v <= 1, "a fraction of the patch side in (0, 1]"),
    "ema_decay": _in_unit(closed_top=True),
    # GALoss: GACE's kept percentages and its gamma
    **dict.fromkeys(
        ("sup_top_k", "cross_top_k"), (lambda v: 0 < v <= 100, "a percentage in (0, 100]")
    ),
    "ce_gamma": _in_unit(closed_top=True),
}


def _value(cfg: ExperimentConfig, key: str) -> Any:
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def _fail(key: str, value: Any, allowed: str, fix: str = "") -> ConfigError:
    shown = list(value) if isinstance(value, tuple) else value
    how = f"--set {key}=<value> or the config file"
    fix = f"{fix} ({how})" if fix else f"set it with {how}"
    return ConfigError(f"{key}={shown!r} is not allowed: it must be {allowed}; {fix}")


def _validate_method(method: dict) -> None:
    """The method's numeric fields and the pairs that bound each other (beta, AC-MT's ramp)."""
    for name, (test, allowed) in METHOD_RULES.items():
        value = method.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and not test(value):
            raise _fail(f"method.{name}", value, allowed)
    for low, high in (("beta_min", "beta_max"), ("threshold_start", "threshold_end")):
        pair = (method.get(low), method.get(high))
        if None not in pair and pair[0] > pair[1]:
            raise _fail(f"method.{low}", pair[0], f"at most method.{high}={pair[1]}")


def _validate_eval_model(cfg: ExperimentConfig, method) -> None:
    """``eval.model`` names a network the method declares, or the ensemble of two or more."""
    specs = METHODS[cfg.method_name][1](method).networks
    names = [s.name for s in specs]
    if sum(s.ema_of is None for s in specs) >= 2:
        names.append("ensemble")
    if cfg.eval.model not in names:
        raise _fail(
            "eval.model", cfg.eval.model, f"one of {names} (method {cfg.method_name!r}'s networks)"
        )


def validate(cfg: ExperimentConfig) -> None:
    """Check every value's range and the values that constrain each other.

    Raises:
        ConfigError: one line naming the key, its value, what is allowed and how to fix it.
    """
    for key, (test, allowed) in RULES.items():
        value = _value(cfg, key)
        if not test(value):
            raise _fail(key, value, allowed)
    _validate_method(cfg.method)
    method = method_config(cfg)
    _validate_eval_model(cfg, method)
    d, m = cfg.data, cfg.model
    if d.labeled_batch_size >= d.batch_size:
        raise _fail(
            "data.labeled_batch_size",
            d.labeled_batch_size,
            f"below data.batch_size={d.batch_size} (each batch needs unlabeled rows)",
            "lower it or raise data.batch_size",
        )
    if d.num_labeled < d.labeled_batch_size:
        raise _fail(
            "data.num_labeled",
            d.num_labeled,
            f"at least data.labeled_batch_size={d.labeled_batch_size} (one labeled batch)",
            "raise it or lower data.labeled_batch_size",
        )
    if m.name == "vnet" and m.normalization == "groupnorm" and m.base_filters % 16:
        raise _fail(
            "model.base_filters", m.base_filters, "a multiple of 16 with groupnorm (16 groups)"
        )
    patch = cfg.eval.patch or d.patch
    if any(s > p for s, p in zip(cfg.eval.stride, patch, strict=True)):
        raise _fail(
            "eval.stride",
            cfg.eval.stride,
            f"at most the inference patch {list(patch)} per axis (a larger stride leaves "
            "voxels unpredicted)",
        )
    # A method's own constraint on the rest of the run (MagicNet: the patch divides into its
    # cube grid), as (key, value, allowed, fix) from its config's ``check_experiment``.
    check = getattr(method, "check_experiment", None)
    problem = check(cfg) if check is not None else None
    if problem is not None:
        raise _fail(*problem)
