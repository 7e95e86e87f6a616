"""Cross pseudo supervision, CPS (Chen, Yuan, Zeng, Wang, CVPR 2021), in its 3D medical form
(SSL4MIS ``train_cross_pseudo_supervision_3D.py``): the co-training ("CT") framework of DyCON's
"MT and CT frameworks" figure (baselines notes 2.4, 3.11).

Two networks f_1, f_2 of one architecture, each with its own optimizer, no EMA:

    L = sum_k (Dice + CE)(f_k(x)[L], y)
        + lambda(t) [CE(f_1(x)[U], argmax sg f_2(x)[U]) + CE(f_2(x)[U], argmax sg f_1(x)[U])]

with sg the stop-gradient (a hard pseudo-label carries no gradient) and lambda(t) =
cross_weight * ramp(t, cross_rampup * T). SSL4MIS draws the two with Kaiming and Xavier
initialisation; here both use the backbone's own initialisation, drawn one after the other from
the seeded generator, so they start apart. Its ramp is 200 "epochs" of 150 iterations, its whole
30 000-iteration run (cross_rampup = 1); the default 0.3 is the project's MT ramp, so that the
MT / CT figure compares the two frameworks under one schedule.

The supervised loss, the cross loss and the rows the cross term covers are constructor
arguments: a loss that wraps CPS (GALoss, ``methods/galoss.py``) swaps them, the rest stays CPS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import dice_ce_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup


@dataclass(frozen=True)
class CPSConfig:
    cross_weight: float = 0.1  # lambda, SSL4MIS's consistency 0.1
    cross_rampup: float = 0.3  # fraction of train.iterations to full weight


LossFn = Callable[[Tensor, Tensor], Tensor]  # (logits (B, C, *S), labels (B, *S)) -> scalar


def _cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(logits.float(), target)


def cross_pseudo_loss(
    logits_a: Tensor, logits_b: Tensor, *, loss: LossFn = _cross_entropy
) -> Tensor:
    """CE(a, argmax sg b) + CE(b, argmax sg a), each the mean over rows and voxels.

    Args:
        logits_a, logits_b: (B, C, *S) logits of the two networks on the same (unlabeled) rows.
        loss: what each network's logits and the other's pseudo-labels give; default the CE.

    Raises:
        ValueError: the two are not of one (B, C >= 2, *S) shape.
    """
    if logits_a.shape != logits_b.shape or logits_a.ndim < 3 or logits_a.shape[1] < 2:
        raise ValueError(
            f"logits_a and logits_b must be (B, C>=2, *S) of one shape, got "
            f"{tuple(logits_a.shape)} and {tuple(logits_b.shape)}"
        )
    pseudo_a = logits_a.detach().argmax(1)  # (B, *S): never a path for the gradient
    pseudo_b = logits_b.detach().argmax(1)  # (B, *S)
    return loss(logits_a, pseudo_b) + loss(logits_b, pseudo_a)


class CPS(Method):
    """``student`` is f_1 and ``peer`` f_2 (``eval.model`` = student, peer or ensemble).

    Args:
        supervised_loss: (logits, labels) of one network's labeled rows -> scalar.
        cross_loss: (logits of f_1, logits of f_2) on the cross rows -> the symmetric term.
        cross_on: the rows of the cross term: the unlabeled ones (CPS) or all.
    """

    name = "cps"
    networks = (NetworkSpec("student"), NetworkSpec("peer"))

    def __init__(
        self,
        cfg: CPSConfig | None = None,
        *,
        supervised_loss: LossFn = dice_ce_loss,
        cross_loss: LossFn = cross_pseudo_loss,
        cross_on: Literal["unlabeled", "all"] = "unlabeled",
    ) -> None:
        self.cfg = cfg or CPSConfig()
        self.supervised_loss, self.cross_loss, self.cross_on = supervised_loss, cross_loss, cross_on

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        a = nets["student"](batch.image).logits  # (B, K, *S)
        b = nets["peer"](batch.image).logits  # (B, K, *S)
        terms = {
            "sup": self.supervised_loss(a[:n], batch.label[:n]),
            "peer_sup": self.supervised_loss(b[:n], batch.label[:n]),
        }
        weights = {"sup": 1.0, "peer_sup": 1.0}
        rows = slice(None) if self.cross_on == "all" else slice(n, None)
        if a[rows].shape[0] > 0:  # a labeled-only batch has no unlabeled rows
            terms["cross"] = self.cross_loss(a[rows], b[rows])
            weights["cross"] = cfg.cross_weight * rampup(
                state.step, cfg.cross_rampup * state.total_steps
            )
        return LossTerms(terms=terms, weights=weights)
