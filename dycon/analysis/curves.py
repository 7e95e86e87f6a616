"""Training curves from a run's ``log.jsonl``: loss terms and validation Dice vs iteration.

The trainer writes one JSON object per logged step: ``step``, ``loss``, ``terms`` (unweighted
loss terms by name), ``weights`` (their weights at that step), ``logs`` (e.g. ``beta``), ``lr``,
``skipped`` (non-finite loss, no update) and, at validation steps, ``val_dice`` (%).
Figures are ``matplotlib.figure.Figure`` objects drawn with the Agg canvas: no pyplot state,
no display needed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RunLog:
    """Series of one run, aligned on ``steps`` (ascending; NaN where a line lacks a value).

    Attributes:
        name: label for legends (by default the run folder's name, or the file's stem when
            the log is not called ``log.jsonl``).
        steps: logged iterations.
        loss: total (weighted) loss.
        terms: unweighted loss terms by name.
        weights: each term's weight by name.
        logs: other logged scalars (e.g. ``beta``, ``eta``).
        lr: learning rate.
        skipped: True where the step's loss was non-finite and skipped.
        val_steps: iterations with a validation Dice.
        val_dice: validation Dice in % at ``val_steps``.
    """

    name: str
    steps: np.ndarray
    loss: np.ndarray
    terms: dict[str, np.ndarray] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    logs: dict[str, np.ndarray] = field(default_factory=dict)
    lr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    val_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    val_dice: np.ndarray = field(default_factory=lambda: np.zeros(0))


def read_log(path: str | Path, *, name: str | None = None) -> RunLog:
    """Read ``log.jsonl`` (or a run folder holding one) into per-key series.

    Blank lines are ignored; a repeated step keeps its last line (a resumed run); a truncated
    last line (a run killed mid-write) is dropped with a warning; any other malformed line
    raises ``ValueError`` with its line number.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise ValueError(f"no training log at {path}")
    lines = [(i, ln) for i, ln in enumerate(path.read_text().splitlines(), 1) if ln.strip()]
    records: dict[int, dict] = {}
    for j, (i, ln) in enumerate(lines):
        try:
            rec = json.loads(ln)
        except json.JSONDecodeError as err:
            if j == len(lines) - 1:
                warnings.warn(f"{path}:{i}: truncated last line dropped", stacklevel=2)
                continue
            raise ValueError(f"{path}:{i}: not a JSON line ({err})") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int):
            raise ValueError(f"{path}:{i}: expected an object with an integer 'step'")
        records[rec["step"]] = rec
    recs = [records[s] for s in sorted(records)]

    def column(key: str) -> np.ndarray:
        return np.array([_num(r.get(key)) for r in recs], dtype=float)

    def nested(key: str) -> dict[str, np.ndarray]:
        names = list(dict.fromkeys(k for r in recs for k in (r.get(key) or {})))
        return {
            n: np.array([_num((r.get(key) or {}).get(n)) for r in recs], dtype=float) for n in names
        }

    val = [(r["step"], _num(r["val_dice"])) for r in recs if r.get("val_dice") is not None]
    return RunLog(
        name=name if name is not None else _default_name(path),
        steps=np.array([r["step"] for r in recs], dtype=int),
        loss=column("loss"),
        terms=nested("terms"),
        weights=nested("weights"),
        logs=nested("logs"),
        lr=column("lr"),
        skipped=np.array([bool(r.get("skipped", False)) for r in recs], dtype=bool),
        val_steps=np.array([s for s, _ in val], dtype=int),
        val_dice=np.array([v for _, v in val], dtype=float),
    )


def smooth_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard-style exponential moving average (debiased); NaNs are skipped and kept."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight!r}")
    out = np.array(values, dtype=float)
    avg, norm = 0.0, 0.0
    for i, v in enumerate(out):
        if not math.isfinite(v):
            continue
        avg, norm = weight * avg + (1.0 - weight) * v, weight * norm + (1.0 - weight)
        out[i] = avg / norm
    return out


