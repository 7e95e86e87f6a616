"""Semi-supervised methods: each maps a batch to named loss terms (see ``base``)."""

from .acmt import ACMT, ACMTConfig
from .base import IGNORE_LABEL, Batch, LossTerms, Method, NetworkSpec, Stage, StepState, rampup
from .bcp import BCP, BCPConfig
from .cml import CML, CMLConfig
from .cps import CPS, CPSConfig
from .dtc import DTC, DTCConfig
from .dycon import DyCON, DyconConfig
from .galoss import GALoss, GALossConfig
from .magicnet import MagicNet, MagicNetConfig
from .mcf import MCF, MCFConfig
from .mean_teacher import MeanTeacher, MeanTeacherConfig
from .supervised import Supervised, SupervisedConfig
from .ua_mt import UAMT, UAMTConfig
from .urpc import URPC, URPCConfig

# name -> (config class, method class); the engine builds methods from here.
METHODS = {
    "supervised": (SupervisedConfig, Supervised),
    "mt": (MeanTeacherConfig, MeanTeacher),
    "ua-mt": (UAMTConfig, UAMT),
    "dycon": (DyconConfig, DyCON),
    "dtc": (DTCConfig, DTC),
    "urpc": (URPCConfig, URPC),
    "acmt": (ACMTConfig, ACMT),
    "bcp": (BCPConfig, BCP),
    "magicnet": (MagicNetConfig, MagicNet),
    "cps": (CPSConfig, CPS),
    "mcf": (MCFConfig, MCF),
    "cml": (CMLConfig, CML),
    "galoss": (GALossConfig, GALoss),
}

__all__ = [
    "ACMT",
    "BCP",
    "CML",
    "CPS",
    "DTC",
    "IGNORE_LABEL",
    "MCF",
    "METHODS",
    "UAMT",
    "URPC",
    "ACMTConfig",
    "BCPConfig",
    "Batch",
    "CMLConfig",
    "CPSConfig",
    "DTCConfig",
    "DyCON",
    "DyconConfig",
    "GALoss",
    "GALossConfig",
    "LossTerms",
    "MCFConfig",
    "MagicNet",
    "MagicNetConfig",
    "MeanTeacher",
    "MeanTeacherConfig",
    "Method",
    "NetworkSpec",
    "Stage",
    "StepState",
    "Supervised",
    "SupervisedConfig",
    "UAMTConfig",
    "URPCConfig",
    "rampup",
]
