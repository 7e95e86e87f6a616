"""The training loop: EMA teacher, bf16 autocast, logging, atomic checkpoints, exact resume.

A method owns its losses (``dycon.methods``); everything else is here. Unlabeled rows of each
batch reach the method with their labels replaced by IGNORE_LABEL unless the method says it uses
unlabeled ground truth (the official FeCL), so a leak can only be explicit. Under ``torchrun``
the trainable networks are wrapped in DDP and each rank trains on its shard of the global batch
(``distributed.py``); ``train.val_every`` adds validation Dice to the log and keeps the best
checkpoint on the validation list for ``eval.select=best_val``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..config import ConfigError
from ..data.sampling import PatchDataset, TwoStreamBatchSampler, seed_worker, two_stream_indices
from ..data.volume import Volume
from ..methods import IGNORE_LABEL, METHODS, Batch, Method, StepState
from ..models import UNet3D, VNet
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import World, barrier, check_divisible, init_world, shard
from .ema import ema_update
from .schema import ExperimentConfig, method_config
from .validation import validation_dice


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. repeated non-finite losses); the message says why."""


@dataclass
class TrainData:
    train_ids: list[str]  # in list order: the first num_labeled are the labeled cases
    load: Callable[[int], Volume]  # index into train_ids -> Volume (picklable for workers)
    val_ids: list[str] = field(default_factory=list)  # the validation list, never the test list
    val_load: Callable[[int], Volume] | None = None


def snapshot_path(run_dir: Path, step: int) -> Path:
    """Where the weights kept at ``step`` (``train.snapshots``) live."""
    return run_dir / "checkpoints" / f"step_{step:07d}.pt"


def validation_interval(cfg: ExperimentConfig) -> int:
    """Steps between validations: ``train.val_every``, or ``checkpoint_every`` for best_val."""
    if cfg.train.val_every:
        return cfg.train.val_every
    return cfg.train.checkpoint_every if cfg.eval.select == "best_val" else 0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - for third-party code on the global RNG
    torch.manual_seed(seed)


def build_model(cfg: ExperimentConfig) -> nn.Module:
    m = cfg.model
    extra = {} if m.dropout is None else {"dropout": m.dropout}
    if m.name == "unet3d":
        return UNet3D(
            in_channels=m.in_channels,
            num_classes=m.num_classes,
            widths=m.widths,
            embedding_dim=m.embedding_dim,
            **extra,
        )
    return VNet(
        in_channels=m.in_channels,
        num_classes=m.num_classes,
        base_filters=m.base_filters,
        normalization=m.normalization,
        embedding_dim=m.embedding_dim,
        **extra,
    )


def build_method(cfg: ExperimentConfig) -> Method:
    return METHODS[cfg.method_name][1](method_config(cfg))


def build_networks(cfg: ExperimentConfig, method: Method, device) -> dict[str, nn.Module]:
    nets: dict[str, nn.Module] = {}
    for spec in method.networks:
        if spec.ema_of is None:
            nets[spec.name] = build_model(cfg).to(device)
        else:  # the teacher starts as a copy and is never optimised
            nets[spec.name] = copy.deepcopy(nets[spec.ema_of]).requires_grad_(False)
    return nets


def _lr(cfg: ExperimentConfig, step: int) -> float:
    if cfg.optim.schedule == "poly":
        return cfg.optim.lr * (1.0 - step / cfg.train.iterations) ** cfg.optim.poly_power
    return cfg.optim.lr


