"""Tables next to the paper: paper / ours / difference with 95 % CIs, a banner, and a plot.

Ours are pooled over seeds: the per-case values of every seed of a row enter one percentile
bootstrap (``metrics.mean_ci``), so the interval covers case and seed variation together. The
paper's HD95 and ASD are medpy distances in voxels (the official evaluation); ours are in mm
unless the runs used ``eval.convention=official``, so distance differences are shown only when
the units agree.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict

from .experiments import TABLES, RunResult
from .metrics import mean_ci
from .paper import paper_rows

METRICS = ("dice", "iou", "hd95", "asd")
LABELS = {"dice": "Dice (%) ↑", "iou": "IoU (%) ↑", "hd95": "HD95 ↓", "asd": "ASD ↓"}
SWITCHES = ("fecl_focal", "fecl_hard_negatives", "fecl_entropy", "uncl")


def _paper_index(table: int) -> dict[tuple[str, float], dict]:
    """(row label, labeled %) -> the paper's row; Table 5 rows are 'row N' per dataset."""
    index = {}
    for row in paper_rows(table):
        if table == 5:
            index[(f"row {row['row']}", row["dataset"])] = row
        else:
            index[(row["method"], row["labeled_pct"])] = row
    return index


def compare(table: int, results: list[RunResult]) -> list[dict]:
    """One row per (table row, labeled %): the paper's numbers, ours pooled over seeds, deltas.

    Paper rows of methods this engine does not implement are kept, marked ``not re-run``.
    """
    groups: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
    for r in results:
        groups[(r.spec.row, r.spec.percent)].append(r)
    paper = _paper_index(table)
    out = []
    percents = sorted({k[1] for k in groups}) or list(TABLES[table]["percents"])
    for pct in percents:
        if table == 5:
            keys = [k for k in groups if k[1] == pct]
        else:
            printed = [k for k in paper if k[1] == pct]
            keys = [(m, pct) for m, _ in printed] + [k for k in groups if k[1] == pct]
        seen = set()
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            out.append(_row(table, key, groups.get(key, []), paper))
    return out


def _row(table: int, key: tuple[str, int], runs: list[RunResult], paper: dict) -> dict:
    label, pct = key
    if table == 5:
        dataset = runs[0].spec.dataset if runs else "isles22"
        p = paper.get((label, "brats19" if dataset == "brats19" else "isles22"), {})
    else:
        p = paper.get((label, float(pct)), {})
    row = {
        "row": label,
        "percent": pct,
        "paper_labeled": p.get("labeled"),
        "ours_labeled": runs[0].spec.num_labeled if runs else None,
        "seeds": sorted(r.spec.seed for r in runs),
        "status": "ran" if runs else "not re-run",
        "paper_note": p.get("note") or "",
        "run_ids": [r.run_id for r in runs],
    }
    if table == 5:
        row.update({s: p.get(s) for s in SWITCHES})
    unit = runs[0].summary["units"]["hd95"] if runs else None
    row["distance_unit"] = unit
    for m in METRICS:
        paper_value = p.get(m)
        row[f"paper_{m}"] = paper_value
        if not runs:
            row[f"ours_{m}"] = row[f"ours_{m}_ci"] = row[f"delta_{m}"] = None
            continue
        values = [float(c[m]) for r in runs for c in r.per_case]
        ci = mean_ci(values)
        row[f"ours_{m}"] = None if math.isnan(ci.mean) else ci.mean
        row[f"ours_{m}_ci"] = None if math.isnan(ci.mean) else (ci.low, ci.high)
        row[f"ours_{m}_undefined"] = ci.n_nan
        comparable = m in ("dice", "iou") or unit == "voxel"
        row[f"delta_{m}"] = (
            row[f"ours_{m}"] - paper_value
            if comparable and paper_value is not None and row[f"ours_{m}"] is not None
            else None
        )
    return row


def banner(results: list[RunResult], *, notes: list[str] = ()) -> str:
    """One line saying what produced the numbers: data (real or synthetic), scale, protocol,
    seeds, labeled counts, git commit."""
    if not results:
        return "No runs."
    s = results[0].summary
    kinds = {r.summary["data_kind"] for r in results}
    datasets = sorted({r.summary["dataset"] for r in results})
    data = ", ".join(datasets) + (
        " (SYNTHETIC, not the paper's data)" if "synthetic" in kinds else " (real)"
    )
    if notes:
        data += " — " + "; ".join(notes)
    proto = s["protocol"]
    seeds = sorted({r.spec.seed for r in results})
    labeled = sorted({(r.spec.percent, r.spec.num_labeled) for r in results})
    commits = sorted({str(r.summary["environment"].get("git_commit"))[:10] for r in results})
    return (
        f"Data: {data} · scale: {', '.join(sorted({r.summary['scale'] for r in results}))} · "
        f"protocol: {proto['model_selection']} checkpoint, {proto['model']} network, "
        f"{proto['convention']} metrics, test list {proto['test_list']} · "
        f"labeled: {', '.join(f'{p}% = {n} cases' for p, n in labeled)} · "
        f"seeds: {', '.join(map(str, seeds))} ({len(results)} runs) · commit {', '.join(commits)}"
    )


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def to_html(table: int, rows: list[dict]) -> str:
    """The comparison in the paper's layout, as an HTML table (one header row per metric)."""
    metrics = ("dice", "hd95", "asd") if table == 5 else METRICS
    head = ["Method", "Labeled (paper / ours)"] + (
        ["F⁺F⁻", "HN", "Ent.", "UnCL"] if table == 5 else []
    )
    h1 = "".join(f'<th rowspan="2">{html.escape(c)}</th>' for c in head)
    h1 += "".join(f'<th colspan="3">{html.escape(LABELS[m])}</th>' for m in metrics)
    h2 = "".join("<th>paper</th><th>ours (95% CI)</th><th>Δ</th>" for _ in metrics)
    body = []
    for r in rows:
        cells = [
            html.escape(r["row"]),
            f"{_fmt_int(r['paper_labeled'])} / {_fmt_int(r['ours_labeled'])} ({r['percent']}%)",
        ]
        if table == 5:
            cells += ["✓" if r.get(s) else "✗" for s in SWITCHES]
        for m in metrics:
            ours = r[f"ours_{m}"]
            if r["status"] != "ran":
                ours_cell = "not re-run"
            elif ours is None:
                ours_cell = f"undefined ({r.get(f'ours_{m}_undefined', 0)} cases)"
            else:
                lo, hi = r[f"ours_{m}_ci"]
                unit = "" if m in ("dice", "iou") else f" {r['distance_unit']}"
                ours_cell = f"{ours:.2f}{unit} ({lo:.2f}–{hi:.2f})"
            delta = r[f"delta_{m}"]
            cells += [_fmt(r[f"paper_{m}"]), ours_cell, "" if delta is None else f"{delta:+.2f}"]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<table class="dycon-comparison">'
        f"<thead><tr>{h1}</tr><tr>{h2}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _fmt_int(x) -> str:
    return "—" if x is None else str(x)


