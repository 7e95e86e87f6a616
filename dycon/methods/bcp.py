"""Bidirectional copy-paste, BCP (Bai, Chen, Li, Shen, Wang, CVPR 2023).

A mask M (1 everywhere but a cube of int(2/3 side) voxels per axis, at a random position, one per
step) pastes labeled and unlabeled crops into each other, in both directions:

    X_in  = X_l * M + X_u * (1 - M)    (labeled context, unlabeled cube)
    X_out = X_u * M + X_l * (1 - M)    (unlabeled context, labeled cube)

and their targets the same way from the ground truth Y_l and the pseudo-label Y^_u of the EMA
teacher on the clean X_u, Y^_u = LCC(argmax p_t) (the largest connected foreground component).
Each mixed image's loss is split by region, ground truth at weight 1, pseudo-label at alpha = 0.5:

    L(X) = 1/2 [Dice_gt + CE_gt] + alpha 1/2 [Dice_ps + CE_ps],    L = L(X_in) + L(X_out)

with Dice and CE restricted to a region (``region_dice_ce``). A labeled-only pre-training stage
mixes two labeled crops the same way (both regions ground truth, weight 1); its final weights
start the student and the teacher of the main stage, whose EMA has a fixed alpha (no warm-up).

Pairs: labeled row i with unlabeled row i (min(labeled, unlabeled) pairs), each pair in both
directions, so a two-stream batch of 2 + 2 gives 4 mixed images. The official LA script instead
draws (l_a, u_a) for X_in and (u_b, l_b) for X_out from a batch of 8: 4 mixed images from 8
crops. Pre-training pastes labeled row i + 1 (cyclically) into row i (the official script: the
second half of the labeled rows into the first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import compute_dtype
from .base import (
    IGNORE_LABEL,
    Batch,
    LossTerms,
    Method,
    NetworkSpec,
    Stage,
    StepState,
    pretrain_steps,
    two_stage_problem,
)
from .mixing import paste, random_cube_mask


@dataclass(frozen=True)
class BCPConfig:
    pretrain_fraction: float = 2000 / 17000  # official LA: 2000 pre-train + 15000 self-train
    cube_fraction: float = 2 / 3  # side of the pasted cube per axis
    pseudo_weight: float = 0.5  # alpha, on the pseudo-labeled region
    largest_component: bool = True  # LCC on the teacher's pseudo-labels
    ema_decay: float | None = None  # fixed alpha of the teacher (no warm-up); None: train.ema_decay

    def check_experiment(self, cfg) -> tuple | None:
        """Each stage needs a step (``base.two_stage_problem``)."""
        return two_stage_problem(cfg, "bcp")


def bidirectional_mix(labeled: Tensor, unlabeled: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """(X_in, X_out): labeled context around the unlabeled cube, and the reverse."""
    return paste(labeled, unlabeled, mask), paste(unlabeled, labeled, mask)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean volume; empty stays empty."""
    labels, count = ndi.label(mask, structure=np.ones((3,) * mask.ndim))
    if count <= 1:
        return mask
    return labels == int(np.argmax(np.bincount(labels.ravel())[1:])) + 1


def pseudo_labels(logits: Tensor, *, largest: bool = True) -> Tensor:
    """argmax over classes (B, *S), foreground outside each row's largest component -> 0."""
    hard = logits.argmax(1)  # (B, *S)
    if not largest:
        return hard
    keep = np.stack([largest_component(row > 0) for row in hard.cpu().numpy()])
    return hard * torch.from_numpy(keep).to(hard.device)


def region_dice_ce(logits: Tensor, target: Tensor, region: Tensor, *, smooth: float = 1e-5):
    r"""1/2 (Dice_R + CE_R): the supervised loss on the voxels of ``region`` only.

    Dice_R = mean over foreground classes of 1 - (2 sum_R p g + eps) / (sum_R p^2 + sum_R g + eps)
    and CE_R = sum_R CE / (|R| + 1e-16), sums over the batch and the region (batch-global).

    Args:
        logits: (B, K, *S). target: (B, *S) in [0, K) inside the region. region: (B, *S) bool.
    """
    if region.shape != target.shape or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)}, target {tuple(target.shape)} and region "
            f"{tuple(region.shape)} must share (B, *S)"
        )
    target = torch.where(region, target, 0).long()  # outside the region: any class, unweighted
    r = region.to(compute_dtype(logits))  # (B, *S)
    probs = torch.softmax(logits.to(r.dtype), dim=1)[:, 1:]  # (B, K-1, *S)
    onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1)[:, 1:].to(r.dtype)  # (B, K-1, *S)
    dims = (0, *range(2, probs.ndim))
    inter = (probs * onehot * r[:, None]).sum(dims)  # (K-1,)
    denom = (probs.square() * r[:, None]).sum(dims) + (onehot * r[:, None]).sum(dims)
    dice = (1.0 - (2.0 * inter + smooth) / (denom + smooth)).mean()
    ce = F.cross_entropy(logits.to(r.dtype), target, reduction="none")  # (B, *S)
    return 0.5 * (dice + (ce * r).sum() / (r.sum() + 1e-16))


