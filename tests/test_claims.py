"""The verdict rule on a claim "A beats B by margin" from the CI of A - B."""

import pytest

from dycon.claims import NOT_REPRODUCED, NOT_TESTED, REPRODUCED, claim_verdict


@pytest.mark.parametrize(
    ("low", "high", "margin", "verdict", "words"),
    [
        (0.5, 3.0, 1.42, REPRODUCED, "the paper's +1.42 holds"),  # 0.5 <= 1.42 <= 3
        (2.0, 3.0, 1.42, REPRODUCED, "does not hold"),  # above 0, but above the margin too
        (-3.0, -0.1, 1.42, NOT_REPRODUCED, "below 0"),
        (-1.0, 1.0, 1.42, NOT_REPRODUCED, "excludes the paper's +1.42"),  # 1.0 < 1.42
        (-1.0, 5.0, 1.42, NOT_TESTED, "6.00 points wide"),
        (0.0, 5.0, 1.42, NOT_TESTED, "holds both"),  # low = 0 is not above 0
    ],
)
def test_verdicts(low, high, margin, verdict, words):
    out = claim_verdict(low=low, high=high, margin=margin)
    assert out.verdict == verdict and words in out.reason


@pytest.mark.parametrize(
    ("low", "high", "margin", "match"),
    [
        (1.0, 0.0, 1.0, "low <= high"),
        (float("nan"), 1.0, 1.0, "no NaN"),
        (0.0, 1.0, 0.0, "margin must be > 0"),
    ],
)
def test_bad_input(low, high, margin, match):
    with pytest.raises(ValueError, match=match):
        claim_verdict(low=low, high=high, margin=margin)


def test_paired_differences_pairs_cases_by_id():
    from dycon.claims import paired_differences

    runs = [
        {"row": "A", "percent": 5, "seed": 1, "dice_per_case": {"x": 60.0, "y": 70.0}},
        {"row": "B", "percent": 5, "seed": 1, "dice_per_case": {"y": 65.0, "x": 50.0}},
        {"row": "A", "percent": 5, "seed": 2, "dice_per_case": {"x": 61.0, "y": 71.0}},
        {"row": "B", "percent": 5, "seed": 2, "dice_per_case": {"x": 60.0, "y": 70.0}},
    ]
    # sorted cases x, y: seed 1: 60 - 50, 70 - 65; seed 2: 61 - 60, 71 - 70
    assert paired_differences(runs, a="A", b="B", percent=5, seeds=[1, 2]) == [[10, 5], [1, 1]]
    with pytest.raises(ValueError, match="no run of 'A' at 5 % for seed 3"):
        paired_differences(runs, a="A", b="B", percent=5, seeds=[3])


def test_paired_claims_leave_out_collapsed_seeds_and_judge_with_the_margin():
    from dycon.claims import paired_claims

    def run(row, seed, x, y, collapsed=False):
        return {
            "row": row,
            "percent": 10,
            "seed": seed,
            "collapsed": collapsed,
            "dice_per_case": {"x": x, "y": y},
        }

    runs = [
        run("A", 1, 80.0, 90.0),
        run("B", 1, 70.0, 80.0),  # +10 on both cases
        run("A", 2, 81.0, 91.0),
        run("B", 2, 71.0, 81.0),  # +10 again
        run("A", 3, 0.0, 0.0, collapsed=True),
        run("B", 3, 70.0, 80.0),
    ]
    (claim,) = paired_claims(
        runs, pairs=[(10, "A", "B"), (5, "A", "B")], margins={(10, "A", "B"): 2.0}
    )
    assert claim["seeds"] == [1, 2] and claim["collapsed_seeds_left_out"] == [3]
    # every difference is exactly 10: the bootstrap CI is [10, 10], above 0, margin 2 outside it
    assert claim["difference"] == claim["ci95"][0] == claim["ci95"][1] == 10.0
    assert claim["verdict"].verdict == REPRODUCED and "does not hold" in claim["verdict"].reason
    assert claim["variance"].seed == claim["variance"].case == 0.0
    assert claim["difference_per_seed"] == [10.0, 10.0]
