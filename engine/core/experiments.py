"""The running experiments: every split with a ``winner``, counted from the outcomes, and
looked at when its marks come (:func:`engine.core.winner.decide` makes the call).

Both adapters drive one :class:`Experiments` the same way, which is why they reach the same
decision at the same instant:

* :meth:`Experiments.observe` every outcome the engine produces (the simulator as it
  carries effects out; on Kafka the decider reading ``journey.outcomes``). Per split it
  keeps, per variant, when each run took it (``node_entered`` with ``attributes.variant``)
  and when each of those runs first succeeded: ``goal_converted`` (metric conversion), or
  ``message_clicked`` / ``message_read`` of a message sent by a send node after the split
  (click / read). A repeated outcome counts once (per run and split).
* :meth:`Experiments.due` with an instant ``upto`` such that every outcome before ``upto``
  has been observed (the simulator: the time of its next input; the decider: the
  outcomes' low watermark) looks at every mark at or before ``upto`` in order. The marks of
  a split are its first entry + ``after``, then every :data:`~engine.core.winner.CHECK_EVERY_MS`
  (an hour); a mark ``T`` counts the runs and successes *before* ``T``, and a decision made
  there is effective at ``T``.

Once decided (here, or learnt from elsewhere with :meth:`Experiments.known`) a split is
counted no more.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.core.effects import Outcome
from engine.core.winner import (
    CHECK_EVERY_MS,
    Evaluation,
    SplitDecision,
    SplitKey,
    VariantCount,
    decide,
    evaluate,
)
from engine.journey.model import Journey, SendNode, SplitNode, successors

#: metric -> the outcome type that counts as a success
SUCCESS: dict[str, str] = {
    "conversion": "goal_converted",
    "click": "message_clicked",
    "read": "message_read",
}


def downstream_sends(journey: Journey, node_id: str) -> frozenset[str]:
    """The send nodes a run can reach after ``node_id`` (a click or read of their messages
    is the split's doing)."""
    seen: set[str] = set()
    todo = [t for _, t in successors(journey.nodes[node_id])]
    while todo:
        nid = todo.pop()
        if nid in seen or nid not in journey.nodes:
            continue
        seen.add(nid)
        todo += [t for _, t in successors(journey.nodes[nid])]
    return frozenset(n for n in seen if isinstance(journey.nodes[n], SendNode))


@dataclass
class _Split:
    journey: Journey
    node_id: str
    metric: str
    after_ms: int
    downstream: frozenset[str]
    entries: dict[str, list[int]]  # variant -> sorted times runs took it
    successes: dict[str, list[int]]  # variant -> sorted times of each run's first success
    first_entry_at: int | None = None
    next_mark: int | None = None
    last_ts: int | None = None  # the latest outcome counted
    decided: SplitDecision | None = None

    def counts(self, at: int) -> dict[str, VariantCount]:
        return {
            v: VariantCount(bisect_left(self.entries[v], at), bisect_left(self.successes[v], at))
            for v in self.entries
        }

    def seen(self, ts: int) -> None:
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)


