"""Patch dataset, the two-stream labeled/unlabeled batch sampler, and DataLoader worker seeding.

Semi-supervised batches follow the official DyCON training: each batch holds
``labeled_batch_size`` labeled cases (an epoch is one permutation of the labeled set) followed
by unlabeled cases drawn from an endlessly re-permuted cycle. The labeled set is the *first*
``num_labeled`` entries of the train list (:func:`two_stream_indices`), not a random subset.

Unlike the official code, every random draw is a pure function of (seed, epoch, index): the
augmentation of an item does not depend on the number of DataLoader workers, their order, or
which worker fetched it.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Collection, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .transforms import _check_patch, draw_rot_flip, random_crop, rot90_flip
from .volume import DataError, Volume

# Distinct first words keep the dataset's and the sampler's seed sequences apart even for the
# same user seed (SeedSequence pads short entropy with zeros, so [s, e] == [s, e, 0] otherwise).
_PATCH_STREAM = 0x50415443  # "PATC"
_SAMPLER_STREAM = 0x54574F53  # "TWOS"


def _check_count(name: str, value: int, *, minimum: int) -> int:
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


class PatchDataset(Dataset):
    """Random training patches from whole volumes, reproducible per (seed, epoch, index).

    Item ``i`` of epoch ``e`` draws from ``default_rng(SeedSequence([tag, seed, e, i]))``: first
    the rotation/flip parameters (if enabled), then the crop. The rotation and flip are applied
    after cropping the patch's pre-image (X and Y patch sizes swapped for odd ``k``), which has
    the same distribution as the official order (rotate and flip the volume, then crop) at a
    fraction of the cost and keeps the output size ``patch`` for any X, Y.

    Within one epoch an index always yields the same patch; the two-stream sampler repeats an
    unlabeled index within an epoch only when the unlabeled set is smaller than the unlabeled
    draws of that epoch. Call :meth:`set_epoch` before creating each epoch's DataLoader
    iterator: workers receive a copy of the dataset when they start, so with
    ``persistent_workers=True`` the epoch set later never reaches them.

    Args:
        volumes: A sequence of :class:`Volume`, or a callable loading volume ``i`` (picklable if
            DataLoader workers are used); then ``num_cases`` is required.
        patch: Patch size (X, Y, Z).
        seed: Base seed >= 0.
        rot_flip: Apply the official random rot90 + flip.
        foreground_fraction: Probability of a crop centred on a foreground voxel (see
            :func:`dycon.data.transforms.random_crop`); applies only to ``labeled`` indices.
        labeled: Indices whose labels may steer the crop. Required when ``foreground_fraction >
            0``, so that unlabeled ground truth never leaks into training by default; pass
            ``range(len(volumes))`` for fully supervised training.
        num_cases: Number of cases when ``volumes`` is a callable.
    """

    def __init__(
        self,
        *,
        volumes: Sequence[Volume] | Callable[[int], Volume],
        patch: Sequence[int],
        seed: int = 0,
        rot_flip: bool = True,
        foreground_fraction: float = 0.0,
        labeled: Collection[int] | None = None,
        num_cases: int | None = None,
    ) -> None:
        if callable(volumes):
            if num_cases is None:
                raise ValueError("num_cases is required when volumes is a loader callable")
            self._load, self._len = volumes, _check_count("num_cases", num_cases, minimum=0)
        else:
            self._load, self._len = volumes.__getitem__, len(volumes)
        if not 0.0 <= foreground_fraction <= 1.0:
            raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction}")
        if foreground_fraction > 0 and labeled is None:
            raise ValueError(
                "foreground_fraction > 0 needs labeled=<indices whose labels may be used>; "
                "biasing unlabeled crops would read their ground truth"
            )
        self.patch = _check_patch(patch)
        self.seed = _check_count("seed", seed, minimum=0)
        self.rot_flip = bool(rot_flip)
        self.foreground_fraction = float(foreground_fraction)
        self.labeled = frozenset(operator.index(i) for i in (() if labeled is None else labeled))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws the following items use."""
        self.epoch = _check_count("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        return self._len

    def rng(self, index: int) -> np.random.Generator:
        """The generator item ``index`` of the current epoch draws from."""
        entropy = [_PATCH_STREAM, self.seed, self.epoch, index]
        return np.random.default_rng(np.random.SeedSequence(entropy))

    def __getitem__(self, index: int) -> dict:
        index = operator.index(index)
        if not 0 <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} cases")
        volume = self._load(index)
        if not isinstance(volume, Volume):
            raise DataError(f"case {index}: loader returned {type(volume).__name__}, not Volume")
        rng = self.rng(index)
        patch, k, axis = self.patch, 0, None
        if self.rot_flip:
            k, axis = draw_rot_flip(rng)
            if k % 2:  # the crop is rotated afterwards, so cut its pre-image: X and Y swapped
                patch = (patch[1], patch[0], patch[2])
        fraction = self.foreground_fraction if index in self.labeled else 0.0
        image, label = random_crop(
            volume.image, volume.label, patch=patch, rng=rng, foreground_fraction=fraction
        )
        if axis is not None:
            image, label = rot90_flip(image, label, k=k, axis=axis)
        return {
            "image": torch.from_numpy(image),  # (C, *patch) float32
            "label": torch.from_numpy(label.astype(np.int64)),  # patch, int64
            "case_id": volume.case_id,
            "index": index,
        }


