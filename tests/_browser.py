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
    window: tuple[int, int] | None = None,
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
            *([f"--window-size={window[0]},{window[1]}"] if window else []),
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


# Measured in the page after its scripts ran (MathJax included), at the window width given:
# raw pipe tables (a paragraph of "| a | b |"), tables and displayed equations wider than the
# article's content box, images drawn below half their natural width, and Δ columns on a page
# whose banner says synthetic data or the smoke/quick scale. The result is put on <body> as JSON.
PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const out = {pipe: [], wide: [], shrunk: [], delta: [], synthetic: false, width: 0};
  const article = document.querySelector('article') || document.body;
  const style = getComputedStyle(article);
  const box = article.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  out.width = box;
  for (const p of article.querySelectorAll('p')) {
    const t = p.textContent.trim();
    if (/^\\|.*\\|/.test(t) && (t.match(/\\|/g) || []).length >= 4) out.pipe.push(t.slice(0, 60));
  }
  for (const el of article.querySelectorAll('table, mjx-container[display="true"]')) {
    const w = Math.max(el.getBoundingClientRect().width, el.scrollWidth);
    if (w > box + 2)
      out.wide.push(`${el.tagName} ${Math.round(w)} px: ${el.textContent.trim().slice(0, 40)}`);
  }
  for (const img of article.querySelectorAll('img')) {
    const shown = img.getBoundingClientRect().width;
    if (img.naturalWidth > 0 && shown > 0 && img.naturalWidth > 2 * shown + 1)
      out.shrunk.push(`${img.naturalWidth} px shown at ${Math.round(shown)} px`);
  }
  out.synthetic = /SYNTHETIC|scale: (smoke|quick)/.test(article.textContent);
  for (const th of article.querySelectorAll('th'))
    if (th.textContent.includes('Δ')) out.delta.push(th.textContent.trim());
  document.body.setAttribute('data-probe', JSON.stringify(out));
}, 300));
</script>"""


def probe(page: Path, *, width: int = 1280, budget_ms: int = 8000) -> dict:
    """The layout checks of :data:`PROBE` on ``page`` at a ``width`` px wide window.

    A copy of the page with the probe script beside it is loaded, so relative links still work.
    """
    import html as html_lib
    import json
    import re

    page = Path(page)
    copy = page.with_name(page.stem + "-probe.html")
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    try:
        dom = dump_dom(copy, budget_ms=budget_ms, offline=True, window=(width, 3000))
    finally:
        copy.unlink(missing_ok=True)
    found = re.search(r'<body[^>]*data-probe="([^"]*)"', dom)
    if not found:
        raise RuntimeError(f"the layout probe did not run on {page}")
    return json.loads(html_lib.unescape(found.group(1)))
