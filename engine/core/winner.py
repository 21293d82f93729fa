"""Splits that pick their winner: the decision, and how the core applies it.

A ``split`` with ``winner: {metric, after, min_users}`` keeps splitting by hash until
:func:`decide` finds a clear winner in the journey's own outcomes (counted by
:class:`engine.core.experiments.Experiments`, the same way in the simulator and on Kafka):

* not before ``after`` has passed since the split's first entry in this journey version;
* not before every variant has ``min_users`` users (runs that took it);
* the variant with the best rate of ``metric`` (runs that converted, or clicked / read a
  message sent after the split) wins when the 95% interval of its difference to *every*
  other variant is above zero (Newcombe's interval, :mod:`engine.core.proportions`).
  Otherwise there is no clear winner (yet): the split goes on splitting.

The decision is an input, not a side effect: :class:`SplitDecision` is plain data that
reaches the engine (``Engine.apply_decision``; on Kafka through the compacted
``journey.control`` topic). From its ``effective_at`` on, every new entrant of the split
takes the winner; an entry before it (a replayed input from before the decision) still
splits by hash, so replays and restarts see the same decision at the same point. Once made
a decision never changes: :func:`record_decision` refuses another one for the same split.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.core.effects import Outcome
from engine.core.ids import derive_id
from engine.core.proportions import newcombe, wilson
from engine.durations import format_ts
from engine.errors import InputError
from engine.journey.model import Journey, SplitNode

SplitKey = tuple[str, int, str]  # journey id, version, split node id
OUTCOME_TYPE = "split_winner_chosen"
METHOD = "newcombe-wilson"
#: After ``after`` has passed, a split without a clear winner is looked at again every hour
#: of the journey's time (the simulator's virtual clock; on Kafka the outcomes' ``ts``).
CHECK_EVERY_MS = 3_600_000


def split_key_text(key: SplitKey) -> str:
    """``journey:version:node``: the control topic's key, and the decision outcome's user."""
    return f"{key[0]}:{key[1]}:{key[2]}"


@dataclass(frozen=True, slots=True)
class VariantCount:
    users: int  # runs that took the variant (before the instant looked at)
    successes: int  # of them, runs that converted / clicked / read


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` found for one split at one instant (``at``)."""

    key: SplitKey
    metric: str
    min_users: int
    after_ms: int
    at: int
    first_entry_at: int | None
    counts: dict[str, VariantCount]  # in the split's variant order
    best: str | None = None
    differences: dict[str, tuple[float, float, float] | None] = field(default_factory=dict)
    winner: str | None = None

    @property
    def decide_from(self) -> int | None:
        """The first instant a decision may be made (``after`` past the first entry)."""
        return None if self.first_entry_at is None else self.first_entry_at + self.after_ms

    @property
    def missing_ms(self) -> int | None:
        """Time still to wait for ``after`` (0: passed; None: nobody entered yet)."""
        start = self.decide_from
        return None if start is None else max(0, start - self.at)

    @property
    def missing_users(self) -> dict[str, int]:
        """Users each variant still needs (only those short of ``min_users``)."""
        return {
            n: self.min_users - c.users for n, c in self.counts.items() if c.users < self.min_users
        }

    @property
    def status(self) -> str:
        if self.winner is not None:
            return "chosen"
        if self.missing_ms != 0 or self.missing_users:
            return "waiting"
        return "no clear winner"

    def figures(self) -> dict[str, Any]:
        """The figures, JSON-ready: per variant its users, successes, rate and 95% Wilson
        interval; the difference of the best variant to each other one, with its 95%
        Newcombe interval."""
        variants = {}
        for name, c in self.counts.items():
            ci = wilson(c.successes, c.users)
            variants[name] = {
                "users": c.users,
                "successes": c.successes,
                "rate": _round(c.successes / c.users) if c.users else None,
                "ci_low": None if ci is None else _round(ci[0]),
                "ci_high": None if ci is None else _round(ci[1]),
            }
        diffs = {
            label: (
                {"difference": None, "ci_low": None, "ci_high": None}
                if d is None
                else {"difference": _round(d[0]), "ci_low": _round(d[1]), "ci_high": _round(d[2])}
            )
            for label, d in self.differences.items()
        }
        return {"variants": variants, "differences": diffs, "method": METHOD}


def _rate(c: VariantCount) -> float:
    return c.successes / c.users if c.users else 0.0


def _round(x: float) -> float:
    return round(x, 6)


def winner_split(journey: Journey, node_id: str) -> SplitNode:
    node = journey.nodes.get(node_id)
    if not isinstance(node, SplitNode) or node.winner is None:
        raise InputError(
            "unknown_split",
            f"{journey.id} v{journey.version} has no split '{node_id}' with a winner",
        )
    return node


