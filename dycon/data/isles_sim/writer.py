"""Write an isles-sim dataset in the ISLES'22 Zenodo BIDS layout, all or nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from dycon.data.files import atomic_path, replace_folder, write_text_atomic
from dycon.data.isles_sim import anatomy
from dycon.data.isles_sim.lesions import component_rows, phenotype_schedule
from dycon.data.isles_sim.params import (
    CALIBRATION,
    CONNECTIVITY,
    GENERATOR_VERSION,
    PRESETS,
    SIZE_BINS,
    SPLITS,
    Preset,
    SimParams,
)
from dycon.data.isles_sim.synth import synthesize_case
from dycon.data.volume import DataError

NOTICE_SOURCE = Path(__file__).resolve().parent.parent / "NOTICE-MNI152.txt"
DESCRIPTION = "dataset_description.json"
# One row per connected component; the centroid is in voxel indices of the stored (LAS) array.
LESION_COLUMNS = ("case", "component", "voxels", "volume_ml", "size_bin", "phenotype")
LESION_COLUMNS += ("centroid_i", "centroid_j", "centroid_k")
# artefacts / wmh: unlabeled lesion mimics planted in the case (see mimics.py).
PARTICIPANT_COLUMNS = ("participant_id", "phenotype", "split", "artefacts", "wmh")
GZIP_LEVEL = 6


def case_id(index: int) -> str:
    """BIDS participant id of the case with 0-based `index`: sub-strokecase0001, ..."""
    return f"sub-strokecase{index + 1:04d}"


def case_paths(root: Path, index: int) -> dict[str, Path]:
    """Where the DWI, ADC and mask of a case live, exactly as in the ISLES'22 Zenodo release."""
    sub = case_id(index)
    stem = f"{sub}_ses-0001"
    dwi_dir = root / sub / "ses-0001" / "dwi"
    return {
        "dwi": dwi_dir / f"{stem}_dwi.nii.gz",
        "adc": dwi_dir / f"{stem}_adc.nii.gz",
        "msk": root / "derivatives" / sub / "ses-0001" / f"{stem}_msk.nii.gz",
    }


