"""MagicNet: magic-cube partition and recovery (Chen, Bai, Shen, Li, Yu, Wang, CVPR 2023).

Mean teacher (EMA with warm-up) on cubes. Each patch is cut into a g_D x g_H x g_W grid of G
cubes (official: 3 x 3 x 3 of a 96^3 patch, cubes of 32^3):

* cross-image: for every cube position k the batch is permuted (pi_k, labeled and unlabeled rows
  alike); the student segments the mixed volumes and its logits are sent back to their source
  volumes (pi_k^-1): the recovered logits z_x;
* within-image: every cube goes through the student on its own; a location head on the
  bottleneck says which of the G cells it came from (L_loc = CE), and the cubes' logits put back
  in place, z_w, get a Dice loss on the labeled rows once the consistency ramp is full;
* pseudo-labels: argmax of the EMA teacher on the noisy unlabeled volumes, blended cube-wise with
  the (detached) within-image prediction once z_w is trained (``blend_pseudo_labels``).

    L = [Dice_CE(z, y) + Dice(z_x, y) (+ Dice(z_w, y))] / count  +  0.1 L_loc
        + lambda ramp(t) Dice(z_x[U], pseudo)

with z the student's logits on the unmixed batch, count the number of supervised Dice and CE
terms (3, then 4). The patch must divide into the grid with cubes the network accepts
(``check_experiment``). Official differences, named: the MACT script's blending branch never
runs (its condition is never true: ``blend=false``), and it blends the student's cube
prediction, not the teacher's (so do we: no extra teacher pass).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import add_teacher_noise
from ..losses import dice_ce_loss, dice_loss
from .base import Batch, LossTerms, Method, NetworkSpec, StepState, rampup
from .mixing import cube_permutations, mix_cubes, partition, recover, unmix_cubes

SIZE_MULTIPLE = 16  # the networks halve a cube four times


@dataclass(frozen=True)
class MagicNetConfig:
    cube_grid: tuple[int, int, int] = (3, 3, 3)  # cubes per axis; official N = 3
    consistency: float = 0.2  # lambda; official MACT 0.2 (BTCV 0.1)
    # Fraction of the run to full weight; official MACT 40 x 300 of 30000 iterations = 0.4.
    consistency_rampup: float = 0.3
    location_weight: float = 0.1
    within_dice: bool = True  # Dice on the reassembled cubes once the ramp is full
    blend: bool = True  # cube-wise pseudo-label blending once the ramp is full
    blend_temperature: float = 1.0  # T_dist of the class-count weights
    noise_std: float = 0.1
    noise_clip: float = 0.2

    def check_experiment(self, cfg) -> tuple | None:
        """(key, value, allowed, fix) unless data.patch divides into cubes the network takes."""
        patch = cfg.data.patch
        instance = cfg.model.name == "unet3d" or cfg.model.normalization == "instancenorm"
        if grid_fits(patch, self.cube_grid, instance_norm=instance):
            return None
        allowed = (
            f"at least 2 cells that cut data.patch={list(patch)} into cubes whose sides are "
            f"multiples of {SIZE_MULTIPLE}"
            + (", not all 16 (InstanceNorm needs a bottleneck of 2 voxels)" if instance else "")
        )
        fits = [
            list(g)
            for g in sorted(itertools.product(range(1, 4), repeat=3), key=_size_first, reverse=True)
            if grid_fits(patch, g, instance_norm=instance)
        ]
        fix = f"use e.g. {fits[0]}" if fits else "set data.patch to multiples of 32 or 48"
        return "method.cube_grid", self.cube_grid, allowed, fix


def _size_first(grid) -> tuple:
    return math.prod(grid), tuple(grid)  # most cells, then the most along the first axes


def grid_fits(patch, grid, *, instance_norm: bool) -> bool:
    """``grid`` cuts ``patch`` into >= 2 cubes of sides that are multiples of 16, not all 16
    with InstanceNorm (whose 1-voxel bottleneck it cannot normalise)."""
    pairs = list(zip(patch, grid, strict=True))
    if math.prod(grid) < 2 or any(g < 1 or p % g or (p // g) % SIZE_MULTIPLE for p, g in pairs):
        return False
    return not (instance_norm and all(p == SIZE_MULTIPLE * g for p, g in pairs))


def blend_pseudo_labels(teacher: Tensor, cubes: Tensor, *, temperature: float = 1.0) -> Tensor:
    r"""Class-count weights w_c = n_c^{1/T} / max_c' n_c'^{1/T}, n_c the voxels the teacher
    assigns to class c over the rows; the blend w_c p_t + (1 - w_c) p_w, whose argmax is the
    pseudo-label. The most frequent class keeps the teacher's probability, a rare class (a small
    organ, a lesion) leans on the within-image cubes (the paper's motivation for them). Our
    reading of the dossier's words (weights n_c^{1/T}, normalised, divided by their max; the
    normalisation cancels); the official MACT script never runs its blending branch.

    Args:
        teacher, cubes: (B, K, *S) probabilities of the teacher and of the recovered cubes.
    """
    if teacher.shape != cubes.shape or teacher.dim() < 3:
        raise ValueError(
            f"teacher {tuple(teacher.shape)} and cube {tuple(cubes.shape)} probabilities must "
            "be (B, K, *S) of one shape"
        )
    k = teacher.shape[1]
    counts = torch.bincount(teacher.argmax(1).flatten(), minlength=k).to(teacher.dtype)  # (K,)
    w = counts ** (1.0 / temperature)
    w = (w / w.max()).view(1, k, *[1] * (teacher.dim() - 2))  # (1, K, 1, ...)
    return w * teacher + (1.0 - w) * cubes  # (B, K, *S)


class MagicNet(Method):
    name = "magicnet"

    def __init__(self, cfg: MagicNetConfig | None = None) -> None:
        self.cfg = cfg or MagicNetConfig()
        cells = math.prod(self.cfg.cube_grid)
        self.networks = (
            NetworkSpec("student", model={"location_head": cells}),
            NetworkSpec("teacher", ema_of="student"),
        )

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        cfg, n, grid = self.cfg, batch.num_labeled, self.cfg.cube_grid
        x, y, rows = batch.image, batch.label, batch.image.shape[0]
        student = nets["student"]
        logits = student(x).logits  # (B, K, *S)
        perms = cube_permutations(rows, grid).to(x.device)  # (G, B)
        crossed = unmix_cubes(student(mix_cubes(x, perms, grid)).logits, perms, grid)
        cubes = student(partition(x, grid), location=True)  # B G cubes
        cells = math.prod(grid)
        where = torch.arange(cells, device=x.device).repeat(rows)  # (B G,): cube k of each row
        location = cubes.aux["location"].float()  # (B G, G)
        within = recover(cubes.logits, grid)  # (B, K, *S)
        length = cfg.consistency_rampup * state.total_steps
        ramped = state.step >= length  # the ramp is full
        terms = {
            "sup": dice_ce_loss(logits[:n], y[:n]),
            "cross": dice_loss(crossed[:n], y[:n]),
            "location": F.cross_entropy(location, where),
        }
        if cfg.within_dice and ramped:
            terms["within"] = dice_loss(within[:n], y[:n])
        count = 3 + ("within" in terms)  # CE, Dice, cross Dice (, within Dice)
        weights = {k: 1.0 / count for k in terms} | {"location": cfg.location_weight}
        logs = {"location_accuracy": float((location.argmax(1) == where).float().mean())}
        if rows > n:
            with torch.no_grad():
                noisy = add_teacher_noise(x[n:], std=cfg.noise_std, clip=cfg.noise_clip)
                probs = torch.softmax(nets["teacher"](noisy).logits.float(), dim=1)  # (U, K, *S)
                if cfg.blend and ramped:
                    local = torch.softmax(within[n:].detach().float(), dim=1)  # (U, K, *S)
                    probs = blend_pseudo_labels(probs, local, temperature=cfg.blend_temperature)
                pseudo = probs.argmax(1)  # (U, *S)
            terms["consistency"] = dice_loss(crossed[n:], pseudo)
            weights["consistency"] = cfg.consistency * rampup(state.step, length)
        return LossTerms(terms=terms, weights=weights, logs=logs)
