"""The method interface: a method owns its losses; the trainer owns everything else.

A method declares, and the trainer carries out without knowing which method it runs:

* ``networks``: every network it needs. A trainable one gets its own optimizer (two or more:
  cross pseudo supervision, MCF, CML); an ``ema_of`` network is an exponential moving average
  of another, updated by the trainer after each step (per-network decay, warm-up or not: BCP
  averages with a fixed alpha). ``model`` overrides give one network another architecture or
  extra outputs (MCF's second subnet; DTC's signed-distance head, URPC's deep-supervision list,
  MagicNet's location head, all returned under ``SegOutput.aux``).
* ``stages(total_steps)``: the run as consecutive stages. The default is one stage of every step.
  A labeled-only pre-training stage (BCP, CML) sets ``labeled_only``; the next stage's ``init``
  copies its weights into the networks that start from them, and each stage starts its
  optimizers afresh. Step counts, ramps and the learning-rate schedule are per stage.
* ``transform(batch, state)``: a change of the batch before the losses (copy-paste mixing). It
  runs after the trainer has hidden unlabeled labels, so a mix can only carry ground truth where
  the trainer let it through (``IGNORE_LABEL`` elsewhere).
* ``__call__(batch, nets, state)``: named, unweighted loss terms plus each term's weight at this
  step. The trainer sums them, steps the optimizers of the stage and updates the EMA copies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..losses import sigmoid_ramp

IGNORE_LABEL = -1  # what unlabeled rows of ``Batch.label`` hold unless a method asks for them


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a method.

    Attributes:
        name: The key of the network in ``nets`` and in checkpoints.
        ema_of: None: trainable, with an optimizer of its own; else an EMA copy of that network,
            built as a copy of it and never optimised.
        model: ModelConfig fields that differ for this network (e.g. ``{"name": "vnet"}``).
        ema_decay: The EMA's alpha; None: ``train.ema_decay``.
        ema_warmup: alpha = min(1 - 1/(t + 1), decay) when True (mean teacher), else the decay.
    """

    name: str
    ema_of: str | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    ema_decay: float | None = None
    ema_warmup: bool = True


@dataclass(frozen=True)
class Stage:
    """A span of consecutive training steps with one way of training.

    Attributes:
        name: Logged with every step of the stage.
        steps: Its length (>= 1); the stages of a run add up to ``train.iterations``.
        labeled_only: Batches hold only the labeled rows of each two-stream batch.
        train: The trainable networks this stage optimises; None: all of them.
        init: ``{target: source}`` weight copies made when the stage begins (a pre-trained
            student starting the teacher and a peer).
        update_ema: Whether EMA copies follow their networks during this stage.
    """

    name: str
    steps: int
    labeled_only: bool = False
    train: tuple[str, ...] | None = None
    init: Mapping[str, str] = field(default_factory=dict)
    update_ema: bool = True


@dataclass
class Batch:
    """Labeled rows first. ``label`` rows >= ``num_labeled`` are IGNORE_LABEL unless the method
    set ``uses_unlabeled_ground_truth`` (the official FeCL's leak, made explicit). ``extras``
    carries what a ``transform`` wants to hand to the losses (a mixing mask, the unmixed images).
    """

    image: Tensor  # (B, C, *S)
    label: Tensor  # (B, *S) int64
    num_labeled: int
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class StepState:
    step: int  # 0-based iteration within the stage
    total_steps: int  # steps of the stage
    stage: str = "main"

    @property
    def progress(self) -> float:
        return min(max(self.step / max(self.total_steps, 1), 0.0), 1.0)


@dataclass
class LossTerms:
    """Unweighted scalar terms, their weights at this step, and scalars worth logging."""

    terms: dict[str, Tensor]
    weights: dict[str, float]
    logs: dict[str, float] = field(default_factory=dict)

    def total(self) -> Tensor:
        return sum(self.weights[k] * v for k, v in self.terms.items() if self.weights[k] != 0.0)


class Method(ABC):
    """Base class; subclasses set ``name`` and ``networks`` and implement ``__call__``."""

    name: str = ""
    networks: tuple[NetworkSpec, ...] = (NetworkSpec("student"),)
    uses_unlabeled_ground_truth: bool = False

    def stages(self, total_steps: int) -> tuple[Stage, ...]:
        """The stages of a run of ``total_steps`` steps; by default a single one."""
        return (Stage("main", total_steps),)

    def transform(self, batch: Batch, state: StepState) -> Batch:
        """The batch the losses see; by default the batch as drawn."""
        del state
        return batch

    @abstractmethod
    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        """Named loss terms for one batch; ``nets`` maps each NetworkSpec name to its module."""


def pretrain_steps(fraction: float, total_steps: int) -> int:
    """Steps of a labeled-only pre-training stage: round(fraction x total), at least one, and
    at least one left for the main stage (BCP, CML)."""
    return min(max(1, round(fraction * total_steps)), total_steps - 1)


def two_stage_problem(cfg, method: str) -> tuple | None:
    """A ``check_experiment`` result for a method with a pre-training and a main stage: each
    needs a step, so (key, value, allowed, fix) when the run is shorter than two."""
    if cfg.train.iterations >= 2:
        return None
    allowed = f"at least 2 for {method} (a pre-training stage and a main stage)"
    return ("train.iterations", cfg.train.iterations, allowed, "raise it")


def rampup(step: float, length: float) -> float:
    """Laine & Aila (2017) sigmoid ramp-up exp(-5 (1 - t/L)^2), 1 from t >= L; 1 when L == 0."""
    return 1.0 if length <= 0 else sigmoid_ramp(step / length, 0.0, 1.0)


def softmax_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean over batch, classes and voxels of (softmax(s) - softmax(t))^2; teacher detached."""
    p_s = torch.softmax(student_logits.float(), dim=1)
    p_t = torch.softmax(teacher_logits.detach().float(), dim=1)
    return (p_s - p_t).square().mean()
