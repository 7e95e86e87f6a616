"""The training loop: EMA copies, bf16 autocast, stages, logging, atomic checkpoints, exact resume.

A method owns its losses and declares what it needs (``dycon.methods.base``: networks, stages,
a batch transform); the trainer carries those declarations out and owns everything else, with
no branch on which method runs. ``train`` reads as the run's outline: build what the method
declares (``networks.py``), resume, then train each stage, one step at a time (``_step``), each
followed by the bookkeeping of ``_after_step`` (non-finite streaks, validation, log, checkpoints,
snapshots). Unlabeled rows of each batch reach the method with their labels replaced by
IGNORE_LABEL unless the method says it uses unlabeled ground truth (the official FeCL), so a leak
can only be explicit. Under ``torchrun`` the trainable networks are wrapped in DDP and each rank
trains on its shard of the global batch (``distributed.py``); ``train.val_every`` adds
validation Dice to the log and keeps the best checkpoint on the validation list for
``eval.select=best_val``.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import ConfigError
from ..methods import IGNORE_LABEL, Batch, Method, Stage, StepState
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import World, barrier, check_divisible, init_world, resolve_device
from .ema import ema_update
from .networks import (
    begin_stage,
    build_method,
    build_networks,
    build_optimizers,
    plan_stages,
    trainable_names,
    wrap_ddp,
)
from .schema import ExperimentConfig
from .train_data import BatchStream, TrainData, batch_stream, epoch_loader
from .train_log import TrainLog, progress_bar, show_step
from .validation import validate_and_keep_best, validation_interval

# Kept importable from here for the scripts and notebooks that used them before the split.
__all__ = [
    "TrainData",
    "TrainingError",
    "build_method",
    "build_networks",
    "resolve_device",
    "snapshot_path",
    "train",
    "validation_interval",
]


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. repeated non-finite losses); the message says why."""


def snapshot_path(run_dir: Path, step: int) -> Path:
    """Where the weights kept at ``step`` (``train.snapshots``) live."""
    return run_dir / "checkpoints" / f"step_{step:07d}.pt"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - for third-party code on the global RNG
    torch.manual_seed(seed)


@dataclass
class _Run:
    """What one run carries from step to step."""

    cfg: ExperimentConfig
    data: TrainData
    run_dir: Path
    world: World
    device: torch.device
    method: Method
    nets: dict[str, nn.Module]  # the bare modules: checkpoints, EMA, validation
    forward: dict[str, nn.Module]  # what the method calls (DDP wrappers under torchrun)
    optimizers: dict[str, torch.optim.Optimizer]
    stream: BatchStream
    state: dict  # epoch, batch (within the epoch), skipped, seconds, best: saved in checkpoints
    log: TrainLog | None
    bar: object
    clock: float  # perf_counter() at the (virtual) start of the run
    streak: int = 0  # consecutive non-finite losses


def train(cfg: ExperimentConfig, *, data: TrainData, run_dir: Path, progress: bool = True) -> dict:
    """Train ``cfg`` to ``cfg.train.iterations``; resume from ``run_dir/checkpoints/last.pt``.

    Returns ``{"steps", "skipped", "seconds", "peak_memory_gb", "world_size", "best"}``.
    """
    world, device = init_world(resolve_device(cfg.train.device))
    _check_run(cfg, data, world)
    method = build_method(cfg)
    stages = plan_stages(method, cfg.train.iterations)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.train.seed + world.rank)  # ranks draw different dropout masks
    nets = build_networks(cfg, method, device)
    optimizers = build_optimizers(cfg, nets, trainable_names(method))
    stream = batch_stream(cfg, data)
    step, state = _resume(cfg, run_dir, nets, optimizers, world)
    run = _Run(
        cfg=cfg,
        data=data,
        run_dir=run_dir,
        world=world,
        device=device,
        method=method,
        nets=nets,
        forward=wrap_ddp(nets, trainable_names(method), world, device),
        optimizers=optimizers,
        stream=stream,
        state=state,
        log=TrainLog(run_dir / "log.jsonl", step) if world.is_main else None,
        bar=progress_bar(
            total=cfg.train.iterations, initial=step, enabled=progress and world.is_main
        ),
        clock=time.perf_counter() - state["seconds"],
    )
    try:
        for start, stage in stages:
            if step < start + stage.steps:
                step = _train_stage(run, start, stage, step)
    finally:
        run.bar.close()
        if run.log is not None:
            run.log.close()
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


