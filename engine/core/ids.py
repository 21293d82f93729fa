"""Deterministic ids and buckets: every id is a hash of stable inputs.

Replaying the same inputs gives the same ids, which is what lets the gateway dedupe
sends and consumers dedupe outcomes across crashes and replays.
"""

from __future__ import annotations

from hashlib import blake2b


def _digest(parts: tuple[object, ...], size: int) -> bytes:
    return blake2b("\x1f".join(map(str, parts)).encode(), digest_size=size).digest()


def derive_id(*parts: object) -> str:
    """A 20-hex-digit id (80 bits): short in logs, no collisions at our volumes."""
    return blake2b("\x1f".join(map(str, parts)).encode(), digest_size=10).hexdigest()


def id_of_text(text: str) -> str:
    """:func:`derive_id` of parts already joined by ``"\x1f"`` (each part as ``str()``
    writes it): hot paths build the text with one f-string, which is about 3x as fast as
    ``derive_id(*parts)`` and gives the same id."""
    return blake2b(text.encode(), digest_size=10).hexdigest()


def derive_uuid(*parts: object) -> str:
    """A UUID-shaped id (version 8, RFC 9562 'custom'), as RBM wants message ids to be UUIDs."""
    b = bytearray(_digest(parts, 16))
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def bucket(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts: the same user always gets the same bucket."""
    return int.from_bytes(_digest(parts, 8), "big") / 2**64


def wake_token(user_id: str, at: int | None) -> str:
    """The token of the user's wake-up at ``at``: the engine puts it on ``ScheduleWake``,
    the adapter carries it back on the ``Wake``, and the core drops a wake-up whose token
    is not the one of the user's current timer (a stale one). The one place it is made."""
    return id_of_text(f"wake\x1f{user_id}\x1f{at}")  # derive_id("wake", user_id, at)
