"""Intervals for conversion rates and for the difference of two of them (A/B splits), as
the stats report them. The math (:func:`wilson`, :func:`newcombe`) is the core's
(:mod:`engine.core.proportions`): the winner selection of a split decides with it.

* A comparison is flagged ``small_sample`` while a variant has fewer than
  :data:`MIN_USERS` users or fewer than :data:`MIN_CONVERSIONS` conversions: the interval is
  then honest but wide, and a difference is easily chance.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.core.proportions import Z95, newcombe, wilson

__all__ = [
    "METHOD", "MIN_CONVERSIONS", "MIN_USERS", "Z95", "diff_ci", "newcombe", "rate_ci",
    "small_sample", "wilson",
]  # fmt: skip

MIN_USERS = 30
MIN_CONVERSIONS = 5
METHOD = "newcombe-wilson"
SMALL_SAMPLE_NOTE = (
    f"small sample: a variant has fewer than {MIN_USERS} users or {MIN_CONVERSIONS} "
    "conversions, the difference may be chance"
)


def small_sample(groups: Iterable[tuple[int, int]]) -> bool:
    """True when any ``(conversions, users)`` group is under the thresholds."""
    return any(n < MIN_USERS or x < MIN_CONVERSIONS for x, n in groups)


def diff_ci(conv_a: int, n_a: int, conv_b: int, n_b: int) -> dict[str, Any]:
    """Difference of two conversion rates (a - b) with its 95% interval (Newcombe), and
    whether the samples are too small to read it."""
    found = newcombe(conv_a, n_a, conv_b, n_b)
    small = small_sample([(conv_a, n_a), (conv_b, n_b)])
    d, low, high = (None, None, None) if found is None else (round(v, 4) for v in found)
    return {
        "difference": d,
        "ci_low": low,
        "ci_high": high,
        "method": METHOD,
        "small_sample": small,
        "warning": SMALL_SAMPLE_NOTE if small and found is not None else None,
    }


def rate_ci(successes: int, n: int) -> dict[str, float | None]:
    """A rate's 95% Wilson interval, rounded: ``{"ci_low": .., "ci_high": ..}``."""
    found = wilson(successes, n)
    if found is None:
        return {"ci_low": None, "ci_high": None}
    return {"ci_low": round(found[0], 4), "ci_high": round(found[1], 4)}
