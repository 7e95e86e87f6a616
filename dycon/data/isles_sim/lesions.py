"""Lesions for isles-sim: phenotype quotas, planting roughened ellipsoids, component tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from dycon.data.isles_sim.anatomy import SubjectAnatomy
from dycon.data.isles_sim.params import CONNECTIVITY, PHENOTYPES, SIZE_BINS, Preset, SimParams

STRUCTURE = ndi.generate_binary_structure(3, 3 if CONNECTIVITY == 26 else 1)  # (3, 3, 3)


@dataclass(frozen=True)
class LesionMaps:
    """Planted lesions on the output grid, each (X, Y, Z).

    Attributes:
        mask: Union of all lesions (bool).
        dwi_contrast: Per-voxel DWI contrast c * texture * occupancy of the lesion covering it
            (max over lesions); non-zero on the labeled voxels and their one-voxel rim.
        adc_contrast: Per-voxel ADC contrast c' * occupancy, on the same footprint.
        dwi_floor: On labeled voxels, `pv_label_min` * c * texture (0 elsewhere): the least
            contrast a labeled voxel keeps after the point spread (what a rater can see).
        adc_floor: The same for c'.
        planted: Number of lesions planted (components may merge or touch).
    """

    mask: np.ndarray
    dwi_contrast: np.ndarray
    adc_contrast: np.ndarray
    dwi_floor: np.ndarray
    adc_floor: np.ndarray
    planted: int


def phenotype_schedule(
    *, preset: Preset, params: SimParams, rng: np.random.RandomState
) -> list[str]:
    """Phenotype of every case: each split gets the quota (largest remainder), shuffled."""
    phenotypes: list[str] = []
    for n in preset.counts:
        exact = [n * q / sum(params.quota) for q in params.quota]
        counts = [math.floor(e) for e in exact]
        # Largest remainders first; ties go to the earlier phenotype (stable sort).
        order = sorted(range(len(exact)), key=lambda k: counts[k] - exact[k])
        for k in order[: n - sum(counts)]:
            counts[k] += 1
        block = [p for p, c in zip(PHENOTYPES, counts, strict=True) for _ in range(c)]
        phenotypes += [block[k] for k in rng.permutation(len(block))]
    return phenotypes


def plant_lesions(
    *,
    phenotype: str,
    anatomy: SubjectAnatomy,
    spacing: tuple[float, float, float],
    params: SimParams,
    rng: np.random.RandomState,
) -> LesionMaps:
    """Plant the lesions of one phenotype; every lesion covers at least one tissue voxel."""
    if phenotype not in PHENOTYPES:
        raise ValueError(f"unknown phenotype {phenotype!r}; expected one of {PHENOTYPES}")
    planter = _Planter(anatomy, spacing, params, rng)
    if phenotype in ("territorial", "mixed"):
        planter.territorial()
    if phenotype in ("embolic", "mixed"):
        planter.embolic()
    if phenotype == "lacunar":
        planter.lacunar()
    return LesionMaps(
        planter.mask, planter.c_dwi, planter.c_adc, planter.f_dwi, planter.f_adc, planter.planted
    )


class _Planter:
    """Accumulates lesions on one subject's grid; one method per phenotype component."""

    def __init__(
        self, anatomy: SubjectAnatomy, spacing, params: SimParams, rng: np.random.RandomState
    ):
        self.anat, self.p, self.rng = anatomy, params, rng
        self.spacing = np.asarray(spacing, dtype=np.float64)
        shape = anatomy.brain.shape
        self.mask = np.zeros(shape, dtype=bool)  # (X, Y, Z)
        self.c_dwi = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
        self.c_adc = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
        self.f_dwi = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
        self.f_adc = np.zeros(shape, dtype=np.float32)  # (X, Y, Z)
        self.planted = 0
        scale = self.spacing.astype(np.float32)[:, None, None, None]
        self.xyz_mm = np.indices(shape, dtype=np.float32) * scale  # (3, X, Y, Z) for distances

    def territorial(self) -> None:
        p, a = self.p, self.anat
        ml = _log_uniform(self.rng, *p.territorial_log_ml)
        r = _radius_mm(ml)
        lo, hi = p.territorial_depth
        # Centred at a depth below the radius, so it spans cortex and the WM beneath.
        centre = self._pick(a.tissue & (a.depth_mm >= lo * r) & (a.depth_mm <= hi * r), a.tissue)
        self._render(centre, ml)
        near = self._within(centre, r + p.satellite_margin_mm)
        for _ in range(self.rng.randint(p.satellite_count[0], p.satellite_count[1] + 1)):
            self._render(self._pick(a.tissue & near), _log_uniform(self.rng, *p.satellite_log_ml))

    def embolic(self) -> None:
        p, a = self.p, self.anat
        anchor = self._pick(
            a.tissue & (a.gm > p.cortical_gm), a.tissue & (a.gm >= _q90(a.gm, a.tissue))
        )
        near = a.tissue & self._within(anchor, p.embolic_cluster_mm)
        for _ in range(self.rng.randint(p.embolic_count[0], p.embolic_count[1] + 1)):
            centre = self._pick(near & (a.gm > p.embolic_gm), near)
            self._render(centre, _log_uniform(self.rng, *p.embolic_log_ml))

    def lacunar(self) -> None:
        p, a = self.p, self.anat
        deep = a.tissue & (a.depth_mm >= p.deep_depth_mm)
        for _ in range(self.rng.randint(p.lacunar_count[0], p.lacunar_count[1] + 1)):
            centre = self._pick(
                deep & (a.wm > p.deep_wm), a.tissue & (a.wm > p.deep_wm), deep, a.tissue
            )
            self._render(centre, _log_uniform(self.rng, *p.lacunar_log_ml))

    def _pick(self, *candidates: np.ndarray) -> np.ndarray:
        """A uniformly drawn voxel (3,) of the first non-empty candidate mask."""
        for cand in candidates:
            flat = np.flatnonzero(cand)
            if flat.size:
                return np.array(np.unravel_index(flat[self.rng.randint(flat.size)], cand.shape))
        raise ValueError("isles-sim: the subject has no tissue voxel to place a lesion in")

    def _within(self, voxel: np.ndarray, radius_mm: float) -> np.ndarray:
        d2 = sum((self.xyz_mm[k] - voxel[k] * self.spacing[k]) ** 2 for k in range(3))
        return d2 <= radius_mm**2  # (X, Y, Z)

    def _render(self, voxel: np.ndarray, ml: float) -> None:
        p = self.p
        blob = render_blob(
            voxel, ml, self.anat.tissue, self.spacing, p, self.rng, p.axis_log_spread
        )
        c_dwi = self.rng.uniform(*p.dwi_contrast)
        c_adc = self.rng.uniform(*p.adc_contrast)
        tex = blob.texture(self.rng, p)  # (bx, by, bz)
        box, inside = blob.box, blob.inside
        self.mask[box] |= inside
        _max_into(self.c_dwi, box, c_dwi * tex * blob.occupancy)
        _max_into(self.c_adc, box, c_adc * blob.occupancy)
        _max_into(self.f_dwi, box, np.where(inside, p.pv_label_min * c_dwi * tex, 0.0))
        _max_into(self.f_adc, box, np.where(inside, p.pv_label_min * c_adc, 0.0))
        self.planted += 1


