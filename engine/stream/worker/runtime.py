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
from typing import Any, NamedTuple

from engine.core import wire
from engine.core.effects import Erase, Outcome, Revoke, ScheduleWake, SendRequest, WebhookRequest
from engine.core.engine import Engine
from engine.core.inputs import Forget, Input, Wake
from engine.core.state import UserState
from engine.core.timers import is_stale
from engine.core.trace import Trace
from engine.core.wire import decode_line, inbound, loads, receipt
from engine.errors import InputError
from engine.stream.common.checkpoint import Checkpoint, Send
from engine.stream.common.dead_letters import DeadLetters
from engine.stream.common.logs import event
from engine.stream.common.metrics import Metrics
from engine.stream.common.outbox import Outbox
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
    "wake": wire.timer_record,  # wake-ups and scheduled-entry ticks (engine.core.audience)
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


#: The largest record the worker produces (an effect or a user state). The topics keep the
#: broker's default limit (1 MiB); a bigger record would fail at the checkpoint, stop the
#: worker, and fail again after every restart: it is refused here instead (dead letter).
MAX_RECORD_BYTES = 900 * 1024


def _check_size(what: str, value: bytes, reason: str = "effect_too_large") -> None:
    if len(value) > MAX_RECORD_BYTES:
        raise InputError(
            reason,
            f"{what}: {len(value)} bytes; the worker writes records of up to {MAX_RECORD_BYTES}",
        )


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Record(NamedTuple):
    """An effect, encoded: where it goes, what it was, its bytes."""

    topic: str
    effect: Outcome | SendRequest | Revoke | Trace | Erase | WebhookRequest
    value: bytes

    @property
    def label(self) -> str:
        """What the record is, for an error message (made only when one is needed)."""
        match self.effect:
            case Outcome():
                return f"outcome {self.effect.outcome_id}"
            case SendRequest():
                return f"send {self.effect.message_id}"
            case Revoke():
                return f"revoke {self.effect.message_id}"
            case Erase():
                return f"forget {self.effect.user_id}"
            case Trace():
                return f"trace {self.effect.trace_id}"
            case WebhookRequest():
                return f"webhook {self.effect.action_id}"
        return "effect"  # pragma: no cover

    def __str__(self) -> str:
        return self.label


