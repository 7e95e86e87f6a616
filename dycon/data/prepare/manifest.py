"""The prepared-folder contract: all-or-nothing staging, case files, manifest.json, status.

A dataset is prepared into ``<dest>.partial/`` and renamed onto ``<dest>`` only when complete;
``manifest.json`` is written last, so a folder without it is an unfinished prepare.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

import dycon
from dycon.data import datasets
from dycon.data.files import remove, replace_folder, sha256_file, write_text_atomic
from dycon.data.prepare._common import DATASETS, PathLike, check_lists, restrict_lists
from dycon.data.readers import bare_id, read_case
from dycon.data.volume import DATA_ENV, DataError, Volume, data_root

log = logging.getLogger("dycon.data.prepare")

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
PARTIAL_SUFFIX = ".partial"

# Derived from data/datasets.py: where each prepared case lives inside the dataset folder (what
# read_case finds first), and the command that prepares it (the CLI forwards to ``prepare``).
CASE_FILES = {name: d.case_file for name, d in datasets.DATASETS.items()}
COMMANDS = {name: d.command for name, d in datasets.DATASETS.items()}


def case_file(dataset: str, case_id: str) -> str:
    """The prepared file of a case, relative to the dataset folder."""
    return CASE_FILES[datasets.dataset(dataset).name].format(case=bare_id(case_id))


# ---------------------------------------------------------------- all-or-nothing folder


def partial_path(dest: Path) -> Path:
    return dest.with_name(dest.name + PARTIAL_SUFFIX)


@contextlib.contextmanager
def staging(dest: PathLike) -> Iterator[Path]:
    """Yield ``<dest>.partial/`` (emptied first); on success rename it onto ``dest``.

    Any exception removes the partial folder and leaves ``dest`` exactly as it was.
    """
    dest = Path(dest)
    tmp = partial_path(dest)
    if tmp.exists() or tmp.is_symlink():
        log.info("removing stale %s", tmp)
        remove(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_folder(tmp, dest)
    except DataError as exc:
        remove(tmp)
        if str(tmp) not in str(exc):
            raise
        # The staged path is gone by the time the user reads the message: name where the file
        # was going (the preparer names its source where it knows it, see ``describe``).
        raise DataError(str(exc).replace(str(tmp), str(dest))) from exc
    except BaseException:
        remove(tmp)
        raise


# ---------------------------------------------------------------- manifest


def case_record(dataset: str, folder: Path, case_id: str) -> dict:
    """Read a prepared case back through ``read_case`` and describe it for the manifest."""
    volume: Volume = read_case(dataset, folder, case_id)
    rel = case_file(dataset, case_id)
    return {
        "case": volume.case_id,
        "file": rel,
        "shape": list(volume.label.shape),
        "channels": int(volume.image.shape[0]),
        "spacing": [round(float(s), 6) for s in volume.spacing],
        "foreground_fraction": round(float(np.mean(volume.label > 0)), 6),
        "sha256": sha256_file(folder / rel),
    }


def jsonable(value):
    """Options as JSON: paths as strings, tuples as lists."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(
    folder: Path,
    dataset: str,
    case_ids: Iterable[str],
    extra: Mapping[str, Mapping] | None = None,
    *,
    sources: Mapping[str, PathLike | str] | None = None,
) -> list[dict]:
    """The manifest records of the prepared cases, plus per-case ``extra`` fields.

    Each case is read back through its reader, which refuses bad files (corrupt, labels outside
    {0, 1}, NaN ...). ``sources`` (case id -> the raw file or URL it was copied from): such an
    error then names that source, not the staged copy, which is deleted with the staging folder.
    """
    records = []
    for case in case_ids:
        try:
            record = case_record(dataset, folder, case)
        except DataError as exc:
            source = (sources or {}).get(bare_id(case))
            if source is None:
                raise
            staged = str(folder / case_file(dataset, case))
            raise DataError(str(exc).replace(staged, os.fspath(source))) from None
        record.update(jsonable((extra or {}).get(bare_id(case), {})))
        records.append(record)
    return records


