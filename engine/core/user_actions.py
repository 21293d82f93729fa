"""What a user did to a message: read it, tapped a suggestion, or replied.

Receipt and inbound handling (:mod:`.fallback`, :mod:`.inbound`) return one of these,
or None; the engine routes it to the ``wait_for`` path it answers (:mod:`.paths`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.core.state import Message

UserActionKind = Literal["read", "click", "reply"]


@dataclass(frozen=True, slots=True)
class UserAction:
    kind: UserActionKind
    message: Message  # the message acted on (a fallback SMS stands for its RCS send)
    value: str | None = None  # the postback tapped, or the reply's text
