"""The gateway's counters: the ``gateway_stats`` and ``gateway_stopped`` log lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GatewayStats:
    requests: int = 0  # messages consumed (sends, revokes, dead letters)
    sends: int = 0  # sends settled the first time (sent, refused, not capable, failed...)
    provider_calls: int = 0  # provider send calls made for them (retries included)
    retries_after_restart: int = 0  # claimed before a crash, sent again with the same id
    lookups: int = 0  # claimed before a crash, settled by a status lookup
    unknown_outcome: int = 0  # "unknown" receipts: the fate of a send can't be known
    accepted: int = 0  # "accepted" receipts: a send held back by a rate limit went out
    duplicates: int = 0  # requests for an id already in the table: no provider call
    revokes: int = 0
    revoked: int = 0  # revokes that cancelled a send or a delivery still to come
    receipts: int = 0  # receipts and inbound records produced (replays included)
    dead_letters: int = 0

    def report(self) -> dict[str, Any]:
        return dict(self.__dict__)
