"""DyCON (Assefa et al., CVPR 2025), Eq. (5) on the mean-teacher backbone.

    L = L_sup + eta * (L_UnCL + L_FeCL)  [+ the official code's extra MT term, off by default]

Every switch of Table 5 and every difference between the poster and the official code is a field
of ``DyconConfig``; the preset ``dycon-reference`` (dycon/configs/methods) is the official
training's setting of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import add_teacher_noise
from ..losses import (
    beta_schedule,
    dice_ce_loss,
    fecl_loss,
    fecl_options,
    fecl_token_labels,
    uncl_loss,
)
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
class DyconConfig:
    sup_weight: float = 1.0
    eta: float = 1.0  # weight of UnCL + FeCL, Eq. (5)
    # Ramp lengths are fractions of train.iterations, so a quick run ramps like a paper run.
    eta_rampup: float = 0.0  # 0: constant, as in the official code
    use_uncl: bool = True
    use_fecl: bool = True
    # UnCL, Eqs. (1)-(2); beta decays over the whole run
    beta_min: float = 0.5
    beta_max: float = 5.0
    beta_lam: float | None = None  # None: ln(beta_max / beta_min), the official curve
    uncl_class_reduction: Literal["sum", "mean"] = "sum"
    uncl_on: Literal["all", "unlabeled"] = "all"
    # FeCL, Eqs. (3)-(4)
    fecl_variant: Literal["paper", "reference"] = "paper"
    fecl_labels: Literal["gt+pseudo", "gt_all"] = "gt+pseudo"
    fecl_on: Literal["all", "unlabeled"] = "all"
    fecl_downsample: Literal["trilinear", "majority"] = "trilinear"
    temperature: float = 0.6
    gamma: float = 2.0
    top_k: int = 8
    focal: bool = True  # Table 5: F+ + F-
    hard_negatives: bool = True  # Table 5: HN
    entropy_weighting: bool = True  # Table 5: Entropy
    similarity_form: Literal["affine", "clamped"] = "affine"
    hard_negative_form: Literal["per_negative", "once"] = "per_negative"
    detach_weights: bool = True
    fecl_rampup: float = 0.45  # reference thresholds: 1500 labeled epochs = 9000 of 20000 it
    # The official code's extra Mean-Teacher term (softmax applied twice in the official code)
    mt_weight: float = 0.0
    mt_rampup: float = 1.5  # 200 "epochs" of 150 iterations = 30000 of 20000: never reached
    mt_double_softmax: bool = False
    noise_std: float = 0.1
    noise_clip: float = 0.2


class DyCON(Method):
    name = "dycon"
    networks = (NetworkSpec("student"), NetworkSpec("teacher", ema_of="student"))

    def __init__(self, cfg: DyconConfig | None = None) -> None:
        self.cfg = cfg or DyconConfig()
        self.uses_unlabeled_ground_truth = self.cfg.use_fecl and self.cfg.fecl_labels == "gt_all"

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        s = nets["student"](batch.image)
        with torch.no_grad():
            t = nets["teacher"](
                add_teacher_noise(batch.image, std=cfg.noise_std, clip=cfg.noise_clip)
            )
        terms = {"sup": dice_ce_loss(s.logits[:n], batch.label[:n])}
        weights = {"sup": cfg.sup_weight}
        eta = cfg.eta * rampup(state.step, cfg.eta_rampup * state.total_steps)
        logs = {"eta": eta}
        if cfg.use_uncl:
            rows = slice(n, None) if cfg.uncl_on == "unlabeled" else slice(None)
            beta = beta_schedule(
                state.step,
                max(state.total_steps, 1),
                beta_min=cfg.beta_min,
                beta_max=cfg.beta_max,
                lam=cfg.beta_lam,
            )
            terms["uncl"] = uncl_loss(
                s.logits[rows], t.logits[rows], beta=beta, class_reduction=cfg.uncl_class_reduction
            )
            weights["uncl"], logs["beta"] = eta, beta
        rows = slice(n, None) if cfg.fecl_on == "unlabeled" else slice(None)
        if cfg.use_fecl and s.logits[rows].shape[0] > 0:
            terms["fecl"] = self._fecl(batch, s, t, rows, state)
            weights["fecl"] = eta
        if cfg.mt_weight > 0 and s.logits.shape[0] > n:
            student, teacher = s.logits[n:], t.logits[n:]
            if cfg.mt_double_softmax:  # the official code passes probabilities as logits
                student, teacher = student.softmax(1), teacher.softmax(1)
            terms["mt"] = softmax_mse(student, teacher)
            weights["mt"] = cfg.mt_weight * rampup(state.step, cfg.mt_rampup * state.total_steps)
        return LossTerms(terms=terms, weights=weights, logs=logs)

    def _fecl(self, batch: Batch, s, t, rows: slice, state: StepState) -> Tensor:
        cfg = self.cfg
        grid = tuple(s.embedding.shape[2:])  # token grid, e.g. (12, 12, 12)
        labels = fecl_token_labels(
            ground_truth=batch.label.clamp(min=0),
            teacher_logits=t.logits,
            num_labeled=batch.num_labeled,
            grid=grid,
            source=cfg.fecl_labels,
            mode=cfg.fecl_downsample,
        )  # (B, N)
        tokens = s.embedding.flatten(2).transpose(1, 2)  # (B, N, D)
        teacher_tokens = t.embedding.flatten(2).transpose(1, 2) if cfg.hard_negatives else None
        entropy = None
        if cfg.entropy_weighting:
            p = torch.softmax(s.logits.float(), dim=1)
            voxel_entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1, keepdim=True)  # (B,1,*S)
            entropy = F.adaptive_avg_pool3d(voxel_entropy, grid).flatten(1)  # (B, N) token mean
        progress = min(state.step / max(cfg.fecl_rampup * state.total_steps, 1.0), 1.0)
        options = {  # every FeCL field of the config; the chosen variant takes its own
            "temperature": cfg.temperature,
            "gamma": cfg.gamma,
            "progress": progress,
            "top_k": cfg.top_k,
            "focal": cfg.focal,
            "hard_negatives": cfg.hard_negatives,
            "entropy_weighting": cfg.entropy_weighting,
            "similarity_form": cfg.similarity_form,
            "hard_negative_form": cfg.hard_negative_form,
            "detach_weights": cfg.detach_weights,
        }
        allowed = fecl_options(cfg.fecl_variant)
        return fecl_loss(
            tokens[rows],
            labels[rows],
            variant=cfg.fecl_variant,
            teacher_tokens=None if teacher_tokens is None else teacher_tokens[rows],
            entropy=None if entropy is None else entropy[rows],
            **{k: v for k, v in options.items() if k in allowed},
        )
