"""Cube mixing of volumes inside a batch: BCP's pasted cube and MagicNet's cube grid.

Pure tensor functions; the only randomness is drawn from the generator passed in (the global
torch RNG by default, which checkpoints restore, so a resumed run mixes alike).

* Copy-paste (BCP, Bai et al., CVPR 2023). A mask M is 1 everywhere except a cube of zeros, and

      paste(a, b, M) = a * M + b * (1 - M),

  a's context around b's cube. Kept as a boolean mask and ``torch.where``, so images and integer
  labels mix alike and exactly.
* Cube grid (MagicNet, Chen et al., CVPR 2023). A (B, C, D, H, W) batch is cut into a
  g_D x g_H x g_W grid of G cubes, cube k = (i g_H + j) g_W + l at grid position (i, j, l);
  ``partition`` stacks them as rows b G + k, ``recover`` puts them back. Cross-image mixing
  draws one permutation pi_k of the B rows per cube position and moves the cubes between
  volumes, never between positions:  mixed[b, k] = x[pi_k(b), k];  unmixing applies pi_k^-1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def cube_mask(
    shape: Sequence[int], *, start: Sequence[int], size: Sequence[int], device=None
) -> Tensor:
    """(D, H, W) bool: False on the cube ``start`` .. ``start + size``, True elsewhere (M)."""
    if not len(shape) == len(start) == len(size):
        raise ValueError(f"shape {tuple(shape)}, start {tuple(start)}, size {tuple(size)} differ")
    if any(s < 0 or n < 1 or s + n > d for d, s, n in zip(shape, start, size, strict=True)):
        raise ValueError(
            f"a cube at {tuple(start)} of size {tuple(size)} does not fit in {tuple(shape)}"
        )
    mask = torch.ones(tuple(shape), dtype=torch.bool, device=device)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] = False
    return mask


def random_cube_mask(
    shape: Sequence[int], *, fraction: float, generator: torch.Generator | None = None, device=None
) -> Tensor:
    """BCP's M: a cube of int(fraction * side) voxels per axis (at least 1) at a uniform
    position inside ``shape``; official fraction 2/3 (74 x 74 x 53 of 112 x 112 x 80)."""
    size = [max(1, int(fraction * d)) for d in shape]
    start = [
        int(torch.randint(0, d - n + 1, (), generator=generator))
        for d, n in zip(shape, size, strict=True)
    ]
    return cube_mask(shape, start=start, size=size, device=device)


def paste(context: Tensor, cube: Tensor, mask: Tensor) -> Tensor:
    """``context`` where ``mask`` (True outside the cube), ``cube`` inside it.

    Args:
        context, cube: (B, C, *S) images or logits, or (B, *S) labels, of one shape.
        mask: (*S) bool, broadcast over the leading dimensions.
    """
    if context.shape != cube.shape or tuple(mask.shape) != tuple(context.shape[-mask.dim() :]):
        raise ValueError(
            f"paste needs two tensors of one shape and a mask of their trailing shape, got "
            f"{tuple(context.shape)}, {tuple(cube.shape)} and {tuple(mask.shape)}"
        )
    return torch.where(mask, context, cube)


def cube_size(shape: Sequence[int], grid: Sequence[int]) -> tuple[int, ...]:
    """The side of each cube of ``grid`` over a volume of ``shape``; it must divide exactly."""
    if len(shape) != len(grid) or any(g < 1 or d % g for d, g in zip(shape, grid, strict=True)):
        raise ValueError(f"volume {tuple(shape)} does not divide into a {tuple(grid)} cube grid")
    return tuple(d // g for d, g in zip(shape, grid, strict=True))


def partition(x: Tensor, grid: Sequence[int]) -> Tensor:
    """(B, C, D, H, W) -> (B G, C, D/g_D, H/g_H, W/g_W): row b G + k is cube k of volume b."""
    (b, c, *shape), (gd, gh, gw) = x.shape, grid
    d, h, w = cube_size(shape, grid)
    cubes = x.reshape(b, c, gd, d, gh, h, gw, w).permute(0, 2, 4, 6, 1, 3, 5, 7)
    return cubes.reshape(b * gd * gh * gw, c, d, h, w)  # (B G, C, d, h, w)


def recover(cubes: Tensor, grid: Sequence[int]) -> Tensor:
    """The inverse of ``partition``: (B G, C, d, h, w) -> (B, C, g_D d, g_H h, g_W w)."""
    (gd, gh, gw), (n, c, d, h, w) = grid, cubes.shape
    cells = gd * gh * gw
    if n % cells:
        raise ValueError(f"{n} cubes are not whole volumes of a {tuple(grid)} grid ({cells} each)")
    x = cubes.reshape(n // cells, gd, gh, gw, c, d, h, w).permute(0, 4, 1, 5, 2, 6, 3, 7)
    return x.reshape(n // cells, c, gd * d, gh * h, gw * w)  # (B, C, D, H, W)


def cube_permutations(
    batch: int, grid: Sequence[int], *, generator: torch.Generator | None = None
) -> Tensor:
    """(G, B) long: row k is pi_k, a uniform permutation of the batch for cube position k."""
    cells = math.prod(grid)
    return torch.stack([torch.randperm(batch, generator=generator) for _ in range(cells)])


def _move_cubes(x: Tensor, source: Tensor, grid: Sequence[int]) -> Tensor:
    """out[b, k] = x[source[k, b], k] over the cubes of ``grid``."""
    b, cells = x.shape[0], math.prod(grid)
    if tuple(source.shape) != (cells, b):
        raise ValueError(f"permutations must be (G, B) = ({cells}, {b}), got {tuple(source.shape)}")
    cubes = partition(x, grid).reshape(b, cells, *x.shape[1:2], -1)  # (B, G, C, d h w)
    moved = cubes[source.T.to(x.device), torch.arange(cells, device=x.device)]  # (B, G, C, dhw)
    size = cube_size(x.shape[2:], grid)
    return recover(moved.reshape(b * cells, x.shape[1], *size), grid)  # (B, C, D, H, W)


def mix_cubes(x: Tensor, perms: Tensor, grid: Sequence[int]) -> Tensor:
    """Cross-image mixing: cube k of mixed volume b is cube k of volume pi_k(b)."""
    return _move_cubes(x, perms, grid)


def unmix_cubes(x: Tensor, perms: Tensor, grid: Sequence[int]) -> Tensor:
    """Recovery: cube k of volume b returns from mixed volume pi_k^-1(b)."""
    return _move_cubes(x, torch.argsort(perms, dim=1), grid)
