"""Supervised-only baseline: Dice + CE on the labeled rows of each batch."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..losses import dice_ce_loss
from .base import Batch, LossTerms, Method, StepState


@dataclass(frozen=True)
class SupervisedConfig:
    batch_dice: bool = True  # the official batch-global Dice


class Supervised(Method):
    name = "supervised"

    def __init__(self, cfg: SupervisedConfig | None = None) -> None:
        self.cfg = cfg or SupervisedConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        n = batch.num_labeled
        logits = nets["student"](batch.image[:n]).logits  # (L, K, *S)
        sup = dice_ce_loss(logits, batch.label[:n], batch_dice=self.cfg.batch_dice)
        return LossTerms(terms={"sup": sup}, weights={"sup": 1.0})
