"""The training-curves figure: loss terms and validation Dice of each run's ``log.jsonl``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..experiments import RunResult


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