class BCP(Method):
    name = "bcp"

    def __init__(self, cfg: BCPConfig | None = None) -> None:
        self.cfg = cfg or BCPConfig()
        self.networks = (
            NetworkSpec("student"),
            NetworkSpec(
                "teacher", ema_of="student", ema_decay=self.cfg.ema_decay, ema_warmup=False
            ),
        )

    def stages(self, total_steps: int) -> tuple[Stage, ...]:
        pre = pretrain_steps(self.cfg.pretrain_fraction, total_steps)
        return (
            Stage("pretrain", pre, labeled_only=True, train=("student",), update_ema=False),
            Stage("main", total_steps - pre, init={"teacher": "student"}),
        )

    def transform(self, batch: Batch, state: StepState) -> Batch:
        image, label, n = batch.image, batch.label, batch.num_labeled
        mask = random_cube_mask(image.shape[2:], fraction=self.cfg.cube_fraction).to(image.device)
        if state.stage == "pretrain":  # labeled rows only: row i + 1's cube into row i
            mixed = paste(image, image.roll(-1, 0), mask)  # (n, C, *S)
            target = paste(label, label.roll(-1, 0), mask)  # (n, *S)
            return Batch(mixed, target, num_labeled=n, extras={"mask": mask})
        p = min(n, image.shape[0] - n)
        unlabeled = image[n : n + p]  # (p, C, *S)
        x_in, x_out = bidirectional_mix(image[:p], unlabeled, mask)
        hidden = torch.full_like(label[:p], IGNORE_LABEL)  # the pseudo-labels come in __call__
        y_in, y_out = bidirectional_mix(label[:p], hidden, mask)
        return Batch(
            torch.cat([x_in, x_out]),  # (2p, C, *S)
            torch.cat([y_in, y_out]),  # (2p, *S), IGNORE_LABEL where a pseudo-label goes
            num_labeled=0,  # every row mixes ground truth and pseudo-label
            extras={"mask": mask, "unlabeled": unlabeled},
        )

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        if "mask" not in batch.extras:
            raise ValueError("BCP's losses need its transform's batch: call transform() first")
        logits = nets["student"](batch.image).logits  # (rows, K, *S)
        if state.stage == "pretrain":
            inside = batch.extras["mask"].expand_as(batch.label)  # (n, *S), both ground truth
            sup = region_dice_ce(logits, batch.label, inside) + region_dice_ce(
                logits, batch.label, ~inside
            )
            return LossTerms(terms={"sup": sup}, weights={"sup": 1.0})
        unlabeled = batch.extras["unlabeled"]  # (p, C, *S), clean
        with torch.no_grad():
            teacher = nets["teacher"](unlabeled).logits  # (p, K, *S)
            pseudo = pseudo_labels(teacher, largest=self.cfg.largest_component)  # (p, *S)
        gt = batch.label != IGNORE_LABEL  # (2p, *S): ground-truth voxels of X_in, X_out
        # Every hidden voxel of X_in (the cube) and X_out (the context) came from X_u.
        target = torch.where(gt, batch.label, pseudo.repeat(2, *[1] * (pseudo.dim() - 1)))
        p = unlabeled.shape[0]
        halves = (slice(0, p), slice(p, 2 * p))  # L(X_in) + L(X_out), each batch-global
        sup = sum(region_dice_ce(logits[h], target[h], gt[h]) for h in halves)
        ps = sum(region_dice_ce(logits[h], target[h], ~gt[h]) for h in halves)
        return LossTerms(
            terms={"sup": sup, "pseudo": ps},
            weights={"sup": 1.0, "pseudo": self.cfg.pseudo_weight},
            logs={"pseudo_foreground": float((pseudo > 0).float().mean())},
        )
