"""DyCON losses: UnCL (Eqs. 1-2), FeCL (Eqs. 3-4) and the supervised Dice + CE of Eq. (5); the
baselines' own losses (GALoss's gradient-aware pair)."""

from ._checks import compute_dtype
from .fecl import (
    downsample_labels,
    fecl_loss,
    fecl_options,
    fecl_paper_loss,
    fecl_reference_loss,
    fecl_token_labels,
)
from .galoss import gace_class_weights, gace_loss, gadice_loss, galoss_supervised
from .ramps import sigmoid_ramp
from .supervised import dice_ce_loss, dice_loss
from .uncl import beta_schedule, uncl_loss

__all__ = [
    "beta_schedule",
    "compute_dtype",
    "dice_ce_loss",
    "dice_loss",
    "downsample_labels",
    "fecl_loss",
    "fecl_options",
    "fecl_paper_loss",
    "fecl_reference_loss",
    "fecl_token_labels",
    "gace_class_weights",
    "gace_loss",
    "gadice_loss",
    "galoss_supervised",
    "sigmoid_ramp",
    "uncl_loss",
]
