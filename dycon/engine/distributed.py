"""Data-parallel training under ``torchrun``: process group, device, and the batch shard of a rank.

One process per device; torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``. The configured
batch stays the *global* batch: each rank trains on its slice of the labeled and of the unlabeled
rows, and DDP averages the gradients, so a config means the same thing on 1 or N processes.
Rank 0 alone logs, checkpoints, validates and evaluates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..config import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The process's place in a torchrun launch (``World()`` when not launched by torchrun)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(
            "RANK / WORLD_SIZE / LOCAL_RANK must be integers (set by torchrun)"
        ) from None
    return World(rank=rank, size=size, local_rank=local)


def init_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group (NCCL on CUDA, gloo on CPU) and pick this rank's device."""
    world = world_from_env()
    if world.size == 1:
        return world, device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world, device


def check_divisible(*, batch_size: int, labeled_batch_size: int, world: World) -> None:
    unlabeled = batch_size - labeled_batch_size
    if labeled_batch_size % world.size or unlabeled % world.size:
        raise ConfigError(
            f"data.labeled_batch_size={labeled_batch_size} and the unlabeled rows "
            f"({unlabeled}) must each divide by the {world.size} processes; change "
            "data.batch_size / data.labeled_batch_size or --nproc_per_node"
        )


def shard(batch: list[int], *, labeled_batch_size: int, world: World) -> list[int]:
    """This rank's rows of a global batch (labeled rows first), labeled rows still first."""
    if world.size == 1:
        return batch
    lab, unl = batch[:labeled_batch_size], batch[labeled_batch_size:]
    nl, nu = len(lab) // world.size, len(unl) // world.size
    r = world.rank
    return lab[r * nl : (r + 1) * nl] + unl[r * nu : (r + 1) * nu]


def barrier(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.barrier()


def resolve_device(name: str) -> torch.device:
    """``train.device``: ``auto`` is CUDA when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
