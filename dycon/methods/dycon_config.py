"""The fields of DyCON (``methods/dycon.py``): every switch of Table 5, every difference between
the poster and the official code, and the framework (MT or CT) the losses are applied in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..config import ConfigError, added_field


@dataclass(frozen=True)
class DyconConfig:
    sup_weight: float = 1.0
    eta: float = 1.0  # weight of UnCL + FeCL, Eq. (5)
    # Ramp lengths are fractions of train.iterations, so a quick run ramps like a paper run.
    eta_rampup: float = 0.0  # 0: constant, as in the official code
    use_uncl: bool = True
    use_fecl: bool = True
    # UnCL, Eqs. (1)-(2); beta decays over the whole run
    beta_min: float = 0.5
    beta_max: float = 5.0
    beta_lam: float | None = None  # None: ln(beta_max / beta_min), the official curve
    uncl_class_reduction: Literal["sum", "mean"] = "sum"
    uncl_on: Literal["all", "unlabeled"] = "all"
    # FeCL, Eqs. (3)-(4)
    fecl_variant: Literal["paper", "reference"] = "paper"
    fecl_labels: Literal["gt+pseudo", "gt_all"] = "gt+pseudo"
    fecl_on: Literal["all", "unlabeled"] = "all"
    fecl_downsample: Literal["trilinear", "majority"] = "trilinear"
    temperature: float = 0.6
    gamma: float = 2.0
    top_k: int = 8
    focal: bool = True  # Table 5: F+ + F-
    hard_negatives: bool = True  # Table 5: HN
    entropy_weighting: bool = True  # Table 5: Entropy
    similarity_form: Literal["affine", "clamped"] = "affine"
    hard_negative_form: Literal["per_negative", "once"] = "per_negative"
    detach_weights: bool = True
    fecl_rampup: float = 0.45  # reference thresholds: 1500 labeled epochs = 9000 of 20000 it
    # The official code's extra Mean-Teacher term (softmax applied twice in the official code)
    mt_weight: float = 0.0
    mt_rampup: float = 1.5  # 200 "epochs" of 150 iterations = 30000 of 20000: never reached
    mt_double_softmax: bool = False
    noise_std: float = 0.1  # MT: the teacher's input noise
    noise_clip: float = 0.2
    # Added after runs were committed (omitted from run ids at their defaults).
    framework: Literal["mt", "ct"] = added_field("mt")
    cross_weight: float = added_field(0.1)  # ct: CPS's cross pseudo-label term
    cross_rampup: float = added_field(0.3)  # ct: fraction of train.iterations, as CPS

    def __post_init__(self) -> None:
        if self.framework == "ct" and self.mt_weight > 0:
            raise ConfigError(
                f"method.mt_weight={self.mt_weight!r} is not allowed with method.framework='ct' "
                "(the MT term needs an EMA teacher); set method.mt_weight=0"
            )
        if self.framework == "mt" and (self.cross_weight, self.cross_rampup) != (0.1, 0.3):
            raise ConfigError(
                "method.cross_weight / method.cross_rampup are the CT framework's CPS term and "
                "do nothing with method.framework='mt'; set method.framework=ct or drop them"
            )
