"""Left Atrium (UA-MT's preprocessed h5 files): verify against pinned sha256, copy or download.

The files are used as published (``mri_norm2.h5``: image z-scored over the whole volume, label
{0, 1}, 0.625 mm): every byte is checked against ``checksums/la.json``. ``downsample=F`` (a power
of two) then shrinks each verified file for CPU budgets, F = 2 reproducing the half-resolution
LA copy of book/data.md.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dycon.data.files import atomic_path
from dycon.data.prepare._common import (
    PathLike,
    pinned_lists,
    require_listed,
    require_outside,
    require_raw,
    resolve_dest,
)
from dycon.data.prepare.manifest import case_file, describe, finish, staging
from dycon.data.readers import bare_id, read_case
from dycon.data.readers.h5 import LA_FOLDERS, LA_SPACING
from dycon.data.readers.write import write_case_h5
from dycon.data.splits import RAW_BASE_URL
from dycon.data.volume import DataError, Volume

log = logging.getLogger("dycon.data.prepare")

CHECKSUMS = Path(__file__).resolve().parents[1] / "checksums" / "la.json"
_MAX_BYTES = 64 << 20  # upstream files are 1.5-3.4 MB; refuse anything absurd
_CHUNK = 1 << 20
SPLITS = ("train", "test")
FACTORS = (1, 2, 4, 8)  # 8 leaves about 23 x 17 x 11 voxels of the 190 x 142 x 88 upstream


def load_checksums() -> dict:
    """``checksums/la.json``: repo, commit, path pattern and (id, split, sha256) per case."""
    return json.loads(CHECKSUMS.read_text())


def file_url(case: str, *, base_url: str = RAW_BASE_URL) -> str:
    """URL of one upstream file: ``base_url/yulequan/UA-MT/<commit>/data/2018LA_Seg...``."""
    table = load_checksums()
    path = urllib.parse.quote(table["path"].format(id=case))
    return f"{base_url.rstrip('/')}/{table['repo']}/{table['commit']}/{path}"


def _find_raw(raw: Path, case: str) -> Path | None:
    for candidate in [raw / folder / case / "mri_norm2.h5" for folder in LA_FOLDERS]:
        if candidate.is_file():
            return candidate
    flat = raw / case / "mri_norm2.h5"
    return flat if flat.is_file() else None


def _copy_checked(stream: BinaryIO, target: Path, expected: str | None, *, what: str) -> str:
    """Stream into ``target`` while hashing; on a mismatch nothing is left at ``target``."""
    digest, size = hashlib.sha256(), 0
    with atomic_path(target) as tmp, open(tmp, "wb") as out:
        while block := stream.read(_CHUNK):
            size += len(block)
            if size > _MAX_BYTES:
                raise DataError(f"{what} is larger than {_MAX_BYTES} bytes; not an LA file")
            digest.update(block)
            out.write(block)
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise DataError(
                f"checksum mismatch for {what}: expected sha256 {expected}, got {actual}; "
                "download the file again from UA-MT at the pinned commit (nothing was written)"
            )
    return actual


def _download(case: str, target: Path, expected: str | None, *, base_url: str, timeout: float):
    url = file_url(case, base_url=base_url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return _copy_checked(response, target, expected, what=url)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = " ".join(str(getattr(exc, "reason", None) or exc).split())
        raise DataError(
            f"cannot download {url} ({reason}); check the network, or clone UA-MT and pass "
            "--raw <UA-MT/data>"
        ) from exc


def _select(table: dict, cases: Sequence[str] | None) -> list[dict]:
    entries = table["cases"]
    if cases is None:
        return entries
    known = {e["id"]: e for e in entries}
    wanted = [bare_id(c) for c in cases]
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise DataError(f"LA: unknown case id(s) {unknown[:5]}; ids are listed in {CHECKSUMS.name}")
    return [known[c] for c in wanted]


def prepare_la(
    *,
    raw: PathLike | None = None,
    dest: PathLike | None = None,
    cases: Sequence[str] | None = None,
    verify: bool = True,
    base_url: str = RAW_BASE_URL,
    lists_dir: PathLike | None = None,
    timeout: float = 60.0,
    downsample: int = 1,
) -> Path:
    """Prepare LA: verified upstream files under ``2018LA_Seg_Training Set/<id>/mri_norm2.h5``.

    Args:
        raw: a copy of UA-MT's ``data/`` (``2018LA_Seg_Training Set/<id>/mri_norm2.h5`` or
            ``<id>/mri_norm2.h5``); None downloads every file from GitHub.
        dest: the dataset folder (default ``$DYCON_DATA/la``).
        cases: prepare only these ids (split lists are restricted to them).
        verify: check each file against ``checksums/la.json``. False copies files as they are
            (for a 2x downsampled copy, such as a half-resolution LA); the manifest says so.
        base_url: raw-file server for the files and the split lists (a local one in tests).
        lists_dir: a folder with the pinned ``train.list``/``test.list`` (default: ``raw``).
        timeout: seconds per download.
        downsample: shrink every axis by this factor (1, 2, 4 or 8) after the file is checked:
            image = mean of each 2 x 2 x 2 block, label = strict block majority (a 4-4 tie is
            background), a trailing odd plane dropped, repeated log2(F) times; spacing x F in the
            ``spacing_mm`` attribute. Repeating the 2x step makes 4x of the upstream files equal
            2x of a half-resolution copy, bit for bit.

    Returns:
        The dataset folder.

    Raises:
        DataError: raw folder or a listed case missing, checksum mismatch (file, expected and
            actual hash), download failure, unreadable h5.
    """
    dest = resolve_dest("la", dest)
    steps = _halvings(downsample)
    raw = require_raw(raw, dataset="la", what="UA-MT data/ folder") if raw is not None else None
    if raw is not None:
        require_outside(raw, dest)
    table = load_checksums()
    entries = _select(table, cases)
    found = _find_all(raw, entries, subset=cases is not None) if raw is not None else {}
    look_in = [Path(p) for p in (lists_dir, raw) if p is not None]
    with staging(dest) as tmp:
        # Files first: a checksum mismatch is reported without needing the network.
        for e in entries:
            expected = e["sha256"] if verify else None
            target = tmp / case_file("la", e["id"])
            if raw is None:
                _download(e["id"], target, expected, base_url=base_url, timeout=timeout)
            else:
                with open(found[e["id"]], "rb") as src:
                    _copy_checked(src, target, expected, what=repr(str(found[e["id"]])))
            if steps:
                write_case_h5(target, downsample_volume(read_case("la", tmp, e["id"]), steps=steps))
            log.info("la: %s", e["id"])
        pinned_lists("la", tmp, look_in=look_in, base_url=base_url, timeout=timeout)
        ids = [e["id"] for e in entries]
        sources = found or {e["id"]: file_url(e["id"], base_url=base_url) for e in entries}
        records = describe(tmp, "la", ids, sources=sources)
        finish(
            tmp,
            dataset="la",
            case_ids=ids,
            source=_source(table, raw, base_url),
            options=dict(
                cases=cases,
                verify=verify,
                base_url=base_url,
                lists_dir=lists_dir,
                downsample=downsample,
            ),
            subset=cases is not None,
            notes=_notes(records, verify=verify),
            records=records,
        )
    return dest


def _halvings(factor: object) -> int:
    """How many 2x steps make ``factor``; a factor outside ``FACTORS`` is a one-line error."""
    if isinstance(factor, bool) or factor not in FACTORS:
        raise DataError(
            f"LA: downsample={factor!r} is not one of {list(FACTORS)}; pass a power of two, "
            "e.g. --option downsample=4"
        )
    return int(factor).bit_length() - 1


def downsample_volume(volume: Volume, *, steps: int) -> Volume:
    """``steps`` halvings of a single-channel volume: block mean (image), strict majority (label).

    One 2x step maps voxel block ``b`` (2 x 2 x 2) to ``mean(image[b])`` and to ``1`` exactly when
    more than 4 of its 8 labels are foreground; an odd axis loses its last plane first, as the
    ``half/`` copy does. Spacing doubles per step.

    Raises:
        DataError: an axis would fall below 2 voxels before a step.
    """
    image, label = volume.image[0], volume.label  # (X, Y, Z) float32, (X, Y, Z) uint8
    for _ in range(steps):
        if min(label.shape) < 2:
            raise DataError(
                f"LA case {volume.case_id!r}: shape {label.shape} is too small to halve; "
                "use a smaller downsample factor"
            )
        x, y, z = (n // 2 for n in label.shape)
        blocks = (x, 2, y, 2, z, 2)
        image = image[: 2 * x, : 2 * y, : 2 * z].reshape(blocks).mean(axis=(1, 3, 5))  # (x, y, z)
        votes = label[: 2 * x, : 2 * y, : 2 * z].reshape(blocks).sum(axis=(1, 3, 5))  # 0..8
        label = (votes > 4).astype(np.uint8)  # (x, y, z)
    spacing = tuple(float(s) * 2**steps for s in volume.spacing)
    return Volume(image=image[None], label=label, spacing=spacing, case_id=volume.case_id)


def _find_all(raw: Path, entries: list[dict], *, subset: bool) -> dict[str, Path]:
    """The raw file of every wanted case; fails naming the missing ones before any work."""
    found = {e["id"]: _find_raw(raw, e["id"]) for e in entries}
    if not any(found.values()):
        raise DataError(
            f"LA: no case found under {str(raw)!r} (searched '2018LA_Seg_Training Set/<id>/"
            "mri_norm2.h5', 'LA_data/<id>/mri_norm2.h5' and '<id>/mri_norm2.h5'); pass UA-MT's "
            "data/ folder as --raw, or omit --raw to download"
        )
    # The checksum table holds exactly the ids of the pinned train/test lists.
    listed = {f"{s}.list": [e["id"] for e in entries if e["split"] == s] for s in SPLITS}
    if subset:
        listed = {"cases=[...]": [e["id"] for e in entries]}
    have = [case for case, path in found.items() if path is not None]
    require_listed(listed, have, where=f"{str(raw)!r} (searched '*/<id>/mri_norm2.h5')")
    return found


def _source(table: dict, raw: Path | None, base_url: str) -> dict:
    return {
        "name": "2018 Atrial Segmentation Challenge (LGE-MRI), UA-MT preprocessing",
        "repo": table["repo"],
        "commit": table["commit"],
        "path": table["path"],
        "raw": str(raw) if raw is not None else None,
        "base_url": None if raw is not None else base_url,
        "licence": "no licence upstream: research use only, do not redistribute",
    }


def _notes(records: list[dict], *, verify: bool) -> list[str]:
    notes = [] if verify else ["files NOT verified against the upstream sha256"]
    spacings = {tuple(r["spacing"]) for r in records}
    if spacings != {tuple(LA_SPACING)}:
        # A downsampled copy (2x: the half-resolution copy at 1.25 mm; 4x: the CPU scale's 2.5 mm).
        shown = ", ".join(sorted("x".join(f"{v:g}" for v in s) for s in spacings))
        factors = sorted({f"{max(s) / max(LA_SPACING):g}x" for s in spacings})
        notes.append(
            f"not the upstream resolution (spacing {shown} mm): a downsampled copy; write "
            f"'LA, {'/'.join(factors)} downsampled' next to every number from it"
        )
    return notes
