"""Streaming FeCL, paper form (Eqs. 3-4): tokens grouped by label, row blocks, own backward.

Each sample's tokens are sorted by label once, so that an anchor's positives are one contiguous
range of columns and its negatives the rest: no (N x N) masks, and every elementwise operation
runs only on the columns it concerns. Memory is O(block * N) per block instead of O(B * N * N):
the forward keeps per-anchor statistics (negative sum, hard-negative mean, top-K indices) and the
backward recomputes each block's similarities. Two matrix products per block forward, three
backward, as in any exact implementation. Equal to ``fecl_dense.dense_paper_fecl`` to float32
rounding; the loss is a sum over anchors and pairs, so the permutation changes nothing.

Notation per sample, anchor i (shifted by c = 1/tau so that every exponent is <= 0):
    e_ij = exp((cos_ij - 1) / tau),  NEG_i = sum_{q in N(i)} F-_iq (e_iq [+ h_i]) [+ h_i]
    nll_ik = log(1 + NEG_i / e_ik) = -log(e^{S_ik} / D(i)),  loss_i = sum_k F+_ik nll_ik / |P(i)|
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .fecl_dense import focal_similarity


@dataclass(frozen=True)
class PaperConfig:
    temperature: float
    gamma: float
    top_k: int
    focal: bool
    hard_negative_form: str  # "per_negative" | "once"
    similarity_form: str  # "affine" | "clamped"
    detach_weights: bool
    block_size: int


def _segments(sorted_labels: Tensor) -> list[tuple[int, int]]:
    """[start, stop) of each run of equal labels in a sorted (N,) label vector."""
    counts = torch.unique_consecutive(sorted_labels, return_counts=True)[1].tolist()
    return list(itertools.pairwise([0, *itertools.accumulate(counts)]))


def _exp_shifted(cos: Tensor, cfg: PaperConfig) -> Tensor:
    return cos.sub(1.0).mul_(1.0 / cfg.temperature).exp_()  # exp(S - 1/tau), in (0, 1]


def _weights(cos: Tensor, cfg: PaperConfig, *, positive: bool) -> Tensor:
    """F+ (before exp(H)) or F- for a block of similarities; ones without focal weighting."""
    if not cfg.focal:
        return torch.ones_like(cos)
    sim = focal_similarity(cos, cfg.similarity_form)
    return sim.neg_().add_(1.0).pow_(cfg.gamma) if positive else sim.pow_(cfg.gamma)


def _zero_self(x: Tensor, r0: int, s: int) -> Tensor:
    """Zero each anchor's own column in a positive block (rows r0.., columns from s)."""
    local = torch.arange(x.shape[0], device=x.device)
    x[local, r0 - s + local] = 0.0
    return x


class _Segment:
    """Sorted tokens of one sample split into the positives [s, t) of a label and the rest."""

    def __init__(self, zs: Tensor, ts: Tensor | None, s: int, t: int) -> None:
        self.s, self.t = s, t
        self.pos = zs[s:t]  # (Np, D)
        self.neg = torch.cat([zs[:s], zs[t:]])  # (Nn, D)
        self.teacher_neg = torch.cat([ts[:s], ts[t:]]) if ts is not None else None

    def to_sorted(self, neg_index: Tensor) -> Tensor:
        """Indices into ``self.neg`` -> indices into the sorted tokens of the sample."""
        return torch.where(neg_index < self.s, neg_index, neg_index + (self.t - self.s))

    def blocks(self, block_size: int):
        """Row slices of the segment's anchors, ``block_size`` at a time."""
        for r0 in range(self.s, self.t, block_size):
            yield slice(r0, min(r0 + block_size, self.t))

    def add_column_grads(self, grad_zs: Tensor, grad_pos: Tensor, grad_neg: Tensor) -> None:
        grad_zs[self.s : self.t] += grad_pos
        grad_zs[: self.s] += grad_neg[: self.s]
        grad_zs[self.t :] += grad_neg[self.s :]


def _contrastive_segments(zs: Tensor, ts: Tensor | None, segments):
    """(sample, _Segment) for each label run with at least one positive and one negative;
    the others contribute 0 to the loss."""
    n = zs.shape[1]
    for b, sample_segments in enumerate(segments):
        for s, t in sample_segments:
            if 1 < t - s < n:
                yield b, _Segment(zs[b], None if ts is None else ts[b], s, t)


