"""The experiment configuration: what a run is. Its hash is the run id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..config import ConfigError, from_dict, to_dict
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
    schedule: Literal["constant", "poly"] = "constant"  # official DyCON: constant
    poly_power: float = 0.9
    grad_clip: float | None = 1.0


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
    model: Literal["student", "teacher"] = "student"
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


def normalise(cfg: ExperimentConfig) -> ExperimentConfig:
    """Fill every method field with its default, so hashes and overrides see the full config."""
    full = to_dict(cfg)
    full["method"] = to_dict(method_config(cfg))
    return from_dict(ExperimentConfig, full)