def _check_run(cfg: ExperimentConfig, data: TrainData, world: World) -> None:
    """Configuration errors that need the data or the world: raised before any folder is made."""
    check_divisible(
        batch_size=cfg.data.batch_size, labeled_batch_size=cfg.data.labeled_batch_size, world=world
    )
    if validation_interval(cfg) and (not data.val_ids or data.val_load is None):
        raise ConfigError(
            f"validation needs a validation list, and {cfg.data.dataset!r} was given none "
            "(data.val_list); use eval.select=final and train.val_every=0"
        )


def _resume(cfg, run_dir: Path, nets: dict, optimizers: dict, world: World) -> tuple[int, dict]:
    """The step to continue from and the loop's state: from ``last.pt`` if there is one."""
    state = {"epoch": 0, "batch": 0, "skipped": 0, "seconds": 0.0, "best": None}
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        return 0, state
    info = load_checkpoint(ckpt, nets=nets, optimizers=optimizers)
    step, state = info["step"], {"best": None, **info["extra"]}
    if world.size > 1:  # the checkpoint holds rank 0's RNG; give each rank its own stream
        seed_everything(cfg.train.seed + 7919 * step + world.rank)
    return step, state


def _train_stage(run: _Run, start: int, stage: Stage, step: int) -> int:
    """Train global steps ``step`` .. ``start + stage.steps``; returns the step reached.

    A stage begins (weights copied, fresh optimizers, first epoch) exactly when ``step`` is its
    first step, whether the run got there now or resumed from the checkpoint written there.
    """
    cfg, state, end = run.cfg, run.state, start + stage.steps
    if step == start:
        begin_stage(stage, cfg=cfg, nets=run.nets, optimizers=run.optimizers)
        state["epoch"], state["batch"] = 0, 0
    while step < end:
        loader = epoch_loader(
            cfg, run.stream, epoch=state["epoch"], skip=state["batch"], stage=stage, world=run.world
        )
        for items in loader:
            record = _step(
                cfg,
                run.method,
                run.forward,
                run.optimizers,
                items,
                step,
                run.device,
                run.world,
                stage=(start, stage),
            )
            step += 1
            state["batch"] += 1
            _after_step(run, step, record, stage=stage, stage_end=step >= end)
            if step >= end:
                break
        else:
            state["epoch"], state["batch"] = state["epoch"] + 1, 0
    return step


def _after_step(run: _Run, step: int, record: dict, *, stage: Stage, stage_end: bool) -> None:
    """Non-finite streak, validation, log line, progress bar, checkpoint and snapshot."""
    cfg, state = run.cfg, run.state
    run.streak = run.streak + 1 if record["skipped"] else 0
    state["skipped"] += int(record["skipped"])
    if run.streak >= cfg.train.max_nonfinite:
        raise TrainingError(
            f"{run.streak} non-finite losses in a row up to step {step} "
            f"(terms {record['terms']}); lower optim.lr or check the input data"
        )
    last = step >= cfg.train.iterations
    val_every = validation_interval(cfg)
    if val_every and (step % val_every == 0 or last):
        record["val_dice"] = validate_and_keep_best(
            cfg,
            nets=run.nets,
            data=run.data,
            run_dir=run.run_dir,
            step=step,
            state=state,
            device=run.device,
            world=run.world,
        )
    state["seconds"] = time.perf_counter() - run.clock
    if run.log is not None and (step % cfg.train.log_every == 0 or last or "val_dice" in record):
        line = {"step": step, "stage": stage.name, **record, "skipped_total": state["skipped"]}
        run.log.write(line | {"seconds": round(state["seconds"], 3)})
    show_step(run.bar, record)
    _save(run, step, last=last or stage_end)


