"""The engine's settings: one frozen record, shared by every handler through the ``Step``."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.journey.deployment import GlobalControl

DAY_MS = 86_400_000


@dataclass(frozen=True)
class EngineConfig:
    help_text: str = "Reply STOP to opt out, START to opt back in. Msg&data rates may apply."
    revoke_grace_ms: int = 60_000  # how long to wait for a TTL verdict after revoking
    message_retention_ms: int = 7 * DAY_MS  # taps and reads count this long after a send
    max_hops: int = 100  # nodes entered in one step before a run is stopped (cycle guard)
    max_messages: int = 64  # messages kept per user for receipts and taps
    # Trace records (engine/core/trace.py): off by default; on for these users, and for
    # this share of all users (0..1, chosen by a hash of the user id: no randomness).
    trace_users: frozenset[str] = field(default_factory=frozenset)
    trace_sample: float = 0.0
    # The deployment's global control group (journeys/_settings.yaml), if it has one.
    global_control: GlobalControl | None = None
    # Events that only update the profile (settings.profile_events; engine.core.profile_updates)
    profile_events: frozenset[str] = frozenset({"profile_updated"})
    # Scheduled entries: no occurrence after this instant is decided (epoch ms; None: no
    # end). The simulator sets it to its last input (or --until): a recurring schedule
    # would otherwise keep its virtual clock running forever.
    schedule_horizon: int | None = None
