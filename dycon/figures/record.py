"""A figure's key numbers as glue values and a table (Markdown, pandas), and its committed record.

A figure page re-renders from its committed record (``results/fig-<name>/figure.json``) when the
record's runs are exactly the runs asked for and their folders (with the checkpoints the figure
needs) are not here: :func:`committed_record`, then :func:`resave`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..data.files import staged_folder
from ..experiments import RunResult
from ._format import clean, png_size, slug
from .registry import figure


def glue_values(name: str, numbers: dict) -> dict[str, str]:
    """Formatted numbers for myst-nb glue, keys ``fig_<name>_...`` (each figure's ``glue``)."""
    return figure(name).glue("fig_" + slug(name), numbers)


def to_markdown(name: str, numbers: dict) -> str:
    """The key numbers of figure ``name`` as a Markdown table."""
    return figure(name).markdown(numbers)


def to_frame(name: str, numbers: dict):
    """The key numbers of figure ``name`` as a pandas DataFrame (what ``summary.csv`` holds):
    the Markdown table's cells, one column per header."""
    import pandas as pd

    # The Markdown table is the one place the cells are laid out; parsing it back keeps the
    # page, summary.md and summary.csv from drifting apart.
    lines = to_markdown(name, numbers).splitlines()
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    return pd.DataFrame(cells[2:], columns=cells[0])


def to_html(name: str, numbers: dict) -> str:
    """The key numbers as an HTML table (pandas Styler): notebook Markdown output is CommonMark,
    which has no tables, so a pipe table would show as one paragraph."""
    frame = to_frame(name, numbers)
    return (
        frame.style.hide(axis="index")
        .set_table_attributes(f'class="dycon-figure-table" data-figure="{name}"')
        # the book theme pads no cell of an output table: a short table ran its cells together
        .set_table_styles([{"selector": "th, td", "props": "padding: 0.2em 0.8em;"}])
        .to_html()
    )


def committed_record(
    name: str, *, results_dir: str | Path | None, specs, runs_dir: str | Path
) -> dict | None:
    """The committed record of figure ``name`` when it was made from exactly the runs of
    ``specs`` and those runs' checkpoints are not in ``runs_dir`` (a clone has none); else
    None, and the page trains and evaluates as usual."""
    from ..engine.runs import run_id
    from ..experiments import config_of

    path = Path(results_dir or "") / "figure.json"
    if not results_dir or not path.is_file():
        return None
    record = json.loads(path.read_text())
    ids = [run_id(config_of(s)) for s in specs]
    if sorted(r["run_id"] for r in record["runs"]) != sorted(ids):
        return None
    # a run trained here has its checkpoints (and predictions); one reused from a committed
    # table has only its summary, which is not enough to draw a figure
    if all((Path(runs_dir) / i / "checkpoints").is_dir() for i in ids):
        return None
    return {**record, "numbers": figure(name).decode(record["numbers"])}


def resave(name: str, dest: str | Path, *, record: dict, pngs: dict[str, bytes]) -> Path:
    """Re-rendered from ``record``: the same runs and numbers, new PNGs and tables."""
    record = {
        **record,
        "figures": {
            f: dict(zip(("width_px", "height_px"), png_size(b), strict=True))
            for f, b in pngs.items()
        },
    }
    return _write(name, Path(dest), record=record, pngs=pngs, numbers=record["numbers"])


def save_figure(
    name: str,
    dest: str | Path,
    *,
    results: Sequence[RunResult],
    pngs: dict[str, bytes],
    numbers: dict,
    notes: Sequence[str] = (),
    seconds: float = 0.0,
) -> Path:
    """``dest/figure.json`` (banner, runs, numbers, each PNG's pixel size), ``summary.md`` and
    the PNGs; ``dest`` is replaced whole through a staging folder and renames."""
    from ..report import banner

    record = {
        "figure": name,
        "banner": banner(list(results), notes=list(notes)),
        "data_notes": list(notes),
        "notebook_seconds": round(seconds, 1),
        "environment": results[0].summary.get("environment", {}) if results else {},
        "runs": [
            {"run_id": r.run_id, "row": r.spec.row, "seed": r.spec.seed, "percent": r.spec.percent}
            for r in results
        ],
        "figures": {
            f: dict(zip(("width_px", "height_px"), png_size(b), strict=True))
            for f, b in pngs.items()
        },
        "numbers": clean(numbers),
    }
    return _write(name, Path(dest), record=record, pngs=pngs, numbers=numbers)


def _write(name: str, dest: Path, *, record: dict, pngs: dict[str, bytes], numbers: dict):
    with staged_folder(dest) as staging:
        for fname, data in pngs.items():
            (staging / fname).write_bytes(data)
        (staging / "figure.json").write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        (staging / "summary.md").write_text(to_markdown(name, numbers) + "\n")
        (staging / "summary.csv").write_text(to_frame(name, numbers).to_csv(index=False))
    return dest
