"""Run journeys over a recorded event log on a virtual clock.

The clock jumps from input to input and from timer to timer; after the last input it
runs on until no timer is pending (or until ``until``). Scheduled entries
(``entry.schedule``) are timers of the core too; their occurrences run up to the last
input (or ``until``), never past it. Everything is ordered by
``(time, priority, sequence)``, so the same log gives byte-identical outcomes.
At equal times, what the engine itself caused (receipts, wake-ups) goes before the
next line of the file: causes before the things that follow them.

The loop makes no journey decision: the core drops stale wake-ups and classifies
keywords. What it keeps is the simulated provider's bookkeeping (which deliveries it
has scheduled, and which of them a revoke or a failure cancelled): the same seeded
provider ``journeys gateway`` runs by default, through
:class:`~engine.channels.offline.OfflineGateway`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.channels.offline import OfflineGateway
from engine.channels.preview import send_summary
from engine.core.effects import (
    Effect,
    Erase,
    Outcome,
    Revoke,
    ScheduleWake,
    SendRequest,
    WebhookRequest,
)
from engine.core.engine import Engine, EngineConfig
from engine.core.experiments import Experiments
from engine.core.fallback import messages_given_up
from engine.core.ids import wake_token
from engine.core.inputs import (
    Forget,
    Inbound,
    Input,
    Receipt,
    Scheduled,
    UserEvent,
    Wake,
    WebhookResult,
)
from engine.core.state import UserState
from engine.core.trace import Trace
from engine.core.winner import SplitDecision, decision_outcome
from engine.core.wire import decode_line, dumps, loads
from engine.durations import format_ts
from engine.errors import InputError
from engine.journey.model import Journey

GENERATED, FROM_FILE = 0, 1


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    reason: str
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class RefusedInput:
    """An input the engine refused (an InputError, e.g. ``profile_limit``): what the Kafka
    worker dead-letters. The user's state stays as it was before it."""

    user_id: str
    ts: int
    what: str
    reason: str
    detail: str

    def __str__(self) -> str:
        when = format_ts(self.ts)
        return f"{self.what} for {self.user_id} at {when}: {self.reason}: {self.detail}"


@dataclass
class SimResult:
    outcomes: list[Outcome] = field(default_factory=list)
    trace: dict[str, list[str]] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    refused: list[RefusedInput] = field(default_factory=list)  # dead letters on Kafka
    states: dict[str, UserState] = field(default_factory=dict)
    sends: list[SendRequest] = field(default_factory=list)
    decisions: list[SplitDecision] = field(default_factory=list)  # splits' winners, in order
    # The core's trace records, for the users the engine's config traces (trace_users,
    # trace_sample); none by default. `journeys explain` reads them.
    traces: list[Trace] = field(default_factory=list)


def read_events(path: str | Path) -> tuple[list[Input], list[BadLine]]:
    """Decode a JSON-lines file; bad lines are reported, never fatal."""
    items: list[Input] = []
    bad: list[BadLine] = []
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip() or raw.lstrip().startswith(b"#"):
                continue
            try:
                items.append(decode_line(loads(raw)))
            except InputError as exc:
                bad.append(BadLine(no, exc.reason, exc.detail))
    return items, bad


def _scheduled(inp: Input) -> Input:
    """A wake-up line in a file stands for the wake-up scheduled at its time: without a
    token of its own it gets that one, so the core drops it unless a timer is due then."""
    if isinstance(inp, Wake) and not inp.token:
        return Wake(inp.user_id, inp.ts, wake_token(inp.user_id, inp.ts))
    return inp


def _updates_profile(inp: Input, engine: Engine) -> bool:
    return isinstance(inp, UserEvent) and (
        bool(inp.profile) or inp.name in engine.config.profile_events
    )


def _snapshot(state: UserState) -> bytes:
    return dumps(state.to_wire())


def _describe(inp: Input) -> str:
    match inp:
        case UserEvent():
            return f"event {inp.name} ({inp.event_id})"
        case Receipt():
            return f"receipt {inp.status} for {inp.message_id or inp.node}"
        case Inbound():
            return f"inbound {inp.postback or repr(inp.text)}"
        case Wake():
            return "timer"
        case Forget():
            return "forget"
        case WebhookResult():
            return f"webhook result {inp.status} {inp.code or ''}".rstrip()
        case Scheduled():
            return f"scheduled {inp.journey_id} {inp.occurrence}"


