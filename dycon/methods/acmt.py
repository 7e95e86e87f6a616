"""Ambiguity-consensus mean teacher, AC-MT (Xu et al., Medical Image Analysis 2023, 102880).

A mean teacher whose consistency counts only the *ambiguous* voxels, the opposite selection to
UA-MT. With p_s the student's and p_t the (noisy-input) teacher's softmax on the unlabeled rows:

    L_c = sum_v m_v sum_c (p_s - p_t)^2 / (C sum_v m_v + 1e-16)
    L   = (Dice + CE)(labeled) + w ramp(t) L_c

Selectors of the ambiguity mask m (``selector``):

- "ent" (default): normalised entropy of the student's prediction, e = -sum_c p log p / ln C,
  m = 1[e >= tau(t)], tau(t) = 0.75 + 0.20 ramp(t, T): 0.75 -> 0.95.
- "mu": the entropy u (nats) of the mean softmax of ``mc_passes`` stochastic passes (dropout,
  fresh input noise), m = 1[u >= tau(t) ln C]; the official code ramps tau 0.75 -> 0.90
  (preset ``acmt-mu``) and runs the passes through the student (``mc_network``), not the teacher.

The paper reports four selectors (Ent, MU, PErr, SErr); DyCON does not say which one its AC-MT
rows ran. PErr (prototype errors) and SErr (cleanlab, a new dependency) are not implemented.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..data.transforms import add_teacher_noise
from ..losses import dice_ce_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup


@dataclass(frozen=True)
class ACMTConfig:
    consistency: float = 0.1  # w
    consistency_rampup: float = 0.3  # fraction of train.iterations (official: 40 x 150 of 8000)
    selector: Literal["ent", "mu"] = "ent"
    threshold_start: float = 0.75  # tau(0)
    threshold_end: float = 0.95  # tau(T); the official MU script: 0.90
    mc_passes: int = 8  # "mu" only
    mc_network: Literal["student", "teacher"] = "student"  # "mu": the official code's student
    noise_std: float = 0.1
    noise_clip: float = 0.2


def ambiguity_threshold(step: int, total_steps: int, *, start: float, end: float) -> float:
    """tau(t) = start + (end - start) ramp(t, T), ramp the Laine-Aila sigmoid over the run."""
    return start + (end - start) * rampup(step, total_steps)


def ambiguity_mask(probs: Tensor, threshold: float) -> Tensor:
    """1[-sum_c p log p / ln C >= threshold]: (B, C, *S) probabilities -> (B, *S) float mask."""
    if probs.dim() < 3 or probs.shape[1] < 2:
        raise ValueError(f"probs must be (B, C>=2, *S) probabilities, got {tuple(probs.shape)}")
    entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(1)  # (B, *S), nats
    return (entropy / math.log(probs.shape[1]) >= threshold).float()


class ACMT(Method):
    name = "acmt"
    networks = (NetworkSpec("student"), NetworkSpec("teacher", ema_of="student"))

    def __init__(self, cfg: ACMTConfig | None = None) -> None:
        self.cfg = cfg or ACMTConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        student = nets["student"](batch.image).logits  # (B, K, *S)
        terms, weights = {"sup": dice_ce_loss(student[:n], batch.label[:n])}, {"sup": 1.0}
        x = batch.image[n:]
        if x.shape[0] == 0:
            return LossTerms(terms=terms, weights=weights)
        p_s = torch.softmax(student[n:].float(), dim=1)  # (b, K, *S)
        tau = ambiguity_threshold(
            state.step, state.total_steps, start=cfg.threshold_start, end=cfg.threshold_end
        )
        with torch.no_grad():
            p_t = torch.softmax(nets["teacher"](self._noisy(x)).logits.float(), dim=1)
            if cfg.selector == "ent":
                mask = ambiguity_mask(p_s.detach(), tau)  # (b, *S)
            else:
                mean = (
                    sum(
                        torch.softmax(nets[cfg.mc_network](self._noisy(x)).logits.float(), dim=1)
                        for _ in range(cfg.mc_passes)
                    )
                    / cfg.mc_passes
                )  # (b, K, *S)
                mask = ambiguity_mask(mean, tau)  # u / ln C >= tau  <=>  u >= tau ln C
        n_classes = p_s.shape[1]
        sq = (p_s - p_t).square().sum(1)  # (b, *S)
        terms["consistency"] = (mask * sq).sum() / (n_classes * mask.sum() + 1e-16)
        weights["consistency"] = cfg.consistency * rampup(
            state.step, cfg.consistency_rampup * state.total_steps
        )
        return LossTerms(
            terms=terms,
            weights=weights,
            logs={"ambiguous_fraction": float(mask.mean()), "threshold": tau},
        )

    def _noisy(self, x: Tensor) -> Tensor:
        return add_teacher_noise(x, std=self.cfg.noise_std, clip=self.cfg.noise_clip)