class _Log:
    """log.jsonl, cut back to the resumed step so a resumed run logs each step once."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        keep = []
        if path.exists():
            keep = [
                ln
                for ln in path.read_text().splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= resume_step
            ]
        path.write_text("".join(ln + "\n" for ln in keep))
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def train(cfg: ExperimentConfig, *, data: TrainData, run_dir: Path, progress: bool = True) -> dict:
    """Train ``cfg`` to ``cfg.train.iterations``; resume from ``run_dir/checkpoints/last.pt``.

    Returns ``{"steps", "skipped", "seconds", "peak_memory_gb", "world_size", "best"}``.
    """
    world, device = init_world(resolve_device(cfg.train.device))
    check_divisible(
        batch_size=cfg.data.batch_size, labeled_batch_size=cfg.data.labeled_batch_size, world=world
    )
    val_every = validation_interval(cfg)
    snapshot_steps = {max(1, round(f * cfg.train.iterations)) for f in cfg.train.snapshots}
    if val_every and (not data.val_ids or data.val_load is None):
        raise ConfigError(
            f"validation needs a validation list, and {cfg.data.dataset!r} was given none "
            "(data.val_list); use eval.select=final and train.val_every=0"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.train.seed + world.rank)  # ranks draw different dropout masks
    method = build_method(cfg)
    nets = build_networks(cfg, method, device)
    trainable = [s.name for s in method.networks if s.ema_of is None]
    optimizers = {
        n: torch.optim.SGD(
            nets[n].parameters(),
            lr=cfg.optim.lr,
            momentum=cfg.optim.momentum,
            weight_decay=cfg.optim.weight_decay,
        )
        for n in trainable
    }
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
    ckpt = run_dir / "checkpoints" / "last.pt"
    state = {"epoch": 0, "batch": 0, "skipped": 0, "seconds": 0.0, "best": None}
    step = 0
    if ckpt.exists():
        info = load_checkpoint(ckpt, nets=nets, optimizers=optimizers)
        step, state = info["step"], {"best": None, **info["extra"]}
        if world.size > 1:  # the checkpoint holds rank 0's RNG; give each rank its own stream
            seed_everything(cfg.train.seed + 7919 * step + world.rank)
    forward = _wrap_ddp(nets, trainable, world, device)
    log = _Log(run_dir / "log.jsonl", step) if world.is_main else None
    bar = tqdm(
        total=cfg.train.iterations,
        initial=step,
        disable=not (progress and world.is_main),
        dynamic_ncols=True,
    )
    streak, start = 0, time.perf_counter() - state["seconds"]
    try:
        while step < cfg.train.iterations:
            dataset.set_epoch(state["epoch"])
            sampler.set_epoch(state["epoch"])
            batches = [  # resume mid-epoch at the same batch; this rank's shard of each
                shard(b, labeled_batch_size=cfg.data.labeled_batch_size, world=world)
                for b in list(sampler)[state["batch"] :]
            ]
            # A private generator: DataLoader draws a worker base seed from it, which must not
            # shift the global RNG (dropout, teacher noise) between a run and its resumption.
            loader = DataLoader(
                dataset,
                batch_sampler=batches,
                num_workers=cfg.data.num_workers,
                worker_init_fn=seed_worker,
                generator=torch.Generator().manual_seed(cfg.train.seed),
            )
            for items in loader:
                record = _step(cfg, method, forward, optimizers, items, step, device, world)
                step += 1
                state["batch"] += 1
                streak = streak + 1 if record["skipped"] else 0
                state["skipped"] += int(record["skipped"])
                if streak >= cfg.train.max_nonfinite:
                    raise TrainingError(
                        f"{streak} non-finite losses in a row up to step {step} "
                        f"(terms {record['terms']}); lower optim.lr or check the input data"
                    )
                last = step >= cfg.train.iterations
                if val_every and (step % val_every == 0 or last):
                    record["val_dice"] = _validate(
                        cfg, nets, data, run_dir, step, state, device, world
                    )
                state["seconds"] = time.perf_counter() - start
                if log is not None and (
                    step % cfg.train.log_every == 0 or last or "val_dice" in record
                ):
                    log.write(
                        {
                            "step": step,
                            **record,
                            "skipped_total": state["skipped"],
                            "seconds": round(state["seconds"], 3),
                        }
                    )
                bar.update(1)
                bar.set_postfix(
                    {k: f"{v:.3g}" for k, v in record["terms"].items()}
                    | {k: f"{v:.3g}" for k, v in record["logs"].items()}
                )
                if world.is_main and (step % cfg.train.checkpoint_every == 0 or last):
                    save_checkpoint(
                        ckpt, step=step, nets=nets, optimizers=optimizers, extra=dict(state)
                    )
                if world.is_main and step in snapshot_steps:  # weights only, for later analysis
                    save_checkpoint(
                        snapshot_path(run_dir, step), step=step, nets=nets, optimizers={}, extra={}
                    )
                if last:
                    break
            else:
                state["epoch"], state["batch"] = state["epoch"] + 1, 0
    finally:
        bar.close()
        if log is not None:
            log.close()
    barrier(world)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "steps": step,
        "skipped": state["skipped"],
        "seconds": state["seconds"],
        "peak_memory_gb": peak,
        "world_size": world.size,
        "best": state["best"],
    }


def _wrap_ddp(nets: dict, trainable: list[str], world: World, device) -> dict[str, nn.Module]:
    """What the method calls: DDP wrappers of the trainable networks under torchrun.

    Checkpoints and the EMA keep using the bare modules, so a checkpoint loads the same way
    whether it was written by one process or several.
    """
    if world.size == 1:
        return nets
    ids = [device.index] if device.type == "cuda" else None
    # Unused parameters are normal: MT never calls the projection head, nor DyCON the SDF head.
    return {
        name: DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)
        if name in trainable
        else net
        for name, net in nets.items()
    }


def _validate(cfg, nets, data, run_dir, step, state, device, world) -> float | None:
    """Rank 0 scores the validation list and keeps ``best.pt``; the others wait for it."""
    score = None
    if world.is_main:
        model = nets[cfg.eval.model]
        score = validation_dice(
            model, cfg=cfg, num_cases=len(data.val_ids), load=data.val_load, device=device
        )
        if state["best"] is None or score > state["best"]["val_dice"]:
            state["best"] = {"step": step, "val_dice": score}
            save_checkpoint(
                run_dir / "checkpoints" / "best.pt",
                step=step,
                nets={cfg.eval.model: model},
                optimizers={},
                extra={"val_dice": score},
            )
    barrier(world)
    return score


def _step(cfg, method, nets, optimizers, items, step, device, world: World | None = None) -> dict:
    """One optimisation step; a non-finite loss skips the update and is reported.

    ``nets`` are what the method calls (DDP wrappers under torchrun); the EMA reads the bare
    student through ``.module``.
    """
    world = world or World()
    image = items["image"].to(device)  # (B / world, C, *patch)
    label = items["label"].to(device)  # (B / world, *patch)
    n = cfg.data.labeled_batch_size // world.size
    if not method.uses_unlabeled_ground_truth:
        label[n:] = IGNORE_LABEL
    for net in nets.values():
        net.train()  # the teacher too: dropout on, as in the official mean teacher
    lr = _lr(cfg, step)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
    amp = cfg.train.amp and device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        terms = method(
            Batch(image=image, label=label, num_labeled=n),
            nets,
            StepState(step=step, total_steps=cfg.train.iterations),
        )
    total = terms.total()
    values = {k: float(v.detach()) for k, v in terms.terms.items()}
    skipped = not math.isfinite(float(total.detach()))
    if world.size > 1:  # every rank must skip together, or DDP's all-reduce would hang
        flag = torch.tensor([float(skipped)], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        skipped = bool(flag.item())
    if not skipped:
        total.backward()
        for name, opt in optimizers.items():
            if cfg.optim.grad_clip is not None:
                nn.utils.clip_grad_norm_(nets[name].parameters(), cfg.optim.grad_clip)
            opt.step()
        for spec in method.networks:
            if spec.ema_of is not None:
                student = getattr(nets[spec.ema_of], "module", nets[spec.ema_of])
                ema_update(nets[spec.name], student, step=step, decay=cfg.train.ema_decay)
    return {
        "loss": float(total.detach()),
        "terms": values,
        "weights": terms.weights,
        "logs": terms.logs,
        "lr": lr,
        "skipped": skipped,
    }
