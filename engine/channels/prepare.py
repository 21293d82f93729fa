"""Turn a send request into what a provider gets, or into the reason it can't be sent.

Shared by every gateway (the simulated one inside ``journeys simulate`` and the Kafka
gateway): the same rendered content gives the same payload and the same refusals.
A refusal is a ``failed`` receipt whose reason names the broken limit
(``rcs.card_title_length``, ``sms.segments``, ``invalid_phone``...), never a provider error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.channels.fallback_text import derive_sms
from engine.channels.phone import normalize_phone
from engine.channels.rcs import build_and_validate
from engine.channels.sms import SMS_MAX_SEGMENTS, segment
from engine.core.effects import SendRequest
from engine.errors import InputError, PayloadLimitError
from engine.journey.render import RenderedMessage


@dataclass(frozen=True, slots=True)
class Prepared:
    """A message ready for a provider: ``payload`` is the RBM AgentMessage (RCS) or
    ``{"body": text}`` (SMS); ``to`` is the normalized E.164 number."""

    message_id: str
    channel: str
    to: str
    payload: dict[str, Any]
    segments: int = 0


@dataclass(frozen=True, slots=True)
class Refused:
    message_id: str
    reason: str
    detail: str


def prepare(
    req: SendRequest, originals: Mapping[str, Mapping[str, Any]] | None = None
) -> Prepared | Refused:
    """``originals`` maps message ids to the content of earlier RCS sends, for fallback
    SMS the journey gave no text for (``{"derive_from": id}``)."""
    phone = normalize_phone(req.to)
    if not phone.ok or phone.e164 is None:
        return Refused(
            req.message_id, phone.reason or "invalid_phone", "not a dialable E.164 number"
        )
    try:
        if req.channel == "rcs":
            msg = RenderedMessage.from_dict(req.content)
            payload = build_and_validate(msg, req.message_id, req.ttl_ms)
            return Prepared(req.message_id, "rcs", phone.e164, payload)
        text = req.content.get("text")
        if not text:
            source = (originals or {}).get(str(req.content.get("derive_from")))
            if source is None:
                return Refused(
                    req.message_id, "no_content", "no SMS text and nothing to derive it from"
                )
            text = derive_sms(RenderedMessage.from_dict(source))
        seg = segment(text)
        if seg.segments > SMS_MAX_SEGMENTS:
            return Refused(
                req.message_id,
                "sms.segments",
                f"{seg.segments} segments; the cap is {SMS_MAX_SEGMENTS}: shorten the text",
            )
        return Prepared(req.message_id, "sms", phone.e164, {"body": text}, seg.segments)
    except PayloadLimitError as exc:
        return Refused(req.message_id, exc.limit, exc.detail)
    except InputError as exc:
        return Refused(req.message_id, exc.reason, exc.detail)
