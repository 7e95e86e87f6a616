"""CML, cross-view mutual learning (Wu, Wei, Chen, Ren, He, Pu, ACM MM 2024; baselines notes
2.1, 3.7): the "CML [39]" of DyCON's tables.

Two networks f_1, f_2 (the official code's two branches of one module), each its optimizer,
no EMA. A cube mask M is 1 except a zero cube of int(cube_fraction * side) per axis at a random
place, and two crops mix as paste(a, b) = a M + b (1 - M), labels alike (``methods/mixing.py``,
BCP's). The conflict loss pushes the two networks' features apart, each against the other
detached (f^ = L2-normalised channels):

    L_dis(f_a, f_b) = 1 + mean_v cos(f^_a, sg f^_b),   applied both ways

Stage "pretrain" (labeled only, ``pretrain_fraction`` of the run):
L = sum_k (Dice + CE)(f_k(paste(x_a, x_b)), paste(y_a, y_b)) + 0.2 L_dis. Stage "main",
initialised from it (the same networks go on, with fresh optimizers): the labeled part as
before, and on the unlabeled rows each network's pseudo-labels without gradient,
P_k = LCC(argmax f_k(u)) (BCP's ``pseudo_labels``), as heterogeneous targets of the mixed
u = paste(u_a, u_b): f_1 learns P_2(u_a) outside the cube and P_1(u_b) inside, f_2 P_1(u_a) and
P_2(u_b). L = L_l + L_u + 0.2 (L_dis,l + L_dis,u).

Deviations: the official branches differ in their decoders' upsampling (transposed conv vs
trilinear) and its features are the encoder bottleneck; here two instances of the configured
backbone (drawn one after the other) and their ``SegOutput.embedding``. Rows pair with the next
row (a roll) instead of two half-batches; the official stage 1 keeps its best checkpoint on the
test list, here its last. Inference averages the two softmaxes (``eval.model: ensemble``; the
official averages logits).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import dice_ce_loss
from .base import (
    Batch,
    LossTerms,
    Method,
    NetworkSpec,
    Stage,
    StepState,
    pretrain_steps,
    two_stage_problem,
)
from .bcp import pseudo_labels
from .mixing import paste, random_cube_mask


@dataclass(frozen=True)
class CMLConfig:
    pretrain_fraction: float = 2000 / 17000  # the official 2000 labeled-only + 15 000 steps
    cube_fraction: float = 2 / 3  # side of the zero cube of M, per axis
    conflict_weight: float = 0.2
    unlabeled_weight: float = 1.0
    largest_component: bool = True  # of each pseudo-label, as the official code

    def check_experiment(self, cfg) -> tuple | None:
        """Each stage needs a step (``base.two_stage_problem``)."""
        return two_stage_problem(cfg, "cml")


def conflict_loss(f_a: Tensor, f_b: Tensor) -> Tensor:
    """L_dis = 1 + mean over rows and voxels of cos(f_a, sg f_b) over channels; in [0, 2]."""
    if f_a.shape != f_b.shape or f_a.ndim < 3:
        raise ValueError(
            f"f_a and f_b must be (B, D, *S) features of one shape, got {tuple(f_a.shape)} and "
            f"{tuple(f_b.shape)}"
        )
    return 1.0 + F.cosine_similarity(f_a.float(), f_b.detach().float(), dim=1).mean()


def cross_view_targets(p1: Tensor, p2: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Targets of paste(u, roll(u)) from pseudo-labels p_k (U, *S) of the unmixed rows u: f_1's
    is p2 outside the cube (u_a) and roll(p1) inside (u_b); f_2's is p1 and roll(p2)."""
    return paste(p2, p1.roll(1, 0), mask), paste(p1, p2.roll(1, 0), mask)


class CML(Method):
    name = "cml"
    networks = (NetworkSpec("student"), NetworkSpec("peer"))

    def __init__(self, cfg: CMLConfig | None = None) -> None:
        self.cfg = cfg or CMLConfig()

    def stages(self, total_steps: int) -> tuple[Stage, ...]:
        n = pretrain_steps(self.cfg.pretrain_fraction, total_steps)
        return (Stage("pretrain", n, labeled_only=True), Stage("main", total_steps - n))

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        x, y = batch.image[:n], batch.label[:n]
        m = random_cube_mask(x.shape[2:], fraction=cfg.cube_fraction, device=x.device)  # (*S)
        images, targets = [paste(x, x.roll(1, 0), m)], [paste(y, y.roll(1, 0), m)]  # (L, C, *S)
        if state.stage == "main" and batch.image.shape[0] > n:
            u = batch.image[n:]  # (U, C, *S)
            with torch.no_grad():  # dropout on, as in the official code
                p1, p2 = (
                    pseudo_labels(nets[k](u).logits, largest=cfg.largest_component)
                    for k in ("student", "peer")
                )  # (U, *S) each
            mu = random_cube_mask(u.shape[2:], fraction=cfg.cube_fraction, device=u.device)
            images.append(paste(u, u.roll(1, 0), mu))
            targets += cross_view_targets(p1, p2, mu)
        out = [nets[k](torch.cat(images)) for k in ("student", "peer")]  # 2 x SegOutput
        terms = {"sup": dice_ce_loss(out[0].logits[:n], targets[0])}
        terms["peer_sup"] = dice_ce_loss(out[1].logits[:n], targets[0])
        e1, e2 = out[0].embedding, out[1].embedding  # (B', D, *G)
        terms["conflict"] = conflict_loss(e1[:n], e2[:n]) + conflict_loss(e2[:n], e1[:n])
        weights = dict.fromkeys(terms, 1.0) | {"conflict": cfg.conflict_weight}
        if len(images) > 1:
            terms["unsup"] = dice_ce_loss(out[0].logits[n:], targets[1])
            terms["peer_unsup"] = dice_ce_loss(out[1].logits[n:], targets[2])
            terms["conflict_u"] = conflict_loss(e1[n:], e2[n:]) + conflict_loss(e2[n:], e1[n:])
            weights |= {"unsup": cfg.unlabeled_weight, "peer_unsup": cfg.unlabeled_weight}
            weights["conflict_u"] = cfg.conflict_weight
        return LossTerms(terms=terms, weights=weights)
