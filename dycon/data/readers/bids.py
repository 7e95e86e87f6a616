"""Reader for the ISLES'22 BIDS release (NIfTI): DWI (+ ADC) and the lesion mask.

Two layouts exist and are both handled by searching recursively for the BIDS file names:
- Zenodo: ``sub-strokecaseXXXX/ses-0001/dwi/<case>_ses-0001_{dwi,adc}.nii.gz`` and
  ``derivatives/sub-strokecaseXXXX/ses-0001/<case>_ses-0001_msk.nii.gz``;
- the organizers' GitHub sample: ``rawdata/<case>/ses-0001/<files>`` (no ``dwi/`` folder), with
  ``derivatives/`` beside ``rawdata/``, so passing ``rawdata`` itself as the root also works.
All images are reoriented to RAS+ (``nibabel.as_closest_canonical``) so that cases acquired in
different orientations (the real data are LAS) share one voxel axis convention.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from dycon.data.readers._common import PathLike, make_volume, one_line
from dycon.data.volume import DATA_PAGE, DataError, Volume

SESSION = "ses-0001"
_NIFTI_EXT = (".nii.gz", ".nii")
_FIX = "re-download the ISLES'22 release (Zenodo record 7960856)"
# Mask and DWI share one grid upstream; allow header float noise, not a real shift (mm).
_AFFINE_ATOL = 0.1


def _is_derivative(path: Path, root: Path) -> bool:
    return "derivatives" in path.relative_to(root).parts


def _find(root: Path, case: str, suffix: str, *, derivative: bool) -> Path:
    """The one file ``<case>_ses-0001_<suffix>.nii[.gz]`` under root (mask: under derivatives)."""
    roots = [root]
    if derivative and (root.parent / "derivatives").is_dir():
        roots.append(root.parent)  # root is ``rawdata`` of the GitHub layout
    hits: list[Path] = []
    for base in roots:
        for ext in _NIFTI_EXT:
            for path in base.rglob(f"{case}_{SESSION}_{suffix}{ext}"):
                if _is_derivative(path, base) == derivative and path not in hits:
                    hits.append(path)
        if hits:
            break
    where = "derivatives/**/" if derivative else "**/"
    if not hits:
        raise DataError(
            f"ISLES'22 case {case!r}: no {where}{case}_{SESSION}_{suffix}.nii.gz under "
            f"{str(root)!r}; {_FIX} and point the root at its top folder (see {DATA_PAGE})"
        )
    if len(hits) > 1:
        names = ", ".join(repr(str(p)) for p in hits)
        raise DataError(f"ISLES'22 case {case!r}: several {suffix} files ({names}); keep one")
    return hits[0]


def load_nifti(
    path: Path, *, canonical: bool = True, fix: str = _FIX
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(data, affine, spacing) of a 3-D NIfTI file, reoriented to RAS+ when ``canonical``.

    Raises:
        DataError: unreadable, truncated or not 3-D (a trailing axis of length 1 is dropped);
            the message names the file and ends with ``fix``.
    """
    try:
        image = nib.load(path)
        if canonical:
            image = nib.as_closest_canonical(image)
        data = np.asanyarray(image.dataobj)
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(
            f"{str(path)!r}: cannot read NIfTI file, truncated or corrupt ({one_line(exc)}); {fix}"
        ) from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"{str(path)!r}: expected a 3-D volume, got shape {data.shape}; {fix}")
    spacing = tuple(float(z) for z in image.header.get_zooms()[:3])
    return data, image.affine, spacing


def read_isles_bids(raw_root: PathLike, case_id: str, *, adc: bool = False) -> Volume:
    """Read one ISLES'22 case from the BIDS release.

    Args:
        raw_root: the top folder of the release (Zenodo ``ISLES-2022/``, or the GitHub ``data/``;
            its ``rawdata/`` works too).
        case_id: e.g. ``sub-strokecase0001``.
        adc: add ADC as a second channel after DWI.

    Returns:
        The Volume in RAS+ voxel order: image (1 or 2, X, Y, Z), label = mask > 0.5, spacing from
        the header zooms after reorientation.
    """
    root, case = Path(raw_root), str(case_id).strip()
    if not root.is_dir():
        raise DataError(f"ISLES'22 root {str(root)!r} does not exist; {_FIX} (see {DATA_PAGE})")
    dwi_path = _find(root, case, "dwi", derivative=False)
    paths = [dwi_path] + ([_find(root, case, "adc", derivative=False)] if adc else [])
    mask_path = _find(root, case, "msk", derivative=True)
    dwi, affine, spacing = load_nifti(dwi_path)
    channels = [dwi]
    for path in [*paths[1:], mask_path]:
        data, other_affine, _ = load_nifti(path)
        if data.shape != dwi.shape or not np.allclose(other_affine, affine, atol=_AFFINE_ATOL):
            raise DataError(
                f"{str(path)!r}: grid {data.shape} does not match the DWI {str(dwi_path)!r} "
                f"{dwi.shape} (shape or affine differ); {_FIX}"
            )
        channels.append(data)
    mask = channels.pop()
    image = np.stack([np.asarray(c, dtype=np.float32) for c in channels])
    label = (np.asarray(mask) > 0.5).astype(np.uint8)
    return make_volume(dwi_path, image, label, spacing, case)


def list_isles_bids_cases(raw_root: PathLike) -> list[str]:
    """Sorted ids (``sub-strokecase0001`` style) of every case with a DWI file under raw_root."""
    root = Path(raw_root)
    if not root.is_dir():
        raise DataError(f"ISLES'22 root {str(root)!r} does not exist; {_FIX} (see {DATA_PAGE})")
    cases = {
        path.name.split(f"_{SESSION}_")[0]
        for ext in _NIFTI_EXT
        for path in root.rglob(f"*_{SESSION}_dwi{ext}")
        if not _is_derivative(path, root)
    }
    return sorted(cases)
