"""Users reached: a send counts once, by whichever channel delivered it first.

A *send* is a ``message_sent`` without ``attributes.fallback_of`` (one user at one node,
one time); the SMS sent as its fallback (``message_sent`` with ``fallback_of`` = the RCS
``message_id``; the engine derives that SMS id from the RCS one,
``derive_uuid("sms", rcs_id)``) is the same send. The first ``message_delivered`` of
either message makes the send *reached*; a later one (an RCS receipt that arrives after its
fallback SMS was delivered) changes nothing. So an RCS attempt that failed followed by a
delivered fallback SMS is one user reached, not a failure and a success.

Pure and incremental, in the order Kafka keeps per user (a send before its receipts).
Memory: only sends not yet reached (with the ids of their fallback SMS), the ``limit``
most recent ones; a delivery of a send forgotten by then does not count (it can only
under-count, never count a send twice or go over 100%).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any


def fallback_of(o: Mapping[str, Any]) -> str | None:
    attrs = o.get("attributes")
    found = attrs.get("fallback_of") if isinstance(attrs, dict) else None
    return found if isinstance(found, str) and found else None


class Reach:
    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._pending: OrderedDict[str, list[str]] = OrderedDict()  # send -> its fallbacks
        self._fallback: dict[str, str] = {}  # fallback SMS message id -> its send

    def sent(self, o: Mapping[str, Any]) -> None:
        """A ``message_sent``: a new send, or the fallback SMS of a pending one."""
        mid = o.get("message_id")
        if not isinstance(mid, str) or not mid:
            return
        of = fallback_of(o)
        if of is None:
            self._pending.setdefault(mid, [])
            self._pending.move_to_end(mid)
            self._forget_oldest()
        elif of in self._pending:
            self._pending[of].append(mid)
            self._fallback[mid] = of

    def delivered(self, o: Mapping[str, Any]) -> bool:
        """A ``message_delivered``: True when it is the first delivery of its send."""
        mid = o.get("message_id")
        if not isinstance(mid, str):
            return False
        send = self._fallback.get(mid, mid)
        fallbacks = self._pending.pop(send, None)
        if fallbacks is None:
            return False
        for f in fallbacks:
            self._fallback.pop(f, None)
        return True

    def _forget_oldest(self) -> None:
        while self.limit is not None and len(self._pending) > self.limit:
            _, fallbacks = self._pending.popitem(last=False)
            for f in fallbacks:
                self._fallback.pop(f, None)

    def to_state(self) -> list[list[Any]]:
        return [[send, list(fallbacks)] for send, fallbacks in self._pending.items()]

    @classmethod
    def from_state(cls, rows: Any, limit: int | None = None) -> Reach:
        r = cls(limit)
        for send, fallbacks in rows or ():
            r._pending[send] = list(fallbacks)
            r._fallback.update(dict.fromkeys(fallbacks, send))
        r._forget_oldest()
        return r
