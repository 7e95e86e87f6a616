"""Tables next to the paper: paper / ours (95 % CI) / difference, a banner, and a plot.

Ours are pooled over seeds: the per-case values of every seed of a row enter one percentile
bootstrap (``metrics.mean_ci``), so the interval covers case and seed variation together. The
paper's HD95 and ASD are medpy distances in voxels (the official evaluation); ours are in mm
unless the runs used ``eval.convention=official``, so distance differences are shown only when
the units agree.

A difference from the paper is computed only where it means something: real data of the paper's
dataset, at a scale that can reach the paper's numbers (:data:`DELTA_SCALES`). Elsewhere the page
is a pipeline check or a synthetic stand-in (:func:`page_kind`) and shows ours alone. A run that
predicts background on every test case is *collapsed*; wherever one enters a mean, the row says
which and carries the mean without it as well (:func:`compare`).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict

import numpy as np
import pandas as pd

from .experiments import NOT_RERUN, TABLES, RunResult
from .metrics import CASE_METRICS, mean_ci
from .paper import paper_rows

LABELS = {"dice": "Dice (%) ↑", "iou": "IoU (%) ↑", "hd95": "HD95 ↓", "asd": "ASD ↓"}
SWITCHES = ("fecl_focal", "fecl_hard_negatives", "fecl_entropy", "uncl")
SWITCH_NAMES = {"fecl_focal": "F⁺F⁻", "fecl_hard_negatives": "HN", "fecl_entropy": "Ent."}
# Scales whose runs can reach the paper's numbers: the paper's protocol, and the CPU scale on
# real data where runs converge. Smoke and quick runs are pipeline checks.
DELTA_SCALES = ("paper", "cpu")
PAPER_DATASETS = {t: spec["dataset"] for t, spec in TABLES.items()}


def is_ablation(table: int) -> bool:
    """An ablation table (Table 5): rows are component switches, keyed ``row N`` per dataset in
    the paper's CSV, labelled by what is on, with the switches as columns."""
    return TABLES[table].get("kind") == "ablation"


def _paper_index(table: int) -> dict[tuple[str, float], dict]:
    """(row label, labeled %) -> the paper's row; Table 5 rows are 'row N' per dataset."""
    index = {}
    for row in paper_rows(table):
        if is_ablation(table):
            index[(f"row {row['row']}", row["dataset"])] = row
        else:
            index[(row["method"], row["labeled_pct"])] = row
    return index


def comparable(table: int, results: list[RunResult]) -> bool:
    """Whether a difference from the paper means something: every run on the paper's real
    dataset of ``table`` at a scale in :data:`DELTA_SCALES`."""
    return bool(results) and all(
        r.summary["data_kind"] == "real"
        and r.summary["dataset"] == PAPER_DATASETS[table]
        and r.summary["scale"] in DELTA_SCALES
        for r in results
    )


def collapsed(result: RunResult) -> bool:
    """A run that predicts background on every test case (its Dice is 0 by construction)."""
    cases = result.per_case
    return bool(cases) and all(str(c.get("empty_pred", "False")) == "True" for c in cases)


def compare(table: int, results: list[RunResult]) -> list[dict]:
    """One row per (table row, labeled %): the paper's numbers, ours pooled over seeds, deltas.

    Paper rows of methods this engine does not implement are kept, marked ``not re-run``.
    Deltas are None unless :func:`comparable`.
    """
    groups: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
    for r in results:
        groups[(r.spec.row, r.spec.percent)].append(r)
    paper = _paper_index(table)
    with_delta = comparable(table, results)
    out = []
    percents = sorted({k[1] for k in groups}) or list(TABLES[table]["percents"])
    for pct in percents:
        if is_ablation(table):
            keys = [k for k in groups if k[1] == pct]
        else:
            printed = [k for k in paper if k[1] == pct]
            keys = [(m, pct) for m, _ in printed] + [k for k in groups if k[1] == pct]
        for key in dict.fromkeys(keys):
            out.append(_row(table, key, groups.get(key, []), paper, with_delta=with_delta))
    return out