def _save(run: _Run, step: int, *, last: bool) -> None:
    """``last.pt`` every ``checkpoint_every`` steps and at the end of each stage; snapshots."""
    if not run.world.is_main:
        return
    ckpt = run.run_dir / "checkpoints" / "last.pt"
    if step % run.cfg.train.checkpoint_every == 0 or last:
        save_checkpoint(
            ckpt, step=step, nets=run.nets, optimizers=run.optimizers, extra=dict(run.state)
        )
    snapshots = {max(1, round(f * run.cfg.train.iterations)) for f in run.cfg.train.snapshots}
    if step in snapshots:  # weights only, for later analysis
        save_checkpoint(
            snapshot_path(run.run_dir, step), step=step, nets=run.nets, optimizers={}, extra={}
        )


def _lr(cfg: ExperimentConfig, state: StepState) -> float:
    if cfg.optim.schedule == "poly":
        return cfg.optim.lr * (1.0 - state.step / state.total_steps) ** cfg.optim.poly_power
    if cfg.optim.schedule == "step":
        every = max(1, round(cfg.optim.step_every * state.total_steps))
        return cfg.optim.lr * cfg.optim.step_gamma ** (state.step // every)
    return cfg.optim.lr


def _step(
    cfg, method, nets, optimizers, items, step, device, world: World | None = None, *, stage=None
) -> dict:
    """One optimisation step at global ``step``; a non-finite loss skips the update.

    ``nets`` are what the method calls (DDP wrappers under torchrun); the EMA reads the bare
    networks through ``.module``. ``stage`` is ``(first global step, Stage)``; None: the whole run
    as one stage.
    """
    world = world or World()
    start, stage = stage or (0, Stage("main", cfg.train.iterations))
    state = StepState(step=step - start, total_steps=stage.steps, stage=stage.name)
    batch = method.transform(_batch(cfg, method, items, device, world), state)
    for net in nets.values():
        net.train()  # the teacher too: dropout on, as in the official mean teacher
    lr = _lr(cfg, state)
    for opt in optimizers.values():
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
    amp = cfg.train.amp and device.type == "cuda"
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        terms = method(batch, nets, state)
    total = terms.total()
    values = {k: float(v.detach()) for k, v in terms.terms.items()}
    skipped = _skip_together(not math.isfinite(float(total.detach())), device, world)
    if not skipped:
        total.backward()
        _update(cfg, method, nets, optimizers, stage=stage, step=state.step)
    return {
        "loss": float(total.detach()),
        "terms": values,
        "weights": terms.weights,
        "logs": terms.logs,
        "lr": lr,
        "skipped": skipped,
    }


def _batch(cfg, method: Method, items: dict, device, world: World) -> Batch:
    """This rank's rows on ``device``, unlabeled labels hidden unless the method asks for them."""
    image = items["image"].to(device)  # (B / world, C, *patch)
    label = items["label"].to(device)  # (B / world, *patch)
    n = min(cfg.data.labeled_batch_size // world.size, image.shape[0])
    if not method.uses_unlabeled_ground_truth:
        label[n:] = IGNORE_LABEL
    return Batch(image=image, label=label, num_labeled=n)


def _skip_together(skipped: bool, device, world: World) -> bool:
    """Every rank must skip together, or DDP's all-reduce would hang."""
    if world.size > 1:
        flag = torch.tensor([float(skipped)], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        skipped = bool(flag.item())
    return skipped


def _update(cfg, method: Method, nets: dict, optimizers: dict, *, stage: Stage, step: int) -> None:
    """Step the optimizers of ``stage``'s networks, then move the EMA copies (stage ``step``)."""
    for name, opt in optimizers.items():
        if stage.train is not None and name not in stage.train:
            continue
        if cfg.optim.grad_clip is not None:
            nn.utils.clip_grad_norm_(nets[name].parameters(), cfg.optim.grad_clip)
        opt.step()
    if not stage.update_ema:
        return
    for spec in method.networks:
        if spec.ema_of is not None:
            source = getattr(nets[spec.ema_of], "module", nets[spec.ema_of])
            decay = cfg.train.ema_decay if spec.ema_decay is None else spec.ema_decay
            ema_update(nets[spec.name], source, step=step, decay=decay, warmup=spec.ema_warmup)