def evaluate(
    journey: Journey,
    node_id: str,
    counts: Mapping[str, VariantCount],
    first_entry_at: int | None,
    at: int,
) -> Evaluation:
    """Look at one split's figures at ``at``: what is missing, the best variant, and whether
    it is clear of every other one. ``counts`` has the runs before ``at`` per variant;
    ``first_entry_at`` is the split's first entry in this journey version."""
    node = winner_split(journey, node_id)
    w = node.winner
    assert w is not None
    names = [v.name for v in node.variants]
    ordered = {n: counts.get(n, VariantCount(0, 0)) for n in names}
    base = Evaluation(
        (journey.id, journey.version, node_id),
        w.metric,
        w.min_users,
        w.after_ms,
        at,
        first_entry_at,
        ordered,
    )
    if base.missing_ms != 0 or base.missing_users:
        return base
    # The best rate; at equal rates the first in file order (it can't be clear of its tie).
    best = max(names, key=lambda n: (_rate(ordered[n]), -names.index(n)))
    b = ordered[best]
    diffs = {
        f"{best} - {other}": newcombe(b.successes, b.users, c.successes, c.users)
        for other, c in ordered.items()
        if other != best
    }
    clear = all(d is not None and d[1] > 0 for d in diffs.values())
    return Evaluation(
        base.key,
        base.metric,
        base.min_users,
        base.after_ms,
        at,
        first_entry_at,
        ordered,
        best,
        diffs,
        best if clear else None,
    )


@dataclass(frozen=True)
class SplitDecision:
    """A split's winner: from ``effective_at`` on, every new entrant takes ``variant``."""

    journey_id: str
    version: int
    node_id: str
    variant: str
    metric: str
    decided_at: int  # epoch ms: the instant the figures were looked at
    effective_at: int  # split entries at or after this take the winner
    first_entry_at: int
    min_users: int
    after_ms: int
    figures: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> SplitKey:
        return (self.journey_id, self.version, self.node_id)

    def same_as(self, other: SplitDecision) -> bool:
        """The same decision (a replay of the control topic, or the decider again)."""
        return (other.key, other.variant, other.effective_at) == (
            self.key,
            self.variant,
            self.effective_at,
        )


def decide(
    journey: Journey,
    node_id: str,
    counts: Mapping[str, VariantCount],
    first_entry_at: int | None,
    now: int,
) -> SplitDecision | None:
    """THE decision, the one function the simulator and the Kafka decider both run: the
    split's winner at ``now`` from its figures (runs before ``now``), or None while no
    variant is clear. Effective at ``now``: entries from then on take the winner."""
    ev = evaluate(journey, node_id, counts, first_entry_at, now)
    if ev.winner is None or ev.first_entry_at is None:
        return None
    return SplitDecision(
        journey.id,
        journey.version,
        node_id,
        ev.winner,
        ev.metric,
        decided_at=now,
        effective_at=now,
        first_entry_at=ev.first_entry_at,
        min_users=ev.min_users,
        after_ms=ev.after_ms,
        figures=ev.figures(),
    )


# --------------------------------------------------------------------------- applying


def record_decision(
    versions: Mapping[str, Mapping[int, Journey]],
    decisions: dict[SplitKey, SplitDecision],
    decision: SplitDecision,
) -> bool:
    """Add ``decision`` to ``decisions``: True when it is new, False when the same decision
    was known. Raises :class:`InputError` for a split that doesn't exist (or has no winner,
    or no such variant), and for a *different* decision of a decided split: a decision
    never changes once made."""
    journey = versions.get(decision.journey_id, {}).get(decision.version)
    if journey is None:
        raise InputError(
            "unknown_split",
            f"no journey {decision.journey_id} v{decision.version} is loaded",
        )
    node = winner_split(journey, decision.node_id)
    if decision.variant not in {v.name for v in node.variants}:
        raise InputError(
            "unknown_split",
            f"split {split_key_text(decision.key)} has no variant {decision.variant!r}",
        )
    known = decisions.get(decision.key)
    if known is not None:
        if known.same_as(decision):
            return False
        raise InputError(
            "conflicting_decision",
            f"split {split_key_text(decision.key)} already chose {known.variant!r} "
            f"(effective {format_ts(known.effective_at)}); a decision never changes, so "
            f"{decision.variant!r} (effective {format_ts(decision.effective_at)}) is refused",
        )
    decisions[decision.key] = decision
    return True


def decided_variant(
    decisions: Mapping[SplitKey, SplitDecision],
    key: SplitKey,
    node: SplitNode,
    now: int,
) -> int | None:
    """The index of the winner for an entry at ``now``, or None: no decision, or one not
    yet in effect at ``now`` (the entry splits by hash)."""
    if not decisions:
        return None
    d = decisions.get(key)
    if d is None or now < d.effective_at:
        return None
    for i, v in enumerate(node.variants):
        if v.name == d.variant:
            return i
    return None


def decision_outcome(d: SplitDecision) -> Outcome:
    """The ``split_winner_chosen`` outcome that records a decision with its figures. It is
    about no user: ``user_id`` is the split's key (``journey:version:node``)."""
    user = split_key_text(d.key)
    oid = derive_id("o", user, OUTCOME_TYPE, d.journey_id, d.version, None, d.node_id, None, "")
    return Outcome(
        oid,
        OUTCOME_TYPE,
        d.decided_at,
        user,
        d.journey_id,
        d.version,
        None,
        d.node_id,
        attributes={
            "variant": d.variant,
            "metric": d.metric,
            "effective_at": format_ts(d.effective_at),
            "first_entry_at": format_ts(d.first_entry_at),
            "after_ms": d.after_ms,
            "min_users": d.min_users,
            **d.figures,
        },
    )
