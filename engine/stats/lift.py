"""What a journey's sends caused: conversions of treated runs against runs that got no sends.

Every run is in one arm, from its ``journey_entered`` (:mod:`engine.core.holdout`):

* ``control``: the user is in the deployment's global control group
  (``attributes.global_control``: the journey's marketing sends were held back);
* ``holdout``: the run is in the journey's holdout (``attributes.holdout``: no sends);
* ``treated``: everybody else.

**Journey lift** (``holdout``): treated against holdout, runs of the global control group
left out of both (they are neither treated nor the journey's chosen holdout).
**Global lift** (``global_control``): across journeys, treated against control, journey
holdouts left out; pooled over the journey versions the control group applies to (at least
one run in it: a journey with a marketing send) that have a goal (or whose file is not
known). Every arm is counted in runs, as split variants are.

The lift is the difference of the conversion rates (treated - baseline) with its 95%
Newcombe interval (:mod:`engine.stats.proportions`); ``relative_lift`` is that difference
over the baseline's rate (a point estimate: no interval is given for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.stats.proportions import diff_ci, rate_ci

ARMS = ("treated", "holdout", "control")
Counts = tuple[int, int]  # converted, runs


def arm_of(attributes: Mapping[str, Any]) -> str:
    """The arm of a run from its ``journey_entered`` attributes."""
    if attributes.get("global_control") is True:
        return "control"
    return "holdout" if attributes.get("holdout") is True else "treated"


def _group(conv: int, users: int) -> dict[str, Any]:
    rate = round(conv / users, 4) if users else None
    return {"users": users, "converted": conv, "conversion_rate": rate, **rate_ci(conv, users)}


def lift(treated: Counts, baseline: Counts, baseline_name: str) -> dict[str, Any]:
    """Both groups' rates (95% Wilson intervals) and the lift, treated - baseline, with its
    95% Newcombe interval; ``significant`` when the interval is clear of 0."""
    d = diff_ci(*treated, *baseline)
    base_rate = baseline[0] / baseline[1] if baseline[1] else None
    treated_rate = treated[0] / treated[1] if treated[1] else None
    relative = (
        round((treated_rate - base_rate) / base_rate, 4)
        if treated_rate is not None and base_rate
        else None
    )
    low, high = d["ci_low"], d["ci_high"]
    return {
        "treated": _group(*treated),
        baseline_name: _group(*baseline),
        "lift": d["difference"],
        "ci_low": low,
        "ci_high": high,
        "relative_lift": relative,
        "significant": low is not None and high is not None and (low > 0 or high < 0),
        "method": d["method"],
        "small_sample": d["small_sample"],
        # the split's wording, about the two groups here
        "warning": d["warning"].replace("a variant", "a group") if d["warning"] else None,
    }


def holdout_report(arms: Mapping[str, Counts], share: str | None = None) -> dict[str, Any] | None:
    """A journey version's lift over its holdout; None when it has no holdout (no run in
    it and none declared in the file)."""
    holdout = arms.get("holdout", (0, 0))
    if not holdout[1] and share is None:
        return None
    return {"share": share, **lift(arms.get("treated", (0, 0)), holdout, "holdout")}


def global_report(
    versions: Iterable[tuple[Mapping[str, Counts], bool | None]],
) -> dict[str, Any] | None:
    """The global control group's lift pooled over journey versions (``(arms, has_goal)``,
    ``has_goal`` None when the file is not known); None when no run is in the group."""
    treated = control = (0, 0)
    journeys = 0
    for arms, has_goal in versions:
        ctl = arms.get("control", (0, 0))
        if not ctl[1] or has_goal is False:
            continue
        journeys += 1
        trt = arms.get("treated", (0, 0))
        treated = (treated[0] + trt[0], treated[1] + trt[1])
        control = (control[0] + ctl[0], control[1] + ctl[1])
    if not control[1]:
        return None
    return {"journey_versions": journeys, **lift(treated, control, "control")}
