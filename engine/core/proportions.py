"""Intervals for one rate and for the difference of two: the pure math of A/B splits.

* One rate: Wilson's score interval. Unlike ``p ± 1.96·se`` it stays inside [0, 1] and
  keeps its coverage for small samples and rates near 0 or 1.
* A difference ``pa - pb``: Newcombe's hybrid score interval (method 10 of Newcombe, 1998,
  "Interval estimation for the difference between independent proportions", Statistics
  in Medicine 17:873-890), built from the two Wilson intervals. It stays inside what is
  possible, [-1, +1] (clipped there against rounding), where the Wald interval went up to
  +120%.

It lives in the core because the core's winner selection (:mod:`engine.core.winner`) decides
with it; the stats (:mod:`engine.stats.proportions`) report with the same functions.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal: 95% two-sided


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
