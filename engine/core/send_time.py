"""Send-time optimization: when each user reads and taps, and when a ``best_time`` wait ends.

**The history.** Every read, tap and reply a user makes on a message adds one to the
bucket of its local hour (0-23) in ``UserState.engagement``: 24 small integers kept
across journeys, in the user's time zone as quiet hours read it (the ``timezone``
attribute, else the default zone of the message's journey). When the total passes
:data:`DECAY_AT`, every bucket is halved (rounded down): older habits weigh less, no
bucket grows past a few hundred, and no clock is needed. At most 24 numbers of three
digits: the state stays small.

**The wait.** ``wait: {until: best_time, within: 24h, default: "10:00"}`` ends at the
start of the user's most engaged local hour among those that begin within ``within``
(the hour the user is in counts, from now: the wait then ends at once); ties go to the
soonest. A user with fewer than :data:`MIN_ENGAGEMENTS` in their history, or no engaged
hour in the window, waits until ``default`` local time instead (the next time the clock
shows it, but not past ``within``). Quiet hours still apply to the send that follows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from engine.core.context import Step
from engine.core.localtime import next_local_time, zone
from engine.core.state import Instance
from engine.core.user_actions import UserAction
from engine.journey.model import WaitNode

HOURS = 24
DECAY_AT = 200  # when the total passes this, every bucket is halved
MIN_ENGAGEMENTS = 3  # fewer reads, taps and replies than this: the wait uses its default
EVERY_DAY = frozenset(range(7))


def local_hour(ms: int, tz: ZoneInfo) -> int:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz).hour


def _default_zone(step: Step, journey_id: str, version: int) -> str:
    journey = step.catalog.versions.get(journey_id, {}).get(version)
    return journey.settings.default_timezone if journey is not None else "UTC"


def record(step: Step, action: UserAction) -> None:
    """Count a read, tap or reply in the user's engagement histogram, at its local hour."""
    msg = action.message
    tz = zone(step.state.attrs.get("timezone"), _default_zone(step, msg.journey_id, msg.version))
    hist = step.state.engagement
    if len(hist) != HOURS:
        hist[:] = [0] * HOURS
    hist[local_hour(step.now, tz)] += 1
    if sum(hist) > DECAY_AT:
        hist[:] = [n // 2 for n in hist]


def best_time_end(step: Step, inst: Instance, node: WaitNode) -> int:
    """When a ``best_time`` wait entered now ends (see the module's docstring)."""
    now, last = step.now, step.now + node.within_ms
    tz = zone(step.state.attrs.get("timezone"), _default_zone(step, inst.journey_id, inst.version))
    hist = step.state.engagement
    if len(hist) == HOURS and sum(hist) >= MIN_ENGAGEMENTS:
        current = local_hour(now, tz)
        starts = (
            (now if hour == current else next_local_time(now, hour * 60, EVERY_DAY, tz), hour)
            for hour in range(HOURS)
            if hist[hour] > 0
        )
        best = min(((-hist[h], at) for at, h in starts if at <= last), default=None)
        if best is not None:
            return best[1]
    return min(next_local_time(now, node.default_minutes, EVERY_DAY, tz), last)
