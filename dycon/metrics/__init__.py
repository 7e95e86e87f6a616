"""Segmentation metrics: Dice and IoU in %, HD95 and ASD in mm, lesion-wise statistics.

Masks are numpy arrays, 2-D or 3-D, nonzero = foreground. Definitions follow medpy 0.5.2
(``metric.binary.dc / jc / hd95 / asd``) exactly, with ``spacing`` as medpy's ``voxelspacing``;
the functions raise ``ValueError`` where medpy raises (a distance to an empty mask).
:func:`case_metrics` adds the empty-mask policy: ``convention="honest"`` (NaN + flags, optional
diagonal penalty) or ``convention="official"`` (the DyCON code: voxel units, empty -> 0).
"""

from ._checks import as_mask, check_pair
from .aggregate import MeanCI, PairedCI, mean_ci, paired_bootstrap
from .case import CASE_METRICS, CONVENTIONS, case_metrics, image_diagonal
from .lesion_table import LesionTable, lesion_table
from .overlap import dice, iou
from .surface import asd, hd95, surface_distances
from .variance import PairedVariance, paired_variance

__all__ = [
    "CASE_METRICS",
    "CONVENTIONS",
    "LesionTable",
    "MeanCI",
    "PairedCI",
    "PairedVariance",
    "as_mask",
    "asd",
    "case_metrics",
    "check_pair",
    "dice",
    "hd95",
    "image_diagonal",
    "iou",
    "lesion_table",
    "mean_ci",
    "paired_bootstrap",
    "paired_variance",
    "surface_distances",
]