class Simulator:
    def __init__(
        self,
        journeys: Iterable[Journey],
        config: EngineConfig | None = None,
        provider: OfflineGateway | None = None,
    ) -> None:
        self.engine = Engine(journeys, config)
        # the one simulated provider, set to the contract, behind the gateway's steps
        self.provider = provider or OfflineGateway()
        self.experiments = Experiments()

    def run(
        self,
        inputs: Iterable[Input],
        *,
        until: int | None = None,
        trace: bool = False,
        horizon: int | None = None,
    ) -> SimResult:
        """``horizon``: the last instant scheduled entries are decided at (default:
        ``until``, else the last input). A backtest that simulates its users in batches
        gives every batch the whole history's, so that batches agree with one run."""
        result = SimResult()
        queue: list[tuple[int, int, int, Input]] = []
        seq = 0
        for inp in sorted(inputs, key=lambda i: i.ts):  # stable: file order at equal times
            queue.append((inp.ts, FROM_FILE, seq, _scheduled(inp)))
            seq += 1
        heapq.heapify(queue)
        states = result.states
        # Scheduled entries (engine.core.audience) run up to the last input, or `until`:
        # a recurring schedule would keep the virtual clock going forever.
        if horizon is None:
            horizon = until if until is not None else max((q[0] for q in queue), default=None)
        self.engine.config = replace(self.engine.config, schedule_horizon=horizon)
        # Splits that pick their winner: looked at as the clock passes their marks, before
        # the first input at or after each (engine.core.experiments).
        self.engine.catalog.decisions.clear()
        self.experiments = Experiments.of(
            j for vs in self.engine.catalog.versions.values() for j in vs.values()
        )
        while queue:
            ts, _, _, inp = heapq.heappop(queue)
            if until is not None and ts > until:
                break
            for decision in self.experiments.due(ts) if self.experiments else ():
                self.engine.apply_decision(decision)
                result.decisions.append(decision)
                result.outcomes.append(decision_outcome(decision))
            if isinstance(inp, Receipt) and not self.provider.is_live(inp):
                # The simulated provider's business, not the core's: this delivery was
                # scheduled by the provider and a revoke or a failure cancelled it since.
                continue
            state = states.get(inp.user_id)
            if state is None:
                state = states[inp.user_id] = self.engine.new_state(inp.user_id)
            # An event that changes the profile may be refused (a profile limit): the
            # worker then keeps the state it had, and so does the simulation.
            kept = _snapshot(state) if _updates_profile(inp, self.engine) else None
            try:
                _, effects = self.engine.advance(state, inp, ts)
            except InputError as exc:
                if kept is None:
                    raise
                states[inp.user_id] = UserState.from_wire(loads(kept))
                result.refused.append(
                    RefusedInput(inp.user_id, ts, _describe(inp), exc.reason, exc.detail)
                )
                if trace:
                    result.trace.setdefault(inp.user_id, []).append(
                        f"{format_ts(ts)}  {_describe(inp)}  REFUSED {exc.reason}: {exc.detail}"
                    )
                continue
            if isinstance(inp, Receipt) and inp.status != "delivered":
                # A failure receipt (a file's, say) means the provider won't deliver what
                # it still had scheduled for messages the core has given up on.
                for message_id in messages_given_up(state):
                    self.provider.cancel(message_id)
            for generated in self._carry_out(effects, result):
                seq += 1
                heapq.heappush(queue, (generated.ts, GENERATED, seq, generated))
            if trace and (effects or not isinstance(inp, Wake)):
                self._trace(result, inp, ts, effects)
        result.outcomes.sort(key=lambda o: o.ts)  # stable: production order at equal times
        return result

    def _carry_out(self, effects: list[Effect], result: SimResult) -> Iterator[Input]:
        for eff in effects:
            match eff:
                case Outcome():
                    result.outcomes.append(eff)
                    if self.experiments:
                        self.experiments.observe(eff)
                case SendRequest():
                    result.sends.append(eff)
                    yield from self.provider.send(eff)
                case Revoke():
                    yield from self.provider.revoke(eff)
                case WebhookRequest():
                    yield from self.provider.webhook(eff)
                case ScheduleWake(at=at) if at is not None:
                    yield Wake(eff.user_id, at, eff.token)
                case Erase():
                    result.states.pop(eff.user_id, None)  # forgotten: nothing kept
                case Trace():
                    result.traces.append(eff)

    @staticmethod
    def _trace(result: SimResult, inp: Input, ts: int, effects: list[Effect]) -> None:
        lines = result.trace.setdefault(inp.user_id, [])
        lines.append(f"{format_ts(ts)}  {_describe(inp)}")
        for eff in effects:
            if isinstance(eff, WebhookRequest):  # what the gateway will call
                where = f"{eff.journey_id}@{eff.journey_version}:{eff.node_id}"
                lines.append(f"    {'webhook':<18} {where} {eff.method} {eff.url} {eff.body or ''}")
                continue
            if not isinstance(eff, Outcome | SendRequest):
                continue
            where = (
                f"{eff.journey_id}@{eff.journey_version}:{eff.node_id}" if eff.journey_id else "-"
            )
            if isinstance(eff, SendRequest):  # what the user reads (a fallback SMS: derived)
                ref = eff.content.get("derive_from")
                sent = [s for s in result.sends if s.message_id == ref] if ref else []
                text = send_summary(eff.content, {s.message_id: s.content for s in sent})
                lines.append(f"    {'rendered':<18} {where} [{eff.channel}] {text}")
                continue
            extra = " ".join(f"{k}={v}" for k, v in eff.attributes.items())
            chan = f" [{eff.channel}]" if eff.channel else ""
            lines.append(f"    {eff.type:<18} {where}{chan} {extra}".rstrip())
