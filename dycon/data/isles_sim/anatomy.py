"""Anatomy for isles-sim: the MNI152 2009a template from nilearn, or a procedural phantom.

The template is read once per process (cached), averaged to a 2 mm grid, and resampled per
subject through a random rigid-plus-scale transform onto the preset's LAS output grid.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from dycon.data.files import sha256_file
from dycon.data.isles_sim.params import Preset, SimParams

TEMPLATE_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
MNI_ANATOMY = "mni152_2009a"
PHANTOM_ANATOMY = "phantom"


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, so it can key caches
class Template:
    """Tissue maps on the template grid.

    Attributes:
        kind: `MNI_ANATOMY` or `PHANTOM_ANATOMY`.
        maps: (5, X, Y, Z) float32: fractions of GM, WM, CSF and brain, then the depth in
            mm below the brain surface (distance to the nearest non-brain voxel).
        affine: (4, 4) voxel-to-world (RAS mm) matrix of `maps`.
        centre: (3,) world centre of the brain's bounding box in mm.
        sha256: File name -> sha256 of the template files read (empty for the phantom).
    """

    kind: str
    maps: np.ndarray
    affine: np.ndarray
    centre: np.ndarray
    sha256: dict[str, str]


@dataclass(frozen=True)
class SubjectAnatomy:
    """One subject's anatomy on the output grid; every array is (X, Y, Z) in LAS voxel order.

    Attributes:
        gm: GM fraction. wm: WM fraction. csf: CSF fraction.
        brain: Skull-stripped brain mask (bool).
        tissue: Brain voxels that are mostly GM + WM, where lesions may grow (bool).
        depth_mm: Distance to the outside of the brain in mm (0 outside).
        affine: (4, 4) LAS voxel-to-world matrix of the output grid.
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    tissue: np.ndarray
    depth_mm: np.ndarray
    affine: np.ndarray


def locate_template() -> dict[str, Path] | None:
    """Paths of the MNI152 T1/GM/WM files inside the installed nilearn wheel, or None.

    Uses importlib.resources rather than nilearn's loaders: nilearn's package `__init__` is
    light, while `nilearn.datasets` pulls in scikit-learn and pandas.
    """
    try:
        folder = importlib.resources.files("nilearn") / "datasets" / "data"
    except ModuleNotFoundError:
        return None
    paths = {key: Path(str(folder / name)) for key, name in TEMPLATE_FILES.items()}
    return paths if all(p.is_file() for p in paths.values()) else None


def load_template(*, params: SimParams) -> Template:
    """The MNI template if nilearn's files are installed, else the procedural phantom.

    Both are cached per process (about 1 s to read and reduce the MNI files).
    """
    paths = locate_template()
    if paths is None:
        return phantom_template(step=params.template_step_mm)
    key = tuple(sorted((k, str(p)) for k, p in paths.items()))
    return _load_mni(key, step=params.template_step_mm, threshold=params.brain_threshold)


@functools.lru_cache(maxsize=2)
def _load_mni(paths: tuple[tuple[str, str], ...], *, step: int, threshold: float) -> Template:
    files = dict(paths)
    vols, affine = {}, None
    for key in ("t1", "gm", "wm"):
        img = nib.load(files[key])
        data = img.get_fdata(dtype=np.float32)  # (197, 233, 189) at 1 mm, 0..255
        vols[key] = data / max(float(data.max()), 1e-6)
        affine = img.affine
    brain = _block_mean(vols["t1"] > threshold, step)  # (98, 116, 94) fraction at 2 mm
    # The T1 is skull-stripped, so holes are few; filling them at 2 mm takes a tenth of the
    # 1.2 s it takes at 1 mm, which matters for the tiny preset's 2 s budget.
    solid = brain >= 0.5
    brain[ndi.binary_fill_holes(solid) & ~solid] = 1.0
    gm, wm = _block_mean(vols["gm"], step), _block_mean(vols["wm"], step)
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    affine_2mm = affine @ _block_affine(step)
    maps = _with_depth(np.stack([gm, wm, csf, brain]), affine_2mm)  # (5, X, Y, Z)
    sha = {Path(f).name: sha256_file(f) for f in files.values()}
    return Template(MNI_ANATOMY, maps, affine_2mm, _bbox_centre(brain, affine_2mm), sha)


