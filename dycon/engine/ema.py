"""Exponential moving average of a network: the mean teacher."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(
    teacher: nn.Module,
    student: nn.Module,
    *,
    step: int,
    decay: float = 0.99,
    buffers: bool = False,
    warmup: bool = True,
) -> float:
    r"""theta' <- alpha theta' + (1 - alpha) theta, with alpha = min(1 - 1/(t + 1), decay).

    The warm-up makes the teacher follow the student closely at first (alpha = 0 at t = 0), as in
    the official code; ``warmup=False`` uses alpha = decay from the first step (BCP). Parameters
    only by default, as there; ``buffers=True`` also copies buffers (BatchNorm running
    statistics) from the student.

    Returns:
        The alpha used.
    """
    alpha = min(1.0 - 1.0 / (step + 1), decay) if warmup else decay
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    if len(t_params) != len(s_params):
        raise ValueError(
            "teacher and student must have the same architecture "
            f"({len(t_params)} vs {len(s_params)} parameter tensors)"
        )
    torch._foreach_mul_(t_params, alpha)
    torch._foreach_add_(t_params, s_params, alpha=1.0 - alpha)
    if buffers:
        for t_buf, s_buf in zip(teacher.buffers(), student.buffers(), strict=True):
            t_buf.copy_(s_buf)
    return alpha
