"""Where ``journeys explain`` gets one user's records: a simulation of an events file, with
tracing on for that user, or Kafka (:mod:`engine.stream.user_records`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.channels.offline import OfflineGateway
from engine.channels.providers.simulated import Event
from engine.core.config import EngineConfig
from engine.core.effects import Revoke, SendRequest
from engine.core.inputs import Input, Receipt
from engine.explain.timeline import Records, explain
from engine.journey.model import Journey
from engine.sim.simulator import Simulator, read_events
from engine.stream.common.settings import Settings
from engine.stream.user_records import changelog_topic, read_user


class _RecordingProvider(OfflineGateway):
    """The simulator's provider, keeping the receipts (and simulated replies) it makes:
    they are inputs too."""

    def __init__(self) -> None:
        super().__init__()
        self.receipts: list[Event] = []

    def send(self, req: SendRequest) -> list[Event]:
        out = super().send(req)
        self.receipts += out
        return out

    def revoke(self, rev: Revoke) -> list[Receipt]:
        out = super().revoke(rev)
        self.receipts += out
        return out


def from_events(
    journeys: Sequence[Journey],
    events: str | Path,
    user_id: str,
    *,
    journey: str | None = None,
    until: int | None = None,
    config: EngineConfig | None = None,
) -> dict[str, Any]:
    """Simulate the user's lines of ``events`` with tracing on for them, up to ``until``
    (epoch ms; default: until no timer is left), with ``config`` (the deployment's
    settings: profile events, global control). Users don't share state, so the other
    users' lines are left out: the user's story is the same."""
    inputs, rejected = read_events(events)
    mine = [i for i in inputs if i.user_id == user_id]
    provider = _RecordingProvider()
    config = replace(config or EngineConfig(), trace_users=frozenset({user_id}))
    result = Simulator(journeys, config, provider).run(mine, until=until)
    receipts: list[Input] = [
        r for r in provider.receipts if r.user_id == user_id and (until is None or r.ts <= until)
    ]
    mine = [i for i in mine if until is None or i.ts <= until]
    notes = [f"{events}:{b.line}: rejected ({b.reason}), not simulated" for b in rejected]
    notes += [f"refused: {r} (a dead letter on Kafka)" for r in result.refused]
    if not mine:
        notes.append(f"no line of {events} is about {user_id}")
    records = Records(
        user_id,
        sorted([*mine, *receipts], key=lambda i: i.ts),  # stable: file lines first
        result.outcomes,
        result.traces,
        result.states.get(user_id),
        journeys,
    )
    source = f"simulation of {events} ({len(mine)} line(s) of this user; receipts simulated)"
    return explain(records, source=source, journey=journey, notes=notes)


async def from_kafka(
    settings: Settings,
    user_id: str,
    *,
    journey: str | None = None,
    journeys: Sequence[Journey] = (),
) -> dict[str, Any]:
    """The user's records on Kafka: their partition of every topic, and their state."""
    found = await read_user(settings, user_id)
    notes = list(found.notes)
    where = "?" if found.partition is None else str(found.partition)
    if not found.inputs and not found.outcomes and not found.traces:
        notes.append(
            f"nothing about {user_id} on partition {where}: the partition Kafka's default "
            "partitioner (murmur2 of the key) gives the user id. Check the user id, the "
            "topics (JOURNEYS_TOPIC_PREFIX) and that producers key records by user_id"
        )
    if not found.state_found:
        notes.append(
            f"no state table changelog {changelog_topic(settings)}: where the user is now is "
            "unknown (JOURNEYS_APP_ID must be the engine worker's)"
        )
    elif found.state is None:
        notes.append("no state for this user in the engine's table (as of its last checkpoint)")
    records = Records(
        user_id,
        sorted(found.inputs, key=lambda i: i.ts),
        sorted(found.outcomes, key=lambda o: o.ts),
        sorted(found.traces, key=lambda t: t.ts),
        found.state,
        journeys,
    )
    source = f"Kafka at {settings.bootstrap}, partition {where} of every topic"
    return explain(records, source=source, journey=journey, notes=notes)
