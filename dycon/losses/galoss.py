r"""Gradient-aware losses, GALoss (Qi, Wu, Chan, "Gradient-Aware for Class-Imbalanced
Semi-supervised Medical Image Segmentation", ECCV 2024; baselines notes 3.10).

GADice, per class c over the whole batch (sums over rows and voxels), mean over all C classes:

    L_c = 1 - (2 sum_v p_cv y_cv + eps) / (sum_v p_cv^2 + sum_v y_cv^2 + eps)   c in the target
    L_c = sum_v sg(p_cv / N_c^0) p_cv,   N_c^0 = sum_v (1 - y_cv)               c absent

An absent class's Dice is ~1 whatever p is, so its gradient vanishes and false positives stay;
the absent branch's gradient is p_cv / N_c^0 instead: it pushes every voxel's p_c down in
proportion to it (the "probability-aware gradient").

GACE: per-voxel CE l_v, the K = max(1, floor(k% V)) largest kept; n_c the kept voxels of class c:

    L = sum_c sum_{v kept, y_v = c} l_v / (n_c^{1-gamma} K^gamma)

gamma = 0 sums the class means, gamma = 1 is the mean over the kept voxels; 0.5 in between.
The official code uses GACE(k = 10) + GADice on labeled rows, GACE(k = 100) for pseudo-labels.

Everything is computed in fp32 even under bf16 autocast: the sums run over 10^5-10^6 voxels
(bf16's 8-bit mantissa stops adding 1 to 256), and the absent-class factor p / N_c^0 with N_c^0
~ 10^6 would lose all of its digits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_positive, compute_dtype
from .supervised import _check_logits_target


def _check_options(top_k: float, gamma: float) -> None:
    if not 0 < top_k <= 100:
        raise ValueError(f"top_k must be a percentage in (0, 100], got {top_k!r}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")


def _kept(logits: Tensor, target: Tensor, top_k: float) -> tuple[Tensor, Tensor]:
    """The per-voxel CE of the K largest and their classes: ((K,), (K,))."""
    ce = F.cross_entropy(logits.to(compute_dtype(logits)), target.long(), reduction="none")
    ce, target = ce.flatten(), target.flatten()  # (V,) over rows and voxels
    k = max(1, int(ce.numel() * top_k / 100))
    values, index = torch.topk(ce, k, sorted=False)  # (K,)
    return values, target[index].long()


def _weights(kept: Tensor, num_classes: int, gamma: float, dtype) -> Tensor:
    counts = torch.bincount(kept, minlength=num_classes).to(dtype)  # (C,) n_c
    w = counts.clamp_min(1) ** (gamma - 1) * float(kept.numel()) ** -gamma
    return torch.where(counts > 0, w, torch.zeros_like(w))  # (C,): 0 for a class not kept


def gace_class_weights(
    logits: Tensor, target: Tensor, *, top_k: float = 10.0, gamma: float = 0.5
) -> Tensor:
    """(C,) weights 1 / (n_c^{1-gamma} K^gamma) each kept voxel of class c gets (0 if none kept).

    Args:
        logits: (B, C, *S). target: (B, *S) labels in [0, C).
        top_k: the percentage of voxels kept, in (0, 100]. gamma: in [0, 1].
    """
    _check_logits_target(logits, target)
    _check_options(top_k, gamma)
    values, kept = _kept(logits, target, top_k)
    return _weights(kept, logits.shape[1], gamma, values.dtype)


def gace_loss(logits: Tensor, target: Tensor, *, top_k: float = 10.0, gamma: float = 0.5) -> Tensor:
    """GACE (see the module): a scalar, float32 even under autocast."""
    _check_logits_target(logits, target)
    _check_options(top_k, gamma)
    values, kept = _kept(logits, target, top_k)
    weights = _weights(kept, logits.shape[1], gamma, values.dtype)  # (C,), no gradient
    return (weights[kept] * values).sum()


def gadice_loss(
    logits: Tensor, target: Tensor, *, gradient_aware: bool = True, smooth: float = 1e-5
) -> Tensor:
    """GADice (see the module): a scalar, float32 even under autocast.

    Args:
        gradient_aware: False gives an absent class the plain soft Dice (the ablation).
        smooth: eps > 0.
    """
    _check_logits_target(logits, target)
    smooth = check_positive("smooth", smooth)
    probs = F.softmax(logits.to(compute_dtype(logits)), dim=1).movedim(1, 0).flatten(1)  # (C, V)
    onehot = F.one_hot(target.long().flatten(), logits.shape[1]).T.to(probs.dtype)  # (C, V)
    inter = (probs * onehot).sum(1)  # (C,)
    present = onehot.sum(1)  # (C,): voxels of class c in the target batch
    dice = 1.0 - (2.0 * inter + smooth) / (probs.square().sum(1) + present + smooth)  # (C,)
    if not gradient_aware:
        return dice.mean()
    # N_c^0 >= 1: a class that fills every voxel (background of a lesion-free batch) has
    # N_c^0 = 0, and its unused absent branch's inf would turn where()'s gradient into NaN.
    background = (1.0 - onehot).sum(1, keepdim=True).clamp_min(1.0)  # (C, 1): N_c^0
    absent = ((probs / background).detach() * probs).sum(1)  # (C,)
    return torch.where(present > 0, dice, absent).mean()


def galoss_supervised(
    logits: Tensor,
    target: Tensor,
    *,
    top_k: float = 10.0,
    gamma: float = 0.5,
    gradient_aware: bool = True,
) -> Tensor:
    """GACE(top_k) + GADice: the official supervised loss of each network."""
    return gace_loss(logits, target, top_k=top_k, gamma=gamma) + gadice_loss(
        logits, target, gradient_aware=gradient_aware
    )