@dataclass
class Prepared:
    """One input's result, encoded and checked, not yet produced."""

    user_key: bytes
    records: list[Record] = field(default_factory=list)
    wakes: list[ScheduleWake] = field(default_factory=list)
    state: bytes | None = None  # the new table value; None: unchanged
    decoded: UserState | None = None  # ``state``, decoded
    erase: bool = False  # the user was forgotten: a tombstone instead of a state


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
        clock: Callable[[], int] = _wall_clock_ms,
        outbox: Outbox | None = None,
    ) -> None:
        """``outbox``: effects wait there and go out in record batches when the input
        batch ends (the service's way); without it, each is produced at once (tools)."""
        self.outbox = outbox
        # The user states decoded during this input batch: user key -> (the record in
        # the checkpoint's buffer, its decoded state). Trusted only while that very
        # record is still the buffered one; dropped at every flush (batch end, commit).
        self.decoded: dict[bytes, tuple[bytes, UserState]] = {}
        checkpoint.flushers.append(self._batch_done)
        self.clock = clock  # wall clock, epoch ms: the timestamp window and wake lateness
        self.engine = engine
        self.settings = settings
        self.topics = settings.topics
        self.checkpoint = checkpoint
        self.timers = timers
        self.send = send
        self.get_state = get_state
        self.dead_letters = dead_letters
        self.stats = Stats()
        self.metrics: Metrics | None = None  # Prometheus (set by the service; off in tools)
        self.outcome_counters: dict[str, Any] = {}  # outcome type -> its metric child
        self.last_input: dict[int, float] = {}  # partition -> monotonic time of its last input
        t = settings.topics
        self.kind_of = {
            t.user_events: "event",
            t.channel_receipts: "receipt",
            t.inbound: "inbound",
            t.timers: "wake",
        }

    async def _batch_done(self) -> None:
        self.decoded.clear()

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
        """Process one input message. Never raises for anything the message itself does:
        bad input, a core error, an effect or a state that can't be written -- all are
        dead-lettered with their reason and the user's state stays as it was. What can
        still raise is producing (the broker), which the input feed retries once."""
        self.stats.inputs += 1
        self.last_input[partition] = time.monotonic()
        try:
            inp = self._decode(topic, key, value)
            step = self._prepare(inp, partition)
        except InputError as exc:
            await self._dead_letter(
                exc.reason, exc.detail, topic, partition, offset, key, value, timestamp_ms
            )
            return
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
        await self._carry_out(step, partition)

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
        # The window is the adapter's: the core never reads the clock.
        self.settings.ts_window(self.clock()).check(inp.ts)
        return inp

    def _prepare(self, inp: Input, partition: int) -> Prepared:
        """Everything about one input that can fail because of the input, done before
        anything is produced: read the state, run the core, encode every effect and the new
        state, check their sizes. Raises (InputError or anything else) to dead-letter."""
        user = inp.user_id
        ukey = user.encode()
        buffered = self.checkpoint.get_dirty(ukey)
        raw = buffered[1] if buffered is not None else self.get_state(ukey)
        # Taken out while the core works on it: if the step fails, the state object may
        # be half-changed; the next input decodes the buffered record again.
        cached = self.decoded.pop(ukey, None)
        if raw is not None and cached is not None and cached[0] is raw:
            state = cached[1]  # this batch's earlier input of the user left it so
        elif raw is not None:
            state = wire.state_from_record(raw)[1]
        else:
            state = self.engine.new_state(user)
            # A user without a stored state is written only if the step changed the state.
            raw = wire.state_record(partition, state)
        wake_late: int | None = None
        stale = isinstance(inp, Wake) and is_stale(state, inp)
        if isinstance(inp, Wake) and not stale:
            wake_late = self.clock() - inp.ts
        _, effects = self.engine.advance(state, inp, inp.ts)
        step = Prepared(ukey)
        for eff in effects:
            self._encode(eff, step)
        new_raw = wire.state_record(partition, state)
        _check_size("the user's new state", new_raw, "state_too_large")
        if new_raw != raw:
            step.state = new_raw
            step.decoded = state
        # Counted once the input is sure to go through.
        if isinstance(inp, Wake):
            if stale:
                self.stats.stale_wakes += 1
            else:
                self.stats.wakes += 1
                self.stats.lateness.append(wake_late or 0)
                if self.metrics is not None:
                    self.metrics.wake_lateness.observe((wake_late or 0) / 1000)
        return step

    def _encode(self, eff: Any, step: Prepared) -> None:
        t = self.topics
        match eff:
            case Outcome():
                rec = Record(t.outcomes, eff, wire.outcome_value(eff))
            case SendRequest():
                rec = Record(t.send_requests, eff, wire.send_request_value(eff))
            case Revoke():
                rec = Record(t.send_requests, eff, wire.revoke_value(eff))
            case Erase():
                # The state goes (a tombstone below); the gateway drops its records too.
                step.erase = True
                forget = wire.forget_wire(Forget(eff.user_id, self.clock()))
                rec = Record(t.send_requests, eff, wire.dumps(forget))
            case ScheduleWake():
                if eff.at is not None:
                    wire.wake_value(eff.user_id, eff.at, eff.token)  # writable when it is due
                step.wakes.append(eff)
                return
            case WebhookRequest():  # the gateway makes the call (engine/core/webhook.py)
                value = wire.webhook_request_value(eff)
                rec = Record(t.send_requests, eff, value)
            case Trace():  # traced users only (JOURNEYS_TRACE_USERS / _SAMPLE)
                rec = Record(t.traces, eff, wire.trace_value(eff))
            case _:
                return
        if len(rec.value) > MAX_RECORD_BYTES:
            _check_size(rec.label, rec.value)
        step.records.append(rec)

    async def _carry_out(self, step: Prepared, partition: int) -> None:
        stats, metrics, outbox = self.stats, self.metrics, self.outbox
        debug = log.isEnabledFor(logging.DEBUG)
        for rec in step.records:
            topic, eff, value = rec
            if outbox is not None:
                outbox.put(topic, partition, step.user_key, value, rec)  # labelled when needed
            else:
                fut = await self.send(topic, step.user_key, value, partition)
                self.checkpoint.add_effect(rec.label, fut)
            if isinstance(eff, Outcome):
                stats.outcomes += 1
                if metrics is not None:
                    counter = self.outcome_counters.get(eff.type)
                    if counter is None:
                        counter = metrics.outcomes.labels(eff.type)
                        self.outcome_counters[eff.type] = counter
                    counter.inc()
            elif isinstance(eff, SendRequest):
                stats.sends += 1
                if debug:
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
            elif isinstance(eff, Revoke):
                stats.revokes += 1
        for wake_eff in step.wakes:
            self.timers.schedule(wake_eff.user_id, partition, wake_eff.at, wake_eff.token)
        if step.erase:
            self.checkpoint.put_state(step.user_key, partition, None)  # compacted away
            event(log, "user_forgotten", user_id=step.user_key.decode(errors="replace"))
        elif step.state is not None:
            self.checkpoint.put_state(step.user_key, partition, step.state)
            if step.decoded is not None:
                self.decoded[step.user_key] = (step.state, step.decoded)
        else:
            stats.unchanged += 1

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