def _positives_per_anchor(segments, device) -> Tensor:
    """(B, N) in sorted order: |P(i)| = size of the anchor's label run - 1."""
    rows = [[t - s - 1 for s, t in seg for _ in range(t - s)] for seg in segments]
    return torch.tensor(rows, dtype=torch.long, device=device)


class _Stats:
    """Per-anchor results of the forward pass, in sorted order: all the backward needs."""

    def __init__(self, z: Tensor, k: int) -> None:
        bsz, n, _ = z.shape
        self.neg_sum, self.hard, self.per_anchor = (z.new_zeros(bsz, n) for _ in range(3))
        self.top_e = z.new_zeros(bsz, n, k)  # exp(S_il - 1/tau) of the top-K teacher negatives
        self.top_idx = torch.zeros(bsz, n, k, dtype=torch.long, device=z.device)
        self.count = torch.ones(bsz, n, dtype=torch.long, device=z.device)  # K actually found


def _forward_block(stats, b, seg, rows, anchors, cfg):
    cos_neg = anchors @ seg.neg.T  # (bl, Nn)
    w_neg = _weights(cos_neg, cfg, positive=False)
    ns = torch.linalg.vecdot(w_neg, _exp_shifted(cos_neg, cfg))  # (bl,)
    if seg.teacher_neg is not None:
        k = min(stats.top_e.shape[2], seg.neg.shape[0])
        vals, idx = (anchors @ seg.teacher_neg.T).topk(k, dim=-1)  # (bl, k)
        top_e = _exp_shifted(vals, cfg)
        stats.top_e[b, rows, :k], stats.top_idx[b, rows, :k] = top_e, seg.to_sorted(idx)
        stats.count[b, rows] = k
        stats.hard[b, rows] = hard = top_e.sum(-1) / k
        extra = w_neg.sum(-1) if cfg.hard_negative_form == "per_negative" else 1.0
        ns = ns + extra * hard
    stats.neg_sum[b, rows] = ns
    cos_pos = anchors @ seg.pos.T  # (bl, Np)
    w_pos = _zero_self(_weights(cos_pos, cfg, positive=True), rows.start, seg.s)
    nll = torch.div(ns[:, None], _exp_shifted(cos_pos, cfg)).log1p_()  # (bl, Np)
    stats.per_anchor[b, rows] = torch.linalg.vecdot(w_pos, nll)


def _backward_block(stats, b, seg, rows, anchors, scale, ts, cfg):
    """Gradients w.r.t. the block's anchors (bl, D) and its positive / negative columns."""
    inv_tau = 1.0 / cfg.temperature
    a, ns = scale[b, rows, None], stats.neg_sum[b, rows, None]  # (bl, 1)
    cos_pos = anchors @ seg.pos.T  # (bl, Np)
    e_pos = _exp_shifted(cos_pos, cfg)
    w_pos = _zero_self(_weights(cos_pos, cfg, positive=True), rows.start, seg.s)
    ratio = torch.add(e_pos, ns).reciprocal_().mul_(w_pos)  # F+ / (NEG + e)
    rho = a * ratio.sum(-1, keepdim=True)  # (bl, 1) d loss / d NEG_i
    # d loss / d cos: positives -a F+ NEG / (NEG + e) / tau, negatives rho F- e / tau
    grad_pos = ratio.mul_(ns * (-a * inv_tau))  # (bl, Np)
    cos_neg = anchors @ seg.neg.T  # (bl, Nn)
    e_neg = _exp_shifted(cos_neg, cfg)
    w_neg = _weights(cos_neg, cfg, positive=False)
    grad_neg = torch.mul(w_neg, e_neg).mul_(rho * inv_tau)  # (bl, Nn)
    if cfg.focal and not cfg.detach_weights and cfg.gamma > 0:
        nll = torch.div(ns, e_pos).log1p_()
        grad_pos += _zero_self(a * nll * _weight_slope(cos_pos, cfg, True), rows.start, seg.s)
        if cfg.hard_negative_form == "per_negative":
            e_neg = e_neg + stats.hard[b, rows, None]
        grad_neg += rho * _weight_slope(cos_neg, cfg, False) * e_neg
    grad_rows = grad_pos @ seg.pos + grad_neg @ seg.neg  # (bl, D)
    if ts is not None:
        extra = w_neg.sum(-1) if cfg.hard_negative_form == "per_negative" else 1.0
        d_hard = rho[:, 0] * extra / stats.count[b, rows]  # (bl,)
        d_top = d_hard[:, None] * stats.top_e[b, rows] * inv_tau  # (bl, K) d loss / d cos^t
        picked = ts[b][stats.top_idx[b, rows]]  # (bl, K, D)
        grad_rows += torch.einsum("ik,ikd->id", d_top, picked)
    return grad_rows, grad_pos.T @ anchors, grad_neg.T @ anchors