def _block_mean(vol: np.ndarray, step: int) -> np.ndarray:
    """Average `step`^3 blocks (trailing voxels that do not fill a block are dropped)."""
    nx, ny, nz = (s // step for s in vol.shape)
    v = vol[: nx * step, : ny * step, : nz * step].astype(np.float32)
    return v.reshape(nx, step, ny, step, nz, step).mean(axis=(1, 3, 5))


def _block_affine(step: int) -> np.ndarray:
    """Fine-voxel matrix of a block grid: block i is centred on fine index step * i + (step-1)/2."""
    m = np.diag([step, step, step, 1.0])
    m[:3, 3] = (step - 1) / 2.0
    return m


def _bbox_centre(brain: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(brain >= 0.5)  # (N, 3)
    mid = (idx.min(axis=0) + idx.max(axis=0)) / 2.0
    return (affine @ np.append(mid, 1.0))[:3]


@functools.lru_cache(maxsize=2)
def phantom_template(*, step: int = 2) -> Template:
    """A procedural brain: ellipsoidal cortex (GM shell), WM core, deep GM nuclei, ventricles.

    Sized like the MNI brain (145 x 181 x 155 mm bounding box) on the same kind of grid, so the
    output grid and lesion sizes behave as with the real template. Deterministic (no RNG).
    """
    shape = (196 // step, 232 // step, 188 // step)
    affine = np.diag([float(step)] * 3 + [1.0])
    affine[:3, 3] = (-98.0 + (step - 1) / 2, -134.0 + (step - 1) / 2, -72.0 + (step - 1) / 2)
    xyz = _world_grid(shape, affine)  # (3, X, Y, Z) mm

    def ellipsoid(centre, radii):
        d = sum(((xyz[k] - centre[k]) / radii[k]) ** 2 for k in range(3))
        return (d <= 1.0).astype(np.float32)

    brain = ellipsoid((0, -17, 5), (72, 90, 77))
    core = ellipsoid((0, -17, 5), (60, 77, 64))
    ventricles = np.maximum(
        ellipsoid((-9, -10, 15), (5, 22, 9)), ellipsoid((9, -10, 15), (5, 22, 9))
    )
    nuclei = np.maximum(ellipsoid((-14, -12, 2), (9, 12, 9)), ellipsoid((14, -12, 2), (9, 12, 9)))
    sulci = brain * (1 - core) * (np.sin(xyz[0] / 6.0) * np.sin(xyz[1] / 7.0) > 0.6)
    csf = np.maximum(ventricles, sulci)
    gm = np.clip(brain - core + nuclei - csf, 0, 1)
    wm = np.clip(core - nuclei - ventricles, 0, 1)
    # Smoothing gives the partial-volume edges that real probability maps have.
    maps = np.stack([ndi.gaussian_filter(m, 0.7) for m in (gm, wm, csf, brain)])  # (4, X, Y, Z)
    return Template(PHANTOM_ANATOMY, _with_depth(maps, affine), affine, np.array([0.0, -17, 5]), {})


def _with_depth(maps: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Append the brain depth map; computed once here, it is resampled per subject, which is
    a quarter of the cost of a distance transform per case."""
    spacing = np.abs(np.diag(affine)[:3])
    depth = ndi.distance_transform_edt(maps[3] >= 0.5, sampling=spacing)  # (X, Y, Z) mm
    out = np.concatenate([maps, depth[None]]).astype(np.float32)  # (5, X, Y, Z)
    out.setflags(write=False)  # shared by every case through the caches
    return out


def _world_grid(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    ijk = np.indices(shape, dtype=np.float32)  # (3, X, Y, Z)
    return np.einsum("ab,b...->a...", affine[:3, :3], ijk) + affine[:3, 3, None, None, None]


def output_affine(*, preset: Preset, centre: np.ndarray) -> np.ndarray:
    """LAS voxel-to-world matrix (x decreases with the first index) centred on `centre`."""
    affine = np.diag([-preset.spacing[0], preset.spacing[1], preset.spacing[2], 1.0])
    half = (np.array(preset.shape) - 1) / 2.0
    affine[:3, 3] = centre - affine[:3, :3] @ half
    return affine


@functools.lru_cache(maxsize=4)
def _smoothed_maps(template: Template, spacing: tuple[float, float, float]) -> np.ndarray:
    """Template maps low-passed so that sampling at `spacing` does not alias (FWHM = spacing)."""
    src = np.abs(np.diag(template.affine)[:3])
    sigma_mm = [
        math.sqrt(max(s * s - t * t, 0.0)) / 2.3548 for s, t in zip(spacing, src, strict=True)
    ]
    sigma = [s / t for s, t in zip(sigma_mm, src, strict=True)]
    return np.stack([ndi.gaussian_filter(m, sigma) for m in template.maps])  # (5, X, Y, Z)


def random_transform(*, centre: np.ndarray, params: SimParams, rng: np.random.RandomState):
    """(4, 4) subject-to-template matrix: inverse of a random rotation, scale and shift about
    `centre` (world mm)."""
    angles = np.deg2rad(rng.uniform(-params.rotation_deg, params.rotation_deg, size=3))
    scale = rng.uniform(*params.scale_range, size=3)
    shift = rng.uniform(-params.shift_mm, params.shift_mm, size=3)
    forward = _rotation(angles) @ np.diag(scale)  # template -> subject, about the centre
    inverse = np.linalg.inv(forward)
    m = np.eye(4)
    m[:3, :3] = inverse
    m[:3, 3] = centre - inverse @ (centre + shift)
    return m


def _rotation(angles: np.ndarray) -> np.ndarray:
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def subject_anatomy(
    *, template: Template, preset: Preset, params: SimParams, rng: np.random.RandomState
) -> SubjectAnatomy:
    """Resample the template through a random subject transform onto the output grid."""
    affine = output_affine(preset=preset, centre=template.centre)
    to_template = random_transform(centre=template.centre, params=params, rng=rng)
    # Output voxel -> world -> template world -> template voxel, applied in one interpolation.
    m = np.linalg.inv(template.affine) @ to_template @ affine
    maps = _smoothed_maps(template, preset.spacing)
    gm, wm, csf, brain_frac, depth = (
        ndi.affine_transform(src, m[:3, :3], m[:3, 3], output_shape=preset.shape, order=1)
        for src in maps
    )  # each (X, Y, Z)
    brain = brain_frac >= 0.5
    tissue = brain & (gm + wm >= params.tissue_min)
    # Depth scales with the subject (volume ratio^(1/3)); only used to choose lesion sites.
    depth = np.where(brain, depth * abs(np.linalg.det(to_template[:3, :3])) ** (-1 / 3), 0)
    depth = depth.astype(np.float32)
    return SubjectAnatomy(gm, wm, csf, brain, tissue, depth, affine)
