"""The engine's per-input step on Kafka: decode, call the core, carry out the effects.

No journey logic lives here, and nothing faust-specific either (the faust app in
:mod:`engine.stream.worker.service` feeds messages in and gives it a producer and the table).
What it does for one message, exactly as the simulator does for one queued input:

* decode by topic (user event / receipt / inbound / wake); anything unusable goes to
  ``journey.dead-letters`` with its reason and the original bytes;
* the core decides everything else: a stale wake-up (its token is not the user's current
  one) changes nothing, inbound text that is a compliance keyword is classified there;
* ``now`` = the input's ``ts`` (for a wake-up, the wake time); the core clamps it to the
  user's clock;
* effects: outcomes -> ``journey.outcomes``, sends and revokes ->
  ``journey.send-requests``, the user's next wake-up -> the timer index (the ticker
  produces it to ``journey.timers`` when due); every record goes to the input's
  partition number, so a user stays on one partition across all topics;
* the new state goes to the checkpoint's write-back buffer (see
  :mod:`engine.stream.common.checkpoint` for when it becomes durable).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core import wire
from engine.core.effects import Outcome, Revoke, ScheduleWake, SendRequest
from engine.core.engine import Engine
from engine.core.inputs import Input, Wake
from engine.core.timers import is_stale
from engine.core.trace import Trace
from engine.core.wire import decode_line, inbound, loads, receipt, wake
from engine.errors import InputError
from engine.stream.common.checkpoint import Checkpoint, Send
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.common.timers import TimerIndex

log = logging.getLogger("engine.stream.runtime")

GetState = Callable[[bytes], bytes | None]

DECODERS: dict[str, Callable[[dict[str, Any]], Input]] = {
    # The user-events topic also takes the receipt and inbound lines of a simulation file
    # (``"type": ...``): `journeys produce` puts a file on one topic so that each user's
    # lines keep their order (Kafka orders within a partition, not across topics).
    "event": decode_line,
    "receipt": receipt,
    "inbound": inbound,
    "wake": wake,
}


@dataclass
class Stats:
    inputs: int = 0
    dead_letters: int = 0
    stale_wakes: int = 0
    wakes: int = 0
    outcomes: int = 0
    sends: int = 0
    revokes: int = 0
    unchanged: int = 0
    # wake-up lateness (processing time - wake time), ms, since the last report
    lateness: list[int] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def report(self) -> dict[str, Any]:
        lat = sorted(self.lateness)
        self.lateness = []

        def pct(q: float) -> int | None:
            return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else None

        secs = max(time.monotonic() - self.started, 1e-9)
        return {
            "inputs": self.inputs,
            "inputs_per_s": round(self.inputs / secs, 1),
            "dead_letters": self.dead_letters,
            "wakes": self.wakes,
            "stale_wakes": self.stale_wakes,
            "outcomes": self.outcomes,
            "sends": self.sends,
            "revokes": self.revokes,
            "wake_lateness_ms": {
                "n": len(lat),
                "p50": pct(0.5),
                "p99": pct(0.99),
                "max": lat[-1] if lat else None,
            },
        }


class EngineRuntime:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        checkpoint: Checkpoint,
        timers: TimerIndex,
        send: Send,
        get_state: GetState,
        dead_letters: DeadLetters,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.topics = settings.topics
        self.checkpoint = checkpoint
        self.timers = timers
        self.send = send
        self.get_state = get_state
        self.dead_letters = dead_letters
        self.stats = Stats()
        self.last_input: dict[int, float] = {}  # partition -> monotonic time of its last input
        t = settings.topics
        self.kind_of = {
            t.user_events: "event",
            t.channel_receipts: "receipt",
            t.inbound: "inbound",
            t.timers: "wake",
        }

    # ------------------------------------------------------------------ one input

    async def handle(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Process one input message. Never raises for bad input or a core error
        (both are dead-lettered); produce failures surface at the checkpoint."""
        self.stats.inputs += 1
        self.last_input[partition] = time.monotonic()
        try:
            inp = self._decode(topic, key, value)
        except InputError as exc:
            await self._dead_letter(
                exc.reason, exc.detail, topic, partition, offset, key, value, timestamp_ms
            )
            return
        assert key is not None and value is not None  # checked by _decode
        await self._step(inp, topic, partition, offset, key, value, timestamp_ms)

    def _decode(self, topic: str, key: bytes | None, value: bytes | None) -> Input:
        kind = self.kind_of.get(topic)
        if kind is None:
            raise InputError("unknown_topic", f"not an input topic: {topic}")
        if value is None:
            raise InputError("missing_value", "the message has no value (a tombstone?)")
        inp = DECODERS[kind](loads(value))
        if key is None:
            raise InputError(
                "missing_key", f"inputs are keyed by user_id; this one has no key ({inp.user_id!r})"
            )
        if key != inp.user_id.encode():
            raise InputError(
                "key_mismatch",
                f"the key {key[:100]!r} is not the user_id {inp.user_id[:100]!r}: the message "
                "may sit on another user's partition",
            )
        return inp

    async def _step(
        self,
        inp: Input,
        topic: str,
        partition: int,
        offset: int,
        key: bytes,
        value: bytes,
        timestamp_ms: int | None,
    ) -> None:
        user = inp.user_id
        ukey = user.encode()
        buffered = self.checkpoint.get_dirty(ukey)
        raw = buffered[1] if buffered is not None else self.get_state(ukey)
        if raw is not None:
            state = wire.state_from_record(raw)[1]
        else:
            state = self.engine.new_state(user)
            # A user without a stored state is written only if the step changed the state.
            raw = wire.state_record(partition, state)
        if isinstance(inp, Wake):
            # The core drops stale wake-ups itself; asked here only to count them.
            if is_stale(state, inp):
                self.stats.stale_wakes += 1
            else:
                self.stats.wakes += 1
                self.stats.lateness.append(int(time.time() * 1000) - inp.ts)
        try:
            _, effects = self.engine.advance(state, inp, inp.ts)
        except Exception as exc:  # a bug in the core or a journey: keep the old state
            await self._dead_letter(
                "processing_error",
                f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}",
                topic,
                partition,
                offset,
                key,
                value,
                timestamp_ms,
            )
            return
        for eff in effects:
            await self._effect(eff, partition)
        new_raw = wire.state_record(partition, state)
        if new_raw != raw:
            self.checkpoint.put_state(ukey, partition, new_raw)
        else:
            self.stats.unchanged += 1

    async def _effect(self, eff: Any, partition: int) -> None:
        t = self.topics
        match eff:
            case Outcome():
                self.stats.outcomes += 1
                fut = await self.send(
                    t.outcomes, eff.user_id.encode(), wire.outcome_value(eff), partition
                )
                self.checkpoint.add_effect(f"outcome {eff.outcome_id}", fut)
            case SendRequest():
                self.stats.sends += 1
                fut = await self.send(
                    t.send_requests, eff.user_id.encode(), wire.send_request_value(eff), partition
                )
                self.checkpoint.add_effect(f"send {eff.message_id}", fut)
                event(
                    log,
                    "send_requested",
                    logging.DEBUG,
                    message_id=eff.message_id,
                    user_id=eff.user_id,
                    channel=eff.channel,
                    to=eff.to,
                    node=eff.node_id,
                )
            case Revoke():
                self.stats.revokes += 1
                fut = await self.send(
                    t.send_requests, eff.user_id.encode(), wire.revoke_value(eff), partition
                )
                self.checkpoint.add_effect(f"revoke {eff.message_id}", fut)
            case ScheduleWake():
                self.timers.schedule(eff.user_id, partition, eff.at, eff.token)
            case Trace():  # traced users only (JOURNEYS_TRACE_USERS / _SAMPLE)
                fut = await self.send(
                    t.traces, eff.user_id.encode(), wire.trace_value(eff), partition
                )
                self.checkpoint.add_effect(f"trace {eff.trace_id}", fut)

    async def _dead_letter(
        self,
        reason: str,
        detail: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None,
    ) -> None:
        self.stats.dead_letters += 1
        await self.dead_letters.produce(
            reason, detail, topic, partition, offset, key, value, timestamp_ms
        )
