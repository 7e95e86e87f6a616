"""Variance components of paired differences and the seeds a CI width needs (hand-computed)."""

import math

import pytest

from dycon.metrics import paired_variance

Z2 = 2 * 1.959964  # a 95 % interval is this many standard errors wide


@pytest.mark.parametrize(
    ("diff", "seed", "case", "residual"),
    [
        # seed effect only: seed means 1, 3 (var 2); case means equal; additive fit exact
        ([[1, 1], [3, 3]], 2.0, 0.0, 0.0),
        # case effect only: case means 1, 3 (var 2)
        ([[1, 3], [1, 3]], 0.0, 2.0, 0.0),
        # interaction only: every margin is 1, the residual mean square is 4 * 1 / (1 * 1) = 4;
        # seed = max(0, 0 - 4 / 2) = 0 and likewise case
        ([[0, 2], [2, 0]], 0.0, 0.0, 4.0),
    ],
)
def test_components(diff, seed, case, residual):
    v = paired_variance(diff)
    assert (v.seed, v.case, v.residual) == pytest.approx((seed, case, residual))
    assert (v.n_seeds, v.n_cases) == (2, 2)


@pytest.mark.parametrize(
    ("diff", "seeds", "width"),
    [
        ([[1, 1], [3, 3]], 2, Z2 * 1.0),  # sqrt(2 / 2)
        ([[1, 1], [3, 3]], 8, Z2 * 0.5),  # sqrt(2 / 8)
        ([[1, 1], [3, 3]], math.inf, 0.0),  # no case spread: no floor
        ([[1, 3], [1, 3]], 2, Z2 * 1.0),  # sqrt(2 / 2): the cases' term
        ([[1, 3], [1, 3]], math.inf, Z2 * 1.0),  # ... which seeds do not shrink
        ([[0, 2], [2, 0]], 4, Z2 * math.sqrt(0.5)),  # sqrt(4 / (4 * 2))
    ],
)
def test_ci_width(diff, seeds, width):
    assert paired_variance(diff).ci_width(seeds) == pytest.approx(width)


def test_seeds_for_width():
    # seed variance 2: width Z2 * sqrt(2 / S) < 1.96 needs S >= 8
    assert paired_variance([[1, 1], [3, 3]]).seeds_for_width(1.96) == 8
    # case floor Z2 * 1 = 3.92 > 3: no number of seeds is enough
    assert paired_variance([[1, 3], [1, 3]]).seeds_for_width(3.0) is None


@pytest.mark.parametrize(
    ("diff", "match"),
    [
        ([[1, 2, 3]], r"seeds >= 2"),  # one seed
        ([1, 2], r"got shape \(2,\)"),
        ([[1, float("nan")], [1, 2]], "NaN"),
    ],
)
def test_bad_input(diff, match):
    with pytest.raises(ValueError, match=match):
        paired_variance(diff)


def test_bad_arguments():
    v = paired_variance([[1, 1], [3, 3]])
    with pytest.raises(ValueError, match="seeds must be > 0"):
        v.ci_width(0)
    with pytest.raises(ValueError, match="width must be > 0"):
        v.seeds_for_width(-1.0)
