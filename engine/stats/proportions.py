"""Intervals for conversion rates and for the difference of two of them (A/B splits).

* One rate: Wilson's score interval. Unlike ``p ± 1.96·se`` it stays inside [0, 1] and
  keeps its coverage for small samples and rates near 0 or 1.
* A difference ``pa - pb``: Newcombe's hybrid score interval (method 10 of Newcombe, 1998,
  "Interval estimation for the difference between independent proportions", Statistics
  in Medicine 17:873-890), built from the two Wilson intervals. It stays inside what is
  possible, [-1, +1] (clipped there against rounding), where the Wald interval went up to
  +120%.
* A comparison is flagged ``small_sample`` while a variant has fewer than
  :data:`MIN_USERS` users or fewer than :data:`MIN_CONVERSIONS` conversions: the interval is
  then honest but wide, and a difference is easily chance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal: 95% two-sided
MIN_USERS = 30
MIN_CONVERSIONS = 5
METHOD = "newcombe-wilson"
SMALL_SAMPLE_NOTE = (
    f"small sample: a variant has fewer than {MIN_USERS} users or {MIN_CONVERSIONS} "
    "conversions, the difference may be chance"
)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson's score interval of ``successes / n``; None when ``n`` is 0."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # 0 of n and n of n end exactly at 0 and 1 (not 1e-17 away, from rounding)
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= n else min(1.0, centre + half)
    return low, high


def newcombe(
    x_a: int, n_a: int, x_b: int, n_b: int, z: float = Z95
) -> tuple[float, float, float] | None:
    """``(pa - pb, low, high)``: Newcombe's hybrid score interval; None when a variant has
    no users."""
    ci_a, ci_b = wilson(x_a, n_a, z), wilson(x_b, n_b, z)
    if ci_a is None or ci_b is None:
        return None
    (la, ua), (lb, ub) = ci_a, ci_b
    pa, pb = x_a / n_a, x_b / n_b
    d = pa - pb
    low = d - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = d + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return d, max(-1.0, low), min(1.0, high)


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
