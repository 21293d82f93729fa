"""The progress line of a long backtest, on standard error.

On a terminal: one line redrawn in place a few times a second, erased at the end. Else
(a log file, CI): a plain line every ``every_s`` seconds. Nothing at all for a run that
ends within ``after_s`` seconds: short runs stay quiet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class ProgressLine:
    def __init__(
        self,
        stream: TextIO,
        total: int,
        *,
        after_s: float = 2.0,
        every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total
        self.tty = _isatty(stream)
        self.after_s = after_s
        self.every_s = every_s if every_s is not None else (0.25 if self.tty else 10.0)
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.parts_done = 0
        self.parts = 0
        self._shown_at: float | None = None
        self._drawn = False

    def add(self, n: int) -> None:
        self.done += n
        self._maybe_show()

    def partition_done(self, parts_done: int, parts: int) -> None:
        self.parts_done, self.parts = parts_done, parts
        self._maybe_show()

    def line(self) -> str:
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = f" ({self.done / self.total:.0%})" if self.total else ""
        parts = f", partitions {self.parts_done}/{self.parts}" if self.parts else ""
        return (
            f"backtest: {self.done:,} of {self.total:,} records{pct}{parts}, "
            f"{rate:,.0f}/s, {elapsed:.0f} s"
        )

    def _maybe_show(self) -> None:
        now = self.clock()
        if now - self.started < self.after_s:
            return
        if self._shown_at is not None and now - self._shown_at < self.every_s:
            return
        self._shown_at = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
            self._drawn = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """Erase the line on a terminal (the summary follows)."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or a fake stream
        return False