def plot_curves(
    runs: Sequence[RunLog | str | Path] | Mapping[str, RunLog | str | Path],
    *,
    terms: Sequence[str] | None = None,
    weighted: bool = False,
    smooth: float = 0.0,
    log_y: bool = False,
    figsize: tuple[float, float] = (6.8, 4.0),  # the book column: 10 pt text legible unscaled
):
    """Loss terms (left) and validation Dice (right) vs iteration for runs such as DyCON vs MT.

    Args:
        runs: ``RunLog`` objects or paths to logs / run folders, or a mapping label -> either.
        terms: term names to draw (default: every term of every run, total loss first as
            ``"loss"``); a term a run lacks is simply not drawn for it.
        weighted: draw ``weight * term`` (the term's share of the total) instead of the term.
        smooth: EMA weight in [0, 1) applied to the loss curves (0 = raw).
        log_y: logarithmic loss axis.
        figsize: figure size in inches.

    Colour marks the term (left) or the run (right); line style marks the run on the left.

    Returns:
        A ``matplotlib.figure.Figure`` with two axes.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    logs = _as_logs(runs)
    names = list(terms) if terms is not None else ["loss", *_union(lg.terms for lg in logs)]
    styles = ["-", "--", ":", "-."]
    colours = {n: f"C{i % 10}" for i, n in enumerate(names)}
    fig = Figure(figsize=figsize, layout="constrained")
    ax_loss, ax_val = fig.subplots(1, 2)
    for r, lg in enumerate(logs):
        style = styles[r % len(styles)]
        for n in names:
            y = _series(lg, n, weighted)
            if y is None:
                continue
            if smooth:
                y = smooth_ema(y, smooth)
            ax_loss.plot(lg.steps, y, style, color=colours[n], lw=1.4)
        ax_val.plot(
            lg.val_steps, lg.val_dice, style, marker="o", ms=3, color=f"C{r % 10}", label=lg.name
        )
    ax_loss.set(
        xlabel="iteration",
        ylabel="weighted loss" if weighted else "loss",
        title="loss terms" + (f" (EMA {smooth:g})" if smooth else ""),
    )
    if log_y:
        ax_loss.set_yscale("log")
    handles = [Line2D([], [], color=colours[n], label=n) for n in names]
    handles += [
        Line2D([], [], color="0.3", ls=styles[r % len(styles)], label=lg.name)
        for r, lg in enumerate(logs)
    ]
    # below both axes at 10 pt (legible at the column width) instead of over the loss curves
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5))
    ax_val.set(xlabel="iteration", ylabel="validation Dice (%)", title="validation Dice")
    if any(lg.val_steps.size for lg in logs):
        ax_val.legend()
    else:
        ax_val.text(
            0.5,
            0.5,
            "no validation in these logs",
            ha="center",
            va="center",
            transform=ax_val.transAxes,
            color="0.4",
        )
        ax_val.set(xticks=[], yticks=[])
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
    return fig


def _default_name(path: Path) -> str:
    return path.parent.name if path.name == "log.jsonl" else path.stem


def _num(v: object) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _union(dicts) -> list[str]:
    return list(dict.fromkeys(k for d in dicts for k in d))


def _series(lg: RunLog, name: str, weighted: bool) -> np.ndarray | None:
    if name == "loss":
        return lg.loss
    if name not in lg.terms:
        return None
    y = lg.terms[name]
    if weighted:
        w = lg.weights.get(name)
        y = y * (w if w is not None else 1.0)
    return y


def _as_logs(runs) -> list[RunLog]:
    if isinstance(runs, (str, Path, RunLog)):
        runs = [runs]
    items = list(runs.items()) if isinstance(runs, Mapping) else [(None, r) for r in runs]
    if not items:
        raise ValueError("give at least one run (a RunLog, a log.jsonl or a run folder)")
    out = []
    for label, r in items:
        lg = r if isinstance(r, RunLog) else read_log(r)
        if label is not None and label != lg.name:
            lg = replace(lg, name=label)
        out.append(lg)
    return out
