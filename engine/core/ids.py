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
    h = blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).hexdigest()
    # Byte 6's high nibble is the version (8); byte 8's two top bits the variant (10):
    # the hex digits 12 and 16. (Was: the same bits set on a bytearray of the digest.)
    return f"{h[:8]}-{h[8:12]}-8{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


# A hex digit -> the digit with its two top bits set to 10 (RFC 9562's variant).
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def bucket(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts: the same user always gets the same bucket."""
    return int.from_bytes(_digest(parts, 8), "big") / 2**64


def wake_token(user_id: str, at: int | None) -> str:
    """The token of the user's wake-up at ``at``: the engine puts it on ``ScheduleWake``,
    the adapter carries it back on the ``Wake``, and the core drops a wake-up whose token
    is not the one of the user's current timer (a stale one). The one place it is made."""
    return id_of_text(f"wake\x1f{user_id}\x1f{at}")  # derive_id("wake", user_id, at)