def two_stream_indices(train_ids: Sequence[str], *, num_labeled: int) -> tuple[list, list]:
    """Split train-list positions into labeled (the first ``num_labeled``) and unlabeled (rest).

    This is the official protocol: "labeled" means the first N entries of the train list, in
    list order, so the list order is part of the split.

    Args:
        train_ids: Case ids in train-list order (unique).
        num_labeled: Number of labeled cases, 1 <= num_labeled <= len(train_ids).

    Returns:
        ``(labeled, unlabeled)`` lists of indices into ``train_ids``.
    """
    num_labeled = _check_count("num_labeled", num_labeled, minimum=1)
    if num_labeled > len(train_ids):
        raise ValueError(
            f"num_labeled={num_labeled} exceeds the {len(train_ids)} cases of the train list"
        )
    if len(set(train_ids)) != len(train_ids):
        raise ValueError("train_ids contains duplicates; each case must appear once")
    return list(range(num_labeled)), list(range(num_labeled, len(train_ids)))


def _as_indices(name: str, values: Sequence[int], *, allow_empty: bool = False) -> tuple[int, ...]:
    indices = tuple(operator.index(v) for v in values)
    if not indices and allow_empty:
        return indices
    if not indices:
        raise ValueError(f"{name} is empty")
    if min(indices) < 0:
        raise ValueError(f"{name} holds a negative index ({min(indices)})")
    if len(set(indices)) != len(indices):
        raise ValueError(f"{name} holds duplicate indices")
    return indices


def _endless_permutations(values: Sequence[int], rng: np.random.Generator) -> Iterator[int]:
    while True:  # one fresh permutation per pass, like the official iterate_eternally
        yield from rng.permutation(values).tolist()


class TwoStreamBatchSampler(Sampler[list[int]]):
    """Batches of ``labeled_batch_size`` labeled then the rest unlabeled indices (official).

    An epoch walks one permutation of the labeled set in groups of ``labeled_batch_size`` (an
    incomplete last group is dropped), so ``len = len(labeled) // labeled_batch_size``. Each batch
    is completed with ``batch_size - labeled_batch_size`` unlabeled indices taken in order from a
    cycle of permutations of the unlabeled set, restarted every epoch; any run of
    ``ceil(len(unlabeled) / unlabeled_per_batch)`` batches from an epoch's start covers it all.

    Batches depend only on (seed, epoch). Like ``DistributedSampler``, the epoch changes only
    through :meth:`set_epoch`: call it before each epoch, or every epoch repeats the same
    batches (the official sampler reshuffles on each iteration). Iteration cannot advance it
    itself: a multi-worker DataLoader calls ``iter()`` twice per epoch, one worker once.

    Args:
        labeled_indices: Dataset indices of labeled cases (unique, non-negative).
        unlabeled_indices: Dataset indices of unlabeled cases, disjoint from the labeled ones.
        batch_size: Total batch size.
        labeled_batch_size: Labeled cases per batch, 1 <= labeled_batch_size < batch_size.
        seed: Base seed >= 0.
    """

    def __init__(
        self,
        *,
        labeled_indices: Sequence[int],
        unlabeled_indices: Sequence[int],
        batch_size: int,
        labeled_batch_size: int,
        seed: int = 0,
    ) -> None:
        self.labeled_indices = _as_indices("labeled_indices", labeled_indices)
        self.unlabeled_indices = _as_indices(
            "unlabeled_indices", unlabeled_indices, allow_empty=True
        )
        overlap = sorted(set(self.labeled_indices) & set(self.unlabeled_indices))
        if overlap:
            raise ValueError(f"labeled and unlabeled indices overlap: {overlap[:5]}")
        self.batch_size = _check_count("batch_size", batch_size, minimum=2)
        self.labeled_batch_size = _check_count("labeled_batch_size", labeled_batch_size, minimum=1)
        if self.labeled_batch_size >= self.batch_size:
            raise ValueError(
                f"labeled_batch_size ({labeled_batch_size}) must be < batch_size ({batch_size}) "
                "to leave room for unlabeled cases"
            )
        if len(self.labeled_indices) < self.labeled_batch_size:
            raise ValueError(
                f"{len(self.labeled_indices)} labeled cases cannot fill a labeled batch of "
                f"{self.labeled_batch_size}"
            )
        self.seed = _check_count("seed", seed, minimum=0)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the following iterations produce the batches of ``epoch``."""
        self.epoch = _check_count("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        return len(self.labeled_indices) // self.labeled_batch_size

    def __iter__(self) -> Iterator[list[int]]:
        entropy = [_SAMPLER_STREAM, self.seed, self.epoch]
        labeled_seq, unlabeled_seq = np.random.SeedSequence(entropy).spawn(2)
        labeled = np.random.default_rng(labeled_seq).permutation(self.labeled_indices).tolist()
        # Every case labeled (a fully supervised row): the other rows come from the labeled set
        # too, and the trainer hides their labels as for any row past the labeled ones.
        unlabeled = _endless_permutations(
            self.unlabeled_indices or self.labeled_indices, np.random.default_rng(unlabeled_seq)
        )
        n_lab, n_unl = self.labeled_batch_size, self.batch_size - self.labeled_batch_size
        for b in range(len(self)):
            yield labeled[b * n_lab : (b + 1) * n_lab] + [next(unlabeled) for _ in range(n_unl)]


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` seeding numpy's and ``random``'s global RNGs per DataLoader worker.

    Torch gives each worker ``torch.initial_seed() = base_seed + worker_id``; this passes that on
    (mod 2**32) to numpy and ``random``. The official code seeds only ``random``, so its numpy
    augmentations were identical across workers. :class:`PatchDataset` never touches the global
    RNGs, so its output does not depend on this; it protects other code run in workers.

    Args:
        worker_id: The worker's number (unused: ``torch.initial_seed()`` already includes it).
    """
    del worker_id
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 - the point is to seed the legacy global RNG
    random.seed(seed)
