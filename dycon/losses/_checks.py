"""Argument checks shared by the losses: one-line ValueErrors that say what was wrong."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_tensor(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    floating: bool = False,
    integer: bool = False,
) -> Tensor:
    """Validate that ``value`` is a tensor of the expected rank and dtype family."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex()):
        raise ValueError(
            f"{name} must hold integer class labels (int64, uint8 or bool), got dtype {value.dtype}"
        )
    return value


def check_same_shape(name_a: str, a: Tensor, name_b: str, b: Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a number {bound}, got {value!r}")
    return float(value)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def compute_dtype(t: Tensor) -> torch.dtype:
    """float64 stays float64 (for gradcheck); anything else, bf16 and fp16 too, -> float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32
