"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) in its 3D medical form.

L = (Dice + CE)(labeled) + w ramp(t) mean (softmax(student) - softmax(teacher))^2, the teacher
an EMA of the student that sees the input with clipped Gaussian noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..data.transforms import add_teacher_noise
from ..losses import dice_ce_loss
from .base import (
    Batch,
    LossTerms,
    Method,
    NetworkSpec,
    StepState,
    rampup,
    softmax_mse,
)


@dataclass(frozen=True)
class MeanTeacherConfig:
    consistency: float = 0.1  # w
    # Fraction of train.iterations to full weight, so every scale ramps alike: the official
    # scripts ramp over 40 "epochs" of 150 iterations, 6000 of the 20000 at the paper scale.
    consistency_rampup: float = 0.3
    consistency_on: Literal["unlabeled", "all"] = "unlabeled"  # SSL4MIS / UA-MT lineage
    noise_std: float = 0.1
    noise_clip: float = 0.2


class MeanTeacher(Method):
    name = "mt"
    networks = (NetworkSpec("student"), NetworkSpec("teacher", ema_of="student"))

    def __init__(self, cfg: MeanTeacherConfig | None = None) -> None:
        self.cfg = cfg or MeanTeacherConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        student = nets["student"](batch.image).logits  # (B, K, *S)
        with torch.no_grad():
            noisy = add_teacher_noise(batch.image, std=cfg.noise_std, clip=cfg.noise_clip)
            teacher = nets["teacher"](noisy).logits  # (B, K, *S)
        rows = slice(n, None) if cfg.consistency_on == "unlabeled" else slice(None)
        terms = {"sup": dice_ce_loss(student[:n], batch.label[:n])}
        weights = {"sup": 1.0}
        if student[rows].shape[0] > 0:
            terms["consistency"] = softmax_mse(student[rows], teacher[rows])
            weights["consistency"] = cfg.consistency * rampup(
                state.step, cfg.consistency_rampup * state.total_steps
            )
        return LossTerms(terms=terms, weights=weights)
