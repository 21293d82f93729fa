"""Structured logs: one JSON object per line on stderr, phone numbers masked.

Our own lines are ``log.info("event_name", extra={"fields": {...}})`` (see :func:`event`);
lines from faust, mode and aiokafka keep their text in ``msg``. Anything that looks like
an E.164 number, in the message or in a field, is masked with
:func:`engine.channels.phone.mask_phone` before it is written.
"""

from __future__ import annotations

import logging
import re
import sys
import time
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
        return orjson.dumps(out, default=str).decode()


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
            "stderr": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": "json"}
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
