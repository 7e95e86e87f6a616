"""The overlay figure: ground truth and each row's prediction on a few test cases."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..config import ConfigError
from ..experiments import RunResult
from ._format import fmt, slug
from .base import REFERENCE, Figure, Row, by_row, held_out


def overlay_cases(results: Sequence[RunResult], *, root=None, n_cases: int = 3) -> list:
    """``OverlayCase``s of the first ``n_cases`` test cases (those with a lesion first), with
    each row's prediction (its first run)."""
    from ..analysis.overlays import OverlayCase
    from ..engine.evaluate import load_prediction

    runs = {row: rs[0] for row, rs in by_row(results).items()}
    test = held_out(results[0].spec, root=root)
    lesion, empty = [], []
    for i in range(len(test.ids)):
        if len(lesion) >= n_cases:
            break
        v = test.load(i)
        (lesion if v.label.any() else empty).append(v)
    cases = []
    for v in (lesion + empty)[:n_cases]:
        preds = {}
        for row, r in runs.items():
            path = r.run_dir / "predictions" / f"{v.case_id}.npz"
            if not path.is_file():
                raise ConfigError(f"{path} is missing: evaluate with eval.save_predictions=true")
            preds[row] = load_prediction(path)[0]
        cases.append(OverlayCase(v.case_id, v.image, v.label > 0, preds))
    return cases


def overlay_numbers(results: Sequence[RunResult], cases: list) -> dict:
    runs = {row: rs[0] for row, rs in by_row(results).items()}
    dice = {row: {c["case"]: float(c["dice"]) for c in r.per_case} for row, r in runs.items()}
    return {
        "cases": [
            {"case": c.case, "lesion_voxels": int(np.count_nonzero(c.gt))}
            | {"dice": {row: dice[row].get(c.case, math.nan) for row in runs}}
            for c in cases
        ]
    }


def _glue(pre: str, numbers: dict) -> dict[str, str]:
    """``<pre>_<case>_<row>_dice``."""
    return {
        f"{pre}_{slug(c['case'])}_{slug(row)}_dice": fmt(value)
        for c in numbers["cases"]
        for row, value in c["dice"].items()
    }


def _markdown(numbers: dict) -> str:
    rows = list(numbers["cases"][0]["dice"]) if numbers["cases"] else []
    lines = ["| case | lesion voxels | " + " | ".join(f"{r} Dice" for r in rows) + " |"]
    lines.append("|---" * (2 + len(rows)) + "|")
    for c in numbers["cases"]:
        cells = " | ".join(fmt(c["dice"][r]) for r in rows)
        lines.append(f"| {c['case']} | {c['lesion_voxels']} | {cells} |")
    return "\n".join(lines)


FIGURE = Figure(
    name="overlays",
    rows=(Row(REFERENCE, "dycon"), Row("MT", "mt")),
    first_seed_only=True,  # pictures of one run per row
    glue=_glue,
    markdown=_markdown,
)
