"""Paired bootstrap over seeds and test cases (dycon.metrics.paired_bootstrap)."""

import math

import numpy as np
import pytest

from dycon.metrics import paired_bootstrap

# (a, b, level, expected mean, low, high, seeds, cases, dropped), each worked out by hand.
CASES = [
    # every difference is 2: every resample's mean is 2
    ([[3.0, 5.0], [4.0, 6.0]], [[1.0, 3.0], [2.0, 4.0]], 0.95, 2.0, 2.0, 2.0, 2, 2, 0),
    # one seed, differences 0 and 2: resampled means 0, 1, 2 with chances 1/4, 1/2, 1/4
    ([[10.0, 12.0]], [[10.0, 10.0]], 0.95, 1.0, 0.0, 2.0, 1, 2, 0),
    # the 30th and 70th percentiles of that distribution both fall on 1
    ([[10.0, 12.0]], [[10.0, 10.0]], 0.4, 1.0, 1.0, 1.0, 1, 2, 0),
    # two seeds, one case, differences 1 and 3: seeds resampled, means 1, 2, 3 (1/4, 1/2, 1/4)
    ([[2.0], [4.0]], [[1.0], [1.0]], 0.95, 2.0, 1.0, 3.0, 2, 1, 0),
    # a 1-D input is one seed; b ahead by 5 on both cases
    ([1.0, 2.0], [6.0, 7.0], 0.95, -5.0, -5.0, -5.0, 1, 2, 0),
    # a case NaN on one seed leaves the comparison on every seed (paired: same cases)
    ([[1.0, math.nan], [1.0, 9.0]], [[0.0, 0.0], [0.0, 0.0]], 0.95, 1.0, 1.0, 1.0, 2, 1, 1),
]


@pytest.mark.parametrize("a, b, level, mean, low, high, seeds, cases, dropped", CASES)
def test_paired_bootstrap_table(a, b, level, mean, low, high, seeds, cases, dropped):
    ci = paired_bootstrap(a, b, level=level, n_boot=4000, seed=1)
    assert ci.mean == pytest.approx(mean)
    assert ci.low == pytest.approx(low)
    assert ci.high == pytest.approx(high)
    assert (ci.n_seeds, ci.n_cases, ci.n_dropped) == (seeds, cases, dropped)


def test_seeds_and_cases_both_widen_the_interval():
    rng = np.random.default_rng(0)
    case_effect = rng.normal(0, 5, size=(1, 20))  # (1, N) shared by every seed
    seed_effect = rng.normal(0, 3, size=(6, 1))  # (S, 1) shared by every case
    a = 70 + case_effect + seed_effect + 1.0  # (S, N)
    b = np.full_like(a, 70.0)
    both = paired_bootstrap(a, b, seed=2)
    one_seed = paired_bootstrap(a[:1], b[:1], seed=2)
    assert both.low < both.mean < both.high
    no_seed_spread = paired_bootstrap(a - seed_effect, b, seed=2)
    assert (both.high - both.low) > (no_seed_spread.high - no_seed_spread.low)
    assert one_seed.n_seeds == 1 and both.n_seeds == 6


def test_same_seed_same_interval():
    a, b = [[1.0, 4.0, 2.0]], [[0.0, 0.0, 1.0]]
    assert paired_bootstrap(a, b, seed=3) == paired_bootstrap(a, b, seed=3)


def test_no_finite_case_gives_nan():
    ci = paired_bootstrap([[math.nan]], [[1.0]])
    assert math.isnan(ci.mean) and math.isnan(ci.low) and math.isnan(ci.high)
    assert (ci.n_cases, ci.n_dropped) == (0, 1)


@pytest.mark.parametrize(
    "a, b, kwargs, message",
    [
        ([[1.0, 2.0]], [[1.0, 2.0, 3.0]], {}, "one shape"),
        ([[[1.0]]], [[[1.0]]], {}, "one shape"),
        ([[1.0, math.inf]], [[1.0, 2.0]], {}, "infinity"),
        ([[1.0]], [[1.0]], {"level": 1.0}, "level"),
        ([[1.0]], [[1.0]], {"n_boot": 0}, "n_boot"),
    ],
)
def test_bad_input_is_a_clear_error(a, b, kwargs, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, **kwargs)