def _max_into(target: np.ndarray, box: tuple[slice, ...], values: np.ndarray) -> None:
    target[box] = np.maximum(target[box], values)


@dataclass(frozen=True)
class Blob:
    """One rendered roughened ellipsoid inside its bounding box.

    Attributes:
        box: Bounding-box slices on the output grid.
        inside: (bx, by, bz) bool: voxels at least half occupied (the label).
        occupancy: (bx, by, bz) float32 in [0, 1]: fraction of each voxel the blob fills,
            0 beyond a one-voxel rim around `inside`.
        scale_vox: (3,) texture smoothing sigma in voxels.
    """

    box: tuple[slice, ...]
    inside: np.ndarray
    occupancy: np.ndarray
    scale_vox: np.ndarray

    def texture(self, rng: np.random.RandomState, p: SimParams) -> np.ndarray:
        """Smooth multiplicative texture 1 + texture * z (z clipped to +-2 sd), (bx, by, bz)."""
        if p.texture <= 0:
            return np.ones(self.inside.shape, dtype=np.float32)
        z = ndi.gaussian_filter(rng.standard_normal(self.inside.shape), self.scale_vox)
        z = np.clip(z / max(float(z.std()), 1e-6), -2.0, 2.0)
        return (1.0 + p.texture * z).astype(np.float32)


