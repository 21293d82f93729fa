"""One exception hierarchy for the whole engine.

Every error the engine raises on purpose derives from :class:`EngineError`, so a
caller (the CLI, the stream runtime) can catch one type at its boundary.
Library errors (pydantic, yaml, liquid, aiokafka, httpx) are translated where
they enter the engine, with ``raise ... from``, so the original stays visible.
Messages say what to do about the problem, not just what went wrong.

::

    EngineError
     ├── JourneyError                 a journey file or one of its parts is wrong
     │    ├── InvalidJourney          every problem found in one or more files (collected)
     │    ├── ExpressionError         a condition does not parse or is not allowed
     │    └── TemplateError           a Liquid template does not parse or render
     ├── InputError                   an incoming message can't be used (dead-lettered)
 │    └── ProfileLimitError       a profile update would break a profile limit
     ├── ChannelError                 building or sending a message failed
     │    ├── PayloadLimitError       a rendered message breaks an RCS / SMS limit
     │    └── ProviderError           a provider answered with an error
     │         ├── RetryableProviderError   429 / 5xx / timeouts: try again later
     │         └── PermanentProviderError   4xx: don't retry this request
     └── ConfigError                  settings or command-line options are wrong
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class JourneyError(EngineError):
    """A journey definition, or a piece of one, is wrong."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a journey file, printed as ``file:line: node: message``.

    A ``warning`` (printed ``file:line: node: warning: message``) is something that
    probably loses or garbles messages but can be intended: it doesn't stop a journey
    from loading; ``journeys validate --strict`` fails on it.
    """

    file: str
    line: int
    node: str
    message: str
    severity: Severity = "error"

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"

    def __str__(self) -> str:
        tag = "warning: " if self.is_warning else ""
        return f"{self.file}:{self.line}: {self.node}: {tag}{self.message}"


class InvalidJourney(JourneyError):
    """Every problem found in one or more journey files, collected before raising."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class _SourceError(JourneyError):
    def __init__(self, message: str, *, source: str, offset: int | None = None) -> None:
        self.message = message
        self.source = source
        self.offset = offset
        where = f" at column {offset + 1}" if offset is not None else ""
        super().__init__(f"{message}{where} in {source!r}")


class ExpressionError(_SourceError):
    """A condition expression does not parse, or uses something that is not allowed."""


class TemplateError(_SourceError):
    """A Liquid template does not parse, or failed to render."""


class InputError(EngineError):
    """An incoming message can't be used; it goes to the dead-letter topic with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class ProfileLimitError(InputError):
    """A profile update would break a limit (:mod:`engine.core.profile`); ``limit`` names
    it. The update is refused whole; an input carrying it is dead-lettered."""

    def __init__(self, limit: str, detail: str) -> None:
        self.limit = limit
        super().__init__("profile_limit", detail)


class ChannelError(EngineError):
    """Building or sending a message failed."""


class PayloadLimitError(ChannelError):
    """A rendered message breaks a channel limit; ``limit`` names the rule."""

    def __init__(self, limit: str, detail: str) -> None:
        self.limit = limit
        self.detail = detail
        super().__init__(f"{limit}: {detail}")


class ProviderError(ChannelError):
    """A provider answered with an error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RetryableProviderError(ProviderError):
    """429, 5xx or a timeout: the same request may succeed later."""


class PermanentProviderError(ProviderError):
    """A 4xx answer: repeating the request won't help."""


class ConfigError(EngineError):
    """Settings or command-line options are wrong."""


class ProduceError(EngineError):
    """Producing to Kafka failed for good (after retries); the message says how to resume."""
