"""The method interface: a method owns its losses; the trainer owns everything else.

A method declares the networks it needs (trainable ones get an optimizer each; an ``ema_of``
network is an exponential moving average of another, updated by the trainer), and maps a batch to
named, unweighted loss terms plus the weight of each term at this step. That boundary carries the
baselines to come: two peer networks with two optimizers (cross teaching, MCF, CML), extra heads
(DTC's SDF head lives in ``SegOutput.aux``), Monte-Carlo dropout (UA-MT), copy-paste mixing (BCP,
a transform of the batch inside the method).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..losses._checks import sigmoid_ramp

IGNORE_LABEL = -1  # what unlabeled rows of ``Batch.label`` hold unless a method asks for them


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    ema_of: str | None = None  # None: trainable; else an EMA copy of that network


@dataclass
class Batch:
    """Labeled rows first. ``label`` rows >= ``num_labeled`` are IGNORE_LABEL unless the method
    set ``uses_unlabeled_ground_truth`` (the official FeCL's leak, made explicit)."""

    image: Tensor  # (B, C, *S)
    label: Tensor  # (B, *S) int64
    num_labeled: int


@dataclass(frozen=True)
class StepState:
    step: int  # 0-based iteration
    total_steps: int

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

    @abstractmethod
    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        """Named loss terms for one batch; ``nets`` maps each NetworkSpec name to its module."""


def rampup(step: float, length: float) -> float:
    """Laine & Aila (2017) sigmoid ramp-up exp(-5 (1 - t/L)^2), 1 from t >= L; 1 when L == 0."""
    return 1.0 if length <= 0 else sigmoid_ramp(step / length, 0.0, 1.0)


def softmax_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Mean over batch, classes and voxels of (softmax(s) - softmax(t))^2; teacher detached."""
    p_s = torch.softmax(student_logits.float(), dim=1)
    p_t = torch.softmax(teacher_logits.detach().float(), dim=1)
    return (p_s - p_t).square().mean()
