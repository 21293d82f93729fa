"""The engine: ``advance(state, input, now) -> (state, effects)``.

One call handles one input for one user. Before the input itself, every timer of the
user that is due at or before ``now`` fires, each at its own due time: so the result
doesn't depend on how late an adapter delivers a wake-up, and a simulation on a
virtual clock and a worker on Kafka see the same order of things.

Time never goes backwards for a user: an input older than the user's clock (a late
event) is handled at the user's clock. Its ``ts`` is not trusted to reorder history.
Goals are the exception: they are judged by the event's own ``ts``, so a late goal
event still counts if it *happened* inside the window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from engine.core.context import Step
from engine.core.effects import Effect, ScheduleWake
from engine.core.ids import derive_id, derive_uuid
from engine.core.inputs import Inbound, Input, Receipt, UserEvent, Wake
from engine.core.messages import handle_inbound, handle_receipt, message_timer
from engine.core.nodes import ON_TIMER, finish, goto
from engine.core.state import Instance, JourneyHistory, Message, UserState
from engine.journey.expressions import compile_expression
from engine.journey.model import Journey, WaitForNode, WaitPath

DAY_MS = 86_400_000


@dataclass(frozen=True)
class EngineConfig:
    help_text: str = "Reply STOP to opt out, START to opt back in. Msg&data rates may apply."
    revoke_grace_ms: int = 60_000  # how long to wait for a TTL verdict after revoking
    message_retention_ms: int = 7 * DAY_MS  # taps and reads count this long after a send
    max_hops: int = 100  # nodes entered in one step before a run is stopped (cycle guard)
    max_messages: int = 64  # messages kept per user for receipts and taps


class Engine:
    """Holds the loaded journeys (every version) and advances user states through them."""

    def __init__(self, journeys: Iterable[Journey], config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.versions: dict[str, dict[int, Journey]] = {}
        for j in journeys:
            self.versions.setdefault(j.id, {})[j.version] = j
        # New entries always go to the newest version of a journey.
        self.latest = {jid: vs[max(vs)] for jid, vs in sorted(self.versions.items())}
        self.by_entry: dict[str, list[Journey]] = {}
        for j in self.latest.values():
            self.by_entry.setdefault(j.entry.event, []).append(j)
        # Events no journey mentions touch nothing: not even the dedupe memory.
        self.known_events: set[str] = set(self.by_entry)
        for vs in self.versions.values():
            for j in vs.values():
                self.known_events.update(j.exit_on)
                if j.goal is not None:
                    self.known_events.add(j.goal.event)
                for node in j.nodes.values():
                    if isinstance(node, WaitForNode):
                        self.known_events.update(p.event for p in node.paths if p.event)
        caps = [
            j.settings.frequency_cap.per_ms
            for vs in self.versions.values()
            for j in vs.values()
            if j.settings.frequency_cap is not None
        ]
        self.longest_cap_ms = max(caps, default=DAY_MS)
        self._dispatch: dict[type, Callable[[Step, Any], None]] = {
            UserEvent: self._on_event,
            Receipt: handle_receipt,
            Inbound: self._on_inbound,
            Wake: lambda step, inp: None,  # due timers already fired before dispatch
        }

    # ------------------------------------------------------------------ entry point

    def advance(self, state: UserState, inp: Input, now: int) -> tuple[UserState, list[Effect]]:
        """Handle one input for one user at ``now`` (epoch ms). Updates ``state`` in place."""
        if isinstance(inp, UserEvent) and inp.name not in self.known_events:
            return state, []
        now = max(now, state.clock)
        step = Step(self, state, now)
        self._fire_due(step, now)
        step.now = now
        state.clock = now
        self._dispatch[type(inp)](step, inp)
        self._tidy(step)
        at = state.next_timer()
        if at != state.wake_at:
            state.wake_at = at
            step.effects.append(ScheduleWake(state.user_id, at, self.wake_token(state)))
        return state, step.effects

    def wake_token(self, state: UserState) -> str:
        return derive_id("wake", state.user_id, state.wake_at)

    def new_state(self, user_id: str) -> UserState:
        return UserState(user_id)

    # ------------------------------------------------------------------ timers

    def _fire_due(self, step: Step, until: int) -> None:
        state = step.state
        while True:
            due = state.next_timer()
            if due is None or due > until:
                return
            step.now = max(due, state.clock)
            state.clock = step.now
            # Ties: instance timers before message timers, then by id: a stable order.
            for inst in sorted(state.instances.values(), key=lambda i: i.id):
                if inst.wake_at is not None and inst.wake_at <= due:
                    inst.wake_at = None
                    self._migrate(step, inst)
                    node = step.journey(inst).nodes[inst.node]
                    on_timer = ON_TIMER.get(node.type)
                    if on_timer is None:
                        # Migrated onto a node that doesn't wait (branch, split, exit):
                        # the user enters it now.
                        goto(step, inst, inst.node)
                    else:
                        on_timer(step, inst, node)
            for msg in sorted(state.messages.values(), key=lambda m: m.id):
                if msg.timer_at is not None and msg.timer_at <= due:
                    message_timer(step, msg)

    # ------------------------------------------------------------------ user events

    def _on_event(self, step: Step, ev: UserEvent) -> None:
        state = step.state
        if not state.remember_event(ev.event_id):
            return  # already handled: producers retry, we don't double-count
        if ev.profile:
            state.attrs.update(ev.profile)
        props = ev.properties
        for inst in sorted(state.instances.values(), key=lambda i: (i.entered_at, i.id)):
            journey = step.journey(inst)
            if ev.name in journey.exit_on:
                finish(step, inst, "exit_event")
                continue
            converted = self._goal(
                step, journey, inst.id, inst.version, inst.entered_at, inst.entry, ev
            )
            if converted and journey.goal is not None and journey.goal.exit:
                finish(step, inst, "goal")
                continue
            self._event_path(step, inst, ev)
        self._goals_after_exit(step, ev)
        for journey in self.by_entry.get(ev.name, ()):
            self._maybe_enter(step, journey, ev, props)

    def _goal(
        self,
        step: Step,
        journey: Journey,
        instance_id: str,
        version: int,
        entered: int,
        entry: dict[str, Any],
        ev: UserEvent,
    ) -> bool:
        goal = journey.goal
        if goal is None or goal.event != ev.name:
            return False
        hist = step.state.history.setdefault(journey.id, JourneyHistory())
        if instance_id in hist.converted or not (entered <= ev.ts <= entered + goal.within_ms):
            return False
        scope = {
            "event": ev.properties,
            "entry": entry,
            "user": step.state.attrs,
            "journey": {"id": journey.id, "version": version},
        }
        if goal.when is not None and not compile_expression(goal.when).test(scope):
            return False
        hist.converted.append(instance_id)
        del hist.converted[:-16]
        step.outcome(
            "goal_converted",
            journey_id=journey.id,
            version=version,
            instance_id=instance_id,
            node_id=None,
            event=ev.name,
            after_ms=ev.ts - entered,
        )
        return True

    def _goals_after_exit(self, step: Step, ev: UserEvent) -> None:
        for jid, hist in sorted(step.state.history.items()):
            if not hist.tracking:
                continue
            keep = []
            for iid, version, entered, entry in hist.tracking:
                journey = self.versions[jid].get(version)
                if journey is None or journey.goal is None:
                    continue
                if self._goal(step, journey, iid, version, entered, entry, ev):
                    continue
                if step.now <= entered + journey.goal.within_ms:
                    keep.append((iid, version, entered, entry))
            hist.tracking = keep

    def _maybe_enter(
        self, step: Step, journey: Journey, ev: UserEvent, props: dict[str, Any]
    ) -> None:
        state = step.state
        entry = journey.entry
        hist = state.history.get(journey.id)
        if hist is not None and hist.entries:
            if entry.reentry == "never":
                return
            if entry.reentry == "after_exit" and any(
                i.journey_id == journey.id for i in state.instances.values()
            ):
                return
            if hist.last_entry is not None and step.now - hist.last_entry < entry.cooldown_ms:
                return
        scope = {
            "event": props,
            "entry": props,
            "user": state.attrs,
            "journey": {"id": journey.id, "version": journey.version},
        }
        if entry.when is not None and not compile_expression(entry.when).test(scope):
            return
        iid = derive_id("i", state.user_id, journey.id, journey.version, ev.event_id)
        if iid in state.instances:
            return  # an event id replayed after it left the dedupe memory: same run, not a new one
        hist = state.history.setdefault(journey.id, JourneyHistory())
        hist.entries += 1
        hist.last_entry = step.now
        inst = Instance(iid, journey.id, journey.version, journey.start, step.now, props, props)
        state.instances[iid] = inst
        step.inst_outcome("journey_entered", inst, journey.start, event=ev.name)
        goto(step, inst, journey.start)

    # ------------------------------------------------------------------ wait_for paths

    def _waiting(self, inst: Instance) -> WaitForNode | None:
        """The ``wait_for`` node the run waits in, as the version it would migrate to sees
        it: a path of the new version is what a migrating user takes."""
        version, node_id = self._migration_for(inst) or (inst.version, inst.node)
        node = self.versions[inst.journey_id][version].nodes[node_id]
        return node if isinstance(node, WaitForNode) else None

    def _event_path(self, step: Step, inst: Instance, ev: UserEvent) -> None:
        node = self._waiting(inst)
        if node is None:
            return
        for path in node.paths:
            if path.event != ev.name:
                continue
            scope = step.scope(inst)
            scope["event"] = ev.properties
            if path.when is None or compile_expression(path.when).test(scope):
                inst.event = ev.properties
                self._take_path(step, inst, path, f"event {ev.name}")
                return

    def on_message_event(self, step: Step, msg: Message, kind: str, value: str | None) -> None:
        """A read, tap or reply on ``msg``: move its run along a matching ``wait_for`` path."""
        inst = step.state.instances.get(msg.instance_id)
        node = self._waiting(inst) if inst is not None else None
        if inst is None or node is None:
            return
        for path in node.paths:
            if _path_matches(path, inst, msg, kind, value):
                self._take_path(step, inst, path, f"{path.kind} {getattr(path, path.kind)}")
                return

    def _take_path(self, step: Step, inst: Instance, path: WaitPath, via: str) -> None:
        inst.wake_at = None
        self._migrate(step, inst)
        goto(step, inst, path.next, via=via)

    def _on_inbound(self, step: Step, inb: Inbound) -> None:
        if inb.event_id is not None and not step.state.remember_event(inb.event_id):
            return
        handle_inbound(step, inb)

    # ------------------------------------------------------------------ versions

    def _migration_for(self, inst: Instance) -> tuple[int, str] | None:
        """(version, node) the newest version maps this waiting run to, if it declares one."""
        newest = self.latest.get(inst.journey_id)
        if newest is None or newest.version == inst.version:
            return None
        for m in newest.migrate:
            if m.from_version == inst.version and inst.node in m.nodes:
                return newest.version, m.nodes[inst.node]
        return None

    def _migrate(self, step: Step, inst: Instance) -> None:
        """Move a waiting user to the newest version that declares a mapping for them."""
        target = self._migration_for(inst)
        if target is None:
            return
        version, node_id = target
        from_version, from_node = inst.version, inst.node
        mapping = next(
            m.nodes for m in self.latest[inst.journey_id].migrate if m.from_version == inst.version
        )
        # Earlier sends keep answering paths that name their node in the new version.
        inst.sends = {mapping.get(k, k): v for k, v in inst.sends.items()}
        inst.version, inst.node = version, node_id
        # Reported as the new (version, node) pair: node_id names a node of journey_version.
        step.inst_outcome(
            "instance_migrated",
            inst,
            node_id,
            from_version=from_version,
            from_node=from_node,
            to_version=version,
        )

    # ------------------------------------------------------------------ housekeeping

    def _tidy(self, step: Step) -> None:
        msgs = step.state.messages
        horizon = step.now - self.config.message_retention_ms
        stale = [m.id for m in msgs.values() if m.sent_at < horizon and m.timer_at is None]
        for mid in stale:
            del msgs[mid]
        if len(msgs) > self.config.max_messages:
            idle = sorted((m for m in msgs.values() if m.timer_at is None), key=lambda m: m.sent_at)
            for m in idle[: len(msgs) - self.config.max_messages]:
                del msgs[m.id]


def _path_matches(
    path: WaitPath, inst: Instance, msg: Message, kind: str, value: str | None
) -> bool:
    """Does a read / tap / reply on ``msg`` take ``path``? The path's ``of`` names the send
    node (default: the latest send); its fallback SMS counts as the same send."""
    if path.kind == "event":
        return False
    of = path.of_node
    target = inst.sends.get(of) if of is not None else inst.last_send
    if target is None or msg.id not in (target, derive_uuid("sms", target)):
        return False
    want = getattr(path, path.kind)
    match path.kind, kind:
        case "read", "read":
            return True
        case "click", "click":
            return bool(want == "*" or want == value)
        case "reply", ("click" | "reply"):
            return bool(want == "*" or (value or "").strip().lower() == str(want).strip().lower())
    return False