def to_text(table: int, rows: list[dict]) -> str:
    """The same comparison as a plain-text table, for the terminal."""
    metrics = ("dice", "hd95", "asd") if table == 5 else METRICS
    header = f"{'Method':<28}{'lab.':>6}" + "".join(
        f"{m + ' paper':>12}{m + ' ours':>12}" for m in metrics
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        line = f"{r['row'][:27]:<28}{str(r['percent']) + '%':>6}"
        for m in metrics:
            ours = "not re-run" if r["status"] != "ran" else _fmt(r[f"ours_{m}"])
            line += f"{_fmt(r[f'paper_{m}']):>12}{ours:>12}"
        lines.append(line)
    return "\n".join(lines)


def plot(table: int, rows: list[dict], *, metric: str = "dice"):
    """Bar chart: the paper's value (hatched) and ours with its 95 % CI, per row and labeled %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in rows if r["status"] == "ran"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(ran) + 2), 3.6), dpi=110)
    xs = range(len(ran))
    paper = [r[f"paper_{metric}"] if r[f"paper_{metric}"] is not None else math.nan for r in ran]
    ours = [r[f"ours_{metric}"] if r[f"ours_{metric}"] is not None else math.nan for r in ran]
    err = [
        [
            o - r[f"ours_{metric}_ci"][0] if r[f"ours_{metric}_ci"] else 0
            for o, r in zip(ours, ran, strict=True)
        ],
        [
            r[f"ours_{metric}_ci"][1] - o if r[f"ours_{metric}_ci"] else 0
            for o, r in zip(ours, ran, strict=True)
        ],
    ]
    ax.bar([x - 0.2 for x in xs], paper, width=0.4, label="paper", color="#bbbbbb", hatch="//")
    ax.bar(
        [x + 0.2 for x in xs],
        ours,
        width=0.4,
        yerr=err,
        capsize=3,
        label="ours (95% CI)",
        color="#3b75af",
    )
    ax.set_xticks(list(xs), [f"{r['row']}\n{r['percent']}%" for r in ran], fontsize=7)
    ax.set_ylabel(LABELS[metric])
    ax.legend(fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def glue_values(table: int, rows: list[dict]) -> dict[str, str]:
    """Formatted numbers for myst-nb glue, keyed
    ``t{table}_{row}_{percent}_{metric}_{paper|ours|delta}``."""
    out = {}
    for r in rows:
        if r["status"] != "ran":
            continue
        slug = "".join(c if c.isalnum() else "_" for c in r["row"].lower()).strip("_")
        for m in METRICS:
            base = f"t{table}_{slug}_{r['percent']}_{m}"
            out[f"{base}_paper"] = _fmt(r[f"paper_{m}"])
            out[f"{base}_ours"] = _fmt(r[f"ours_{m}"])
            out[f"{base}_delta"] = "—" if r[f"delta_{m}"] is None else f"{r[f'delta_{m}']:+.2f}"
    return out


def save(
    table: int,
    results: list[RunResult],
    comparison: list[dict],
    dest,
    *,
    seconds: float,
    notes: list[str] = (),
) -> None:
    """Commit-ready results of a table: the runs' summaries and ``comparison.json`` (rows,
    banner, provenance) in ``dest``, replaced atomically."""
    from .experiments import save_results

    record = {
        "table": table,
        "banner": banner(results, notes=notes),
        "data_notes": list(notes),
        "notebook_seconds": round(seconds, 1),
        "train_seconds": round(sum(r.summary["train"].get("seconds", 0.0) for r in results), 1),
        "eval_seconds": round(sum(r.summary.get("eval_seconds", 0.0) for r in results), 1),
        "environment": results[0].summary["environment"] if results else {},
        "runs": [
            {"run_id": r.run_id, "row": r.spec.row, "percent": r.spec.percent, "seed": r.spec.seed}
            for r in results
        ],
        "rows": comparison,
    }
    text = json.dumps(record, indent=2, default=_json_default) + "\n"
    save_results(
        results,
        dest,
        files={"comparison.json": text, "comparison.txt": to_text(table, comparison) + "\n"},
    )


def _json_default(x):
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def png(figure) -> bytes:
    """The figure as PNG bytes (for ``IPython.display.Image``: no inline backend needed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=110)
    plt.close(figure)
    return buf.getvalue()
