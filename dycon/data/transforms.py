"""Training augmentations of the official DyCON code, each drawing from an explicit RNG.

The official scripts (SSL4MIS / UA-MT lineage) augment with ``RandomRotFlip`` then
``RandomCrop`` and perturb the teacher input with clipped Gaussian noise; there is no intensity
augmentation. They draw from numpy's global RNG, which makes results depend on worker count and
order. Here every random function takes a ``numpy.random.Generator`` (or a ``torch.Generator``)
so a caller can derive one per item (see :class:`dycon.data.sampling.PatchDataset`).

Arrays follow :class:`dycon.data.volume.Volume`: image (C, X, Y, Z), label (X, Y, Z).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

Patch = tuple[int, int, int]


def _check_patch(patch: Sequence[int]) -> Patch:
    if len(patch) != 3 or not all(isinstance(p, int | np.integer) and p >= 1 for p in patch):
        raise ValueError(f"patch must be three positive ints (X, Y, Z), got {patch!r}")
    return (int(patch[0]), int(patch[1]), int(patch[2]))


def _check_pair(image: np.ndarray, label: np.ndarray) -> None:
    if image.ndim != 4 or label.ndim != 3 or image.shape[1:] != label.shape:
        raise ValueError(
            f"need image (C, X, Y, Z) and label (X, Y, Z) on the same grid, got image "
            f"{image.shape} and label {label.shape}"
        )


def crop_padding(*, shape: Sequence[int], patch: Sequence[int]) -> Patch:
    r"""Per-axis padding (each side) that the official ``RandomCrop`` applies before cropping.

    If any axis is not larger than the patch (:math:`s_i \le p_i` for some :math:`i`), *every*
    axis is padded by

    .. math::
        \mathrm{pad}_i = \max\left(\left\lfloor (p_i - s_i) / 2 \right\rfloor + 3,\ 0\right)

    on both sides; otherwise nothing is padded. Note the ``max(., 0)`` applies to all axes, so
    an axis up to 5 voxels larger than the patch is padded too when another axis triggers the
    rule (e.g. :math:`s=p+2` gets 2 per side), exactly as in the official code.

    Args:
        shape: Spatial shape (X, Y, Z) of the volume.
        patch: Patch size (X, Y, Z).

    Returns:
        Padding per axis, applied on both sides.
    """
    patch = _check_patch(patch)
    if not any(s <= p for s, p in zip(shape, patch, strict=True)):
        return (0, 0, 0)
    x, y, z = (max((p - s) // 2 + 3, 0) for s, p in zip(shape, patch, strict=True))
    return (x, y, z)


def random_crop(
    image: np.ndarray,
    label: np.ndarray,
    *,
    patch: Sequence[int],
    rng: np.random.Generator,
    foreground_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Crop a patch, padding small volumes first by the official rule (:func:`crop_padding`).

    With probability ``foreground_fraction`` the crop is centred on a foreground voxel
    (``label > 0``) drawn uniformly, its start clamped to :math:`[0, s_i - p_i]` so the patch
    stays inside (it still contains that voxel). Otherwise, or when the volume has no
    foreground, each start is uniform over all :math:`s_i - p_i + 1` valid positions (the
    official ``randint(0, s - p)`` excludes the last one; a one-voxel difference).

    Args:
        image: (C, X, Y, Z) array.
        label: (X, Y, Z) array on the same grid.
        patch: Output spatial size (X, Y, Z).
        rng: Source of randomness; consumed in a fixed order (decision, then position).
        foreground_fraction: Probability in [0, 1] of a foreground-centred crop. Only use it on
            labeled cases: on unlabeled ones it reads ground truth the method may not see.

    Returns:
        ``(image, label)`` copies of shape (C, *patch) and patch, dtypes unchanged.
    """
    _check_pair(image, label)
    patch = _check_patch(patch)
    if not 0.0 <= foreground_fraction <= 1.0:
        raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
    pad = crop_padding(shape=label.shape, patch=patch)
    if any(pad):
        widths = [(q, q) for q in pad]
        image = np.pad(image, [(0, 0), *widths], mode="constant", constant_values=0)
        label = np.pad(label, widths, mode="constant", constant_values=0)
    space = np.subtract(label.shape, patch)  # >= 0 after padding; (s - p) per axis
    # Draw the decision only when it can matter, so fraction 0 leaves the stream untouched.
    centred = foreground_fraction > 0 and rng.random() < foreground_fraction
    voxels = np.flatnonzero(label) if centred else None  # flat ids avoid an (n, 3) argwhere
    if voxels is not None and voxels.size:
        centre = np.unravel_index(voxels[rng.integers(voxels.size)], label.shape)
        start = np.clip(np.subtract(centre, np.array(patch) // 2), 0, space)
    else:
        start = rng.integers(0, space + 1)  # uniform over all valid starts, per axis
    box = tuple(slice(int(a), int(a) + p) for a, p in zip(start, patch, strict=True))
    return image[(slice(None), *box)].copy(), label[box].copy()  # (C, *patch), patch


def draw_rot_flip(rng: np.random.Generator) -> tuple[int, int]:
    """Draw the official ``RandomRotFlip`` parameters: ``k`` in {0..3}, flip ``axis`` in {0, 1}."""
    return int(rng.integers(4)), int(rng.integers(2))


def rot90_flip(
    image: np.ndarray, label: np.ndarray, *, k: int, axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate by ``k`` quarter turns in the (X, Y) plane, then flip along X (0) or Y (1).

    Args:
        image: (C, X, Y, Z) array.
        label: (X, Y, Z) array on the same grid.
        k: Quarter turns, as ``np.rot90`` counts them (X towards Y).
        axis: Spatial axis to flip after rotating: 0 (X) or 1 (Y).

    Returns:
        Contiguous ``(image, label)``; X and Y sizes swap when ``k`` is odd.
    """
    _check_pair(image, label)
    if axis not in (0, 1):
        raise ValueError(f"flip axis must be 0 (X) or 1 (Y), got {axis!r}")
    image = np.flip(np.rot90(image, k, axes=(1, 2)), axis=axis + 1)  # (C, X', Y', Z)
    label = np.flip(np.rot90(label, k, axes=(0, 1)), axis=axis)  # (X', Y', Z)
    return np.ascontiguousarray(image), np.ascontiguousarray(label)


def random_rot_flip(
    image: np.ndarray, label: np.ndarray, *, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The official ``RandomRotFlip``: :func:`rot90_flip` with :func:`draw_rot_flip` parameters.

    The official code always flips, so its 8 parameter pairs give only 4 distinct results, the 4
    reflections of the square's symmetry group: the identity and the pure rotations never
    occur (flip X after k turns equals flip Y after k + 2 turns).

    Args:
        image: (C, X, Y, Z) array.
        label: (X, Y, Z) array on the same grid.
        rng: Source of randomness (two draws: k, then axis).

    Returns:
        Contiguous ``(image, label)`` copies.
    """
    k, axis = draw_rot_flip(rng)
    return rot90_flip(image, label, k=k, axis=axis)


def add_teacher_noise(
    x: Tensor, *, std: float = 0.1, clip: float = 0.2, generator: torch.Generator | None = None
) -> Tensor:
    r"""The official teacher input: :math:`x + \mathrm{clip}(\varepsilon, -c, c)`,
    :math:`\varepsilon \sim \mathcal{N}(0, \sigma^2)` i.i.d. per element.

    Args:
        x: Any float tensor (typically the (B, C, X, Y, Z) student batch).
        std: :math:`\sigma \ge 0` (official 0.1).
        clip: :math:`c \ge 0` (official 0.2).
        generator: Optional generator on ``x``'s device, for reproducible noise.

    Returns:
        A new tensor like ``x``; ``|result - x| <= clip`` element-wise.
    """
    if std < 0 or clip < 0:
        raise ValueError(f"std and clip must be >= 0, got std={std}, clip={clip}")
    if not x.is_floating_point():
        raise ValueError(f"teacher noise needs a float tensor, got {x.dtype}")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + (noise * std).clamp_(-clip, clip)
