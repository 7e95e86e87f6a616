"""The book: a strict Jupyter Book build (-W -n, zero warnings), and math that renders offline.

The book sources (``_config.yml``, ``_toc.yml``, ``book/``) are copied into a temporary folder and
built there, so the test never writes into the repository. MathJax is vendored as ``make book``
does it: the repository's ``_vendor/`` is copied when present, otherwise the Makefile's vendoring
rule runs into the temporary folder (this needs npm; the test skips without it). The second test
opens the built method chapter in headless Chromium with name resolution disabled and looks for
MathJax's rendered output.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _browser import dump_dom, find_chromium, probe

ROOT = Path(__file__).resolve().parents[1]
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book")
MATHJAX = Path("_vendor") / "mathjax" / "tex-chtml.js"
PAGES = ("book/intro.html", "book/method.html", "book/protocol.html", "book/data.html")

pytestmark = pytest.mark.slow


def _vendor_mathjax(dest: Path) -> None:
    """``dest/_vendor/mathjax``: a copy of the repository's, or the Makefile rule run into dest."""
    if (ROOT / MATHJAX).is_file():
        shutil.copytree(ROOT / "_vendor", dest / "_vendor")
        return
    if shutil.which("npm") is None:
        pytest.skip("npm not found: MathJax cannot be vendored (the book needs Node 20 + npm)")
    if shutil.which("make") is None:
        pytest.skip("make not found: the MathJax vendoring rule lives in the Makefile")
    target = dest / MATHJAX
    done = subprocess.run(
        ["make", "-s", "-C", str(ROOT), str(target), f"MATHJAX_DIR={target.parent}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and target.is_file(), (
        f"vendoring MathJax failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )


@pytest.fixture(scope="module")
def built_book(tmp_path_factory) -> tuple[Path, str]:
    """(html folder, build log) of a strict build of a copy of the book."""
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    if not jupyter_book.is_file():
        pytest.fail(
            f"{jupyter_book} missing: install the book extra (pip install -e '.[dev,book]', "
            "which `make test` does)"
        )
    src = tmp_path_factory.mktemp("book")
    for name in BOOK_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns(".*", "_build"))
        else:
            shutil.copy2(path, src / name)
    _vendor_mathjax(src)
    done = subprocess.run(
        [str(jupyter_book), "build", str(src), "--all", "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"strict book build failed ({done.returncode}):\n{log[-6000:]}"
    return src / "_build" / "html", log


def test_book_builds_strict_with_zero_warnings(built_book):
    html, log = built_book
    warnings = [line for line in log.splitlines() if re.search(r"WARNING|ERROR", line)]
    assert not warnings, "the book build printed warnings:\n" + "\n".join(warnings)
    for page in PAGES:
        assert (html / page).is_file(), f"{page} missing from the built book"
    method = (html / "book" / "method.html").read_text()
    # MathJax is served by the book itself, never from a CDN
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert re.search(r'<script[^>]*src="\.\./_static/mathjax/tex-chtml\.js', method), (
        "method.html does not load the vendored MathJax"
    )
    assert "cdn.jsdelivr.net" not in method and "mathjax@3" not in method


def test_method_page_renders_math_offline(built_book):
    if find_chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    html, _ = built_book
    dom = dump_dom(html / "book" / "method.html", budget_ms=8000, offline=True)
    rendered = len(re.findall(r"<mjx-container\b", dom))
    display = len(re.findall(r'<mjx-container\b[^>]*display="true"', dom))
    assert display >= 6, f"{display} displayed equations rendered (of >= 6); {rendered} in all"
    assert rendered >= 50, f"only {rendered} math elements rendered by MathJax"
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error on the method page"
    assert r"\begin{aligned}" not in dom and r"\mathcal{L}_{\text{UnCL}}" not in dom, (
        "raw TeX left in the page: MathJax did not typeset it"
    )


def test_table1_page_shows_our_numbers_and_a_loaded_plot(built_book):
    """The built Table 1 page carries the committed numbers, and its plot image really loads."""
    if find_chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    html, _ = built_book
    page = html / "book" / "tables" / "table1.html"
    record = json.loads((ROOT / "results" / "table1" / "comparison.json").read_text())
    ran = [r for r in record["rows"] if r["status"] == "ran"]
    assert ran, "results/table1/comparison.json holds no run"
    # A copy of the page that marks each image with whether the browser decoded it
    probe = page.with_name("table1-probe.html")
    marker = (
        "<script>window.addEventListener('load', () => { for (const img of document.images) "
        "img.setAttribute('data-loaded', img.complete && img.naturalWidth > 0); });</script>"
    )
    probe.write_text(page.read_text().replace("</body>", marker + "</body>"))
    dom = dump_dom(probe, budget_ms=5000, offline=True)
    assert "dycon-comparison" in dom and "SYNTHETIC" in dom
    for row in ran:
        assert f"{row['ours_dice']:.2f}" in dom, (
            f"{row['row']}: Dice {row['ours_dice']:.2f} missing"
        )
    images = re.findall(r"<img\b[^>]*>", dom)
    plots = [
        i
        for i in images
        if 'data-loaded="true"' in i and ("_images/" in i or "data:image/png" in i)
    ]
    assert plots, f"no loaded plot image on the Table 1 page; images: {images}"


def _layout_defects(result: dict) -> list[str]:
    """What the probe found wrong on one page, as readable lines (empty: the page is fine)."""
    out = [f"raw pipe table: {t}" for t in result["pipe"]]
    out += [f"wider than the {result['width']:.0f} px column: {w}" for w in result["wide"]]
    out += [f"figure shrunk more than 2x: {i}" for i in result["shrunk"]]
    if result["synthetic"] and result["delta"]:
        out.append(f"difference column on a synthetic or smoke/quick page: {result['delta']}")
    return out


BROKEN = {
    "pipe": "<p>| bin | lesions | method |\n|---|---|---|\n| tiny | 3 | DyCON |</p>",
    "wide": "<table><tr>" + "<td>0123456789 0123456789</td>" * 14 + "</tr></table>",
    "shrunk": '<img src="data:image/png;base64,{png}" style="width:200px">',
    "delta": "<p>Data: isles-sim (SYNTHETIC) · scale: quick</p><table><tr><th>Δ</th></tr></table>",
}


@pytest.mark.parametrize("defect", sorted(BROKEN))
def test_layout_probe_catches_each_defect_on_a_broken_page(defect, tmp_path):
    """Each check of the book's layout test fails on a page built to show that defect, and
    passes on the same page without it."""
    if find_chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6.0, 1.0), dpi=100)  # 600 px natural, drawn at 200 px: 3x
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    body = BROKEN[defect].replace("{png}", png)
    shell = "<html><body><article style='width:676px'>{}</article></body></html>"
    (tmp_path / "broken.html").write_text(shell.format(body))
    (tmp_path / "fine.html").write_text(shell.format("<p>Data: la (real) · scale: paper</p>"))
    broken = _layout_defects(probe(tmp_path / "broken.html"))
    assert len(broken) == 1 and broken[0].startswith(
        {"pipe": "raw pipe", "wide": "wider", "shrunk": "figure", "delta": "difference"}[defect]
    ), broken
    assert _layout_defects(probe(tmp_path / "fine.html")) == []


def test_every_page_reads_at_1280_px(built_book):
    """No raw pipe table, no table or displayed equation wider than the column, no figure shown
    below half its natural width, no difference column on a synthetic or smoke/quick page."""
    if find_chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    html, _ = built_book
    pages = sorted(p for p in (html / "book").rglob("*.html") if not p.stem.endswith("-probe"))
    assert len(pages) >= 14, f"only {len(pages)} pages built"
    defects = {}
    for page in pages:
        found = _layout_defects(probe(page, width=1280))
        if found:
            defects[str(page.relative_to(html))] = found
    assert not defects, "pages a reader cannot read:\n" + json.dumps(defects, indent=1)
