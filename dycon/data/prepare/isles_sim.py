"""isles-sim -> the same ``<case>.h5`` files as ISLES'22, on the generator's native grid.

The BIDS set is generated (or reused) under ``<dest>/raw/``; each case is converted like ISLES'22
but without resampling or cropping (64 x 64 x 48 at 3.0 x 3.0 x 3.5 mm for the default preset),
only z-scored over the brain. The generator's lists (``train.list`` with the labeled cases
first, ``val.list``, ``test.list``), ``lesions.tsv`` and the MNI ``NOTICE`` are copied beside the
h5 files. ``lesions.tsv`` centroids are voxel indices of the generator's LAS arrays; the h5
arrays are RAS+ (x mirrored: i_ras = X - 1 - i_las).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dycon.data.prepare._common import PathLike, require_outside, resolve_dest
from dycon.data.prepare.isles22 import convert_all
from dycon.data.prepare.manifest import finish, staging
from dycon.data.readers import list_isles_bids_cases
from dycon.data.volume import DataError

RAW_DIR = "raw"
COPIED = ("train.list", "val.list", "test.list", "lesions.tsv", "NOTICE")


def _generator():
    try:
        from dycon.data.isles_sim import generate_isles_sim, is_complete
    except ImportError as exc:
        raise DataError(
            f"the isles-sim generator (dycon.data.isles_sim) cannot be imported ({exc}); "
            "reinstall dycon"
        ) from exc
    return generate_isles_sim, is_complete


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link a finished raw set into the staging folder (copy across file systems): the old
    folder stays intact until the final rename, and no disk is spent."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def _raw_set(tmp: Path, dest: Path, raw: PathLike | None, *, preset: str, seed: int) -> Path:
    generate, is_complete = _generator()
    if raw is not None:
        return Path(generate(raw, preset=preset, seed=seed))  # reuses a complete set
    bids = tmp / RAW_DIR
    if is_complete(dest / RAW_DIR, preset=preset, seed=seed):
        _link_tree(dest / RAW_DIR, bids)
        return bids
    return Path(generate(bids, preset=preset, seed=seed))


def _copy_side_files(bids: Path, tmp: Path) -> None:
    for name in COPIED:
        src = bids / name
        # The tiny preset has no validation case: an empty list would not read, so skip it.
        if src.is_file() and (not name.endswith(".list") or src.read_text().strip()):
            shutil.copyfile(src, tmp / name)


def prepare_isles_sim(
    *,
    raw: PathLike | None = None,
    dest: PathLike | None = None,
    preset: str = "default",
    seed: int = 0,
    adc: bool = False,
) -> Path:
    """Generate (or reuse) isles-sim and prepare it as ``<case>.h5`` files with its lists.

    Args:
        raw: where the BIDS set lives or is generated; default ``<dest>/raw``.
        dest: the dataset folder (default ``$DYCON_DATA/isles-sim``).
        preset: ``default`` (72 cases) or ``tiny`` (6 cases, tests).
        seed: the generator's master seed.
        adc: store ADC as a second channel after DWI.
    """
    dest = resolve_dest("isles-sim", dest)
    if raw is not None and Path(raw).resolve() == (dest / RAW_DIR).resolve():
        raw = None  # the default place, which moves with the staged folder
    if raw is not None:
        require_outside(Path(raw), dest)
    with staging(dest) as tmp:
        bids = _raw_set(tmp, dest, raw, preset=preset, seed=seed)
        cases = list_isles_bids_cases(bids)
        _copy_side_files(bids, tmp)
        extra = convert_all(bids, tmp, cases, dataset="isles-sim", adc=adc, spacing=None,
                            shape=None)  # fmt: skip
        description = json.loads((bids / "dataset_description.json").read_text())
        finish(
            tmp,
            dataset="isles-sim",
            case_ids=cases,
            source={
                "name": description.get("Name"),
                "generator_version": description.get("generator_version"),
                "preset": preset,
                "seed": seed,
                "raw": RAW_DIR if raw is None else str(raw),
                "lesions_tsv_axes": "centroid_i/j/k index the LAS arrays; h5 arrays are RAS+",
            },
            options=dict(preset=preset, seed=seed, adc=adc),
            subset=False,
            extra=extra,
        )
    return dest
