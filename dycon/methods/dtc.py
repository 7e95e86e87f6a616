"""Dual-task consistency, DTC (Luo, Chen, Song, Wang, AAAI 2021).

One network predicts the segmentation p (softmax foreground channel c) and, with a tanh head,
a signed distance map s_hat per class. The target SDF of a labeled volume, per foreground class,

    SDF = norm(d_out) - norm(d_in),  0 on the inner boundary of the class,

with d_out / d_in the Euclidean distance of each voxel to the class / to the rest and norm a
min-max scaling to [0, 1] over the volume (all zero without foreground). A smooth Heaviside
turns s_hat into a segmentation, sigma(-k s_hat), and the two tasks must agree on every row:

    L = L_sup(p[L], y) + beta * MSE(s_hat[L], SDF) + lambda(t) * mean (sigma(-k s_hat) - p)^2

k = 1500, beta = 0.3, lambda(t) = w ramp(t). The official code (HiLab-git/DTC) adds only the
Dice term to L_sup (its BCE is computed but not added): ``sup_ce=False``. No teacher, no EMA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.ndimage as ndi
import torch
from torch import Tensor, nn

from ..losses import dice_ce_loss, dice_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup


@dataclass(frozen=True)
class DTCConfig:
    beta: float = 0.3  # weight of the SDF regression
    k: float = 1500.0  # steepness of the smooth Heaviside sigma(-k s)
    consistency: float = 1.0  # w
    consistency_rampup: float = 0.3  # fraction of train.iterations (official: 40 x 150 of 6000)
    consistency_on: Literal["all", "unlabeled"] = "all"  # official: every row
    sup_ce: bool = True  # official code: False (Dice only)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """DTC's normalised SDF of one boolean volume: negative inside, positive outside, in [-1, 1].

    The inner boundary (foreground voxels with a background 6-neighbour inside the volume) is 0;
    an all-background volume gives all zeros, and so does an all-foreground one (nothing outside).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape, dtype=np.float32)
    d_in = ndi.distance_transform_edt(mask)  # foreground voxel -> nearest background
    d_out = ndi.distance_transform_edt(~mask)  # background voxel -> nearest foreground
    sdf = _minmax(d_out) - _minmax(d_in)
    boundary = mask & ~ndi.binary_erosion(mask, ndi.generate_binary_structure(3, 1), border_value=1)
    sdf[boundary] = 0.0
    return sdf.astype(np.float32)


def _minmax(d: np.ndarray) -> np.ndarray:
    return (d - d.min()) / (d.max() - d.min())


def target_sdf(label: Tensor, num_classes: int) -> Tensor:
    """(B, *S) labels -> (B, num_classes - 1, *S) SDFs of classes 1..K-1 (on label's device)."""
    if label.dim() != 4:
        raise ValueError(f"label must be (B, D, H, W), got shape {tuple(label.shape)}")
    lab = label.detach().cpu().numpy()
    sdf = [[signed_distance(row == c) for c in range(1, num_classes)] for row in lab]
    return torch.from_numpy(np.asarray(sdf, dtype=np.float32)).to(label.device)


def dual_task_consistency(probs: Tensor, sdf: Tensor, *, k: float) -> Tensor:
    """mean over rows, classes and voxels of (sigma(-k sdf) - probs)^2.

    Args:
        probs: (B, K-1, *S) foreground probabilities of the segmentation head.
        sdf: (B, K-1, *S) predicted signed distances (negative inside).
    """
    if probs.shape != sdf.shape:
        raise ValueError(
            f"probs {tuple(probs.shape)} and sdf {tuple(sdf.shape)} must have the same shape"
        )
    return (torch.sigmoid(-k * sdf.float()) - probs.float()).square().mean()


class DTC(Method):
    name = "dtc"
    networks = (NetworkSpec("student", model={"sdf_head": True}),)

    def __init__(self, cfg: DTCConfig | None = None) -> None:
        self.cfg = cfg or DTCConfig()

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n = self.cfg, batch.num_labeled
        out = nets["student"](batch.image)
        logits, sdf = out.logits, out.aux["sdf"][:, 1:]  # (B, K, *S), (B, K-1, *S)
        sup = dice_ce_loss if cfg.sup_ce else dice_loss
        terms = {
            "sup": sup(logits[:n], batch.label[:n]),
            "sdf": (sdf[:n].float() - target_sdf(batch.label[:n], logits.shape[1])).square().mean(),
        }
        weights = {"sup": 1.0, "sdf": cfg.beta}
        rows = slice(n, None) if cfg.consistency_on == "unlabeled" else slice(None)
        if logits[rows].shape[0] > 0:
            probs = torch.softmax(logits[rows].float(), dim=1)[:, 1:]  # (b, K-1, *S)
            terms["dual_task"] = dual_task_consistency(probs, sdf[rows], k=cfg.k)
            weights["dual_task"] = cfg.consistency * rampup(
                state.step, cfg.consistency_rampup * state.total_steps
            )
        return LossTerms(terms=terms, weights=weights)
