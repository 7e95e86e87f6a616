"""Uncertainty-aware consistency loss (UnCL) and its beta schedule: DyCON Eqs. (1)-(2).

Assefa et al., "DyCON: Dynamic Uncertainty-aware Consistency and Contrastive Learning for
Semi-supervised Medical Image Segmentation", CVPR 2025.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_choice, check_positive, check_same_shape, check_tensor, compute_dtype


def beta_schedule(
    step: float,
    total_steps: float,
    *,
    beta_min: float = 0.5,
    beta_max: float = 5.0,
    lam: float | None = None,
) -> float:
    r"""The uncertainty scale of Eq. (2).

    .. math::
        \beta(t) = \max\left(\beta_{\min},\ \beta_{\max}\, e^{-\lambda t / T}\right)

    With ``lam=None`` the decay rate is :math:`\lambda = \ln(\beta_{\max}/\beta_{\min})`, which is
    the official code's geometric decay :math:`\beta_{\max} (\beta_{\min}/\beta_{\max})^{t/T}`:
    it reaches :math:`\beta_{\min}` exactly at :math:`t = T` (5.0 -> 0.5 by default).

    Args:
        step: Current step :math:`t >= 0` (iterations; the official code counts labeled epochs).
        total_steps: Horizon :math:`T > 0`.
        beta_min: Floor :math:`\beta_{\min} > 0`.
        beta_max: Start value :math:`\beta_{\max} >= \beta_{\min}`.
        lam: Decay rate :math:`\lambda >= 0`; ``None`` for the official curve.

    Returns:
        :math:`\beta(t)` as a float.
    """
    check_positive("step", step, allow_zero=True)
    check_positive("total_steps", total_steps)
    beta_min = check_positive("beta_min", beta_min)
    beta_max = check_positive("beta_max", beta_max)
    if beta_max < beta_min:
        raise ValueError(f"beta_max ({beta_max}) must be >= beta_min ({beta_min})")
    lam = (
        math.log(beta_max / beta_min)
        if lam is None
        else check_positive("lam", lam, allow_zero=True)
    )
    return max(beta_min, beta_max * math.exp(-lam * step / total_steps))


def uncl_loss(
    student_logits: Tensor, teacher_logits: Tensor, *, beta: float, class_reduction: str = "sum"
) -> Tensor:
    r"""Uncertainty-aware consistency between student and teacher predictions, Eq. (1).

    .. math::
        \mathcal{L}_{UnCL} = \frac{1}{N}\sum_{i=1}^{N}
            \frac{\mathcal{L}(p_i^s, p_i^t)}{e^{\beta H_s(p_i^s)} + e^{\beta H_t(p_i^t)}}
            + \frac{\beta}{N}\sum_{i=1}^{N}\left(H_s(p_i^s) + H_t(p_i^t)\right)

    :math:`p = \mathrm{softmax}` over classes, :math:`H = -\sum_c p_c \ln p_c` (natural log, not
    normalised: at most :math:`\ln C`), :math:`\mathcal{L}` the squared difference reduced over
    classes, :math:`N` all voxels of all samples. The teacher is detached, so the gradient reaches
    the student through :math:`p^s` and :math:`H_s` only.

    Args:
        student_logits: (B, C, *spatial) logits, C >= 2.
        teacher_logits: Same shape; gradients are not propagated into it.
        beta: Uncertainty scale :math:`\beta >= 0` (see :func:`beta_schedule`).
        class_reduction: ``"sum"`` sums squared differences over classes, as the official code
            does; ``"mean"`` averages them (a true per-voxel MSE; 1/C of the sum).

    Returns:
        Scalar loss (float32 even under autocast).
    """
    check_tensor("student_logits", student_logits, floating=True)
    check_tensor("teacher_logits", teacher_logits, floating=True)
    check_same_shape("student_logits", student_logits, "teacher_logits", teacher_logits)
    if student_logits.ndim < 3 or student_logits.shape[1] < 2:
        raise ValueError(
            "student_logits must be (B, C, *spatial) with C >= 2 classes, got shape "
            f"{tuple(student_logits.shape)}"
        )
    beta = check_positive("beta", beta, allow_zero=True)
    check_choice("class_reduction", class_reduction, ("sum", "mean"))

    # fp32 even under autocast: exp(beta * H) and p * log p lose too much in bf16.
    dtype = compute_dtype(student_logits)
    log_ps = F.log_softmax(student_logits.to(dtype), dim=1)  # (B, C, *S)
    log_pt = F.log_softmax(teacher_logits.detach().to(dtype), dim=1)  # (B, C, *S)
    ps, pt = log_ps.exp(), log_pt.exp()
    # log_softmax: exact entropy, finite at logits of +-1e4; the official log(p + 1e-6) is biased.
    h_s = -(ps * log_ps).sum(dim=1)  # (B, *S)
    h_t = -(pt * log_pt).sum(dim=1)  # (B, *S)
    sq = (ps - pt).square()
    dist = sq.sum(dim=1) if class_reduction == "sum" else sq.mean(dim=1)  # (B, *S)
    weighted = dist / (torch.exp(beta * h_s) + torch.exp(beta * h_t))  # (B, *S)
    return (weighted + beta * (h_s + h_t)).mean()
