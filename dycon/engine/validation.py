"""Validation Dice during training: the signal for ``eval.select=best_val`` and the curves.

Only the validation list is read here, never the test list, so selecting a checkpoint on it
leaves the test split untouched (the official code picks its best checkpoint on test).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..data.volume import Volume
from ..metrics import dice
from .checkpoint import save_checkpoint
from .distributed import World, barrier
from .inference import sliding_window_predict
from .networks import eval_members, eval_network
from .schema import ExperimentConfig


def validation_interval(cfg: ExperimentConfig) -> int:
    """Steps between validations: ``train.val_every``, or ``checkpoint_every`` for best_val."""
    if cfg.train.val_every:
        return cfg.train.val_every
    return cfg.train.checkpoint_every if cfg.eval.select == "best_val" else 0


def validation_dice(
    model: nn.Module,
    *,
    cfg: ExperimentConfig,
    num_cases: int,
    load: Callable[[int], Volume],
    device: torch.device,
) -> float:
    """Mean Dice (%) of ``model`` over the validation cases, sliding window as in evaluation.

    Both masks empty scores 100 and a missed lesion 0, as in the honest test metrics. The model
    is left in eval mode; the trainer switches it back before the next step.
    """
    model.eval()
    scores = []
    for i in range(num_cases):
        volume = load(i)
        probs = sliding_window_predict(
            model,
            volume.image,
            patch=cfg.eval.patch or cfg.data.patch,
            stride=cfg.eval.stride,
            batch_size=cfg.eval.batch_size,
            gaussian=cfg.eval.gaussian,
            device=device,
            autocast=cfg.train.amp,
        )  # (K, X, Y, Z)
        scores.append(dice(probs.argmax(0).numpy() > 0, volume.label > 0))
    return float(sum(scores) / len(scores))


def validate_and_keep_best(
    cfg: ExperimentConfig,
    *,
    nets: dict,
    data,
    run_dir: Path,
    step: int,
    state: dict,
    device,
    world: World,
) -> float | None:
    """Rank 0 scores the validation list and keeps ``best.pt``; the others wait for it.

    ``state["best"]`` is the best ``{"step", "val_dice"}`` so far (the first of equal scores).
    """
    score = None
    if world.is_main:
        model = eval_network(cfg, nets)
        score = validation_dice(
            model, cfg=cfg, num_cases=len(data.val_ids), load=data.val_load, device=device
        )
        if state["best"] is None or score > state["best"]["val_dice"]:
            state["best"] = {"step": step, "val_dice": score}
            save_checkpoint(
                run_dir / "checkpoints" / "best.pt",
                step=step,
                nets=eval_members(cfg.eval.model, model),
                optimizers={},
                extra={"val_dice": score},
            )
    barrier(world)
    return score
