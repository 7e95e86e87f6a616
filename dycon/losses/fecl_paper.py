"""Streaming FeCL, paper form (Eqs. 3-4): row blocks of anchors, hand-written backward.

Memory is O(B * block * N) instead of O(B * N * N): the forward keeps only per-anchor statistics
(negative sum, hard-negative mean, top-K indices) and the backward recomputes each block of
similarities. Two matrix products per block forward, three backward: the cost floor of any exact
implementation. Equal to ``fecl_dense.dense_paper_fecl`` to float32 rounding.

Notation per sample, anchor i (all in float32, shifted by c = 1/tau so that exponents are <= 0):
    e_ij = exp((cos_ij - 1) / tau),  NEG_i = sum_{q in N(i)} F-_iq (e_iq [+ h_i]) [+ h_i]
    nll_ik = log(1 + NEG_i / e_ik) = -log(e^{S_ik} / D(i)),  loss_i = sum_k F+_ik nll_ik / |P(i)|
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

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


def _block_terms(z, labels, rows, cfg):
    """Similarities, masks and focal weights of one row block of anchors."""
    cos = torch.bmm(z[:, rows], z.transpose(1, 2))  # (B, b, N)
    neg = labels[:, rows, None] != labels[:, None, :]  # (B, b, N)
    pos = ~neg
    local = torch.arange(rows.stop - rows.start, device=z.device)
    pos[:, local, rows.start + local] = False  # an anchor is not its own positive
    e = cos.sub(1.0).mul_(1.0 / cfg.temperature).exp_()  # (B, b, N), in (0, 1]
    if cfg.focal:
        sim = focal_similarity(cos, cfg.similarity_form)
        w_neg = sim.pow(cfg.gamma).mul_(neg)  # F- on negatives, 0 elsewhere
        w_pos = torch.sub(1.0, sim).pow_(cfg.gamma).mul_(pos)  # F+ (before exp(H)) on positives
    else:
        w_neg, w_pos = neg.to(z.dtype), pos.to(z.dtype)
    return cos, neg, pos, e, w_neg, w_pos


def _teacher_hard_negatives(z, teacher, labels, rows, cfg):
    """Top-K teacher tokens most similar to each anchor among its negatives (Eq. 4)."""
    cross = torch.bmm(z[:, rows], teacher.transpose(1, 2))  # (B, b, N)
    neg = labels[:, rows, None] != labels[:, None, :]
    k = min(cfg.top_k, z.shape[1])
    vals, idx = cross.masked_fill_(~neg, float("-inf")).topk(k, dim=-1)  # (B, b, K)
    top_e = vals.sub_(1.0).mul_(1.0 / cfg.temperature).exp_()  # exp(S_il - c); 0 where no negative
    count = neg.sum(-1).clamp_(min=1, max=k)  # (B, b) how many of the K exist
    return top_e, idx, count


class StreamingPaperFeCL(torch.autograd.Function):
    """Autograd function (z, entropy, teacher, labels, cfg) -> scalar loss; see module docstring."""

    @staticmethod
    def forward(ctx, z, entropy, teacher, labels, cfg):
        bsz, n, _ = z.shape
        exp_h = entropy.exp() if entropy is not None else None  # (B, N)
        neg_sum = z.new_zeros(bsz, n)
        hard = z.new_zeros(bsz, n)
        per_anchor = z.new_zeros(bsz, n)
        n_pos = torch.zeros(bsz, n, dtype=torch.long, device=z.device)
        k = min(cfg.top_k, n)
        top_e = z.new_zeros(bsz, n, k) if teacher is not None else None
        top_idx = torch.zeros(bsz, n, k, dtype=torch.long, device=z.device)
        count = torch.ones(bsz, n, dtype=torch.long, device=z.device)
        for start in range(0, n, cfg.block_size):
            rows = slice(start, min(start + cfg.block_size, n))
            _, _, pos, e, w_neg, w_pos = _block_terms(z, labels, rows, cfg)
            ns = (w_neg * e).sum(-1)  # (B, b)
            if teacher is not None:
                t_e, t_idx, t_count = _teacher_hard_negatives(z, teacher, labels, rows, cfg)
                top_e[:, rows], top_idx[:, rows], count[:, rows] = t_e, t_idx, t_count
                hard[:, rows] = t_e.sum(-1) / t_count
                extra = w_neg.sum(-1) if cfg.hard_negative_form == "per_negative" else 1.0
                ns = ns + extra * hard[:, rows]
            neg_sum[:, rows] = ns
            n_pos[:, rows] = pos.sum(-1)
            nll = torch.div(ns[:, :, None], e).log1p_()  # (B, b, N)
            per_anchor[:, rows] = (w_pos * nll).sum(-1)
        valid = n_pos > 0
        n_valid = int(valid.sum())
        per_anchor = per_anchor / n_pos.clamp(min=1)
        if exp_h is not None:
            per_anchor = per_anchor * exp_h
        per_anchor = per_anchor * valid
        ctx.cfg, ctx.n_valid = cfg, n_valid
        ctx.has_entropy, ctx.has_teacher = entropy is not None, teacher is not None
        ctx.save_for_backward(
            z, teacher, labels, exp_h, neg_sum, hard, per_anchor, n_pos, top_e, top_idx, count
        )
        if n_valid == 0:
            return z.new_zeros(())
        return per_anchor.sum() / n_valid

    @staticmethod
    def backward(ctx, grad_out):
        z, teacher, labels, exp_h, neg_sum, hard, per_anchor, n_pos, top_e, top_idx, count = (
            ctx.saved_tensors
        )
        cfg, n_valid = ctx.cfg, ctx.n_valid
        grad_z = torch.zeros_like(z)
        if n_valid == 0:
            grad_h = torch.zeros_like(exp_h) if ctx.has_entropy else None
            return grad_z, grad_h, None, None, None
        # d loss / d (F+ nll summed over k) per anchor; 0 for anchors without positives.
        scale = (grad_out / n_valid) * (n_pos > 0) / n_pos.clamp(min=1)  # (B, N)
        if exp_h is not None:
            scale = scale * exp_h
        inv_tau = 1.0 / cfg.temperature
        for start in range(0, z.shape[1], cfg.block_size):
            rows = slice(start, min(start + cfg.block_size, z.shape[1]))
            cos, neg, pos, e, w_neg, w_pos = _block_terms(z, labels, rows, cfg)
            a, ns = scale[:, rows, None], neg_sum[:, rows, None]  # (B, b, 1)
            ratio = w_pos / (ns + e)  # (B, b, N): F+ / (NEG + e), 0 off positives
            rho = a * ratio.sum(-1, keepdim=True)  # (B, b, 1) d loss / d NEG_i
            # positives: d nll / d S = -NEG / (NEG + e); negatives: d NEG / d S = F- e
            grad_s = ratio.mul_(ns).mul_(-a).add_(rho * w_neg * e)  # (B, b, N)
            grad_cos = grad_s.mul_(inv_tau)
            if cfg.focal and not cfg.detach_weights and cfg.gamma > 0:
                grad_cos += _focal_weight_grads(cos, neg, pos, e, a, rho, ns, hard[:, rows], cfg)
            grad_z[:, rows] += torch.bmm(grad_cos, z)  # (B, b, D)
            grad_z += torch.bmm(grad_cos.transpose(1, 2), z[:, rows])  # (B, N, D)
            if ctx.has_teacher:
                extra = w_neg.sum(-1) if cfg.hard_negative_form == "per_negative" else 1.0
                d_hard = rho[..., 0] * extra / count[:, rows]  # (B, b)
                d_top = d_hard[..., None] * top_e[:, rows] * inv_tau  # (B, b, K) d loss / d cos^t
                picked = _gather_rows(teacher, top_idx[:, rows])  # (B, b, K, D)
                grad_z[:, rows] += torch.einsum("bik,bikd->bid", d_top, picked)
        grad_h = None
        if ctx.has_entropy and not cfg.detach_weights:
            grad_h = grad_out * per_anchor / n_valid  # d exp(H) / dH = exp(H)
        return grad_z, grad_h, None, None, None


def _focal_weight_grads(cos, neg, pos, e, a, rho, ns, hard, cfg):
    """Gradient through F+ and F- themselves (only when the weights are not detached)."""
    g = cfg.gamma
    raw = (1.0 + cos) * 0.5 if cfg.similarity_form == "affine" else cos
    slope = 0.5 if cfg.similarity_form == "affine" else 1.0
    sim = raw.clamp(0.0, 1.0)
    dsim = ((raw >= 0) & (raw <= 1)).to(cos.dtype) * slope  # as torch.clamp's gradient
    nll = torch.div(ns, e).log1p_()
    d_pos = -g * torch.sub(1.0, sim).pow(g - 1) * dsim  # d F+ / d cos
    d_neg = g * sim.pow(g - 1) * dsim  # d F- / d cos
    neg_term = e + hard[..., None] if cfg.hard_negative_form == "per_negative" else e
    return a * nll * d_pos * pos + rho * d_neg * neg_term * neg


def _gather_rows(tokens: Tensor, idx: Tensor) -> Tensor:
    """tokens (B, N, D), idx (B, b, K) -> (B, b, K, D)."""
    bsz, b, k = idx.shape
    flat = torch.gather(tokens, 1, idx.reshape(bsz, b * k, 1).expand(-1, -1, tokens.shape[2]))
    return flat.reshape(bsz, b, k, tokens.shape[2])