def _row(table: int, key: tuple[str, int], runs: list[RunResult], paper: dict, *, with_delta):
    label, pct = key
    if is_ablation(table):
        dataset = runs[0].spec.dataset if runs else "isles22"
        p = paper.get((label, "brats19" if dataset == "brats19" else "isles22"), {})
    else:
        p = paper.get((label, float(pct)), {})
    kept = [r for r in runs if not collapsed(r)]
    row = {
        "row": label,
        "label": ablation_label(p) if is_ablation(table) else label,
        "percent": pct,
        "paper_labeled": p.get("labeled"),
        "ours_labeled": runs[0].spec.num_labeled if runs else None,
        "seeds": sorted(r.spec.seed for r in runs),
        "status": "ran" if runs else "not re-run",
        "not_rerun_reason": None if runs else NOT_RERUN.get(label, "not among this run's rows"),
        "paper_note": p.get("note") or "",
        "run_ids": [r.run_id for r in runs],
        "collapsed_runs": [r.run_id for r in runs if r not in kept],
    }
    if is_ablation(table):
        row.update({s: p.get(s) for s in SWITCHES})
    unit = runs[0].summary["units"]["hd95"] if runs else None
    row["distance_unit"] = unit
    for m in CASE_METRICS:
        row[f"paper_{m}"] = p.get(m)
        row.update(_pooled(m, runs, prefix="ours"))
        if row["collapsed_runs"]:
            row.update(_pooled(m, kept, prefix="kept"))
        comparable_unit = m in ("dice", "iou") or unit == "voxel"
        ours, paper_value = row[f"ours_{m}"], row[f"paper_{m}"]
        ok = with_delta and comparable_unit and paper_value is not None and ours is not None
        row[f"delta_{m}"] = ours - paper_value if ok else None
    return row


def _pooled(metric: str, runs: list[RunResult], *, prefix: str) -> dict:
    """``{prefix}_{metric}``, its ``_ci`` and ``_undefined`` count, pooled over the runs' cases."""
    if not runs:
        return {f"{prefix}_{metric}": None, f"{prefix}_{metric}_ci": None}
    ci = mean_ci([float(c[metric]) for r in runs for c in r.per_case])
    ok = not math.isnan(ci.mean)
    return {
        f"{prefix}_{metric}": ci.mean if ok else None,
        f"{prefix}_{metric}_ci": (ci.low, ci.high) if ok else None,
        f"{prefix}_{metric}_undefined": ci.n_nan,
    }


def ablation_label(paper_row: dict) -> str:
    """Table 5's row by what is on: 'F⁺F⁻ + HN + UnCL'; 'none (MT pipeline)' for row 1."""
    fecl = [name for s, name in SWITCH_NAMES.items() if paper_row.get(s)]
    parts = (["FeCL: " + ", ".join(fecl)] if fecl else []) + (
        ["UnCL"] if paper_row.get("uncl") else []
    )
    return " + ".join(parts) if parts else "none (MT pipeline)"


def ablation_labels() -> dict[str, str]:
    """Table 5's rows as ``experiments.TABLES[5]`` names them ("row k") -> their label."""
    return {f"row {r['row']}": ablation_label(r) for r in paper_rows(5)}


def page_kind(table: int, results: list[RunResult]) -> tuple[str, str]:
    """(title, text) of the admonition that says what the page is, for a page without deltas;
    ``("", "")`` when the page is compared with the paper."""
    if comparable(table, results) or not results:
        return "", ""
    paper_ds = PAPER_DATASETS[table]
    kinds = {r.summary["data_kind"] for r in results}
    scales = sorted({r.summary["scale"] for r in results})
    datasets = sorted({r.summary["dataset"] for r in results})
    if "synthetic" in kinds:
        what = "synthetic stand-in" if scales != ["smoke"] else "pipeline check"
        text = (
            f"These runs are on {', '.join(datasets)}, synthetic data, at the {', '.join(scales)} "
            f"scale: they check that every row of Table {table} trains and is evaluated, and "
            "say nothing about the paper's numbers, so no difference from the paper is shown. "
            f"The paper's dataset ({paper_ds}) is not prepared here; with its download, "
            f"`python -m dycon data prepare {paper_ds} --raw <download dir>` then "
            f"`make reproduce TABLE={table} SCALE=paper` fill this table (a GPU)."
        )
        return f"A {what}, not a reproduction", text
    text = (
        f"These are real {', '.join(datasets)} runs at the {', '.join(scales)} scale, far "
        "shorter than the paper's protocol: a difference from the paper would measure the "
        "training budget, not the method, so none is shown. "
        f"`make reproduce TABLE={table} SCALE=paper` runs the paper's protocol (a GPU)."
    )
    return "Real data, short runs: not compared with the paper", text


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
        f"seeds: {', '.join(map(str, seeds))} ({_count(len(results), 'run')}) · "
        f"commit {', '.join(commits)}"
    )


def collapse_note(rows: list[dict]) -> str:
    """A sentence naming the collapsed runs in the means, or '' when there are none."""
    hit = [r for r in rows if r.get("collapsed_runs")]
    if not hit:
        return ""
    parts = [
        f"{r['label']} ({r['percent']} %): {len(r['collapsed_runs'])} of {len(r['run_ids'])} "
        f"runs ({', '.join(r['collapsed_runs'])})"
        for r in hit
    ]
    return (
        "Collapsed runs (background predicted on every test case, Dice 0) enter these means: "
        + "; ".join(parts)
        + ". The column *without collapsed* gives the mean of the other runs: the gap between "
        "the two is the collapse, not the row's components."
    )


def metrics_of(table: int) -> tuple[str, ...]:
    """The metrics ``table`` reports (Table 5 prints no IoU)."""
    return TABLES[table].get("metrics", CASE_METRICS)


def to_frame(table: int, rows: list[dict]) -> pd.DataFrame:
    """The comparison as a tidy table, one line per (row, labeled %, metric): what
    ``comparison.csv`` holds, so that ``pd.read_csv`` gives the reader the numbers."""
    records = []
    for r in rows:
        for m in metrics_of(table):
            ci = r.get(f"ours_{m}_ci") or (None, None)
            kept_ci = r.get(f"kept_{m}_ci") or (None, None)
            records.append(
                {
                    "table": table,
                    "row": r["row"],
                    "label": r["label"],
                    "labeled_pct": r["percent"],
                    "paper_labeled": r["paper_labeled"],
                    "ours_labeled": r["ours_labeled"],
                    "status": r["status"],
                    "seeds": " ".join(map(str, r["seeds"])),
                    "metric": m,
                    "unit": "%" if m in ("dice", "iou") else (r["distance_unit"] or ""),
                    "paper": r[f"paper_{m}"],
                    "ours": r[f"ours_{m}"],
                    "ours_ci_low": ci[0],
                    "ours_ci_high": ci[1],
                    "ours_undefined_cases": r.get(f"ours_{m}_undefined"),
                    "delta": r[f"delta_{m}"],
                    "collapsed_runs": len(r["collapsed_runs"]),
                    "ours_without_collapsed": r.get(f"kept_{m}"),
                    "without_collapsed_ci_low": kept_ci[0],
                    "without_collapsed_ci_high": kept_ci[1],
                }
            )
    return pd.DataFrame.from_records(records)


def _ours_cell(r: dict, m: str, prefix: str = "ours") -> str:
    """'53.65' over a small '(49.10–58.20)' line: the CI on its own line keeps columns narrow."""
    if r["status"] != "ran":
        reason = r.get("not_rerun_reason")
        return "not re-run" + (f"<br><small>({reason})</small>" if reason else "")
    value = r.get(f"{prefix}_{m}")
    if value is None:
        return f"undefined ({r.get(f'{prefix}_{m}_undefined', 0)} cases)"
    lo, hi = r[f"{prefix}_{m}_ci"]
    unit = "" if m in ("dice", "iou") else f" {r['distance_unit']}"
    return f"{value:.2f}{unit}<br><small>({lo:.2f}–{hi:.2f})</small>"


def to_styled(table: int, rows: list[dict], metric: str):
    """One metric's comparison as a pandas Styler: row, labeled, paper, ours (95 % CI), and a
    difference only where the page is compared with the paper; a *without collapsed* column
    where a collapsed run enters a mean. One table per metric keeps it inside a phone's width."""
    with_delta = any(r[f"delta_{metric}"] is not None for r in rows)
    with_kept = any(r.get("collapsed_runs") for r in rows)
    records = []
    for r in rows:
        record = {
            "Method" if table != 5 else "Components on": r["label"],
            "Labeled (paper / ours)": f"{_int(r['paper_labeled'])} / {_int(r['ours_labeled'])}"
            f" ({r['percent']} %)",
            "paper": "—" if r[f"paper_{metric}"] is None else f"{r[f'paper_{metric}']:.2f}",
            "ours (95% CI)": _ours_cell(r, metric),
        }
        if with_kept:
            record["ours without collapsed"] = (
                _ours_cell(r, metric, "kept") if r.get("collapsed_runs") else "same"
            )
        if with_delta:
            d = r[f"delta_{metric}"]
            record["Δ (ours − paper)"] = "" if d is None else f"{d:+.2f}"
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    return (
        frame.style.hide(axis="index")
        .set_caption(LABELS[metric])
        .set_table_attributes(f'class="dycon-comparison" data-metric="{metric}"')
        .set_table_styles([{"selector": "td, th", "props": "padding: 0.15em 0.6em"}])
    )


def to_html(table: int, rows: list[dict]) -> str:
    """Every metric's table (:func:`to_styled`) as HTML, one after the other."""
    return "\n".join(to_styled(table, rows, m).to_html() for m in metrics_of(table))


def _int(x) -> str:
    return "—" if x is None else str(x)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _not_run_word(r: dict) -> str:
    """The terminal's word for a row without runs: a method this engine does not build is
    "not re-run"; one it builds but this call's rows left out is "not asked"."""
    return "not re-run" if r["label"] in NOT_RERUN or r["row"] in NOT_RERUN else "not asked"


def to_text(table: int, rows: list[dict]) -> str:
    """The comparison as a plain-text table for the terminal (pandas' fixed-width layout)."""
    frame = pd.DataFrame.from_records(
        {
            "row": r["label"][:32],
            "lab.": f"{r['percent']}%",
            **{
                f"{m} {who}": (
                    _not_run_word(r)
                    if who == "ours" and r["status"] != "ran"
                    else _fmt(r[f"{who}_{m}"])
                )
                for m in metrics_of(table)
                for who in ("paper", "ours")
            },
        }
        for r in rows
    )
    return frame.to_string(index=False)


def per_run_frame(table: int, results: list[RunResult], metric: str = "dice") -> pd.DataFrame:
    """Each run's mean ``metric`` over its test cases: the per-seed points of the plot."""
    labels = {r["row"]: r["label"] for r in compare(table, results)}
    return pd.DataFrame.from_records(
        {
            "row": labels.get(r.spec.row, r.spec.row),
            "percent": r.spec.percent,
            "seed": r.spec.seed,
            "collapsed": collapsed(r),
            metric: float(pd.to_numeric([c[metric] for c in r.per_case]).mean()),
        }
        for r in results
    )


def plot(
    table: int,
    rows: list[dict],
    results: list[RunResult],
    *,
    metric: str = "dice",
    notes: list[str] = (),
):
    """Seaborn: each seed's run mean (points; collapsed runs as crosses), the pooled mean with its
    95 % CI (bar), and the paper's value (a diamond) only where the page is compared with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    ran = [r for r in rows if r["status"] == "ran"]
    points = per_run_frame(table, results, metric)
    points["run"] = points["collapsed"].map({False: "one run (seed)", True: "collapsed run"})
    order = list(dict.fromkeys(r["label"] for r in ran))
    # set_theme writes matplotlib's global rcParams: the context gives them back, so the
    # theme styles this figure only and not the next one drawn in the same process
    with plt.rc_context():
        sns.set_theme(style="whitegrid", context="paper", font_scale=1.1)
        fig, ax = plt.subplots(figsize=(6.8, 0.45 * len(ran) + 1.4), layout="constrained")
        for y, r in enumerate(ran):
            mean, ci = r[f"ours_{metric}"], r[f"ours_{metric}_ci"]
            if mean is not None:  # the pooled CI is over cases and seeds, not seaborn's over points
                ax.errorbar(
                    mean,
                    y,
                    xerr=[[mean - ci[0]], [ci[1] - mean]],
                    fmt="s",
                    color="#3b75af",
                    capsize=4,
                    label="ours: mean, 95 % CI" if y == 0 else None,
                )
            if r[f"delta_{metric}"] is not None:
                ax.plot(
                    r[f"paper_{metric}"], y, "D", color="#444444", label="paper" if y == 0 else None
                )
        # seaborn jitters with numpy's global generator: a fixed seed keeps a re-rendered page's
        # figure identical to the committed one, and the caller's random state is given back
        random_state = np.random.get_state()  # noqa: NPY002 (seaborn draws from it)
        np.random.seed(0)  # noqa: NPY002
        sns.stripplot(
            data=points,
            x=metric,
            y="row",
            order=order,
            hue="run",
            palette={"one run (seed)": "#7aa6d6", "collapsed run": "#c0392b"},
            marker="o",
            size=6,
            jitter=0.15,
            ax=ax,
            legend=True,
        )
        np.random.set_state(random_state)  # noqa: NPY002
        ax.set_yticks(range(len(order)), order)
        ax.set_xlabel(LABELS[metric])
        ax.set_ylabel("")
        facts = page_glue(table, results, notes=notes)
        ax.set_title(  # the data source on the figure itself, which travels without the page
            f"Table {table}: {facts[f't{table}_data']}, {facts[f't{table}_scale']} scale, "
            f"{facts[f't{table}_seeds']} seed(s)",
            fontsize=10,
            pad=24,
        )
        # above the axes: inside, it hides points at either end of the scale
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=10, frameon=False)
        return fig


def glue_values(table: int, rows: list[dict]) -> dict[str, str]:
    """Formatted numbers for myst-nb glue, keyed
    ``t{table}_{row}_{percent}_{metric}_{paper|ours|delta|kept}``."""
    out = {}
    for r in rows:
        if r["status"] != "ran":
            continue
        slug = "".join(c if c.isalnum() else "_" for c in r["row"].lower()).strip("_")
        for m in CASE_METRICS:
            base = f"t{table}_{slug}_{r['percent']}_{m}"
            out[f"{base}_paper"] = _fmt(r[f"paper_{m}"])
            out[f"{base}_ours"] = _fmt(r[f"ours_{m}"])
            out[f"{base}_delta"] = "—" if r[f"delta_{m}"] is None else f"{r[f'delta_{m}']:+.2f}"
            out[f"{base}_kept"] = _fmt(r.get(f"kept_{m}", r[f"ours_{m}"]))
        out[f"t{table}_{slug}_{r['percent']}_collapsed"] = str(len(r["collapsed_runs"]))
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
    """Commit-ready results of a table: the runs' summaries, ``comparison.json`` (rows, banner,
    provenance), ``comparison.csv`` (:func:`to_frame`) and ``comparison.txt`` in ``dest``,
    replaced atomically."""
    from .experiments import save_results

    record = {
        "table": table,
        "banner": banner(results, notes=notes),
        "compared_with_paper": comparable(table, results),
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
    files = {
        "comparison.json": text,
        "comparison.csv": to_frame(table, comparison).to_csv(index=False),
        "comparison.txt": to_text(table, comparison) + "\n",
    }
    save_results(results, dest, files=files)


def _json_default(x):
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


DPI = 150  # 6.8 in wide figures: 1020 px, shown at the 676 px column (1.5x, sharp on HiDPI)


def png(figure) -> bytes:
    """The figure as PNG bytes (for ``IPython.display.Image``: no inline backend needed)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    figure.savefig(buf, format="png", dpi=DPI)
    plt.close(figure)
    return buf.getvalue()


def admonition(title: str, text: str, *, kind: str = "warning") -> str:
    """An admonition as the book theme styles it, for a notebook's HTML output (notebook
    Markdown output is CommonMark: no MyST directives)."""
    import html

    import markdown_it

    body = markdown_it.MarkdownIt("commonmark").render(text)
    return (
        f'<div class="admonition {kind}"><p class="admonition-title">{html.escape(title)}</p>'
        f"{body}</div>"
    )


def source_line(banner_text: str) -> str:
    """The data, scale and seeds of a banner: the caption under a figure."""
    parts = [p.strip() for p in banner_text.split("·")]
    keep = [p for p in parts if p.startswith(("Data:", "scale:", "seeds:"))]
    return " · ".join(keep)


def page_glue(table: int, results: list[RunResult], *, notes: list[str] = ()) -> dict[str, str]:
    """Short facts of the page for the intro's claims summary, keyed ``t{table}_{data|scale|
    seeds|runs|compute}``: what ran, on what, and what it cost. A data note that asks for a
    label beside every number ("write 'LA, 2x downsampled' next to ...") names the data."""
    if not results:
        return {f"t{table}_{k}": "—" for k in ("data", "scale", "seeds", "runs", "compute")}
    kinds = {r.summary["data_kind"] for r in results}
    env = results[0].summary["environment"]
    hours = (
        sum(
            r.summary["train"].get("seconds", 0.0) + r.summary.get("eval_seconds", 0.0)
            for r in results
        )
        / 3600
    )
    device = env.get("gpu") or f"{env.get('cpu_count')}-core CPU"
    asked = [m.group(1) for n in notes for m in [re.search(r"write '([^']+)'", n)] if m]
    data = ", ".join(asked or sorted({r.summary["dataset"] for r in results}))
    return {
        f"t{table}_data": data + (" (synthetic)" if "synthetic" in kinds else " (real)"),
        f"t{table}_scale": ", ".join(sorted({r.summary["scale"] for r in results})),
        f"t{table}_seeds": str(len({r.spec.seed for r in results})),
        f"t{table}_runs": str(len(results)),
        f"t{table}_compute": f"{hours:.2f} h, {device}",
    }


def _count(n: int, noun: str) -> str:
    """``1 run``, ``3 runs``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def projected_seconds(runs: list[dict], *, seeds: list[int]) -> float:
    """Seconds that every (row, percent) of ``runs`` would take on each of ``seeds``, at the
    median seconds per run of its finished runs.

    The median, not the mean, because the runs share a machine with other work: a run slowed
    by it (several times over, in the runs here) would carry the mean, and the estimate is of an
    unshared machine.
    """
    if not runs:
        raise ValueError("projected_seconds: no finished runs to measure")
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in runs:
        groups[(r["row"], r["percent"])].append(float(r["seconds"]))
    return sum(float(np.median(s)) for s in groups.values()) * len(seeds)


def verdict_counts(verdicts: list[str]) -> str:
    """``7 not reproduced, 5 not tested of 12 claims`` (most frequent first), or, before any
    claim has both sides finished, ``no claim paired yet``."""
    if not verdicts:
        return "no claim paired yet"
    counts = pd.Series(verdicts).value_counts()
    return (
        ", ".join(f"{n} {v}" for v, n in counts.items()) + f" of {_count(len(verdicts), 'claim')}"
    )


def nights(
    runs: list[dict],
    *,
    seeds: list[int],
    planned_runs: int,
    night_hours: float = 10.0,
    brief: bool = False,
) -> str:
    """Whether the planned table fits one night: one seed's hours at each row's median seconds
    per run (``projected_seconds``), how many seeds a night of ``night_hours`` holds, and how
    many such nights all of ``seeds`` take. While some of a seed's ``planned_runs / len(seeds)``
    (row, percent) pairs have no finished run, the hours are a floor and say so. ``brief``: the
    hours alone, for a table cell."""
    if night_hours <= 0:
        raise ValueError(f"nights: night_hours={night_hours} must be positive")
    per_plan = planned_runs / len(seeds)  # (row, percent) pairs in one seed of the table
    timed = len({(r["row"], r["percent"]) for r in runs})
    per_seed = projected_seconds(runs, seeds=[0]) / 3600
    total = per_seed * len(seeds)
    fits = math.floor(night_hours / per_seed)
    span = "one night" if total <= night_hours else f"{math.ceil(total / night_hours)} such nights"
    if brief:
        floor = "at least " if timed < per_plan else ""
        return (
            f"{floor}{per_seed:.1f} h a seed, {floor}{total:.1f} h for the "
            f"{_count(len(seeds), 'planned seed')} ({span} of {night_hours:g} h)"
        )
    text = (
        f"one seed of the table (every row and fraction) takes {per_seed:.1f} h, so a "
        f"{night_hours:g}-hour night holds {_count(fits, 'seed')}; "
        f"the {_count(len(seeds), 'planned seed')} take {total:.1f} h, {span}"
    )
    if timed >= per_plan:
        return text
    return (
        f"{text}, counting only the {timed} of {per_plan:g} row and fraction pairs timed so far "
        "(the others will add to it)"
    )
