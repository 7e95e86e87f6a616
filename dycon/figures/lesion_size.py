"""The lesion-size figure: lesion-wise detection and Dice by volume, from saved predictions."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..analysis.lesion_stats import bin_summary, compare_methods
from ..analysis.lesion_study import BINS, LesionStudy, analyze_run
from ..experiments import RunResult
from ._format import fmt_ci, new_figure, slug
from .base import REFERENCE, Figure, Row, by_row, held_out

VALUE = {"detection": "detection_rate", "detection_iou": "detection_iou_rate", "dice": "dice_mean"}
METRIC = {"detection_rate": "detection", "detection_iou_rate": "detection_iou", "dice": "dice"}


def as_bins(bins) -> tuple:
    """``bins`` from a notebook parameter: ``None`` -> :data:`BINS`; a ``None`` bound -> inf."""
    if bins is None:
        return BINS
    return tuple((str(n), float(lo), math.inf if hi is None else float(hi)) for n, lo, hi in bins)


def lesion_studies(
    results: Sequence[RunResult], *, root=None, bins=BINS, iou_threshold: float = 0.1
) -> dict[str, LesionStudy]:
    """Per-lesion records of every row's saved test predictions, seeds pooled (with several
    seeds a case id becomes ``<case>@seed<N>``, so the methods still pair lesion by lesion)."""
    test = held_out(results[0].spec, root=root)
    gts = {case: test.load(i).label > 0 for i, case in enumerate(test.ids)}
    several = len({r.spec.seed for r in results}) > 1
    studies = {}
    for row, runs in by_row(results).items():
        study = LesionStudy()
        for r in runs:
            one = analyze_run(r.run_dir, gts, bins=bins, iou_threshold=iou_threshold)
            for x in (*one.lesions, *one.cases):
                x["case"] = f"{x['case']}@seed{r.spec.seed}" if several else x["case"]
            study.lesions.extend(one.lesions)
            study.cases.extend(one.cases)
        studies[row] = study
    return studies


def lesion_numbers(studies: dict[str, LesionStudy], *, bins=BINS, n_boot: int = 2000) -> dict:
    """Per-bin rates and Dice per row (plus an ``all`` bin), and ``DyCON - row`` differences
    with paired bootstrap intervals; per-case records and the lesion count of every case."""
    summaries = {
        row: bin_summary(s.lesions, bins=bins, n_boot=n_boot, include_all=True)
        for row, s in studies.items()
    }
    differences = {
        row: [
            d
            for d in compare_methods(
                s.lesions,
                studies[REFERENCE].lesions,
                names=(row, REFERENCE),
                bins=bins,
                n_boot=n_boot,
                include_all=True,
            )
            if d["kind"] == "difference"
        ]
        for row, s in studies.items()
        if row != REFERENCE and REFERENCE in studies
    }
    first = next(iter(studies.values()))
    return {
        "bins": summaries,
        "differences": differences,
        "cases": {row: s.cases for row, s in studies.items()},
        "lesions_per_case": {c["case"]: c["n_lesions"] for c in first.cases},
    }


def plot_lesion_bins(summaries: dict[str, list[dict]], *, iou_threshold: float = 0.1):
    """Detection (overlap, IoU) and per-lesion Dice per size bin, one bar per row, 95 % CIs.

    Drawn with matplotlib, not seaborn: seaborn's bars compute their own intervals from raw
    observations, and these are Wilson intervals on counts (and bootstrap ones) computed before.
    """
    fig, axes = new_figure((6.8, 7.6), 3, 1)  # one panel per row: legible at the column width
    rows = list(summaries)
    bins = summaries[rows[0]]
    x = np.arange(len(bins))
    width = 0.8 / len(rows)
    titles = {
        "detection": "detected (overlap ≥ 1 voxel)",
        "detection_iou": f"detected (IoU ≥ {iou_threshold:g})",
        "dice": "per-lesion Dice",
    }
    for ax, (key, title) in zip(axes[:, 0], titles.items(), strict=True):
        for j, row in enumerate(rows):
            v = np.array([b[VALUE[key]] for b in summaries[row]], dtype=float)
            lo = np.array([b[f"{key}_low"] for b in summaries[row]], dtype=float)
            hi = np.array([b[f"{key}_high"] for b in summaries[row]], dtype=float)
            ok = np.isfinite(v)
            err = np.nan_to_num([v - lo, hi - v])[:, ok].clip(0)
            pos = x[ok] - 0.4 + width * (j + 0.5)
            ax.bar(pos, v[ok], width, yerr=err, capsize=2, color=f"C{j}", label=row)
        ax.set_xticks(x, [_bin_label(b) for b in bins])
        ax.set(title=title, ylabel="%", ylim=(0, 105))
        ax.grid(axis="y", alpha=0.3)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside upper center", ncol=len(rows))
    return fig


def plot_lesion_cases(numbers: dict):
    """Per-case Dice vs total lesion volume (each row), and lesions per case (ground truth)."""
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    fig, axes = new_figure((6.8, 3.6), 1, 2)
    ax, hist = axes[0]
    empty = 0
    for j, (row, cases) in enumerate(numbers["cases"].items()):
        shown = [c for c in cases if c["total_volume_ml"] > 0]  # no place on a log axis
        empty = len(cases) - len(shown)
        vol = [c["total_volume_ml"] for c in shown]
        ax.scatter(vol, [c["dice"] for c in shown], s=18, color=f"C{j}", label=row, alpha=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.xaxis.set_minor_formatter(StrMethodFormatter("{x:g}"))
    ax.set(xlabel="total lesion volume (mL)", ylabel="case Dice (%)", ylim=(-5, 105))
    title = "per case" + (f" ({empty} without lesion not shown)" if empty else "")
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="small")
    counts = np.array(list(numbers["lesions_per_case"].values()), dtype=int)
    edges = np.arange(counts.max(initial=0) + 2) - 0.5
    hist.hist(counts, bins=edges, color="0.5", edgecolor="white")
    hist.set(xlabel="lesions per case (ground truth)", ylabel="cases")
    hist.set_title(f"{counts.size} test cases, {counts.sum()} lesions", fontsize="medium")
    for a in (hist.xaxis, hist.yaxis):
        a.set_major_locator(MaxNLocator(integer=True))
    for a in (ax, hist):
        a.grid(alpha=0.3)
    return fig


def _bin_label(b: dict) -> str:
    if b["bin"] == "all":
        return f"all\nn={b['n_lesions']}"
    # a committed record stores the open upper bound as null (JSON has no infinity)
    high = math.inf if b["high_ml"] is None else b["high_ml"]
    size = f"≥ {b['low_ml']:g}" if math.isinf(high) else f"{b['low_ml']:g}–{b['high_ml']:g}"
    return f"{b['bin']}\n{size} mL\nn={b['n_lesions']}"


def empty_rows(numbers: dict) -> list[str]:
    """Rows whose runs detected none of the lesions: a collapsed run (it predicts background
    everywhere), whose differences from the others measure the collapse, not the method."""
    out = []
    for row, bins in numbers["bins"].items():
        total = sum(b["n_lesions"] for b in bins if b["bin"] != "all")
        if total and not sum(b["n_detected"] for b in bins if b["bin"] != "all"):
            out.append(row)
    return out


def _glue(pre: str, numbers: dict) -> dict[str, str]:
    """``<pre>_<row>_<bin>_<value>`` and ``<pre>_DyCON_minus_<row>_<bin>_<metric>``."""
    out = {}
    for row, bins in numbers["bins"].items():
        for b in bins:
            for key, value in VALUE.items():
                ci = (b[value], b[f"{key}_low"], b[f"{key}_high"], b["n_lesions"])
                out[f"{pre}_{slug(row)}_{slug(b['bin'])}_{key}"] = fmt_ci(*ci)
    for row, diffs in numbers["differences"].items():
        for d in diffs:
            name = f"{pre}_{slug(REFERENCE)}_minus_{slug(row)}_{slug(d['bin'])}"
            out[f"{name}_{METRIC[d['metric']]}"] = fmt_ci(
                d["value"], d["low"], d["high"], d["n"], sign=True
            )
    return out


def _markdown(numbers: dict) -> str:
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


FIGURE = Figure(
    name="lesion-size",
    rows=(
        Row(REFERENCE, "dycon"),
        Row("DyCON w/o FeCL", "dycon", ("method.use_fecl=false",)),
        Row("MT", "mt"),
    ),
    first_seed_only=False,  # lesions pooled over seeds
    glue=_glue,
    markdown=_markdown,
)
