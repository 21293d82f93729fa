"""The gateway's counters: the ``gateway_stats`` and ``gateway_stopped`` log lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class GatewayStats:
    requests: int = 0  # messages consumed (sends, revokes, dead letters)
    provider_calls: int = 0
    duplicates: int = 0  # sends already sent, or twice in one batch: no provider call
    revokes: int = 0
    revoked: int = 0  # revokes that cancelled a delivery still scheduled
    receipts: int = 0  # produced (replays included)
    dead_letters: int = 0
    unknown_outcome: int = 0  # claimed before a crash, not sent again (provider not idempotent)
    batches: int = 0  # claim batches settled

    def report(self) -> dict[str, Any]:
        return dict(self.__dict__)