def generate_isles_sim(
    dest: str | os.PathLike, *, preset: str = "default", seed: int = 0, overwrite: bool = False
) -> Path:
    """Generate the isles-sim dataset into `dest` (or reuse it if already complete).

    Case i depends only on (seed, i, preset, generator version). Generation happens in a hidden
    sibling folder that is renamed onto `dest` at the end, so an interrupted run leaves nothing.

    Args:
        dest: Dataset folder to create.
        preset: "default" (72 cases, 64x64x48 at 3x3x3.5 mm) or "tiny" (6 cases, for tests).
        seed: Master seed; per-case streams come from `np.random.SeedSequence(seed).spawn`.
        overwrite: Replace whatever is at `dest`, even a complete dataset.

    Returns:
        The dataset folder `dest`.

    Raises:
        DataError: Unknown preset, or `dest` holds something other than this very dataset and
            `overwrite` is False.
    """
    dest = Path(dest)
    if preset not in PRESETS:
        raise DataError(f"unknown isles-sim preset {preset!r}; choose one of {sorted(PRESETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"isles-sim seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    if _occupied(dest) and not overwrite:
        if is_complete(dest, preset=preset, seed=seed):
            return dest
        raise DataError(
            f"{str(dest)!r} exists and {_what_is_there(dest)}, not isles-sim preset={preset!r} "
            f"seed={seed} version {GENERATOR_VERSION}; delete it or pass overwrite=True"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        _write_dataset(tmp, PRESETS[preset], seed)
        _move_into_place(tmp, dest, overwrite=overwrite, preset=preset, seed=seed)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return dest


def is_complete(dest: str | os.PathLike, *, preset: str, seed: int) -> bool:
    """True if `dest` holds a finished dataset of this preset, seed and generator version.

    The description file is written last and the folder appears by one rename, so its
    presence means every other file is there.
    """
    try:
        meta = json.loads((Path(dest) / DESCRIPTION).read_text())
    except (OSError, ValueError):
        return False
    return (meta.get("generator_version"), meta.get("preset"), meta.get("seed")) == (
        GENERATOR_VERSION,
        preset,
        seed,
    )


def _what_is_there(dest: Path) -> str:
    try:
        meta = json.loads((dest / DESCRIPTION).read_text())
        found = (meta["preset"], meta["seed"], meta["generator_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return "is not a complete isles-sim dataset"
    return "holds isles-sim preset={!r} seed={} version {}".format(*found)


def _occupied(dest: Path) -> bool:
    """Anything at `dest` except an empty folder (which holds nothing to protect)."""
    return dest.is_symlink() or dest.is_file() or (dest.is_dir() and any(dest.iterdir()))


def _move_into_place(tmp: Path, dest: Path, *, overwrite: bool, preset: str, seed: int) -> None:
    if overwrite and _occupied(dest):
        replace_folder(tmp, dest)
        return
    with contextlib.suppress(FileNotFoundError):
        dest.rmdir()  # an empty folder stands in the way of the rename
    try:
        os.replace(tmp, dest)
    except OSError:
        # Another process finished the same dataset first: theirs is as good as ours.
        if not is_complete(dest, preset=preset, seed=seed):
            raise


def _write_dataset(root: Path, preset: Preset, seed: int) -> None:
    """Every file of the dataset under `root`; the description goes last (completion marker)."""
    params = SimParams()
    template = anatomy.load_template(params=params)
    phenotypes, rows, mimics = _write_cases(root, preset, seed, params, template)
    splits = preset.split_of_case()
    participants = [
        {
            "participant_id": case_id(i),
            "phenotype": phenotypes[i],
            "split": splits[i],
            "artefacts": mimics[i][0],
            "wmh": mimics[i][1],
        }
        for i in range(preset.n_cases)
    ]
    _write_tsv(root / "participants.tsv", PARTICIPANT_COLUMNS, participants)
    _write_tsv(root / "lesions.tsv", LESION_COLUMNS, rows)
    _write_split_lists(root, splits)
    write_text_atomic(root / "NOTICE", NOTICE_SOURCE.read_text())
    description = _description(preset, seed, params, template)
    write_text_atomic(root / DESCRIPTION, json.dumps(description, indent=2) + "\n")
    _apply_umask(root)


def case_rngs(
    *, seed: int, n_cases: int
) -> tuple[list[np.random.RandomState], np.random.RandomState]:
    """Per-case random streams and the phenotype-schedule stream of a master seed.

    Stream i is `SeedSequence(seed).spawn(...)[i]`, so case i does not depend on how many cases
    there are; the schedule takes stream `n_cases`. RandomState (legacy MT19937) is used
    because its stream is frozen across numpy releases (NEP 19); Generator streams are not.
    """
    streams = np.random.SeedSequence(seed).spawn(n_cases + 1)
    rngs = [np.random.RandomState(s.generate_state(4)) for s in streams]
    return rngs[:-1], rngs[-1]


def _write_cases(root: Path, preset: Preset, seed: int, params: SimParams, template):
    """Generate and write every case; returns the phenotypes, the lesions.tsv rows and the
    mimic counts (artefacts, wmh) of every case."""
    rngs, schedule_rng = case_rngs(seed=seed, n_cases=preset.n_cases)
    phenotypes = phenotype_schedule(preset=preset, params=params, rng=schedule_rng)
    rows: list[dict] = []
    mimics: list[tuple[int, int]] = []
    for i, rng in enumerate(rngs):
        case = synthesize_case(
            template=template, preset=preset, params=params, phenotype=phenotypes[i], rng=rng
        )
        paths = case_paths(root, i)
        _write_nifti(paths["dwi"], case.dwi, case.affine)
        _write_nifti(paths["adc"], case.adc, case.affine)
        _write_nifti(paths["msk"], case.mask, case.affine)
        rows += component_rows(
            case=case_id(i), mask=case.mask, phenotype=phenotypes[i], voxel_ml=preset.voxel_ml
        )
        mimics.append(case.mimics)
    return phenotypes, rows, mimics


def _apply_umask(root: Path) -> None:
    """Give files and folders the modes a plain open()/mkdir() would have.

    mkdtemp and the atomic temp files are created owner-only (0700/0600); a dataset in a
    shared data folder should be readable like any other file the user writes.
    """
    probe = root / ".umask-probe"
    probe.touch()
    file_mode = probe.stat().st_mode & 0o666  # 0o666 minus the umask
    probe.unlink()
    dir_mode = file_mode | ((file_mode & 0o444) >> 2)  # search wherever reading is allowed
    for path in [root, *root.rglob("*")]:
        path.chmod(dir_mode if path.is_dir() else file_mode)


def _write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Gzipped NIfTI-1 with sform and qform set to scanner space, spacing in mm.

    Compressed here rather than by nibabel (which picks gzip from the file name, and the
    atomic temp name does not end in .gz); mtime=0 makes identical arrays identical bytes.
    """
    img = nib.Nifti1Image(data, affine)
    img.set_data_dtype(data.dtype)
    img.header.set_xyzt_units(xyz="mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    payload = gzip.compress(img.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)


def _write_tsv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    lines = ["\t".join(columns)] + ["\t".join(str(r[c]) for c in columns) for r in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _write_split_lists(root: Path, splits: list[str]) -> None:
    """splits/<split>.list, and DyCON-style train.list (labeled FIRST: DyCON's sampler takes
    the first N entries as labeled), val.list and test.list; one participant id per line."""
    members = {s: [case_id(i) for i, sp in enumerate(splits) if sp == s] for s in SPLITS}
    for split, ids in members.items():
        write_text_atomic(root / "splits" / f"{split}.list", "".join(f"{c}\n" for c in ids))
    train = members["train_labeled"] + members["train_unlabeled"]
    for name, ids in (("train", train), ("val", members["val"]), ("test", members["test"])):
        write_text_atomic(root / f"{name}.list", "".join(f"{c}\n" for c in ids))


def _description(preset: Preset, seed: int, params: SimParams, template: anatomy.Template) -> dict:
    """BIDS dataset_description fields plus everything needed to regenerate the data."""
    return {
        "Name": "isles-sim: synthetic ischemic stroke lesions in the MNI ICBM152 2009a template",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "License": "Template: MNI ICBM152 notice (see NOTICE). Synthetic lesions: as dycon (MIT).",
        "HowToAcknowledge": "Cite Fonov et al. 2009 and 2011 (see NOTICE) and DyCON (CVPR 2025).",
        "ReferencesAndLinks": [
            "https://doi.org/10.1016/j.neuroimage.2010.07.033",
            "https://doi.org/10.1016/S1053-8119(09)70884-5",
        ],
        "GeneratedBy": [{"Name": "dycon.data.isles_sim", "Version": GENERATOR_VERSION}],
        "generator_version": GENERATOR_VERSION,
        "preset": preset.name,
        "seed": seed,
        "anatomy": template.kind,
        "shape": list(preset.shape),
        "spacing_mm": list(preset.spacing),
        "orientation": "LAS",
        "counts": dict(zip(SPLITS, preset.counts, strict=True)),
        "connectivity": CONNECTIVITY,
        "size_bins_ml": {
            name: [lo, None if hi == float("inf") else hi] for name, lo, hi in SIZE_BINS
        },
        "seeding": "case i: RandomState(SeedSequence(seed).spawn(n_cases + 1)[i]"
        ".generate_state(4)); stream n_cases shuffles the phenotype quotas",
        "parameters": dataclasses.asdict(params),
        "calibration": CALIBRATION,
        "template_sha256": template.sha256,
        "software": _versions(),
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("numpy", "scipy", "nibabel", "nilearn"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions
