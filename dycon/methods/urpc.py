"""Uncertainty-rectified pyramid consistency, URPC (Luo et al., MICCAI 2021; MedIA 2022).

One network with deep supervision returns S full-resolution logits p^1..p^S (the main head and
the upsampled coarser decoder heads, ``model.deep_supervision``). With p_bar = mean_s softmax(p^s)
(not detached) and, per unlabeled voxel, D_s = KL(p_bar || p^s) = sum_c p_bar log(p_bar / p^s):

    w_s = exp(-D_s)
    L_s = sum_{v,c} w_s (p_bar - p^s)^2 / (C sum_v w_s) + mean_v D_s
    L   = (1/S) sum_s (CE + Dice)(p^s[L], y) / 2 + lambda(t) (1/S) sum_s L_s

Inference uses the main (full-resolution) head only: ``logits`` of the network. SSL4MIS's
BraTS launcher ramps lambda = 0.1 ramp(t / 150, 400) over 30000 iterations, so lambda never
reaches full weight (``urpc-reference``: consistency_rampup 2.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..losses import dice_ce_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup

KL_EPS = 1e-8  # keeps log finite where a softmax underflows to 0


@dataclass(frozen=True)
class URPCConfig:
    consistency: float = 0.1  # w
    consistency_rampup: float = 0.3  # fraction of train.iterations


def rectification_weights(logits: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """p_bar (B, C, *S), the KL maps D (S, B, *S) and the weights exp(-D) (S, B, *S).

    Args:
        logits: S >= 2 tensors of one shape (B, C, *S), one per pyramid scale.
    """
    if len(logits) < 2 or any(t.shape != logits[0].shape for t in logits):
        shapes = [tuple(t.shape) for t in logits]
        raise ValueError(f"need >= 2 pyramid logits of one shape (B, C, *S), got {shapes}")
    probs = torch.stack([torch.softmax(t.float(), dim=1) for t in logits])  # (S, B, C, *S)
    mean = probs.mean(0)  # (B, C, *S)
    kl = (mean * (torch.log(mean + KL_EPS) - torch.log(probs + KL_EPS))).sum(2)  # (S, B, *S)
    return mean, kl, torch.exp(-kl)


def pyramid_consistency(logits: list[Tensor]) -> Tensor:
    """(1/S) sum_s [sum w_s (p_bar - p^s)^2 / (C sum w_s) + mean D_s] over the given rows."""
    mean, kl, weight = rectification_weights(logits)
    probs = torch.stack([torch.softmax(t.float(), dim=1) for t in logits])  # (S, B, C, *S)
    sq = (mean - probs).square().sum(2)  # (S, B, *S), summed over classes
    n_classes = probs.shape[2]
    dims = tuple(range(1, sq.dim()))
    per_scale = (weight * sq).sum(dims) / (n_classes * weight.sum(dims) + 1e-8)  # (S,)
    return (per_scale + kl.mean(dims)).mean()


class URPC(Method):
    name = "urpc"
    networks = (NetworkSpec("student", model={"deep_supervision": True}),)

    def __init__(self, cfg: URPCConfig | None = None) -> None:
        self.cfg = cfg or URPCConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        out = nets["student"](batch.image)
        pyramid = [out.logits, *out.aux["deep_supervision"]]  # S x (B, K, *S), finest first
        sup = sum(dice_ce_loss(p[:n], batch.label[:n]) for p in pyramid) / (2 * len(pyramid))
        terms, weights = {"sup": sup}, {"sup": 1.0}
        if batch.image.shape[0] > n:
            terms["pyramid"] = pyramid_consistency([p[n:] for p in pyramid])
            weights["pyramid"] = cfg.consistency * rampup(
                state.step, cfg.consistency_rampup * state.total_steps
            )
        return LossTerms(terms=terms, weights=weights)
