"""A figure's key numbers as glue values and a Markdown table, and its committed record."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..data._io import staged_folder
from ..experiments import RunResult
from ._format import clean, fmt, fmt_ci, png_size, slug
from .gradcam import step_title
from .lesion_size import METRIC, VALUE
from .runs import REFERENCE


def glue_values(name: str, numbers: dict) -> dict[str, str]:
    """Formatted numbers for myst-nb glue, keys ``fig_<name>_...`` (see each branch)."""
    out, pre = {}, "fig_" + slug(name)
    if name == "lesion-size":
        for row, bins in numbers["bins"].items():
            for b in bins:
                for key, value in VALUE.items():
                    ci = (b[value], b[f"{key}_low"], b[f"{key}_high"], b["n_lesions"])
                    out[f"{pre}_{slug(row)}_{slug(b['bin'])}_{key}"] = fmt_ci(*ci)
        for row, diffs in numbers["differences"].items():
            for d in diffs:
                key = METRIC[d["metric"]]
                name_ = f"{pre}_{slug(REFERENCE)}_minus_{slug(row)}_{slug(d['bin'])}_{key}"
                out[name_] = fmt_ci(d["value"], d["low"], d["high"], d["n"], sign=True)
    elif name == "curves":
        for label, c in numbers["runs"].items():
            for key in ("final_val_dice", "best_val_dice", "final_loss"):
                out[f"{pre}_{slug(label)}_{key}"] = fmt(c[key], 3 if key == "final_loss" else 2)
    elif name == "gradcam":
        for step, m in numbers["mean_inside"].items():
            out[f"{pre}_inside_step{step}"] = f"{fmt(100 * m['mean'], 1)} % (n = {m['n']})"
    elif name == "overlays":
        for c in numbers["cases"]:
            for row, value in c["dice"].items():
                out[f"{pre}_{slug(c['case'])}_{slug(row)}_dice"] = fmt(value)
    return out


def to_markdown(name: str, numbers: dict) -> str:
    """The key numbers of figure ``name`` as a Markdown table."""
    if name == "lesion-size":
        head = "| bin | lesions | method | detected (overlap) | detected (IoU) | lesion Dice |"
        lines = [head, "|---|---|---|---|---|---|"]
        for row, bins in numbers["bins"].items():
            for b in bins:
                cells = [fmt_ci(b[v], b[f"{k}_low"], b[f"{k}_high"]) for k, v in VALUE.items()]
                lines.append(f"| {b['bin']} | {b['n_lesions']} | {row} | {' | '.join(cells)} |")
        for row, diffs in numbers["differences"].items():
            cells: dict = {}
            for d in diffs:
                cells.setdefault(d["bin"], [d["n"]]).append(
                    fmt_ci(d["value"], d["low"], d["high"], sign=True)
                )
            for b, (n, *c) in cells.items():
                lines.append(f"| {b} | {n} | {REFERENCE} − {row} | {' | '.join(c)} |")
        return "\n".join(lines)
    if name == "curves":
        lines = ["| run | final loss | validation Dice: final | best (step) |", "|---|---|---|---|"]
        for label, c in numbers["runs"].items():
            best = f"{fmt(c['best_val_dice'])} ({c['best_val_step'] or '—'})"
            lines.append(
                f"| {label} | {fmt(c['final_loss'], 3)} | {fmt(c['final_val_dice'])} | {best} |"
            )
        return "\n".join(lines)
    if name == "gradcam":
        steps = numbers["steps"]
        heads = [f"map in lesion (%), {step_title(s, numbers['iterations'])}" for s in steps]
        lines = [
            "| case | lesion (% of volume) | " + " | ".join(heads) + " |",
            "|---" * (2 + len(steps)) + "|",
        ]
        for c in numbers["cases"]:
            cells = " | ".join(fmt(100 * c["inside"][s], 1) for s in steps)
            lines.append(f"| {c['case']} | {fmt(100 * c['lesion_fraction'], 2)} | {cells} |")
        return "\n".join(lines)
    rows = list(numbers["cases"][0]["dice"]) if numbers["cases"] else []
    lines = ["| case | lesion voxels | " + " | ".join(f"{r} Dice" for r in rows) + " |"]
    lines.append("|---" * (2 + len(rows)) + "|")
    for c in numbers["cases"]:
        cells = " | ".join(fmt(c["dice"][r]) for r in rows)
        lines.append(f"| {c['case']} | {c['lesion_voxels']} | {cells} |")
    return "\n".join(lines)


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
    dest = Path(dest)
    with staged_folder(dest) as staging:
        for fname, data in pngs.items():
            (staging / fname).write_bytes(data)
        (staging / "figure.json").write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")
        (staging / "summary.md").write_text(to_markdown(name, numbers) + "\n")
    return dest
