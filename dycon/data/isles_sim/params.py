"""isles-sim presets, constants and every generation parameter.

Everything that changes the generated voxels lives here, so that `dataset_description.json` can
record it in full (`dataclasses.asdict(SimParams())`). Changing a default changes the data:
bump `GENERATOR_VERSION` with it, because a complete dataset is reused when preset, seed and
version match.

Version history:

- 1.0.0: the first design (book/data.md, isles-sim). Too easy: after per-case z-scoring the
  lesions sat about 4 SD above the brain, a single global threshold reached a test Dice of 95 %
  and a quick-scale supervised U-Net 92 % with 8 labeled cases (real ISLES'22 semi-supervised
  Dice with 5-20 % labels: 30-70 %).
- 2.0.0: the calibration below while in progress. Datasets stamped 2.0.0 may hold any of four
  trial parameter sets (lesion contrast from U(0.25, 1.0), SNR from 8-20, ...): regenerate them.
- 2.1.0: calibrated for difficulty (`CALIBRATION`). Wider and lower lesion contrast, partial
  volume at the lesion rim and texture inside it, ADC pseudo-normalisation, a stronger bias
  field, and unlabeled lesion mimics that are bright on DWI: susceptibility artefacts at the
  skull base and periventricular white-matter hyperintensities (T2 shine-through, bright on ADC
  too, so only a model that reads ADC can tell them apart by intensity). Lesion size and
  phenotype distributions, grid and split are as in 1.0 (the lesions themselves differ: the
  random streams changed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GENERATOR_VERSION = "2.1.0"

SPLITS = ("train_labeled", "train_unlabeled", "val", "test")
PHENOTYPES = ("embolic", "lacunar", "territorial", "mixed")

# Lesion-size bins in mL, lower bound inclusive: tiny < 0.5 <= small < 2 <= medium < 10 <= large.
SIZE_BINS = (
    ("tiny", 0.0, 0.5),
    ("small", 0.5, 2.0),
    ("medium", 2.0, 10.0),
    ("large", 10.0, math.inf),
)

# What generator 2.1 was calibrated for, and what it measured (default preset, seed 0; quick
# scale with 4 labeled, training seed 1337, 2 threads); recorded in dataset_description.json.
# Real ISLES'22 semi-supervised Dice with 5-20 % labels: 30-70 % (DyCON, Table 1).
CALIBRATION = {
    "target": "quick scale, supervised-only with 4 labeled (10 %): test Dice 50-80 %",
    "lesion_z_median": "2.8 SD above the brain mean after z-scoring (1.0: 4.3)",
    "mimic_voxels": "healthy/lesion voxels above 2.5 SD: 0.18 (1.0: 0.02)",
    "threshold_dice": "best global threshold on 8 training cases, test Dice: 65 % (1.0: 95 %)",
    "quick_test_dice": "supervised 52.1, mt 53.9, ua-mt 51.7, dycon 56.5 % (1.0, 8 labeled, "
    "old quick scale: supervised 92.5, dycon 92.1 %)",
}

# 26-connectivity (faces, edges and corners) for lesion components, as in the ISLES'22
# lesion-wise evaluation; used both when planting lesions and when writing lesions.tsv.
CONNECTIVITY = 26


@dataclass(frozen=True)
class Preset:
    """Output grid and split sizes of one isles-sim variant.

    Attributes:
        name: Preset name recorded in the metadata.
        shape: Grid size in voxels (X, Y, Z).
        spacing: Voxel size in mm (X, Y, Z).
        counts: Number of cases per split, in `SPLITS` order.
    """

    name: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    counts: tuple[int, int, int, int]

    @property
    def n_cases(self) -> int:
        return sum(self.counts)

    @property
    def voxel_ml(self) -> float:
        return math.prod(self.spacing) / 1000.0

    def split_of_case(self) -> list[str]:
        """Split name of every case index; splits are contiguous blocks in `SPLITS` order."""
        return [split for split, n in zip(SPLITS, self.counts, strict=True) for _ in range(n)]


# Both grids span 192 x 192 x 168 mm around the brain's bounding box.
PRESETS = {
    "default": Preset("default", (64, 64, 48), (3.0, 3.0, 3.5), (8, 32, 8, 24)),
    "tiny": Preset("tiny", (32, 32, 24), (6.0, 6.0, 7.0), (2, 2, 0, 2)),
}


@dataclass(frozen=True)
class SimParams:
    """Generation parameters (ranges are sampled uniformly unless the name says log).

    Attributes are grouped as anatomy, subject transform, phenotypes, lesion shape, lesion
    intensity and acquisition; book/data.md (isles-sim) says where the values come from.
    """

    # Anatomy: brain = rescaled T1 > threshold (holes filled); maps averaged to this step first.
    brain_threshold: float = 0.2
    template_step_mm: int = 2
    # Pseudo-contrasts as weights of (GM, WM, CSF). GM is raised from 0.80 to 0.85 because GM is
    # visibly brighter than WM in the real DWI; ADC is in 1e-3 mm^2/s.
    dwi_weights: tuple[float, float, float] = (0.85, 0.62, 0.12)
    adc_weights: tuple[float, float, float] = (0.85, 0.75, 3.0)
    tissue_min: float = 0.5  # GM + WM fraction where lesions may grow (not in ventricles)
    # Per-subject rigid + scale transform.
    rotation_deg: float = 8.0
    scale_range: tuple[float, float] = (0.92, 1.08)
    shift_mm: float = 4.0
    # Phenotype quota per 20 cases, in PHENOTYPES order.
    quota: tuple[int, int, int, int] = (7, 4, 6, 3)
    embolic_count: tuple[int, int] = (3, 15)
    embolic_log_ml: tuple[float, float] = (0.1, 3.0)
    embolic_cluster_mm: float = 45.0
    cortical_gm: float = 0.5  # GM fraction of an embolic anchor
    embolic_gm: float = 0.3  # GM fraction preferred for embolic members
    lacunar_count: tuple[int, int] = (1, 3)
    lacunar_log_ml: tuple[float, float] = (0.3, 8.0)
    deep_wm: float = 0.6
    deep_depth_mm: float = 15.0
    territorial_log_ml: tuple[float, float] = (8.0, 60.0)
    territorial_depth: tuple[float, float] = (0.3, 0.8)  # centre depth / equivalent radius
    satellite_count: tuple[int, int] = (0, 3)
    satellite_log_ml: tuple[float, float] = (0.1, 2.0)
    satellite_margin_mm: float = 30.0  # satellites lie within radius + margin of the main lesion
    # Lesion shape: ellipsoid with log axis ratios, roughened by smoothed noise.
    axis_log_spread: float = 0.35
    roughness: float = 0.3
    roughness_scale: float = 0.5  # noise smoothing sigma / equivalent radius
    # Lesion intensity. DWI x (1 + s), s = c * texture * occupancy blurred by the point spread,
    # at least `pv_label_min` * c * texture on labeled voxels. c ~ U(0.4, 1.0): lesion/brain
    # ratio 1.4-2.0 at full occupancy, centred on the measured ISLES'22 case (1.74); v1 drew
    # U(0.6, 1.0). Partial volume and texture make rims and parts of lesions subtler still.
    # ADC x (1 - s'), c' ~ U(0.2, 0.55): ratio 0.45-0.8 (measured: 0.52; v1: 0.45-0.65; the
    # upper end stands for pseudo-normalising sub-acute lesions, which are still labeled).
    dwi_contrast: tuple[float, float] = (0.4, 1.0)
    adc_contrast: tuple[float, float] = (0.2, 0.55)
    texture: float = 0.2  # sd of a smooth multiplicative texture in a lesion (clipped at 2 sd)
    texture_scale: float = 0.5  # texture smoothing sigma / equivalent radius
    # Partial volume: a voxel's lesion occupancy ramps 1 -> 0 across the surface over
    # `pv_width_vox` voxels; the label is occupancy >= 0.5, so rim voxels carry 50-100 % of the
    # contrast and their unlabeled neighbours up to 50 %.
    pv_width_vox: float = 1.0
    pv_label_min: float = 0.5  # floor on labeled voxels, as a fraction of c * texture
    psf_sigma_vox: float = 0.5
    # Mimics (new in 2.0, see mimics.py): unlabeled structures that are bright on DWI.
    # Susceptibility (EPI) artefacts near the skull base: at the brain surface in the inferior
    # part of the brain, elongated, as bright as lesions; ADC unchanged (they cancel in the fit).
    artefact_count: tuple[int, int] = (0, 3)
    artefact_log_ml: tuple[float, float] = (0.5, 6.0)
    artefact_dwi: tuple[float, float] = (0.3, 1.0)
    artefact_depth_mm: float = 9.0  # centre at most this deep below the brain surface
    artefact_inferior: float = 0.4  # centre in the lowest fraction of the brain's S extent
    artefact_axis_log_spread: float = 0.7
    # White-matter hyperintensities / old lesions (T2 shine-through): periventricular white
    # matter, moderately bright on DWI and bright on ADC (facilitated diffusion).
    wmh_count: tuple[int, int] = (0, 6)
    wmh_log_ml: tuple[float, float] = (0.2, 4.0)
    wmh_dwi: tuple[float, float] = (0.1, 0.4)
    wmh_adc: tuple[float, float] = (0.2, 0.6)
    wmh_wm: float = 0.5  # WM fraction of a WMH centre
    wmh_ventricle_mm: float = 10.0  # centre within this distance of ventricular CSF
    ventricle_csf: float = 0.5  # CSF fraction of a ventricle voxel ...
    ventricle_depth_mm: float = 15.0  # ... this deep below the brain surface
    # Acquisition: gain, bias field (v1: 5-15 %), Rician noise (v1 SNR: the same 12-25).
    dwi_brain_level: float = 300.0  # median tissue DWI before gain (real ISLES: ~275)
    gain: tuple[float, float] = (0.8, 1.2)
    bias_amplitude: tuple[float, float] = (0.1, 0.2)  # field within 1 +- amplitude
    snr: tuple[float, float] = (12.0, 25.0)
