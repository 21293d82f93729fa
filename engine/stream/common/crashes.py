"""Agent crashes that repeat stop the process.

faust restarts a crashed agent after a few seconds, in the same process: a crash that
comes back (the same poison record, a broken dependency) would loop forever while the
process looks healthy to its supervisor. The input feed already dead-letters a record
that fails twice (:class:`~engine.stream.common.feed.InputFeed`), so a crash that repeats
means something other than one record is wrong: the process exits with
:data:`EXIT_CRASH_LOOP` (70, EX_SOFTWARE), which a supervisor sees and reports, rather
than the fail-stop code 75 that means "restart me, all is well".
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from engine.stream.common.checkpoint import fail_stop
from engine.stream.common.logs import event

log = logging.getLogger("engine.stream.crashes")

EXIT_CRASH_LOOP = 70
CRASH_WINDOW_S = 300.0


class CrashGuard:
    """Counts crashes of an agent; the ``max_crashes``-th within ``window_s`` stops the
    process (``on_loop``, :func:`~engine.stream.common.checkpoint.fail_stop`)."""

    def __init__(
        self,
        agent: str,
        max_crashes: int,
        window_s: float = CRASH_WINDOW_S,
        on_loop: Callable[..., None] = fail_stop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.agent = agent
        self.max_crashes = max_crashes
        self.window_s = window_s
        self.on_loop = on_loop
        self.clock = clock
        self.crashes: deque[float] = deque()

    def crashed(self, exc: BaseException) -> None:
        now = self.clock()
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - self.window_s:
            self.crashes.popleft()
        fields: dict[str, Any] = {
            "agent": self.agent,
            "error": repr(exc)[:500],
            "crashes": len(self.crashes),
            "window_s": self.window_s,
        }
        event(
            log,
            "agent_crashed",
            logging.ERROR,
            **fields,
            traceback="".join(traceback.format_exception(exc, limit=12))[-4000:],
        )
        if len(self.crashes) >= self.max_crashes:
            self.on_loop("agent_crash_loop", code=EXIT_CRASH_LOOP, **fields)
