"""Sliding-window inference with the official patch / stride semantics, batched.

Official ``test_single_case``: pad the volume (centred, zeros) up to the patch where it is
smaller; window starts every ``stride`` voxels, the last one clamped to the border; softmax
probabilities averaged over overlapping windows; crop the padding away. ``gaussian=True`` weights
each window by a Gaussian centred on it (sigma = patch / 8, as nnU-Net) instead of uniformly.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def window_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets along one axis: ceil((size - patch) / stride) + 1 windows, last clamped."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if size <= patch:
        return [0]
    count = math.ceil((size - patch) / stride) + 1
    return [min(i * stride, size - patch) for i in range(count)]


def _gaussian(patch: tuple[int, ...], device, dtype) -> Tensor:
    axes = [torch.arange(p, device=device, dtype=dtype) - (p - 1) / 2 for p in patch]
    grids = torch.meshgrid(*axes, indexing="ij")
    sq = sum((g / (p / 8.0)) ** 2 for g, p in zip(grids, patch, strict=True))
    w = torch.exp(-0.5 * sq)
    return (w / w.max()).clamp_min(1e-3)  # no zero weight at the window's corners


@torch.no_grad()
def sliding_window_predict(
    model: nn.Module,
    image: Tensor | np.ndarray,
    *,
    patch: tuple[int, int, int],
    stride: tuple[int, int, int],
    batch_size: int = 4,
    gaussian: bool = False,
    device: str | torch.device | None = None,
    autocast: bool = False,
) -> Tensor:
    """Class probabilities (K, X, Y, Z) for one volume ``image`` (C, X, Y, Z), on the CPU.

    Args:
        model: Returns ``SegOutput`` (or logits) for a (b, C, *patch) batch; used as given
            (call ``model.eval()`` first).
        patch: Window size; stride: step per axis (official LA test: (18, 18, 4)).
        batch_size: Windows per forward pass.
        gaussian: Weight windows by a centred Gaussian instead of uniformly.
        device: Where the model runs (default: the model's device).
        autocast: bf16 autocast for the forward passes (CUDA).
    """
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.ndim != 4 or len(patch) != 3 or len(stride) != 3:
        raise ValueError(
            f"image must be (C, X, Y, Z) with 3-D patch and stride, got image "
            f"{tuple(x.shape)}, patch {patch}, stride {stride}"
        )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    size = x.shape[1:]
    pads = [max(p - s, 0) for s, p in zip(size, patch, strict=True)]
    # F.pad takes the last axis first: (z_lo, z_hi, y_lo, y_hi, x_lo, x_hi)
    spec = [v for p in reversed(pads) for v in (p // 2, p - p // 2)]
    x = F.pad(x, spec)
    padded = x.shape[1:]
    starts = list(
        itertools.product(
            *(window_starts(s, p, st) for s, p, st in zip(padded, patch, stride, strict=True))
        )
    )
    weight = _gaussian(patch, device, torch.float32) if gaussian else None
    probs, counts = None, torch.zeros(padded, device=device)
    for i in range(0, len(starts), batch_size):
        chunk = starts[i : i + batch_size]
        windows = torch.stack(
            [x[:, a : a + patch[0], b : b + patch[1], c : c + patch[2]] for a, b, c in chunk]
        ).to(device)  # (b, C, *patch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model(windows)
        logits = getattr(out, "logits", out).float()
        p = torch.softmax(logits, dim=1)  # (b, K, *patch)
        if probs is None:
            probs = torch.zeros((p.shape[1], *padded), device=device)
        for (a, b, c), pw in zip(chunk, p, strict=True):
            w = 1.0 if weight is None else weight
            region = (slice(a, a + patch[0]), slice(b, b + patch[1]), slice(c, c + patch[2]))
            probs[(slice(None), *region)] += pw * w
            counts[region] += w
    probs = probs / counts
    crop = tuple(slice(p // 2, p // 2 + s) for p, s in zip(pads, size, strict=True))
    return probs[(slice(None), *crop)].cpu()