@dataclass
class Experiments:
    splits: dict[SplitKey, _Split] = field(default_factory=dict)
    # run -> the winner splits it went through: (split, variant)
    runs: dict[str, list[tuple[SplitKey, str]]] = field(default_factory=dict)
    scored: set[tuple[str, SplitKey]] = field(default_factory=set)

    @classmethod
    def of(cls, journeys: Iterable[Journey]) -> Experiments:
        splits = {}
        for j in journeys:
            for nid, node in j.nodes.items():
                if isinstance(node, SplitNode) and node.winner is not None:
                    names = [v.name for v in node.variants]
                    splits[(j.id, j.version, nid)] = _Split(
                        j,
                        nid,
                        node.winner.metric,
                        node.winner.after_ms,
                        downstream_sends(j, nid),
                        {n: [] for n in names},
                        {n: [] for n in names},
                    )
        return cls(splits)

    def __bool__(self) -> bool:
        return bool(self.splits)

    # ------------------------------------------------------------------ counting

    def observe(self, o: Outcome) -> None:
        """Count one outcome (any outcome: those that don't matter are skipped)."""
        if o.journey_id is None or o.instance_id is None or o.journey_version is None:
            return
        if o.type == "node_entered":
            self._entered(o)
            return
        for key, variant in self.runs.get(o.instance_id, ()):
            sp = self.splits[key]
            if sp.decided is not None or SUCCESS[sp.metric] != o.type:
                continue
            if sp.metric != "conversion" and o.node_id not in sp.downstream:
                continue
            if (o.instance_id, key) in self.scored:
                continue
            self.scored.add((o.instance_id, key))
            insort(sp.successes[variant], o.ts)
            sp.seen(o.ts)

    def _entered(self, o: Outcome) -> None:
        assert o.journey_id is not None and o.journey_version is not None
        assert o.instance_id is not None and o.node_id is not None
        key = (o.journey_id, o.journey_version, o.node_id)
        sp = self.splits.get(key)
        variant = o.attributes.get("variant")
        # Entrants who took a decided winner are not part of the experiment.
        if sp is None or sp.decided is not None or o.attributes.get("winner"):
            return
        if not isinstance(variant, str) or variant not in sp.entries:
            return
        mine = self.runs.setdefault(o.instance_id, [])
        if any(k == key for k, _ in mine):
            return  # a repeat (at-least-once), or the run came round to the split again
        mine.append((key, variant))
        insort(sp.entries[variant], o.ts)
        sp.seen(o.ts)
        if sp.first_entry_at is None or o.ts < sp.first_entry_at:
            # Marks are only looked at once everything before them is in, so an earlier
            # first entry can only show up before the first mark was looked at.
            sp.first_entry_at = o.ts
            sp.next_mark = o.ts + sp.after_ms

    # ------------------------------------------------------------------ deciding

    def due(self, upto: int) -> list[SplitDecision]:
        """Look at every mark at or before ``upto`` (every outcome before ``upto`` must have
        been observed); the decisions made, in time order."""
        made: list[SplitDecision] = []
        for key in sorted(self.splits):
            sp = self.splits[key]
            while sp.decided is None and sp.next_mark is not None and sp.next_mark <= upto:
                mark = sp.next_mark
                d = decide(sp.journey, sp.node_id, sp.counts(mark), sp.first_entry_at, mark)
                if d is not None:
                    self._decided(sp, d)
                    made.append(d)
                elif sp.last_ts is not None and sp.last_ts < mark:
                    # Nothing counted since: every later mark up to ``upto`` sees the same
                    # figures and the same answer. Skip to the first mark after ``upto``.
                    skip = (upto - mark) // CHECK_EVERY_MS + 1
                    sp.next_mark = mark + skip * CHECK_EVERY_MS
                else:
                    sp.next_mark = mark + CHECK_EVERY_MS
        made.sort(key=lambda d: (d.decided_at, d.key))
        return made

    def known(self, d: SplitDecision) -> bool:
        """A decision made elsewhere (read back from the control topic): the split is
        counted no more. False when the split is not one of ours."""
        sp = self.splits.get(d.key)
        if sp is None:
            return False
        if sp.decided is None:
            self._decided(sp, d)
        return True

    def _decided(self, sp: _Split, d: SplitDecision) -> None:
        sp.decided = d
        sp.next_mark = None
        sp.entries = {v: [] for v in sp.entries}
        sp.successes = {v: [] for v in sp.successes}
        for iid in list(self.runs):
            left = [(k, v) for k, v in self.runs[iid] if k != d.key]
            if left:
                self.runs[iid] = left
            else:
                del self.runs[iid]
        self.scored = {(i, k) for i, k in self.scored if k != d.key}

    # ------------------------------------------------------------------ reading

    def decision(self, key: SplitKey) -> SplitDecision | None:
        sp = self.splits.get(key)
        return None if sp is None else sp.decided

    def next_mark(self, key: SplitKey) -> int | None:
        sp = self.splits.get(key)
        return None if sp is None else sp.next_mark

    def evaluation(self, key: SplitKey, at: int) -> Evaluation | None:
        """The figures of an undecided split at ``at`` (runs before ``at``), and what is
        missing; None for a decided split or one that is not ours."""
        sp = self.splits.get(key)
        if sp is None or sp.decided is not None:
            return None
        return evaluate(sp.journey, sp.node_id, sp.counts(at), sp.first_entry_at, at)
