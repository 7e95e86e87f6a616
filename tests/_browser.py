"""Headless Chromium for the book tests: find the binary, dump a page's DOM after its scripts ran.

Flags as the platform notes give them for Debian's ``chromium`` run headless (as root too): no
sandbox, no GPU, no background networking, a fresh profile per call. With ``offline=True`` every
host name fails to resolve, so a page that still pulls a script from a CDN shows it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_chromium() -> str | None:
    """Path of the Chromium binary, or None when none is installed."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def dump_dom(
    page: Path,
    *,
    budget_ms: int = 5000,
    timeout_s: float = 180,
    offline: bool = True,
    binary: str | None = None,
) -> str:
    """The serialised DOM of the local file ``page`` after ``budget_ms`` of virtual time.

    Raises:
        FileNotFoundError: no Chromium binary.
        RuntimeError: Chromium exited with an error or printed no DOM.
    """
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium binary found (tried {', '.join(CANDIDATES)})")
    with tempfile.TemporaryDirectory(prefix="dycon-chromium-") as profile:
        cmd = [
            binary,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            *(["--host-resolver-rules=MAP * ~NOTFOUND"] if offline else []),
            "--dump-dom",
            Path(page).resolve().as_uri(),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0 or "<html" not in done.stdout:
        raise RuntimeError(
            f"chromium exited with {done.returncode} and no DOM for {page}; stderr tail:\n"
            + "\n".join(done.stderr.splitlines()[-15:])
        )
    return done.stdout
