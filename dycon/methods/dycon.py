"""DyCON (Assefa et al., CVPR 2025), Eq. (5), in the mean-teacher (MT) or co-training (CT)
framework of the paper's "DyCON in MT and CT frameworks" figure.

    MT:  L = L_sup + eta * (L_UnCL + L_FeCL)(student, sg EMA teacher)
             [+ the official code's extra MT term, off by default]
    CT:  L = sum_k [L_sup(f_k) + eta * (L_UnCL + L_FeCL)(f_k, sg f_other)] + lambda(t) L_CPS

In CT (``framework: ct``, preset ``dycon-ct``) two networks are co-trained as in CPS
(``methods/cps.py``) and each one's partner, detached and on the same input, plays the teacher:
its probabilities in UnCL, its pseudo-labels and embeddings (hard negatives) in FeCL; the CPS
cross pseudo-label term stays (``cross_weight``, 0 drops it), as the MT form keeps the MT term
in the official code (baselines notes 2.4: no DyCON code exists for CT; this is our reading).
Every switch of Table 5 and every difference between the poster and the official code is a field
of ``DyconConfig``; the preset ``dycon-reference`` (dycon/configs/methods) is the official
training's setting of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import add_teacher_noise
from ..losses import (
    beta_schedule,
    dice_ce_loss,
    fecl_loss,
    fecl_options,
    fecl_token_labels,
    uncl_loss,
)
from ..models import SegOutput
from .base import (
    Batch,
    LossTerms,
    Method,
    NetworkSpec,
    StepState,
    rampup,
    softmax_mse,
)
from .cps import cross_pseudo_loss
from .dycon_config import DyconConfig


def _detached(out: SegOutput) -> SegOutput:
    """A partner's output in the teacher's role: no gradient reaches the partner through it."""
    return SegOutput(logits=out.logits.detach(), embedding=out.embedding.detach())


class DyCON(Method):
    name = "dycon"

    def __init__(self, cfg: DyconConfig | None = None) -> None:
        self.cfg = cfg or DyconConfig()
        self.uses_unlabeled_ground_truth = self.cfg.use_fecl and self.cfg.fecl_labels == "gt_all"
        partner = NetworkSpec("teacher", ema_of="student")
        if self.cfg.framework == "ct":  # two trainable networks, each its own optimizer
            partner = NetworkSpec("peer")
        self.networks = (NetworkSpec("student"), partner)

    def __call__(self, batch: Batch, nets: dict[str, nn.Module], state: StepState) -> LossTerms:
        if self.cfg.framework == "ct":
            return self._co_training(batch, nets, state)
        cfg, n = self.cfg, batch.num_labeled
        s = nets["student"](batch.image)
        with torch.no_grad():
            t = nets["teacher"](
                add_teacher_noise(batch.image, std=cfg.noise_std, clip=cfg.noise_clip)
            )
        terms, weights, logs = self.pair_terms(batch, s, t, state)
        if cfg.mt_weight > 0 and s.logits.shape[0] > n:
            student, teacher = s.logits[n:], t.logits[n:]
            if cfg.mt_double_softmax:  # the official code passes probabilities as logits
                student, teacher = student.softmax(1), teacher.softmax(1)
            terms["mt"] = softmax_mse(student, teacher)
            weights["mt"] = cfg.mt_weight * rampup(state.step, cfg.mt_rampup * state.total_steps)
        return LossTerms(terms=terms, weights=weights, logs=logs)

    def _co_training(self, batch: Batch, nets: dict[str, nn.Module], state: StepState):
        cfg, n = self.cfg, batch.num_labeled
        a = nets["student"](batch.image)
        b = nets["peer"](batch.image)  # the same input: no teacher noise in co-training
        terms, weights, logs = self.pair_terms(batch, a, _detached(b), state)
        peer_terms, peer_weights, _ = self.pair_terms(batch, b, _detached(a), state)
        terms |= {f"peer_{k}": v for k, v in peer_terms.items()}
        weights |= {f"peer_{k}": v for k, v in peer_weights.items()}
        if cfg.cross_weight > 0 and a.logits.shape[0] > n:
            terms["cross"] = cross_pseudo_loss(a.logits[n:], b.logits[n:])
            weights["cross"] = cfg.cross_weight * rampup(
                state.step, cfg.cross_rampup * state.total_steps
            )
        return LossTerms(terms=terms, weights=weights, logs=logs)

    def pair_terms(self, batch: Batch, s: SegOutput, t: SegOutput, state: StepState):
        """L_sup, UnCL and FeCL of one network's output ``s`` against its teacher's ``t``
        (carrying no gradient): ``(terms, weights, logs)``, the same in either framework."""
        cfg, n = self.cfg, batch.num_labeled
        terms = {"sup": dice_ce_loss(s.logits[:n], batch.label[:n])}
        weights = {"sup": cfg.sup_weight}
        eta = cfg.eta * rampup(state.step, cfg.eta_rampup * state.total_steps)
        logs = {"eta": eta}
        if cfg.use_uncl:
            rows = slice(n, None) if cfg.uncl_on == "unlabeled" else slice(None)
            beta = beta_schedule(
                state.step,
                max(state.total_steps, 1),
                beta_min=cfg.beta_min,
                beta_max=cfg.beta_max,
                lam=cfg.beta_lam,
            )
            terms["uncl"] = uncl_loss(
                s.logits[rows], t.logits[rows], beta=beta, class_reduction=cfg.uncl_class_reduction
            )
            weights["uncl"], logs["beta"] = eta, beta
        rows = slice(n, None) if cfg.fecl_on == "unlabeled" else slice(None)
        if cfg.use_fecl and s.logits[rows].shape[0] > 0:
            terms["fecl"] = self._fecl(batch, s, t, rows, state)
            weights["fecl"] = eta
        return terms, weights, logs

    def _fecl(self, batch: Batch, s, t, rows: slice, state: StepState) -> Tensor:
        cfg = self.cfg
        grid = tuple(s.embedding.shape[2:])  # token grid, e.g. (12, 12, 12)
        labels = fecl_token_labels(
            ground_truth=batch.label.clamp(min=0),
            teacher_logits=t.logits,
            num_labeled=batch.num_labeled,
            grid=grid,
            source=cfg.fecl_labels,
            mode=cfg.fecl_downsample,
        )  # (B, N)
        tokens = s.embedding.flatten(2).transpose(1, 2)  # (B, N, D)
        teacher_tokens = t.embedding.flatten(2).transpose(1, 2) if cfg.hard_negatives else None
        entropy = None
        if cfg.entropy_weighting:
            p = torch.softmax(s.logits.float(), dim=1)
            voxel_entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(1, keepdim=True)  # (B,1,*S)
            entropy = F.adaptive_avg_pool3d(voxel_entropy, grid).flatten(1)  # (B, N) token mean
        progress = min(state.step / max(cfg.fecl_rampup * state.total_steps, 1.0), 1.0)
        options = {  # every FeCL field of the config; the chosen variant takes its own
            "temperature": cfg.temperature,
            "gamma": cfg.gamma,
            "progress": progress,
            "top_k": cfg.top_k,
            "focal": cfg.focal,
            "hard_negatives": cfg.hard_negatives,
            "entropy_weighting": cfg.entropy_weighting,
            "similarity_form": cfg.similarity_form,
            "hard_negative_form": cfg.hard_negative_form,
            "detach_weights": cfg.detach_weights,
        }
        allowed = fecl_options(cfg.fecl_variant)
        return fecl_loss(
            tokens[rows],
            labels[rows],
            variant=cfg.fecl_variant,
            teacher_tokens=None if teacher_tokens is None else teacher_tokens[rows],
            entropy=None if entropy is None else entropy[rows],
            **{k: v for k, v in options.items() if k in allowed},
        )
