"""Lesion mimics for isles-sim: unlabeled structures that are bright on DWI.

What makes real DWI lesion segmentation hard is less the lesions than what else is bright
(book/data.md, ISLES 2022):

- susceptibility (EPI) artefacts at air-bone interfaces, i.e. the brain surface next to the
  skull base (orbitofrontal cortex, temporal poles, cerebellum): as bright as a lesion on DWI,
  but present on the b=0 image too, so the fitted ADC is about normal;
- white-matter hyperintensities and old lesions (T2 shine-through), mostly periventricular:
  moderately bright on DWI, and bright on ADC (facilitated, not restricted, diffusion).

Neither is labeled. A DWI-only model can tell them apart by place and shape only; ADC (the
prepare option ``adc=True``) separates them by intensity, as in the real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from dycon.data.isles_sim.anatomy import SubjectAnatomy
from dycon.data.isles_sim.lesions import STRUCTURE, Blob, _log_uniform, render_blob
from dycon.data.isles_sim.params import SimParams


@dataclass(frozen=True)
class MimicMaps:
    """Mimic contrasts on the output grid, each (X, Y, Z) float32, 0 where there is none.

    Attributes:
        dwi_contrast: DWI x (1 + s) contrast times occupancy (max over mimics).
        adc_contrast: ADC x (1 + s) contrast times occupancy (an increase).
        artefacts: Number of susceptibility artefacts planted.
        wmh: Number of white-matter hyperintensities planted.
    """

    dwi_contrast: np.ndarray
    adc_contrast: np.ndarray
    artefacts: int
    wmh: int


def plant_mimics(
    *,
    anatomy: SubjectAnatomy,
    lesion_mask: np.ndarray,
    spacing: tuple[float, float, float],
    params: SimParams,
    rng: np.random.RandomState,
) -> MimicMaps:
    """Plant artefacts and WMH; they stay one voxel away from every labeled lesion voxel."""
    p, a = params, anatomy
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    shape = a.brain.shape
    dwi = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
    adc = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
    keep_out = ndi.binary_dilation(lesion_mask, structure=STRUCTURE)  # (X, Y, Z)

    def add(blob: Blob, c_dwi: float, c_adc: float) -> None:
        occ = np.where(keep_out[blob.box], 0.0, blob.occupancy)
        dwi[blob.box] = np.maximum(dwi[blob.box], c_dwi * blob.texture(rng, p) * occ)
        adc[blob.box] = np.maximum(adc[blob.box], c_adc * occ)

    # Artefacts: centre near the surface, in the inferior part of the brain (S is axis 2).
    sites = _inferior_surface(a, p)
    n_art = rng.randint(p.artefact_count[0], p.artefact_count[1] + 1)
    for _ in range(n_art if sites.any() else 0):
        voxel = _pick(sites, rng)
        ml = _log_uniform(rng, *p.artefact_log_ml)
        blob = render_blob(voxel, ml, a.brain, spacing_arr, p, rng, p.artefact_axis_log_spread)
        add(blob, rng.uniform(*p.artefact_dwi), 0.0)
    # WMH: white matter near the ventricles.
    sites = _periventricular(a, p, spacing_arr)
    n_wmh = rng.randint(p.wmh_count[0], p.wmh_count[1] + 1)
    for _ in range(n_wmh if sites.any() else 0):
        voxel = _pick(sites, rng)
        ml = _log_uniform(rng, *p.wmh_log_ml)
        blob = render_blob(voxel, ml, a.tissue, spacing_arr, p, rng, p.axis_log_spread)
        add(blob, rng.uniform(*p.wmh_dwi), rng.uniform(*p.wmh_adc))
    return MimicMaps(dwi, adc, n_art if sites.any() else 0, n_wmh if sites.any() else 0)


def _inferior_surface(a: SubjectAnatomy, p: SimParams) -> np.ndarray:
    """Brain voxels within `artefact_depth_mm` of the surface in the lowest slab of the brain."""
    z = np.flatnonzero(a.brain.any(axis=(0, 1)))  # S indices holding brain
    if z.size == 0:
        return np.zeros_like(a.brain)
    top = z[0] + p.artefact_inferior * (z[-1] - z[0] + 1)
    slab = np.zeros_like(a.brain)
    slab[:, :, z[0] : int(np.ceil(top))] = True
    return a.brain & (a.depth_mm <= p.artefact_depth_mm) & slab


def _periventricular(a: SubjectAnatomy, p: SimParams, spacing: np.ndarray) -> np.ndarray:
    """Tissue voxels, mostly white matter, within `wmh_ventricle_mm` of ventricular CSF."""
    ventricles = a.brain & (a.csf >= p.ventricle_csf) & (a.depth_mm >= p.ventricle_depth_mm)
    if not ventricles.any():
        return np.zeros_like(a.brain)
    dist = ndi.distance_transform_edt(~ventricles, sampling=spacing)  # (X, Y, Z) mm
    return a.tissue & (a.wm >= p.wmh_wm) & (dist <= p.wmh_ventricle_mm)


def _pick(candidates: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    flat = np.flatnonzero(candidates)
    return np.array(np.unravel_index(flat[rng.randint(flat.size)], candidates.shape))
