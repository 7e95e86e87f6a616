"""MCF, the mutual correction framework (Wang, Xiao, Bi, Li, Gao, CVPR 2023; baselines notes 3.6).

Two heterogeneous subnets A, B, trained jointly on the same batch, each with its optimizer, no
EMA. The paper's A is a VNet and B a VNet decoder on a 3D ResNet-34 encoder; here the project's
``VNet`` and ``UNet3D`` (``dycon.models``) stand in for them (``method.subnets``), a deviation:
no ResNet-34 encoder is built. Per step, for k in {A, B}:

    L_k   = (Dice + CE)(p_k[L], y)
    D     = 1[argmax p_A > 0] XOR 1[argmax p_B > 0]           on the labeled voxels
    R_k   = sum_v D_v sum_{c>0} (p_k,c - 1[y = c])^2 / (sum_v D_v + 1e-16)     (CDR)
    good  = argmin_k Dice(p_k[L], y)                           this step (DCPLG)
    P     = sg sharpen(p_good[U], T),  sharpen(p)_c = p_c^{1/T} / sum_j p_j^{1/T},  T = 0.1
    L     = sum_k (L_k + 0.5 R_k) + lambda(t) mean (p_other[U] - P)^2

lambda(t) = 0.1 ramp(t): 40 "epochs" of 150 iterations, 0.3 of the project's 20 000 as for MT.
Inference averages the two subnets' softmax (the preset sets ``eval.model: ensemble``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError
from ..losses import dice_ce_loss, dice_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup

Backbone = Literal["unet3d", "vnet"]


@dataclass(frozen=True)
class MCFConfig:
    subnets: tuple[Backbone, Backbone] = ("vnet", "unet3d")  # A (student), B (peer)
    review_weight: float = 0.5  # of each R_k
    compete_weight: float = 0.1  # lambda
    compete_rampup: float = 0.3  # fraction of train.iterations to full weight
    temperature: float = 0.1  # T of the sharpening

    def __post_init__(self) -> None:
        if self.subnets[0] == self.subnets[1]:
            raise ConfigError(
                f"method.subnets={list(self.subnets)!r} is not allowed: MCF's two subnets must "
                "be different architectures; set method.subnets=[vnet, unet3d]"
            )


def difference_mask(probs_a: Tensor, probs_b: Tensor) -> Tensor:
    """D = XOR of the two foreground masks (argmax > 0): (B, *S) bool, where they disagree."""
    if probs_a.shape != probs_b.shape or probs_a.ndim < 3:
        raise ValueError(
            f"probs_a and probs_b must be (B, C, *S) of one shape, got {tuple(probs_a.shape)} "
            f"and {tuple(probs_b.shape)}"
        )
    return (probs_a.argmax(1) > 0) ^ (probs_b.argmax(1) > 0)


def review_loss(probs: Tensor, label: Tensor, mask: Tensor) -> Tensor:
    """R = sum_v D_v sum_{c>0} (p_c - 1[y = c])^2 / (sum_v D_v + 1e-16); 0 where D is empty.

    Args:
        probs: (B, C, *S) probabilities; label: (B, *S) labels in [0, C); mask: (B, *S) D.
    """
    if label.shape != (probs.shape[0], *probs.shape[2:]) or mask.shape != label.shape:
        raise ValueError(
            f"label and mask must be (B, *S) = {(probs.shape[0], *probs.shape[2:])} for probs "
            f"{tuple(probs.shape)}, got {tuple(label.shape)} and {tuple(mask.shape)}"
        )
    onehot = F.one_hot(label.long(), probs.shape[1]).movedim(-1, 1).to(probs.dtype)  # (B, C, *S)
    error = (probs - onehot)[:, 1:].square().sum(1)  # (B, *S), foreground classes
    d = mask.to(probs.dtype)
    return (d * error).sum() / (d.sum() + 1e-16)


def sharpen(probs: Tensor, temperature: float) -> Tensor:
    """p_c^{1/T} / sum_j p_j^{1/T} over dim 1, as softmax(log p / T) (no underflow of p^{1/T})."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return torch.softmax(probs.log() / temperature, dim=1)


class MCF(Method):
    """``student`` is subnet A and ``peer`` subnet B; ``logs["good"]`` is 0 (A) or 1 (B)."""

    name = "mcf"

    def __init__(self, cfg: MCFConfig | None = None) -> None:
        self.cfg = cfg or MCFConfig()
        a, b = self.cfg.subnets
        self.networks = (
            NetworkSpec("student", model={"name": a}),
            NetworkSpec("peer", model={"name": b}),
        )

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n, y = self.cfg, batch.num_labeled, batch.label[: batch.num_labeled]
        logits = [nets[k](batch.image).logits for k in ("student", "peer")]  # 2 x (B, K, *S)
        probs = [torch.softmax(z.float(), dim=1) for z in logits]  # 2 x (B, K, *S)
        with torch.no_grad():
            d = difference_mask(probs[0][:n], probs[1][:n])  # (L, *S)
            dice = [dice_loss(z[:n], y) for z in logits]
        good = int(dice[1] < dice[0])  # ties: A
        terms = {
            "sup": dice_ce_loss(logits[0][:n], y),
            "peer_sup": dice_ce_loss(logits[1][:n], y),
            "review": review_loss(probs[0][:n], y, d) + review_loss(probs[1][:n], y, d),
        }
        weights = {"sup": 1.0, "peer_sup": 1.0, "review": cfg.review_weight}
        if logits[0].shape[0] > n:
            target = sharpen(probs[good][n:].detach(), cfg.temperature)  # (U, K, *S)
            terms["compete"] = (probs[1 - good][n:] - target).square().mean()
            weights["compete"] = cfg.compete_weight * rampup(
                state.step, cfg.compete_rampup * state.total_steps
            )
        logs = {"good": float(good), "difference": float(d.float().mean())}
        return LossTerms(terms=terms, weights=weights, logs=logs)