def finish(
    folder: Path,
    *,
    dataset: str,
    case_ids: Iterable[str],
    source: Mapping,
    options: Mapping,
    subset: bool,
    extra: Mapping[str, Mapping] | None = None,
    notes: Iterable[str] = (),
    records: list[dict] | None = None,
) -> dict:
    """Check the split lists, describe every case, then write ``manifest.json`` (last, atomic).

    Args:
        folder: the staging folder holding the prepared files and lists.
        dataset: one of ``DATASETS``.
        case_ids: the prepared cases, in order.
        source: where the data came from (name, URL, raw folder ...).
        options: the keyword options of the prepare call.
        subset: True when only some cases were prepared (lists restricted to them).
        extra: per-case fields added to the records (e.g. crop boxes).
        notes: sentences a reader of the manifest must see (e.g. "2x downsampled").
        records: the output of ``describe`` if the caller already has it.
    """
    case_ids = [bare_id(c) for c in case_ids]
    if subset:
        dropped = restrict_lists(folder, case_ids)
        notes = [*notes, *(f"subset: {name} dropped (no case of the subset)" for name in dropped)]
    lists = check_lists(folder, case_ids)
    if records is None:
        records = describe(folder, dataset, case_ids, extra)
    manifest = {
        "dataset": dataset,
        "format_version": FORMAT_VERSION,
        "source": jsonable(source),
        "prepared_with": {
            "dycon": dycon.__version__,
            "command": datasets.dataset(dataset).command_name,
            "options": jsonable(options),
        },
        "prepared_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "subset": bool(subset),
        "notes": list(notes),
        "lists": lists,
        "cases": records,
    }
    banner = datasets.dataset(dataset).banner
    if banner:
        manifest["banner"] = banner
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(folder: PathLike) -> dict:
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{str(path)!r} cannot be read ({exc}); re-run the prepare step") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cases"), list):
        raise DataError(f"{str(path)!r} has no case list; re-run the prepare step")
    return manifest


def content_hash(manifest: Mapping, *, length: int = 16) -> str:
    """What identifies a prepared dataset: a hash of its manifest's cases (id, file, sha256) and
    list sizes. Not the manifest's bytes, which hold the time of preparation: the same data
    prepared twice hashes the same. Raises KeyError/TypeError on a manifest without cases."""
    cases = sorted((str(c["case"]), str(c["file"]), str(c["sha256"])) for c in manifest["cases"])
    canonical = json.dumps({"cases": cases, "lists": manifest.get("lists", {})}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


# ---------------------------------------------------------------- status


def dataset_status(base: Path, dataset: str, *, verify: bool = False, prefix: str = "") -> dict:
    """State of one dataset under the data root: prepared, partial or missing."""
    folder = base / dataset
    entry = {
        "dataset": dataset,
        "path": str(folder),
        "state": "missing",
        "cases": 0,
        "lists": {},
        "command": prefix + COMMANDS[dataset],
        "detail": "",
    }
    banner = datasets.dataset(dataset).banner
    if banner:
        entry["banner"] = banner
    if folder.is_dir() and (folder / MANIFEST).is_file():
        entry.update(_prepared_state(folder, verify=verify))
    elif folder.is_dir() or partial_path(folder).is_dir():
        where = folder if folder.is_dir() else partial_path(folder)
        entry.update(
            state="partial",
            cases=sum(1 for _ in where.rglob("*.h5")),
            detail=f"{str(where)!r} has no {MANIFEST}: an interrupted prepare; run the command "
            "again",
        )
    return entry


def _prepared_state(folder: Path, *, verify: bool) -> dict:
    try:
        manifest = read_manifest(folder)
    except DataError as exc:
        return {"state": "partial", "detail": str(exc)}
    records = manifest["cases"]
    missing = [r["case"] for r in records if not (folder / r["file"]).is_file()]
    changed = []
    if verify:
        changed = [
            r["case"]
            for r in records
            if r["case"] not in missing and sha256_file(folder / r["file"]) != r["sha256"]
        ]
    state = {"cases": len(records) - len(missing), "lists": manifest.get("lists", {})}
    if missing or changed:
        bad = missing or changed
        what = "missing" if missing else "changed since prepare (sha256 differs)"
        state.update(
            state="partial",
            detail=f"{len(bad)} case file(s) {what}, e.g. {bad[0]!r}; run the command again",
        )
    else:
        subset = " (subset)" if manifest.get("subset") else ""
        # the hash a run's data stamp records: it says which copy trained a committed run
        digest = content_hash(manifest)
        state.update(
            state="prepared",
            data_hash=digest,
            detail=f"{len(records)} cases{subset}, data hash {digest}",
        )
    return state


def status(root: PathLike | None = None, *, verify: bool = False) -> list[dict]:
    """Where each dataset of ``dycon.data.datasets`` stands under the data root.

    Args:
        root: the data root; default ``$DYCON_DATA`` (else ./data).
        verify: also recompute every prepared file's sha256 against the manifest.

    Returns:
        One dict per dataset, in ``DATASETS`` order: ``dataset``, ``path``,
        ``state`` (``prepared``: manifest present and every case file present; ``partial``: a
        folder without manifest, i.e. an interrupted prepare, or files missing; ``missing``),
        ``cases``, ``lists`` (name -> ids), ``command`` (the exact command to get it),
        ``detail``, and for a synthetic dataset the ``banner``.

    Raises:
        DataError: the data root does not exist (names DYCON_DATA and the data page).
    """
    base = data_root(root)
    prefix = "" if root is None else f"{DATA_ENV}={base} "
    return [dataset_status(base, ds, verify=verify, prefix=prefix) for ds in DATASETS]
