"""A verdict per claim of the paper: reproduced, not reproduced, or not tested, with the reason.

A claim here is one of the paper's differences "method A beats method B by ``margin`` points"
(A's row minus B's row of a table, same labeled fraction). Ours is the paired difference A - B on
the same seeds, labeled sets and test cases with its 95 % CI (``metrics.paired_bootstrap``). The
rule reads the CI only, never the point estimate alone:

* the CI lies above 0: A beats B here too: **reproduced** (whether the paper's margin lies in
  the CI is said beside it: the sign is reproduced, the size may not be);
* the CI lies below 0: B beats A here: **not reproduced**;
* the CI holds 0 but lies wholly below the paper's margin: a difference as large as the paper's
  is excluded: **not reproduced**;
* the CI holds both 0 and the margin: the runs cannot tell them apart: **not tested**.

Table 5 (the ablation) claims that each added component raises Dice; :func:`ablation_claims`
lists those claims with their margins.
"""

from __future__ import annotations

import math
from typing import NamedTuple

REPRODUCED, NOT_REPRODUCED, NOT_TESTED = "reproduced", "not reproduced", "not tested"


class Verdict(NamedTuple):
    verdict: str
    reason: str


def claim_verdict(*, low: float, high: float, margin: float) -> Verdict:
    """The verdict on "A beats B by ``margin`` points" from the CI ``[low, high]`` of A - B.

    Args:
        low: Lower end of the 95 % CI of our paired difference A - B (points).
        high: Upper end (>= low).
        margin: The paper's A - B (> 0: the paper says A is better).

    Raises:
        ValueError: a NaN, ``low > high``, or ``margin <= 0`` (a claim that A is not better).
    """
    if any(math.isnan(x) for x in (low, high, margin)) or low > high:
        raise ValueError(f"need low <= high and no NaN, got low={low!r}, high={high!r}")
    if not margin > 0:
        raise ValueError(f"margin must be > 0 (the paper's A - B of a claim), got {margin!r}")
    ci = f"95 % CI [{low:+.2f}, {high:+.2f}]"
    if low > 0:
        size = "holds" if low <= margin <= high else "does not hold"
        return Verdict(REPRODUCED, f"{ci} lies above 0; the paper's +{margin:.2f} {size}")
    if high < 0:
        return Verdict(NOT_REPRODUCED, f"{ci} lies below 0: the other method is better here")
    if high < margin:
        return Verdict(
            NOT_REPRODUCED, f"{ci} holds 0 and excludes the paper's +{margin:.2f}: a smaller gain"
        )
    return Verdict(
        NOT_TESTED,
        f"{ci} holds both 0 and the paper's +{margin:.2f}: {high - low:.2f} points wide, "
        "too wide to tell",
    )


def paired_differences(runs: list[dict], *, a: str, b: str, percent: int, seeds) -> list[list]:
    """(seeds, cases) table of A - B per test case, from run records holding ``row``,
    ``percent``, ``seed`` and ``dice_per_case`` (``{case id: Dice}``), on the cases of both."""
    by = {(r["row"], r["percent"], r["seed"]): r["dice_per_case"] for r in runs}
    missing = [(row, s) for s in seeds for row in (a, b) if (row, percent, s) not in by]
    if missing:
        raise ValueError(f"no run of {missing[0][0]!r} at {percent} % for seed {missing[0][1]}")
    cases = sorted(set.intersection(*(set(by[(row, percent, s)]) for s in seeds for row in (a, b))))
    return [[by[(a, percent, s)][c] - by[(b, percent, s)][c] for c in cases] for s in seeds]


def paired_claims(runs: list[dict], *, pairs, margins: dict) -> list[dict]:
    """Each pair's paired difference A - B with its CI, variance components and verdict.

    Args:
        runs: Run records (``row``, ``percent``, ``seed``, ``collapsed``, ``dice_per_case``).
        pairs: ``(percent, A, B)`` to compare, on the seeds both have; seeds where either run
            collapsed are left out and named.
        margins: ``{(percent, A, B): the paper's A - B}``; a pair without one gets no verdict.

    Returns:
        One dict per pair that has a seed in common, in the order of ``pairs``.
    """
    from .metrics import paired_bootstrap, paired_variance

    seeds_of = {}
    for r in runs:
        seeds_of.setdefault((r["row"], r["percent"]), {})[r["seed"]] = r["collapsed"]
    out = []
    for percent, a, b in pairs:
        sa, sb = seeds_of.get((a, percent), {}), seeds_of.get((b, percent), {})
        common = sorted(set(sa) & set(sb))
        collapsed = [s for s in common if sa[s] or sb[s]]
        seeds = [s for s in common if s not in collapsed]
        if not seeds:
            continue
        diff = paired_differences(runs, a=a, b=b, percent=percent, seeds=seeds)  # (S, N)
        # the bootstrap resamples a - b; handing it the differences against zeros is the same
        ci = paired_bootstrap(diff, [[0.0] * len(diff[0])] * len(seeds))
        margin = margins.get((percent, a, b))
        var = paired_variance(diff) if len(seeds) > 1 else None
        out.append(
            {
                "percent": percent,
                "a": a,
                "b": b,
                "seeds": seeds,
                "collapsed_seeds_left_out": collapsed,
                "n_cases": ci.n_cases,
                "difference": ci.mean,
                "ci95": (ci.low, ci.high),
                "difference_per_seed": [sum(row) / len(row) for row in diff],
                "paper_margin": margin,
                "verdict": None
                if margin is None or margin <= 0
                else claim_verdict(low=ci.low, high=ci.high, margin=margin),
                "variance": var,
            }
        )
    return out


def ablation_claims() -> list[dict]:
    """The claims of the poster's Table 5 (the ablation): each added component raises Dice.

    Read as each row after the first minus row 1 (everything off), then each row minus the row
    before it (row 2's is row 1, counted once). Row 4 swaps row 3's hard negatives for entropy
    weighting, so row 4 - row 3 claims that the swap helps, as the poster orders them.

    The poster ablates on ISLES'22 and BraTS'19 only. A claim's ``margin`` is the smaller of
    the two datasets' A - B (both in ``by_dataset``): the gain both datasets show, so that a
    claim judged on another dataset is *not reproduced* only where even that gain is excluded.

    Returns:
        ``{"a": "row k", "b": "row j", "margin": points, "by_dataset": {dataset: points}}`` per
        claim, in the order above; rows are named as ``experiments.TABLES[5]`` names them.
    """
    from .paper import ABLATION, paper_rows

    dice: dict[str, dict[str, float]] = {}
    for r in paper_rows(ABLATION):
        dice.setdefault(f"row {r['row']}", {})[r["dataset"]] = r["dice"]
    rows = list(dice)
    pairs = [(a, rows[0]) for a in rows[1:]] + list(zip(rows[2:], rows[1:-1], strict=True))
    out = []
    for a, b in pairs:
        by_dataset = {ds: round(dice[a][ds] - dice[b][ds], 2) for ds in dice[a] if ds in dice[b]}
        out.append({"a": a, "b": b, "margin": min(by_dataset.values()), "by_dataset": by_dataset})
    return out
