"""The training-curves figure: loss terms and validation Dice of each run's ``log.jsonl``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..experiments import RunResult
from ._format import fmt, slug
from .base import REFERENCE, Figure, Row


def curve_numbers(results: Sequence[RunResult]) -> dict:
    """Final loss, validation Dice (final, best and its step) of each run's log."""
    from ..analysis.curves import read_log

    out = {}
    for r in results:
        lg = read_log(r.run_dir, name=curve_label(r, results))
        val = lg.val_dice
        best = int(np.nanargmax(val)) if np.isfinite(val).any() else None
        out[lg.name] = {
            "final_loss": float(lg.loss[-1]) if lg.loss.size else None,
            "val_points": int(val.size),
            "final_val_dice": float(val[-1]) if val.size else None,
            "best_val_dice": None if best is None else float(val[best]),
            "best_val_step": None if best is None else int(lg.val_steps[best]),
            "terms": list(lg.terms),
        }
    return out


def curve_label(r: RunResult, results: Sequence[RunResult]) -> str:
    several = len({x.spec.seed for x in results}) > 1
    return f"{r.spec.row} (seed {r.spec.seed})" if several else r.spec.row


def _glue(pre: str, numbers: dict) -> dict[str, str]:
    """``<pre>_<run>_{final_val_dice,best_val_dice,final_loss}``."""
    out = {}
    for label, c in numbers["runs"].items():
        for key in ("final_val_dice", "best_val_dice", "final_loss"):
            out[f"{pre}_{slug(label)}_{key}"] = fmt(c[key], 3 if key == "final_loss" else 2)
    return out


def _markdown(numbers: dict) -> str:
    lines = ["| run | final loss | validation Dice: final | best (step) |", "|---|---|---|---|"]
    for label, c in numbers["runs"].items():
        best = f"{fmt(c['best_val_dice'])} ({c['best_val_step'] or '—'})"
        lines.append(
            f"| {label} | {fmt(c['final_loss'], 3)} | {fmt(c['final_val_dice'])} | {best} |"
        )
    return "\n".join(lines)


FIGURE = Figure(
    name="curves",
    rows=(Row(REFERENCE, "dycon", track="all"), Row("MT", "mt", track="validation")),
    first_seed_only=False,
    glue=_glue,
    markdown=_markdown,
)
