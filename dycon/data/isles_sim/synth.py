"""One isles-sim case: anatomy -> lesions and mimics -> DWI/ADC pseudo-contrasts -> acquisition.

DWI = tissue DWI x (1 + max(s_lesion, s_mimic)), ADC = tissue ADC x (1 - s'_lesion) x
(1 + s'_mimic); then gain, a bias field and Rician noise (parameters: `SimParams`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from dycon.data.isles_sim.anatomy import SubjectAnatomy, Template, subject_anatomy
from dycon.data.isles_sim.lesions import LesionMaps, plant_lesions
from dycon.data.isles_sim.mimics import MimicMaps, plant_mimics
from dycon.data.isles_sim.params import Preset, SimParams


@dataclass(frozen=True)
class SimCase:
    """A generated case; arrays are (X, Y, Z) in the LAS voxel order of `affine`.

    Attributes:
        dwi: float32 DWI-like image (arbitrary units, tissue median ~300 x gain).
        adc: float32 ADC-like image in 1e-3 mm^2/s.
        mask: uint8 {0, 1} lesion mask.
        brain: bool brain mask (every lesion voxel is inside it).
        affine: (4, 4) LAS voxel-to-world matrix.
        planted: Number of lesions planted (touching lesions form one component).
        mimics: Number of unlabeled mimics planted (artefacts, white-matter hyperintensities).
    """

    dwi: np.ndarray
    adc: np.ndarray
    mask: np.ndarray
    brain: np.ndarray
    affine: np.ndarray
    planted: int
    mimics: tuple[int, int] = (0, 0)


def synthesize_case(
    *,
    template: Template,
    preset: Preset,
    params: SimParams,
    phenotype: str,
    rng: np.random.RandomState,
) -> SimCase:
    """Generate one case; its content depends only on the arguments (and rng's state)."""
    anat = subject_anatomy(template=template, preset=preset, params=params, rng=rng)
    lesions = plant_lesions(
        phenotype=phenotype, anatomy=anat, spacing=preset.spacing, params=params, rng=rng
    )
    mimics = plant_mimics(
        anatomy=anat, lesion_mask=lesions.mask, spacing=preset.spacing, params=params, rng=rng
    )
    dwi, adc = _contrasts(anat, lesions, mimics, params)
    dwi, adc = _acquire(dwi, adc, anat, params, rng)
    return SimCase(
        dwi,
        adc,
        lesions.mask.astype(np.uint8),
        anat.brain,
        anat.affine,
        lesions.planted,
        (mimics.artefacts, mimics.wmh),
    )


def _contrasts(anat: SubjectAnatomy, lesions: LesionMaps, mimics: MimicMaps, p: SimParams):
    """Noise-free DWI and ADC with the lesion and mimic contrast maps after the point spread."""
    tissue = (anat.gm, anat.wm, anat.csf)
    dwi = sum(w * m for w, m in zip(p.dwi_weights, tissue, strict=True))  # (X, Y, Z)
    adc = sum(w * m for w, m in zip(p.adc_weights, tissue, strict=True))  # (X, Y, Z)
    # The point spread blurs the occupancy-weighted contrast; labeled voxels keep at least
    # `pv_label_min` of their lesion's contrast, so every label marks something visible (blur
    # alone left 1-voxel lesions nearly invisible in the prototype: ratio 0.97).
    s_dwi = np.maximum(_psf(lesions.dwi_contrast, p), lesions.dwi_floor)
    s_adc = np.maximum(_psf(lesions.adc_contrast, p), lesions.adc_floor)
    m_dwi, m_adc = _psf(mimics.dwi_contrast, p), _psf(mimics.adc_contrast, p)
    return dwi * (1.0 + np.maximum(s_dwi, m_dwi)), adc * (1.0 - s_adc) * (1.0 + m_adc)


def _psf(contrast: np.ndarray, p: SimParams) -> np.ndarray:
    if p.psf_sigma_vox <= 0 or not contrast.any():
        return contrast
    return ndi.gaussian_filter(contrast, p.psf_sigma_vox)


def _acquire(dwi, adc, anat: SubjectAnatomy, p: SimParams, rng: np.random.RandomState):
    """Gain, bias field and noise; zero outside the brain (skull-stripped, as in ISLES)."""
    ref = float(np.median(dwi[anat.tissue])) if anat.tissue.any() else 1.0
    level = p.dwi_brain_level * rng.uniform(*p.gain)  # centre-specific scanner gain
    dwi = dwi * (level / max(ref, 1e-6)) * _bias_field(anat.brain, p, rng)
    snr = rng.uniform(*p.snr)
    sigma = level / snr
    # Rician magnitude noise for the DWI. ADC is a fitted quantity, so it gets Gaussian noise of
    # the same relative size, and no gain or bias (they cancel in the ratio it is fitted from).
    n1, n2 = rng.standard_normal((2, *dwi.shape)) * sigma  # (2, X, Y, Z)
    dwi = np.sqrt((dwi + n1) ** 2 + n2**2)
    adc_ref = float(np.median(adc[anat.tissue])) if anat.tissue.any() else 1.0
    adc = np.clip(adc + rng.standard_normal(adc.shape) * (adc_ref / snr), 0.0, None)
    dwi, adc = np.where(anat.brain, dwi, 0.0), np.where(anat.brain, adc, 0.0)
    return dwi.astype(np.float32), adc.astype(np.float32)


def _bias_field(brain: np.ndarray, p: SimParams, rng: np.random.RandomState) -> np.ndarray:
    """Smooth multiplicative field in [1 - a, 1 + a] over the brain: linear or quadratic."""
    u = [np.linspace(-1.0, 1.0, n) for n in brain.shape]
    x, y, z = np.meshgrid(*u, indexing="ij")  # each (X, Y, Z)
    terms = [x, y, z]
    if rng.uniform() < 0.5:  # quadratic half of the time
        terms += [x * x, y * y, z * z, x * y, x * z, y * z]
    coef = rng.uniform(-1.0, 1.0, size=len(terms))
    field = sum(c * t for c, t in zip(coef, terms, strict=True))  # (X, Y, Z)
    inside = field[brain] if brain.any() else field.ravel()
    field = field - inside.mean()
    field = field / max(float(np.abs(inside - inside.mean()).max()), 1e-6)
    return 1.0 + rng.uniform(*p.bias_amplitude) * np.clip(field, -1.0, 1.0)
