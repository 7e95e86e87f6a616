"""Uncertainty-aware Mean Teacher (Yu et al., MICCAI 2019).

The teacher's uncertainty is the entropy u of its mean softmax over T stochastic passes (dropout
on, fresh input noise each); consistency counts only voxels with u below a threshold that ramps
from 0.75 ln C to ln C:

    L_c = sum_v m_v sum_c (p_s - p_t)^2 / (C sum_v m_v + 1e-16),  m_v = 1[u_v < H(t)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..data.transforms import add_teacher_noise
from ..losses import dice_ce_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup


@dataclass(frozen=True)
class UAMTConfig:
    consistency: float = 0.1
    consistency_rampup: float = 0.3  # fraction of train.iterations, as in MeanTeacherConfig
    consistency_on: Literal["unlabeled", "all"] = "unlabeled"  # the README's "_unlabel" script
    mc_passes: int = 8  # T
    threshold_start: float = 0.75  # H(0) = 0.75 ln C
    threshold_end: float = 1.0  # H(T_total) = ln C
    noise_std: float = 0.1
    noise_clip: float = 0.2


class UAMT(Method):
    name = "ua-mt"
    networks = (NetworkSpec("student"), NetworkSpec("teacher", ema_of="student"))

    def __init__(self, cfg: UAMTConfig | None = None) -> None:
        self.cfg = cfg or UAMTConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        student = nets["student"](batch.image).logits  # (B, K, *S)
        terms = {"sup": dice_ce_loss(student[:n], batch.label[:n])}
        weights = {"sup": 1.0}
        rows = slice(n, None) if cfg.consistency_on == "unlabeled" else slice(None)
        x = batch.image[rows]
        if x.shape[0] == 0:
            return LossTerms(terms=terms, weights=weights)
        with torch.no_grad():
            p_t = torch.softmax(nets["teacher"](self._noisy(x)).logits.float(), dim=1)
            mean = (
                sum(
                    torch.softmax(nets["teacher"](self._noisy(x)).logits.float(), dim=1)
                    for _ in range(cfg.mc_passes)
                )
                / cfg.mc_passes
            )  # (b, K, *S)
            uncertainty = -(mean * torch.log(mean + 1e-6)).sum(dim=1)  # (b, *S), nats
        n_classes = student.shape[1]
        ramp = rampup(state.step, state.total_steps)
        threshold = cfg.threshold_start + (cfg.threshold_end - cfg.threshold_start) * ramp
        mask = (uncertainty < threshold * math.log(n_classes)).float()  # (b, *S)
        sq = (torch.softmax(student[rows].float(), dim=1) - p_t).square().sum(dim=1)  # (b, *S)
        terms["consistency"] = (mask * sq).sum() / (n_classes * mask.sum() + 1e-16)
        weights["consistency"] = cfg.consistency * rampup(
            state.step, cfg.consistency_rampup * state.total_steps
        )
        return LossTerms(
            terms=terms,
            weights=weights,
            logs={"certain_fraction": float(mask.mean()), "threshold": threshold},
        )

    def _noisy(self, x):
        return add_teacher_noise(x, std=self.cfg.noise_std, clip=self.cfg.noise_clip)
