"""The working set of one ``advance`` call: journeys, config, state, current time, effects.

Every handler takes a ``Step`` instead of five arguments; it also derives every id and
builds outcomes, so that ids come from one place. It carries the journey versions
(:class:`~.catalog.Catalog`) and the config, not the engine: handlers depend on this
module, never on :mod:`.engine`, so the engine sits on top of the core's modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.core.catalog import Catalog
from engine.core.config import EngineConfig
from engine.core.effects import Effect, Outcome
from engine.core.ids import id_of_text
from engine.core.inputs import Input
from engine.core.state import Instance, Message, UserState
from engine.core.trace import input_key, record, traced

if TYPE_CHECKING:
    from engine.journey.model import Journey


# inst_outcome's default key: the run's step (None is a key a caller may give).
_RUN_STEP: Any = object()


@dataclass(slots=True)
class Step:
    catalog: Catalog
    config: EngineConfig
    state: UserState
    now: int
    effects: list[Effect] = field(default_factory=list)
    cause: Input | None = None  # the input being handled: part of trace record ids
    tracing: bool = field(init=False)  # does this user get trace records (.trace)?

    def __post_init__(self) -> None:
        self.tracing = traced(self.config, self.state.user_id)

    def trace(
        self,
        kind: str,
        reason: str,
        where: Instance | Message | Journey | None = None,
        *,
        node: str | None = None,
        more: Callable[[], Mapping[str, Any]] | None = None,
        **values: Any,
    ) -> None:
        """Record a decision (:mod:`.trace`) when the user is traced; else do nothing, and
        compute nothing: ``more`` and values given as callables are called only here."""
        if self.tracing:
            seq = (input_key(self.cause), len(self.effects))
            self.effects.append(
                record(self.user_id, self.now, seq, kind, reason, where, node, values, more)
            )

    @property
    def user_id(self) -> str:
        return self.state.user_id

    def journey(self, inst: Instance | Message) -> Journey:
        jid = inst.journey_id
        return self.catalog.versions[jid][inst.version]

    def scope(self, inst: Instance) -> dict[str, Any]:
        return {
            "event": inst.event,
            "entry": inst.entry,
            "user": self.state.attrs,
            "journey": {"id": inst.journey_id, "version": inst.version},
        }

    def outcome(
        self,
        type_: str,
        *,
        journey_id: str | None = None,
        version: int | None = None,
        instance_id: str | None = None,
        node_id: str | None = None,
        channel: str | None = None,
        message_id: str | None = None,
        key: object = "",
        **attributes: Any,
    ) -> None:
        """Emit an outcome. ``key`` tells apart outcomes of one type that may repeat for the
        same instance and node (a second tap on the same message, say)."""
        self._emit(
            type_, journey_id, version, instance_id, node_id, channel, message_id, key, attributes
        )

    def inst_outcome(
        self,
        type_: str,
        inst: Instance,
        node_id: str | None = None,
        *,
        channel: str | None = None,
        message_id: str | None = None,
        key: object = _RUN_STEP,
        **attributes: Any,
    ) -> None:
        """An outcome of the run ``inst`` at ``node_id`` (default: its node); ``key``
        defaults to the run's step."""
        self._emit(
            type_,
            inst.journey_id,
            inst.version,
            inst.id,
            node_id if node_id is not None else inst.node,
            channel,
            message_id,
            inst.step if key is _RUN_STEP else key,
            attributes,
        )

    def msg_outcome(self, type_: str, msg: Message, *, key: object = "", **attributes: Any) -> None:
        """An outcome of the message ``msg`` (its run, node, channel and id)."""
        self._emit(
            type_,
            msg.journey_id,
            msg.version,
            msg.instance_id,
            msg.node,
            msg.channel,
            msg.id,
            key,
            attributes,
        )

    def _emit(
        self,
        type_: str,
        journey_id: str | None,
        version: int | None,
        instance_id: str | None,
        node_id: str | None,
        channel: str | None,
        message_id: str | None,
        key: object,
        attributes: dict[str, Any],
    ) -> None:
        # Positional all the way (three outcome makers, one builder): outcomes are most
        # of what a step does, and keyword passing was a visible share of it.
        user_id = self.state.user_id
        # derive_id("o", user_id, type_, journey_id, version, instance_id, node_id,
        # message_id, key), written out as one f-string: the same id, 3x as fast.
        oid = id_of_text(
            f"o\x1f{user_id}\x1f{type_}\x1f{journey_id}\x1f{version}\x1f{instance_id}"
            f"\x1f{node_id}\x1f{message_id}\x1f{key}"
        )
        self.effects.append(
            Outcome(
                oid,
                type_,
                self.now,
                user_id,
                journey_id,
                version,
                instance_id,
                node_id,
                channel,
                message_id,
                attributes,
            )
        )
