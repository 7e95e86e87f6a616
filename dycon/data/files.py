"""File helpers, the one place results reach the disk: atomic writes (temp file + rename),
folder swaps, and checksums. Every result file and folder of the project goes through here, so
a kill at any moment leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash or an exception leaves the old file (or no file) in place, never a half-written one.
    ``suffix`` ends the temp name, for writers that insist on an extension (papermill: .ipynb).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; the result should follow the umask
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def replace_folder(tmp: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Rename the complete folder ``tmp`` onto ``dest``, whatever ``dest`` holds.

    A folder cannot be renamed onto a non-empty one, so an existing ``dest`` is moved aside
    first, put back if the second rename fails, and removed once the new one is in place: an
    interruption leaves the previous ``dest`` or the new one (and at worst a hidden
    ``.<dest>.old-*`` beside it), never a mix.
    """
    tmp, dest = Path(tmp), Path(dest)
    if not (dest.exists() or dest.is_symlink()):
        os.replace(tmp, dest)
        return
    old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.replace(old, dest)  # put the previous content back
        raise
    remove(old)


def remove(path: str | os.PathLike) -> None:
    """Delete a file, a symlink or a folder tree; nothing if it is not there."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_folder(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty ``<dest>.partial`` folder; on success it replaces ``dest`` whole
    (:func:`replace_folder`); on an exception it is removed and ``dest`` is untouched."""
    dest = Path(dest)
    staging = dest.with_name(dest.name + ".partial")
    remove(staging)
    staging.mkdir(parents=True)
    try:
        yield staging
    except BaseException:
        remove(staging)
        raise
    replace_folder(staging, dest)
