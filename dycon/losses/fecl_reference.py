"""Streaming FeCL, reference form: what the official ``FeCLoss`` computes, in row blocks.

Each block of anchors runs under activation checkpointing, so the backward recomputes the block
instead of keeping (B, N, N) intermediates. The column-wise max shift of the official code is a
per-column statistic of the whole matrix and is taken in a first, gradient-free pass. Equal to
``fecl_dense.dense_reference_fecl`` to float32 rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from .ramps import sigmoid_ramp


def _student_logits(z: Tensor, rows: slice, temperature: float) -> Tensor:
    logits = torch.bmm(z[:, rows], z.transpose(1, 2)) / temperature  # (B, b, N)
    local = torch.arange(rows.stop - rows.start, device=z.device)
    logits[:, local, rows.start + local] = 0.0  # the official code zeroes the diagonal
    return logits


def _block_loss(
    z, teacher, labels, entropy, col_max, start, stop, temperature, gamma, focal, thresholds
):
    """Sum over the block's anchors of the student term, and of the teacher penalty."""
    rows = slice(start, stop)
    logits = _student_logits(z, rows, temperature) - col_max[:, None, :]  # (B, b, N)
    same = labels[:, rows, None] == labels[:, None, :]  # (B, b, N)
    local = torch.arange(stop - start, device=z.device)
    positive = same.clone()
    positive[:, local, start + local] = False
    exp_l = logits.exp()
    neg_sum = (exp_l * ~same).sum(-1, keepdim=True)  # (B, b, 1)
    prob = exp_l / (exp_l + neg_sum + 1e-18)
    nll = -torch.log(prob + 1e-18) * positive  # (B, b, N)
    denom = same.sum(-1) - 1 + 1e-18  # (B, b)
    pos_thr, neg_thr, cross_thr = thresholds
    if entropy is not None:
        student = (nll.sum(-1) / denom * entropy[:, rows]).sum()
    elif focal:
        weights = torch.where(same & (prob < pos_thr), (1.0 - prob).pow(gamma), 1.0)
        weights = torch.where(~same & (prob > neg_thr), prob.pow(gamma), weights)
        student = ((nll * weights).sum(-1) / denom).sum()
    else:
        student = (nll.sum(-1) / denom).sum()
    if teacher is None:
        return student, z.new_zeros(())
    cross = torch.bmm(z[:, rows], teacher.transpose(1, 2))  # (B, b, N), cosine without 1/tau
    hard = ~same & (cross > cross_thr)
    penalty = -torch.log((1.0 - cross).clamp(min=0.0) + 1e-18)
    return student, (penalty * hard).sum()


def streaming_reference_fecl(
    z: Tensor,
    labels: Tensor,
    *,
    teacher: Tensor | None,
    entropy: Tensor | None,
    temperature: float,
    gamma: float,
    focal: bool,
    progress: float,
    cross_weight: float,
    block_size: int,
) -> Tensor:
    bsz, n, _ = z.shape
    teacher = teacher.detach() if teacher is not None else None
    blocks = [(s, min(s + block_size, n)) for s in range(0, n, block_size)]
    with torch.no_grad():
        col_max = torch.full((bsz, n), float("-inf"), dtype=z.dtype, device=z.device)
        n_hard = 0
        cross_thr = sigmoid_ramp(progress, 0.3, 0.5)
        for start, stop in blocks:
            col_max = torch.maximum(
                col_max, _student_logits(z, slice(start, stop), temperature).amax(dim=1)
            )
            if teacher is not None:
                cross = torch.bmm(z[:, start:stop], teacher.transpose(1, 2))
                differ = labels[:, start:stop, None] != labels[:, None, :]
                n_hard += int((differ & (cross > cross_thr)).sum())
    thresholds = (sigmoid_ramp(progress, 1.3, 1.5), sigmoid_ramp(progress, 0.3, 0.5), cross_thr)
    student, penalty = z.new_zeros(()), z.new_zeros(())
    for start, stop in blocks:
        args = (
            z,
            teacher,
            labels,
            entropy,
            col_max,
            start,
            stop,
            temperature,
            gamma,
            focal,
            thresholds,
        )
        if torch.is_grad_enabled() and (
            z.requires_grad or (entropy is not None and entropy.requires_grad)
        ):
            s, p = checkpoint(_block_loss, *args, use_reentrant=False)
        else:
            s, p = _block_loss(*args)
        student, penalty = student + s, penalty + p
    loss = student / (bsz * n)
    if teacher is not None and n_hard > 0:
        loss = loss + cross_weight * penalty / n_hard
    return loss
