"""GALoss (Qi, Wu, Chan, ECCV 2024) on a host method: the host's networks, stages and schedule,
with its losses replaced by the gradient-aware pair (``losses/galoss.py``; baselines notes 3.10).

On CPS (``host: cps``, the official Synapse / AMOS setting, and the only host so far):

    L = sum_k [GACE_10(f_k[L], y) + GADice(f_k[L], y)]
        + lambda(t) [GACE_100(f_1, argmax sg f_2) + GACE_100(f_2, argmax sg f_1)]

the cross term on the whole batch (``cross_on: all``, official; ``unlabeled`` as in CPS), and
lambda(t) the host's cross_weight * ramp (CPS's fields, inherited). The official ramp spans the
run (cross_rampup = 1); the default is CPS's 0.3, so that GALoss and CPS differ only in the loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Literal

from torch import nn

from ..config import ConfigError
from ..losses.galoss import gace_loss, galoss_supervised
from .base import Batch, LossTerms, Method, StepState
from .cps import CPS, CPSConfig, cross_pseudo_loss

HOSTS = {"cps": (CPSConfig, CPS)}  # host name -> (its config class, its method class)


@dataclass(frozen=True)
class GALossConfig(CPSConfig):  # the host's fields first (CPS: cross_weight, cross_rampup)
    host: str = "cps"
    sup_top_k: float = 10.0  # % of the labeled voxels GACE keeps (official 10)
    cross_top_k: float = 100.0  # % kept against pseudo-labels (official 100: every voxel)
    ce_gamma: float = 0.5  # GACE's gamma: 0 sums class means, 1 is the plain mean
    cross_on: Literal["all", "unlabeled"] = "all"
    gradient_aware_dice: bool = True  # False: an absent class gets the plain soft Dice

    def __post_init__(self) -> None:
        if self.host not in HOSTS:
            raise ConfigError(
                f"method.host={self.host!r} is not allowed: it must be one of {sorted(HOSTS)} "
                "(a host whose losses GALoss replaces); set method.host=cps"
            )


class GALoss(Method):
    """The host method, built with GALoss's losses; every declaration is the host's."""

    name = "galoss"

    def __init__(self, cfg: GALossConfig | None = None) -> None:
        self.cfg = cfg = cfg or GALossConfig()
        host_config, host_method = HOSTS[cfg.host]
        own = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(host_config)}
        cross = partial(gace_loss, top_k=cfg.cross_top_k, gamma=cfg.ce_gamma)
        self.host = host_method(
            host_config(**own),
            supervised_loss=partial(
                galoss_supervised,
                top_k=cfg.sup_top_k,
                gamma=cfg.ce_gamma,
                gradient_aware=cfg.gradient_aware_dice,
            ),
            cross_loss=partial(cross_pseudo_loss, loss=cross),
            cross_on=cfg.cross_on,
        )
        self.networks = self.host.networks
        self.uses_unlabeled_ground_truth = self.host.uses_unlabeled_ground_truth

    def stages(self, total_steps: int):
        return self.host.stages(total_steps)

    def transform(self, batch: Batch, state: StepState) -> Batch:
        return self.host.transform(batch, state)

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        return self.host(batch, nets, state)
