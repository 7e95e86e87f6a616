"""Streaming FeCL, reference form: what the official ``FeCLoss`` computes, in row blocks.

Two passes over row blocks of the (B, N, N) similarity matrix, never the whole of it. The first,
gradient-free, takes the official code's column-wise max shift (a statistic of every row), and
the teacher penalty with its gradient (it needs no shift). The second computes the student term
and, when a gradient is wanted, its gradient at once, by the hand-derived formulas below: three
block products in all, where autograd with recomputation needed six (the forward of the block
twice, the backward of each product). The backward only scales what the forward kept. Equal to
``fecl_dense.dense_reference_fecl`` to float32 rounding.

Per sample, anchor i, column j, with l_ij = S_ij - m_j (S = z z^T / tau, diagonal 0, m_j the
column max), e = exp(l), NS_i = sum_{q: y_q != y_i} e_iq, p_ij = e_ij / (e_ij + NS_i + 1e-18):
    loss = 1/(B N) sum_i 1/|P(i)| sum_{j in P(i)} f(p_ij),  f(p) = -log(p + 1e-18) w(p)
with w = (1 - p)^gamma (focal), 1 (plain) or H_i (the "gambling" entropy). Then
    d loss / d l_ij = a_i f'(p_ij) p_ij (1 - p_ij)         for j in P(i)
    d loss / d l_iq = -e_iq a_i sum_j f'(p_ij) p_ij / D_ij  for y_q != y_i
with a_i = 1 / (B N |P(i)|) and D_ij = e_ij + NS_i + 1e-18; d loss / d z = (G + G^T) z / tau.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .fecl_paper import _segments
from .ramps import sigmoid_ramp

_EPS = 1e-18  # the official code's


@dataclass(frozen=True)
class ReferenceConfig:
    temperature: float
    gamma: float
    focal: bool
    progress: float
    cross_weight: float
    block_size: int

    @property
    def thresholds(self) -> tuple[float, float]:
        """(positive-pair focal threshold, teacher-penalty cosine threshold) at ``progress``."""
        return sigmoid_ramp(self.progress, 1.3, 1.5), sigmoid_ramp(self.progress, 0.3, 0.5)


def _sorted(x: Tensor | None, order: Tensor) -> Tensor | None:
    if x is None:
        return None
    index = order if x.ndim == 2 else order[..., None].expand(-1, -1, x.shape[2])
    return torch.gather(x, 1, index)


def _row_blocks(segments, block_size: int):
    """(sample, segment start, segment stop, row slice) over every label run, in row blocks."""
    for b, runs in enumerate(segments):
        for s, t in runs:
            for r0 in range(s, t, block_size):
                yield b, s, t, slice(r0, min(r0 + block_size, t))


def _similarities(zs: Tensor, b: int, rows: slice, inv_tau: float) -> Tensor:
    logits = zs[b, rows] @ zs[b].T * inv_tau  # (bl, N)
    local = torch.arange(rows.stop - rows.start, device=zs.device)
    logits[local, rows.start + local] = 0.0  # the official code zeroes the diagonal
    return logits


@torch.no_grad()
def _column_max(zs: Tensor, segments, cfg: ReferenceConfig) -> Tensor:
    """m_j = max_i S_ij. S is symmetric, so the column max is the row max: one block at a time."""
    col_max = torch.empty(zs.shape[:2], dtype=zs.dtype, device=zs.device)  # (B, N)
    for b, _, _, rows in _row_blocks(segments, cfg.block_size):
        col_max[b, rows] = _similarities(zs, b, rows, 1.0 / cfg.temperature).amax(-1)
    return col_max


@torch.no_grad()
def _teacher_penalty(zs, ts, segments, cfg: ReferenceConfig, grad: Tensor | None):
    """Sum and count of -log(1 - cos) over hard cross-label teacher pairs; adds its gradient
    (not yet divided by the count) to ``grad``. Only negative columns can be hard pairs."""
    penalty, n_hard, threshold = zs.new_zeros(()), 0, cfg.thresholds[1]
    for b, s, t, rows in _row_blocks(segments, cfg.block_size):
        if t - s == zs.shape[1]:
            continue  # no other label in this sample
        teacher_neg = torch.cat([ts[b, :s], ts[b, t:]])  # (Nn, D)
        cross = zs[b, rows] @ teacher_neg.T  # (bl, Nn) cosines
        hard = cross > threshold
        n_hard += int(hard.sum())
        gap = torch.rsub(cross, 1.0)  # 1 - cos; the clamp passes the gradient where >= 0
        keep = hard & (gap >= 0)
        gap = gap.clamp_(min=0.0).add_(_EPS)
        penalty -= gap.log().mul_(hard).sum()
        if grad is not None:
            grad[b, rows] += gap.reciprocal_().mul_(keep) @ teacher_neg  # (bl, D)
    return penalty, n_hard


def _weights(p: Tensor, cfg: ReferenceConfig, focal: bool):
    """w(p) and w'(p) on positive pairs: (1 - p)^gamma when focal, else 1 (slope None).

    The official focal weight applies where p < the positive threshold, which ramps 1.3 -> 1.5;
    p <= 1 always, so it applies everywhere.
    """
    if not focal:
        return None, None
    one_minus = torch.rsub(p, 1.0)
    if cfg.gamma == 0:  # pow's gradient at exponent 0 is 0
        return torch.ones_like(p), None
    return one_minus.pow(cfg.gamma), one_minus.pow(cfg.gamma - 1).mul_(-cfg.gamma)


def _student_block(zs, col_max, hs, b, s, t, rows, cfg: ReferenceConfig, want_grad: bool):
    """Student term of the block's anchors (label run [s, t) of sample b); with ``want_grad``
    also d/d logits (bl, N) and d/d entropy (bl,), per anchor factor included."""
    n = zs.shape[1]
    e = _similarities(zs, b, rows, 1.0 / cfg.temperature).sub_(col_max[b]).exp_()  # (bl, N)
    neg_sum = e[:, :s].sum(-1, keepdim=True) + e[:, t:].sum(-1, keepdim=True)  # (bl, 1)
    e_pos = e[:, s:t]  # (bl, Np) the anchor's own column is here and excluded below
    d = torch.add(e_pos, neg_sum.add(_EPS))  # (bl, Np)
    p = torch.div(e_pos, d)
    nll = p.add(_EPS).log_().neg_()
    _zero_self(nll, rows.start, s)
    a = 1.0 / ((t - s - 1 + _EPS) * zs.shape[0] * n)  # a_i: the official 1 / (|P(i)| + eps)
    factor = torch.full((rows.stop - rows.start, 1), a, dtype=zs.dtype, device=zs.device)
    weight, slope = _weights(p, cfg, focal=cfg.focal and hs is None)
    if hs is not None:
        factor = factor * hs[b, rows, None]
    per_pair = nll if weight is None else nll * weight  # (bl, Np)
    student = (per_pair.sum(-1, keepdim=True) * factor).sum()
    if not want_grad:
        return student, None, None
    # f'(p) = -w / (p + eps) + (-log(p + eps)) w'(p), times a_i (and H_i)
    fprime = p.add(_EPS).reciprocal_().neg_()
    if weight is not None:
        fprime.mul_(weight)
        if slope is not None:
            fprime += nll * slope
    _zero_self(fprime.mul_(factor), rows.start, s)
    coef = torch.mul(fprime, p).div_(d).sum(-1, keepdim=True)  # (bl, 1) sum_j f' p / D
    grad = e.mul_(-coef)  # negatives: -e c_i (the positive columns are overwritten next)
    grad[:, s:t] = torch.rsub(p, 1.0).mul_(p).mul_(fprime)  # positives: f' p (1 - p)
    grad_h = None
    if hs is not None:
        grad_h = nll.sum(-1) * a
    return student, grad, grad_h


def _zero_self(x: Tensor, r0: int, s: int) -> Tensor:
    """Zero each anchor's own column in its label run's block (rows r0.., columns from s)."""
    local = torch.arange(x.shape[0], device=x.device)
    x[local, r0 - s + local] = 0.0
    return x


class StreamingReferenceFeCL(torch.autograd.Function):
    """Autograd function (z, entropy, teacher, labels, cfg) -> scalar loss; see module docstring.

    ``z`` and ``teacher`` are L2-normalised (B, N, D), ``teacher`` detached or None; ``entropy``
    (B, N) or None. Tokens are sorted by label per sample first (the loss is a sum over anchors
    and pairs, so the order changes nothing), making each anchor's positives one run of columns.
    """

    @staticmethod
    def forward(ctx, z, entropy, teacher, labels, cfg: ReferenceConfig):
        want_z, want_h = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        order = torch.argsort(labels, dim=1, stable=True)  # (B, N)
        zs, ts, hs = _sorted(z, order), _sorted(teacher, order), _sorted(entropy, order)
        segments = [_segments(row) for row in _sorted(labels, order)]
        grad_zs = torch.zeros_like(zs) if want_z else None
        grad_hs = torch.zeros_like(hs) if want_h else None
        with torch.no_grad():
            col_max = _column_max(zs, segments, cfg)
            student = zs.new_zeros(())
            for b, s, t, rows in _row_blocks(segments, cfg.block_size):
                part, grad, grad_h = _student_block(
                    zs, col_max, hs, b, s, t, rows, cfg, want_z or want_h
                )
                student += part
                if want_z:  # S = z z^T / tau: the anchors' rows and every column move
                    grad_zs[b, rows] += grad @ zs[b] / cfg.temperature
                    grad_zs[b] += grad.T @ zs[b, rows] / cfg.temperature
                if want_h:
                    grad_hs[b, rows] = grad_h
            loss = student
            if ts is not None:
                penalty_grad = torch.zeros_like(zs) if want_z else None
                penalty, n_hard = _teacher_penalty(zs, ts, segments, cfg, penalty_grad)
                if n_hard > 0:
                    loss = loss + cfg.cross_weight * penalty / n_hard
                    if want_z:
                        grad_zs.add_(penalty_grad, alpha=cfg.cross_weight / n_hard)
        ctx.save_for_backward(_unsorted(grad_zs, order), _unsorted(grad_hs, order))
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        grad_z, grad_h = ctx.saved_tensors
        return (
            None if grad_z is None else grad_z * grad_out,
            None if grad_h is None else grad_h * grad_out,
            None,
            None,
            None,
        )


def _unsorted(x: Tensor | None, order: Tensor) -> Tensor | None:
    if x is None:
        return None
    index = order if x.ndim == 2 else order[..., None].expand_as(x)
    return torch.zeros_like(x).scatter_(1, index, x)