def _sort_by_label(x: Tensor | None, order: Tensor) -> Tensor | None:
    if x is None:
        return None
    index = order if x.ndim == 2 else order[..., None].expand(-1, -1, x.shape[2])
    return torch.gather(x, 1, index)


class StreamingPaperFeCL(torch.autograd.Function):
    """Autograd function (z, entropy, teacher, labels, cfg) -> scalar loss; see module docstring."""

    @staticmethod
    def forward(ctx, z, entropy, teacher, labels, cfg):
        order = torch.argsort(labels, dim=1, stable=True)  # (B, N)
        zs, ts = _sort_by_label(z, order), _sort_by_label(teacher, order)  # (B, N, D)
        sorted_labels = _sort_by_label(labels, order)
        segments = [_segments(row) for row in sorted_labels]
        stats = _Stats(z, min(cfg.top_k, z.shape[1]))
        for b, seg in _contrastive_segments(zs, ts, segments):
            for rows in seg.blocks(cfg.block_size):
                _forward_block(stats, b, seg, rows, zs[b, rows], cfg)
        n_pos = _positives_per_anchor(segments, z.device)  # (B, N)
        valid = n_pos > 0
        n_valid = int(valid.sum())
        exp_h = _sort_by_label(entropy, order).exp() if entropy is not None else None  # (B, N)
        per_anchor = stats.per_anchor / n_pos.clamp(min=1)
        if exp_h is not None:
            per_anchor = per_anchor * exp_h
        stats.per_anchor = per_anchor * valid
        ctx.cfg, ctx.n_valid, ctx.segments, ctx.stats = cfg, n_valid, segments, stats
        ctx.has_entropy = entropy is not None
        ctx.save_for_backward(zs, ts, order, exp_h, n_pos)
        if n_valid == 0:
            return z.new_zeros(())
        return stats.per_anchor.sum() / n_valid

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        zs, ts, order, exp_h, n_pos = ctx.saved_tensors
        cfg, n_valid, stats = ctx.cfg, ctx.n_valid, ctx.stats
        grad_zs = torch.zeros_like(zs)
        # d loss / d (sum_k F+ nll) per anchor; 0 for anchors without positives.
        scale = (grad_out / max(n_valid, 1)) * (n_pos > 0) / n_pos.clamp(min=1)  # (B, N)
        if exp_h is not None:
            scale = scale * exp_h
        for b, seg in _contrastive_segments(zs, ts, ctx.segments):
            grad_pos_cols, grad_neg_cols = torch.zeros_like(seg.pos), torch.zeros_like(seg.neg)
            for rows in seg.blocks(cfg.block_size):
                grad_rows, grad_pos, grad_neg = _backward_block(
                    stats, b, seg, rows, zs[b, rows], scale, ts, cfg
                )
                grad_zs[b, rows] += grad_rows
                grad_pos_cols += grad_pos
                grad_neg_cols += grad_neg
            seg.add_column_grads(grad_zs[b], grad_pos_cols, grad_neg_cols)
        grad_z = torch.zeros_like(grad_zs).scatter_(1, order[..., None].expand_as(grad_zs), grad_zs)
        grad_h = None
        if ctx.has_entropy and not cfg.detach_weights and n_valid > 0:
            grad_sorted = grad_out * stats.per_anchor / n_valid  # d exp(H) / dH = exp(H)
            grad_h = torch.zeros_like(grad_sorted).scatter_(1, order, grad_sorted)
        return grad_z, grad_h, None, None, None


def _weight_slope(cos: Tensor, cfg: PaperConfig, positive: bool) -> Tensor:
    """d F+ / d cos or d F- / d cos (only used when the weights are not detached)."""
    raw = (1.0 + cos) * 0.5 if cfg.similarity_form == "affine" else cos
    slope = 0.5 if cfg.similarity_form == "affine" else 1.0
    sim = raw.clamp(0.0, 1.0)
    dsim = ((raw >= 0) & (raw <= 1)).to(cos.dtype) * slope  # as torch.clamp's gradient
    g = cfg.gamma
    if positive:
        return -g * torch.sub(1.0, sim).pow(g - 1) * dsim
    return g * sim.pow(g - 1) * dsim
