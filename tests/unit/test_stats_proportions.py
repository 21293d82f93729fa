"""Intervals for rates and differences of rates, against published reference values."""

from __future__ import annotations

import itertools

import pytest

from engine.stats.proportions import (
    MIN_CONVERSIONS,
    MIN_USERS,
    diff_ci,
    newcombe,
    rate_ci,
    small_sample,
    wilson,
)


@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
     (1, 29, 0.0061, 0.1718)],
)  # fmt: skip
def test_wilson_matches_newcombe_1998a(x: int, n: int, low: float, high: float) -> None:
    """Newcombe (1998), "Two-sided confidence intervals for the single proportion",
    Statistics in Medicine 17:857-872, Table I, method 3 (score, no continuity correction)."""
    found = wilson(x, n)
    assert found is not None
    assert (round(found[0], 4), round(found[1], 4)) == (low, high)
    assert rate_ci(x, n) == {"ci_low": low, "ci_high": high}


@pytest.mark.parametrize(
    ("a", "b", "difference", "low", "high"),
    [((56, 70), (48, 80), 0.2, 0.0524, 0.3339), ((9, 10), (3, 10), 0.6, 0.1705, 0.8090),
     ((0, 10), (0, 20), 0.0, -0.1611, 0.2775), ((10, 10), (0, 20), 1.0, 0.6791, 1.0)],
)  # fmt: skip
def test_newcombe_matches_newcombe_1998b(
    a: tuple[int, int], b: tuple[int, int], difference: float, low: float, high: float
) -> None:
    """Newcombe (1998), "Interval estimation for the difference between independent
    proportions: comparison of eleven methods", Statistics in Medicine 17:873-890, Table II,
    method 10 (hybrid score, no continuity correction)."""
    d = diff_ci(*a, *b)
    assert (d["difference"], d["ci_low"], d["ci_high"]) == (difference, low, high)
    assert d["method"] == "newcombe-wilson"


def test_intervals_never_leave_what_is_possible() -> None:
    for xa, na, xb, nb in itertools.product(range(0, 7), range(1, 7), range(0, 7), range(1, 7)):
        if xa > na or xb > nb:
            continue
        found = newcombe(xa, na, xb, nb)
        assert found is not None
        d, low, high = found
        assert -1.0 <= low <= d <= high <= 1.0, (xa, na, xb, nb, found)
        w = wilson(xa, na)
        assert w is not None and 0.0 <= w[0] <= xa / na <= w[1] <= 1.0


def test_empty_variants_have_no_interval() -> None:
    assert wilson(0, 0) is None and newcombe(1, 0, 1, 10) is None
    d = diff_ci(1, 0, 1, 10)
    assert (d["difference"], d["ci_low"], d["ci_high"], d["warning"]) == (None, None, None, None)
    assert rate_ci(0, 0) == {"ci_low": None, "ci_high": None}


def test_small_sample_threshold() -> None:
    assert (MIN_USERS, MIN_CONVERSIONS) == (30, 5)  # documented in docs/outcomes.md
    assert not small_sample([(5, 30), (6, 40)])
    assert small_sample([(5, 29), (6, 40)])  # too few users in one variant
    assert small_sample([(4, 300), (60, 300)])  # too few conversions in one variant
    big = diff_ci(300, 1000, 250, 1000)
    assert big["small_sample"] is False and big["warning"] is None
    assert big["ci_low"] < big["difference"] == 0.05 < big["ci_high"]
    small = diff_ci(5, 5, 1, 3)
    assert small["small_sample"] is True and "fewer than 30 users" in small["warning"]
