"""The training cases and the batches drawn from them, epoch by epoch, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from ..data.sampling import PatchDataset, TwoStreamBatchSampler, seed_worker, two_stream_indices
from ..data.volume import Volume
from ..methods import Stage
from .distributed import World, shard
from .schema import ExperimentConfig


@dataclass
class TrainData:
    train_ids: list[str]  # in list order: the first num_labeled are the labeled cases
    load: Callable[[int], Volume]  # index into train_ids -> Volume (picklable for workers)
    val_ids: list[str] = field(default_factory=list)  # the validation list, never the test list
    val_load: Callable[[int], Volume] | None = None


@dataclass
class BatchStream:
    """Patches of the training cases and the two-stream batches of their indices."""

    dataset: PatchDataset
    sampler: TwoStreamBatchSampler


def batch_stream(cfg: ExperimentConfig, data: TrainData) -> BatchStream:
    labeled, unlabeled = two_stream_indices(data.train_ids, num_labeled=cfg.data.num_labeled)
    dataset = PatchDataset(
        volumes=data.load,
        num_cases=len(data.train_ids),
        patch=cfg.data.patch,
        seed=cfg.train.seed,
        rot_flip=cfg.data.rot_flip,
        foreground_fraction=cfg.data.foreground_fraction,
        labeled=labeled,
    )
    sampler = TwoStreamBatchSampler(
        labeled_indices=labeled,
        unlabeled_indices=unlabeled,
        batch_size=cfg.data.batch_size,
        labeled_batch_size=cfg.data.labeled_batch_size,
        seed=cfg.train.seed,
    )
    return BatchStream(dataset=dataset, sampler=sampler)


def epoch_loader(
    cfg: ExperimentConfig, stream: BatchStream, *, epoch: int, skip: int, stage: Stage, world: World
) -> DataLoader:
    """The batches of ``epoch`` after the first ``skip`` (a resumed run continues mid-epoch),
    each cut to this rank's shard, and to its labeled rows in a labeled-only stage."""
    stream.dataset.set_epoch(epoch)
    stream.sampler.set_epoch(epoch)
    keep = cfg.data.labeled_batch_size if stage.labeled_only else None
    batches = [
        shard(b[:keep], labeled_batch_size=cfg.data.labeled_batch_size, world=world)
        for b in list(stream.sampler)[skip:]
    ]
    # A private generator: DataLoader draws a worker base seed from it, which must not shift
    # the global RNG (dropout, teacher noise) between a run and its resumption.
    return DataLoader(
        stream.dataset,
        batch_sampler=batches,
        num_workers=cfg.data.num_workers,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )
