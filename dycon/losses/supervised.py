"""Supervised loss of DyCON Eq. (5): soft Dice on the foreground plus cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ._checks import check_positive, check_tensor, compute_dtype


def _check_logits_target(logits: Tensor, target: Tensor) -> None:
    check_tensor("logits", logits, floating=True)
    check_tensor("target", target, integer=True)
    if logits.ndim < 3 or logits.shape[1] < 2:
        raise ValueError(f"logits must be (B, C, *spatial) with C >= 2, got {tuple(logits.shape)}")
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != expected:
        raise ValueError(
            f"target must have shape (B, *spatial) = {expected} to match logits "
            f"{tuple(logits.shape)}, got {tuple(target.shape)}"
        )
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= logits.shape[1]:
        raise ValueError(
            f"target labels must lie in [0, {logits.shape[1] - 1}] for {logits.shape[1]} classes, "
            f"found values in [{lo}, {hi}]"
        )


def dice_loss(
    logits: Tensor, target: Tensor, *, batch_dice: bool = True, smooth: float = 1e-5
) -> Tensor:
    r"""Soft Dice loss on the foreground classes with squared denominators (V-Net form).

    .. math::
        \mathcal{L}_{Dice} = 1 - \frac{2\sum_v p_v g_v + \epsilon}
                                      {\sum_v p_v^2 + \sum_v g_v^2 + \epsilon}

    :math:`p` is the softmax probability of a foreground class and :math:`g` its one-hot target;
    with more than two classes the loss is averaged over classes 1..C-1 (background excluded).

    Args:
        logits: (B, C, *spatial) logits.
        target: (B, *spatial) integer labels in [0, C).
        batch_dice: ``True`` sums over the whole batch before the ratio, as the official code
            does; ``False`` computes one ratio per sample and averages them.
        smooth: :math:`\epsilon > 0`, 1e-5 as in the official code.

    Returns:
        Scalar loss in [0, 1] (float32 even under autocast).
    """
    _check_logits_target(logits, target)
    smooth = check_positive("smooth", smooth)
    probs = F.softmax(logits.to(compute_dtype(logits)), dim=1)[:, 1:]  # (B, C-1, *S)
    onehot = (
        F.one_hot(target.long(), logits.shape[1]).movedim(-1, 1)[:, 1:].to(probs.dtype)
    )  # (B, C-1, *S)
    dims = tuple(range(2, probs.ndim))
    inter = (probs * onehot).sum(dims)  # (B, C-1)
    denom = probs.square().sum(dims) + onehot.square().sum(dims)  # (B, C-1)
    if batch_dice:
        inter, denom = inter.sum(0), denom.sum(0)  # (C-1,)
    return (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()


def dice_ce_loss(
    logits: Tensor, target: Tensor, *, batch_dice: bool = True, smooth: float = 1e-5
) -> Tensor:
    r""":math:`\mathcal{L}_{sup} = \mathcal{L}_{Dice} + \mathcal{L}_{CE}` of Eq. (5).

    Cross-entropy is the mean over all voxels of the batch; see :func:`dice_loss` for the Dice.
    """
    dice = dice_loss(logits, target, batch_dice=batch_dice, smooth=smooth)
    ce = F.cross_entropy(logits.to(compute_dtype(logits)), target.long())
    return dice + ce
