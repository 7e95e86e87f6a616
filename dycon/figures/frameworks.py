"""The "DyCON in MT and CT frameworks" figure: DyCON's UnCL and FeCL added to a mean teacher
(MT) and to co-training (CT, here cross pseudo supervision), in Table 1's setting at 10 %
labeled, the same seeds for every row.

The poster claims DyCON's losses improve both frameworks. Each gain is a paired difference,
``(framework + DyCON) - framework``, over the same seeds, labeled sets and test cases, with a
two-way (seed x case) bootstrap interval (:func:`dycon.metrics.paired_bootstrap`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..experiments import RunResult
from ..metrics import mean_ci, paired_bootstrap
from ._format import fmt, fmt_ci, new_figure, slug
from .base import Figure, Row, by_row

PAIRS = (("MT + DyCON", "MT"), ("CPS + DyCON", "CPS"))  # (with DyCON's losses, without)


def _collapsed(r: RunResult) -> bool:
    cases = r.per_case
    return bool(cases) and all(str(c.get("empty_pred", "False")) == "True" for c in cases)


def _pooled(runs: Sequence[RunResult]) -> list[float]:
    return [float(c["dice"]) for r in runs for c in r.per_case]


def _dice_table(runs: Sequence[RunResult], seeds: Sequence[int], cases: Sequence[str]):
    by_seed = {r.spec.seed: {c["case"]: float(c["dice"]) for c in r.per_case} for r in runs}
    return np.array([[by_seed[s].get(c, np.nan) for c in cases] for s in seeds])  # (S, N)


def framework_numbers(results: Sequence[RunResult], *, n_boot: int = 2000) -> dict:
    """Per row: Dice pooled over seeds and cases (95 % CI), each seed's mean, collapsed seeds;
    per pair: the paired gain of adding DyCON's losses on the seeds both rows ran."""
    rows = by_row(results)
    out = {"rows": {}, "gains": []}
    for label, runs in rows.items():
        ci = mean_ci(_pooled(runs), n_boot=n_boot)
        kept = [r for r in runs if not _collapsed(r)]
        # a collapsed run (every case empty) enters the mean: the mean without it goes beside it
        kept_ci = mean_ci(_pooled(kept), n_boot=n_boot) if kept and len(kept) < len(runs) else None
        out["rows"][label] = {
            "dice": ci.mean,
            "low": ci.low,
            "high": ci.high,
            "per_seed": {
                r.spec.seed: float(np.mean([float(c["dice"]) for c in r.per_case])) for r in runs
            },
            "collapsed_seeds": [r.spec.seed for r in runs if _collapsed(r)],
            "dice_kept": None if kept_ci is None else kept_ci.mean,
        }
    for with_, without in PAIRS:
        if with_ not in rows or without not in rows:
            continue
        seeds = sorted({r.spec.seed for r in rows[with_]} & {r.spec.seed for r in rows[without]})
        cases = [c["case"] for c in rows[without][0].per_case]
        a = _dice_table([r for r in rows[with_] if r.spec.seed in seeds], seeds, cases)
        b = _dice_table([r for r in rows[without] if r.spec.seed in seeds], seeds, cases)
        d = paired_bootstrap(a, b, n_boot=n_boot)
        out["gains"].append(
            {"with": with_, "without": without, "mean": d.mean, "low": d.low, "high": d.high}
            | {"n_seeds": d.n_seeds, "n_cases": d.n_cases}
        )
    return out


def plot_frameworks(numbers: dict):
    """Left: each row's Dice (seeds as points, pooled mean and 95 % CI as a square and bar).
    Right: the gain of adding DyCON's losses to each framework, 95 % CI, zero marked."""
    fig, axes = new_figure((6.8, 3.6), 1, 2)
    ax, gain = axes[0]
    labels = list(numbers["rows"])
    for y, label in enumerate(labels):
        r = numbers["rows"][label]
        seeds = [v for s, v in r["per_seed"].items() if s not in r["collapsed_seeds"]]
        ax.scatter(seeds, [y] * len(seeds), s=22, color="#7aa6d6", zorder=2,
                   label="one run (seed)" if y == 0 else None)  # fmt: skip
        for s in r["collapsed_seeds"]:  # flagged, never hidden in the mean
            ax.scatter(r["per_seed"][s], y, marker="x", s=40, color="#c0392b", zorder=4,
                       label="collapsed run")  # fmt: skip
        err = [[r["dice"] - r["low"]], [r["high"] - r["dice"]]]
        ax.errorbar(r["dice"], y, xerr=err, fmt="s", color="#3b75af", capsize=4, zorder=3,
                    label="mean, 95 % CI" if y == 0 else None)  # fmt: skip
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(xlabel="test Dice (%)", title="Dice per framework")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))  # one "collapsed run" entry
    fig.legend(unique.values(), unique.keys(), fontsize=10, loc="outside lower center", ncol=3)
    for y, g in enumerate(numbers["gains"]):
        err = [[g["mean"] - g["low"]], [g["high"] - g["mean"]]]
        gain.errorbar(g["mean"], y, xerr=err, fmt="o", color="#2e7d32", capsize=4)
    gain.axvline(0, color="0.3", lw=1, ls="--")
    gain.set_yticks(range(len(numbers["gains"])), [g["without"] for g in numbers["gains"]])
    gain.invert_yaxis()
    gain.set(xlabel="Dice gain of + DyCON (points)", title="paired gain, 95 % CI")
    for a in (ax, gain):
        a.grid(axis="x", alpha=0.3)
    return fig


def _glue(pre: str, numbers: dict) -> dict[str, str]:
    """``<pre>_<row>_dice`` and ``<pre>_gain_<framework>``."""
    out = {
        f"{pre}_{slug(label)}_dice": fmt_ci(r["dice"], r["low"], r["high"])
        for label, r in numbers["rows"].items()
    }
    for g in numbers["gains"]:
        out[f"{pre}_gain_{slug(g['without'])}"] = fmt_ci(g["mean"], g["low"], g["high"], sign=True)
    return out


def _markdown(numbers: dict) -> str:
    lines = ["| framework | Dice (%), 95 % CI | seeds: Dice | collapsed |", "|---|---|---|---|"]
    for label, r in numbers["rows"].items():
        seeds = ", ".join(f"{s}: {fmt(v, 1)}" for s, v in r["per_seed"].items())
        collapsed = ", ".join(f"seed {s}" for s in r["collapsed_seeds"]) or "none"
        if r.get("dice_kept") is not None:
            collapsed += f"; Dice {fmt(r['dice_kept'], 1)} without"
        ci = fmt_ci(r["dice"], r["low"], r["high"])
        lines.append(f"| {label} | {ci} | {seeds} | {collapsed} |")
    for g in numbers["gains"]:
        gain = fmt_ci(g["mean"], g["low"], g["high"], sign=True)
        n = f"{g['n_seeds']} seeds x {g['n_cases']} cases"
        lines.append(f"| gain: {g['with']} − {g['without']} | {gain} | paired, {n} | |")
    return "\n".join(lines)


def _decode(numbers: dict) -> dict:
    """JSON made the seeds' keys strings: back to integers."""
    for r in numbers["rows"].values():
        r["per_seed"] = {int(k): v for k, v in r["per_seed"].items()}
    return numbers


FIGURE = Figure(
    name="frameworks",
    rows=(
        Row("MT", "mt"),
        Row("MT + DyCON", "dycon"),
        Row("CPS", "cps"),
        Row("CPS + DyCON", "dycon-ct"),
    ),
    first_seed_only=False,
    glue=_glue,
    markdown=_markdown,
    decode=_decode,
)
