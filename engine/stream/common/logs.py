"""Structured logs: one JSON object per line on stderr, phone numbers masked, repeated
warnings collapsed.

Our own lines are ``log.info("event_name", extra={"fields": {...}})`` (see :func:`event`);
lines from faust, mode and aiokafka keep their text in ``msg``. Anything that looks like
an E.164 number, in the message or in a field, is masked with
:func:`engine.channels.phone.mask_phone` before it is written.

Repeats (:class:`RateLimitedHandler`): during a broker outage aiokafka and faust repeat
the same warnings thousands of times a second (a 95 s outage once wrote 85 MB). A warning
or error is written at most ``burst`` times per ``window_s`` for the same logger, level
and message template; the rest are counted, and the count is written as ``"suppressed":
N`` on the next line of that kind, or as a ``log_repeated`` line once its window is over.
Lines below WARNING are never held back.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from engine.channels.phone import mask_phone

_PHONE = re.compile(r"\+[1-9]\d{6,14}\b")
# Fields that hold a phone number whatever it looks like (they are masked entirely).
_PHONE_FIELDS = frozenset({"phone", "to", "msisdn"})


def mask(text: str) -> str:
    """Mask every E.164-looking number in ``text``."""
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), text)


def _clean(value: Any, key: str | None = None) -> Any:
    if isinstance(value, str):
        if key in _PHONE_FIELDS:
            return mask_phone(value)
        return mask(value)
    if isinstance(value, dict):
        return {k: _clean(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask(str(value))


class JsonFormatter(logging.Formatter):
    """``{"ts": ..., "level": ..., "logger": ..., "event" | "msg": ..., **fields}``."""

    def __init__(self, service: str = "journeys") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        t = record.created
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string must not kill the logger
            message = str(record.msg)
        if isinstance(fields, dict):
            out["event"] = message
            for k, v in fields.items():
                out.setdefault(k, _clean(v, k))
        else:
            out["msg"] = mask(message)
        if record.exc_info:
            out["exc"] = mask(self.formatException(record.exc_info))
        suppressed = getattr(record, "suppressed", None)
        if suppressed:
            out["suppressed"] = suppressed  # lines like this one left out before it
        return orjson.dumps(out, default=str).decode()


_DIGITS = re.compile(r"\d+")


def repeat_key(record: logging.LogRecord) -> tuple[str, int, str]:
    """What makes two lines "the same": logger, level and the message template (a message
    formatted before logging has its numbers blurred, so "node 1"/"node 2" match)."""
    msg = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
    if not record.args:
        msg = _DIGITS.sub("#", msg[:300])
    return (record.name, record.levelno, msg)


@dataclass
class _Repeats:
    started: float
    written: int = 0
    suppressed: int = 0


class RateLimitedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler that collapses repeated warnings (see the module doc)."""

    MAX_KEYS = 2000

    def __init__(
        self,
        stream: Any = None,
        burst: int = 5,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.burst = burst
        self.window_s = window_s
        self.clock = clock
        self.repeats: dict[tuple[str, int, str], _Repeats] = {}
        self._next_sweep = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        now = self.clock()
        if now >= self._next_sweep:
            self._sweep(now)  # any line, so counts are told soon after a burst ends
        if record.levelno < logging.WARNING:
            super().emit(record)
            return
        key = repeat_key(record)
        rep = self.repeats.get(key)
        if rep is None or now - rep.started >= self.window_s:
            carried = rep.suppressed if rep is not None else 0
            if len(self.repeats) >= self.MAX_KEYS:
                self.repeats.clear()  # a storm of distinct lines: start counting afresh
            rep = self.repeats[key] = _Repeats(started=now)
            if carried:
                record.suppressed = carried
        if rep.written >= self.burst:
            rep.suppressed += 1
            return
        rep.written += 1
        super().emit(record)

    def _sweep(self, now: float, everything: bool = False) -> None:
        """Write the count of every window that is over with lines still untold."""
        self._next_sweep = now + self.window_s
        for key, rep in list(self.repeats.items()):
            if now - rep.started < self.window_s and not everything:
                continue
            del self.repeats[key]
            if rep.suppressed:
                name, level, msg = key
                line = logging.LogRecord(name, level, __file__, 0, "log_repeated", None, None)
                fields = {"message": msg, "suppressed": rep.suppressed, "window_s": self.window_s}
                line.fields = fields
                super().emit(line)

    def flush_repeats(self) -> None:
        """Write every pending count now (at shutdown)."""
        self._sweep(self.clock(), everything=True)


def flush_repeats() -> None:
    """Write the pending counts of every rate-limited handler (at shutdown)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RateLimitedHandler):
            handler.flush_repeats()


def logging_config(level: str, service: str) -> dict[str, Any]:
    """A dictConfig for faust/mode's worker (``logging_config=``): everything to stderr as
    JSON lines. aiokafka and faust are noisy at INFO, so they start at WARNING unless
    DEBUG is asked for."""
    lib_level = "DEBUG" if level == "DEBUG" else "WARNING"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {
            "stderr": {"()": RateLimitedHandler, "stream": sys.stderr, "formatter": "json"}
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "aiokafka": {"level": lib_level},
            "faust": {"level": lib_level},
            "mode": {"level": lib_level},
            "engine": {"level": level},
        },
    }


def setup(level: str, service: str) -> None:
    """Configure logging when running outside a faust worker (produce, outcomes)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, service))


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log a structured event: ``event(log, "worker_ready", partitions=[0, 1])``."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={"fields": fields})
