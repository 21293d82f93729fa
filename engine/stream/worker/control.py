"""The worker's side of splits that pick their winner: every decision on
``journey.control`` reaches this worker's engine (:meth:`Engine.apply_decision`).

* **Before the first input**, :meth:`DecisionFeed.catch_up` reads the control topic to its
  end (:meth:`DecisionFeed.first` wraps the worker's input handler): a restarted worker,
  replaying inputs it had processed before, sees the decisions it saw then.
* **Then**, a ticker polls for new decisions. A new one is applied under the checkpoint's
  lock, right after a commit: every input processed before it is durable, so no replay
  can process one of them again with the decision in place (a replayed input would
  otherwise split differently than the first time). From there on, split entries at or
  after the decision's ``effective_at`` take the winner. An entry at or after that time
  processed before the decision arrived has split by hash, and keeps its variant.

A decision for a split this worker doesn't have (another journey version), or one that
would change a decision made (never done by the decider) is logged and left out.
"""

from __future__ import annotations

import logging
from typing import Any

from engine.core.engine import Engine
from engine.core.winner import SplitDecision
from engine.durations import format_ts
from engine.errors import InputError
from engine.stream.common.checkpoint import Checkpoint
from engine.stream.common.feed import Handler
from engine.stream.common.logs import event
from engine.stream.common.settings import Settings
from engine.stream.decider.control import ControlReader

log = logging.getLogger("engine.stream.worker")


class DecisionFeed:
    def __init__(self, settings: Settings, engine: Engine, checkpoint: Checkpoint) -> None:
        self.engine = engine
        self.checkpoint = checkpoint
        self.reader = ControlReader(settings, f"{settings.app_id}-control")
        self.started = False

    async def catch_up(self) -> None:
        await self.reader.start()
        for d in await self.reader.catch_up():
            self._apply(d)
        self.started = True  # the ticker polls from now on

    def first(self, handle: Handler) -> Handler:
        """``handle``, after the control topic has been read to its end once."""

        async def handle_after_catch_up(
            topic: str,
            partition: int,
            offset: int,
            key: bytes | None,
            value: bytes | None,
            timestamp: int | None,
        ) -> None:
            if not self.started:
                await self.catch_up()
            await handle(topic, partition, offset, key, value, timestamp)

        return handle_after_catch_up

    async def tick(self) -> None:
        if not self.started:
            return
        fresh = await self.reader.poll()
        if not fresh:
            return
        # Every input processed so far becomes durable before the decision applies.
        await self.checkpoint.commit_then("decision", lambda: self._apply_all(fresh))

    def _apply_all(self, decisions: list[SplitDecision]) -> None:
        for d in decisions:
            self._apply(d)

    def _apply(self, d: SplitDecision) -> None:
        try:
            new = self.engine.apply_decision(d)
        except InputError as exc:
            event(log, "split_decision_ignored", logging.WARNING, split=list(d.key),
                  variant=d.variant, reason=exc.reason, detail=exc.detail)  # fmt: skip
            return
        if new:
            event(log, "split_decision_applied", split=list(d.key), variant=d.variant,
                  effective_at=format_ts(d.effective_at))  # fmt: skip

    async def on_shutdown(self, sender: Any = None, **kwargs: Any) -> None:
        if self.started:
            self.started = False
            await self.reader.stop()
