"""Dense FeCL: every (B, N, N) intermediate materialised. The test oracle and benchmark baseline.

The definitions here are the specification that the streaming versions (``fecl_paper``,
``fecl_reference``) must reproduce to 1e-5 relative; see ``fecl.fecl_loss`` for the equations.
Inputs are already validated, L2-normalised, fp32 tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .ramps import sigmoid_ramp


def focal_similarity(cos: Tensor, form: str) -> Tensor:
    """Map cosine similarity into [0, 1] for the focal weights (1 - S)^gamma and S^gamma.

    Clamped in both forms: float32 rounding puts cosines slightly outside [-1, 1], and a
    fractional gamma would turn a negative base into NaN.
    """
    sim = (1.0 + cos) * 0.5 if form == "affine" else cos
    return sim.clamp(0.0, 1.0)


def dense_paper_fecl(
    z: Tensor,
    labels: Tensor,
    *,
    teacher: Tensor | None,
    entropy: Tensor | None,
    temperature: float,
    gamma: float,
    top_k: int,
    focal: bool,
    hard_negative_form: str,
    similarity_form: str,
    detach_weights: bool,
) -> Tensor:
    """Eqs. (3)-(4) as written, one (B, N, N) tensor per intermediate."""
    n = z.shape[1]
    cos = z @ z.transpose(1, 2)  # (B, N, N)
    logits = cos / temperature
    same = labels[:, :, None] == labels[:, None, :]  # (B, N, N)
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    pos, neg = same & ~eye, ~same
    sim = focal_similarity(cos.detach() if detach_weights else cos, similarity_form)
    w_neg = sim.pow(gamma) if focal else torch.ones_like(sim)
    w_pos = (1.0 - sim).pow(gamma) if focal else torch.ones_like(sim)
    if entropy is not None:
        ent = entropy.detach() if detach_weights else entropy
        w_pos = w_pos * ent.exp()[:, :, None]
    exp_s = logits.exp()
    neg_sum = (w_neg * exp_s * neg).sum(-1)  # (B, N)
    if teacher is not None:
        cross = (z @ teacher.detach().transpose(1, 2)) / temperature  # (B, N, N)
        k = min(top_k, n)
        top = cross.masked_fill(~neg, float("-inf")).topk(k, dim=-1).values  # (B, N, K)
        count = neg.sum(-1).clamp(max=k).clamp(min=1)  # (B, N)
        hard = top.exp().sum(-1) / count  # (B, N)
        if hard_negative_form == "per_negative":
            neg_sum = neg_sum + (w_neg * neg).sum(-1) * hard
        else:
            neg_sum = neg_sum + hard
    nll = torch.log(exp_s + neg_sum[:, :, None]) - logits  # (B, N, N) = -log(e^S / D)
    n_pos = pos.sum(-1)  # (B, N)
    per_anchor = (w_pos * nll * pos).sum(-1) / n_pos.clamp(min=1)  # (B, N)
    valid = n_pos > 0
    if not valid.any():
        return z.sum() * 0.0
    return per_anchor[valid].mean()


def dense_reference_fecl(
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
) -> Tensor:
    """What the official FeCLoss computes (notes: reference-implementation section 3)."""
    n = z.shape[1]
    same = labels[:, :, None] == labels[:, None, :]  # (B, N, N)
    off_diag = ~torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.transpose(1, 2)) / temperature * off_diag  # (B, N, N), diagonal set to 0
    # Column-wise max shift (dim=1), detached, as in the official code.
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    exp_l = logits.exp()
    neg_sum = (exp_l * ~same).sum(-1, keepdim=True)  # (B, N, 1)
    prob = exp_l / (exp_l + neg_sum + 1e-18)  # (B, N, N)
    nll = -torch.log(prob + 1e-18) * (same & off_diag)
    denom = same.sum(-1) - 1 + 1e-18  # (B, N)
    if entropy is not None:
        # The official "gambling" entropy replaces the focal weighting by a per-anchor factor.
        student = ((nll.sum(-1) / denom) * entropy).mean()
    elif focal:
        weights = torch.ones_like(prob)
        pos_thr = sigmoid_ramp(progress, 1.3, 1.5)
        neg_thr = sigmoid_ramp(progress, 0.3, 0.5)
        hard_pos = same & (prob < pos_thr)
        hard_neg = ~same & (prob > neg_thr)
        weights = torch.where(hard_pos, (1.0 - prob).pow(gamma), weights)
        weights = torch.where(hard_neg, prob.pow(gamma), weights)
        student = ((nll * weights).sum(-1) / denom).mean()
    else:
        student = (nll.sum(-1) / denom).mean()
    if teacher is None:
        return student
    cross = z @ teacher.detach().transpose(1, 2)  # (B, N, N) cosine, no temperature
    hard = ~same & (cross > sigmoid_ramp(progress, 0.3, 0.5))
    if not hard.any():
        return student
    # clamp: the official -log(1 - c + 1e-18) is NaN when rounding puts a cosine above 1.
    penalty = -torch.log((1.0 - cross).clamp(min=0.0) + 1e-18)
    return student + cross_weight * penalty[hard].mean()