def render_blob(voxel, ml, allowed, spacing, p: SimParams, rng, axis_log_spread) -> Blob:
    """A roughened, randomly oriented ellipsoid of about `ml` mL at `voxel`, cut to `allowed`.

    The label is the largest component of the voxels at least half occupied; the occupancy
    ramps linearly from 1 to 0 over `pv_width_vox` voxels across the (roughened) surface and is
    kept on the label and its one-voxel rim only (the rim of other components would be visible
    without a label). Lesions smaller than a voxel still mark the voxel they sit in.
    """
    r = _radius_mm(ml)
    log_axes = rng.uniform(-axis_log_spread, axis_log_spread, size=3)
    axes = r * np.exp(log_axes - log_axes.mean())  # (3,) mm, product r^3
    rot = _random_rotation(rng)
    centre = voxel + rng.uniform(-0.5, 0.5, size=3)  # sub-voxel position, in voxels
    # Noise is clipped to +-3 sd, so d + roughness * noise < 1 needs d < 1 + 3 * roughness;
    # one more voxel for the partial-volume rim.
    half = np.ceil((1 + 3 * p.roughness) * axes.max() / spacing).astype(int) + 2
    lo = np.maximum(np.floor(centre).astype(int) - half, 0)
    hi = np.minimum(np.floor(centre).astype(int) + half + 1, allowed.shape)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    ijk = np.indices(hi - lo, dtype=np.float64) + lo[:, None, None, None]  # (3, bx, by, bz)
    offset = (ijk - centre[:, None, None, None]) * spacing[:, None, None, None]  # mm
    local = np.einsum("ba,b...->a...", rot, offset)  # rot.T @ offset, in the ellipsoid frame
    dist = np.sqrt(sum((local[k] / axes[k]) ** 2 for k in range(3)))  # (bx, by, bz)
    scale_vox = p.roughness_scale * r / spacing
    noise = ndi.gaussian_filter(rng.standard_normal(dist.shape), scale_vox)
    noise = np.clip(noise / max(float(noise.std()), 1e-6), -3.0, 3.0)
    d_eff = dist + p.roughness * noise  # < 1 inside the roughened surface
    # Signed depth below the surface in voxels (radial approximation), then the occupancy ramp.
    depth_vox = (1.0 - d_eff) * r / float(np.exp(np.log(spacing).mean()))
    occupancy = np.clip(0.5 + depth_vox / p.pv_width_vox, 0.0, 1.0)
    within = allowed[box]
    inside = _largest_component((d_eff < 1.0) & within)
    if not inside.any():
        inside[tuple(voxel - lo)] = True
    rim = ndi.binary_dilation(inside, structure=STRUCTURE) & within
    occupancy = np.where(inside, np.maximum(occupancy, 0.5), np.where(rim, occupancy, 0.0))
    occupancy = np.where(~inside, np.minimum(occupancy, 0.5), occupancy)
    scale_tex = p.texture_scale * r / spacing
    return Blob(box, inside, occupancy.astype(np.float32), scale_tex)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndi.label(mask, structure=STRUCTURE)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]  # (n,)
    return labels == (int(np.argmax(sizes)) + 1)


def _random_rotation(rng: np.random.RandomState) -> np.ndarray:
    """Uniform random rotation (3, 3) from a normalized Gaussian quaternion."""
    q = rng.standard_normal(4)
    w, x, y, z = q / max(float(np.linalg.norm(q)), 1e-12)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _radius_mm(ml: float) -> float:
    return (3.0 * ml * 1000.0 / (4.0 * math.pi)) ** (1.0 / 3.0)


def _log_uniform(rng: np.random.RandomState, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _q90(values: np.ndarray, where: np.ndarray) -> float:
    return float(np.quantile(values[where], 0.9)) if where.any() else 0.0


def size_bin(volume_ml: float) -> str:
    """Name of the size bin of a component volume in mL (see `SIZE_BINS`)."""
    return next(name for name, lo, hi in SIZE_BINS if lo <= volume_ml < hi)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Connected components of a lesion mask with the generator's connectivity."""
    return ndi.label(mask, structure=STRUCTURE)


def component_rows(*, case: str, mask: np.ndarray, phenotype: str, voxel_ml: float) -> list[dict]:
    """One lesions.tsv row per connected component, numbered in scipy's raster order."""
    labels, n = label_components(mask)
    if n == 0:
        return []
    ids = list(range(1, n + 1))
    counts = np.bincount(labels.ravel(), minlength=n + 1)[1:]  # (n,)
    centroids = ndi.center_of_mass(mask, labels, ids)
    rows = []
    for cid, voxels, c in zip(ids, counts, centroids, strict=True):
        ml = float(voxels) * voxel_ml
        rows.append(
            {
                "case": case,
                "component": cid,
                "voxels": int(voxels),
                "volume_ml": round(ml, 4),
                "size_bin": size_bin(ml),
                "phenotype": phenotype,
                "centroid_i": round(c[0], 2),
                "centroid_j": round(c[1], 2),
                "centroid_k": round(c[2], 2),
            }
        )
    return rows
