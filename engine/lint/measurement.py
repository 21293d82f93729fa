"""Rules for measuring a journey: its holdout, and its ``best_time`` waits.

* ``holdout``: more than 0% and at most :data:`HOLDOUT_MAX` (a problem otherwise: a
  holdout of 0% measures nothing, one above half the users mostly stops the journey);
  a warning above :data:`HOLDOUT_WARN` (each held-out user is a message not sent, and 5 to
  10% is usually enough to read the lift), and a warning when the journey has no goal
  (nothing to compare the two groups by).
* ``until: best_time``: ``within`` at least 1h (a problem: the wait could only end at
  once or at the window's end); a warning above 24h (every local hour comes round within
  24h, so a longer window never ends the wait later).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.journey.loader import Loc
from engine.journey.model import Journey, WaitNode

Report = Callable[[Loc, str], None]

HOLDOUT_MAX = 0.5
HOLDOUT_WARN = 0.2
HOUR_MS = 3_600_000
BEST_TIME_MIN_WITHIN_MS = HOUR_MS
BEST_TIME_USEFUL_WITHIN_MS = 24 * HOUR_MS


def holdout_rules(journey: Journey, add: Report, warn: Report) -> None:
    if journey.holdout is None:
        return
    share, written = journey.holdout_share, journey.holdout
    if share <= 0:
        add(("holdout",), f"holdout {written} holds nobody out: give a share above 0% "
                          "(e.g. 10%), or remove holdout")
    elif share > HOLDOUT_MAX:
        add(("holdout",), f"holdout {written} is more than {HOLDOUT_MAX:.0%}: most users "
                          f"who enter would get nothing; give at most {HOLDOUT_MAX:.0%} "
                          "(5 to 10% is usually enough to measure the lift)")
    elif share > HOLDOUT_WARN:
        warn(("holdout",), f"holdout {written} sends nothing to more than "
                           f"{HOLDOUT_WARN:.0%} of the users who enter: 5 to 10% is usually "
                           "enough to measure the lift")
    if journey.goal is None:
        warn(("holdout",), "holdout without a goal: the lift is measured on the goal's "
                           "conversions; add a goal (e.g. goal: {event: purchase, within: 7d})")


def best_time_rules(journey: Journey, add: Report, warn: Report) -> None:
    for nid, node in journey.nodes.items():
        if not (isinstance(node, WaitNode) and node.best_time):
            continue
        loc: Loc = ("nodes", nid, "within" if node.within is not None else "until")
        within = node.within if node.within is not None else "24h (the default)"
        if node.within_ms < BEST_TIME_MIN_WITHIN_MS:
            add(loc, f"best_time within {within}: give at least 1h, so that there is an "
                     "hour to choose")
        elif node.within_ms > BEST_TIME_USEFUL_WITHIN_MS:
            warn(loc, f"best_time within {within}: every local hour comes round within 24h, "
                      "so the wait never ends later than 24h; write within: 24h")
