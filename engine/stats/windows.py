"""Windowed outcome counters with bounded memory: the live state of the stats service.

Pure (no I/O, no clock): feed outcome dicts (the wire form) with :meth:`WindowStats.add`;
save and restore with :meth:`WindowStats.to_state` / :meth:`WindowStats.from_state` (plain
JSON data). What it keeps, per journey id and version:

* all-time totals per node and outcome type, plus a breakdown by channel (sends,
  deliveries) or reason (suppressions, failures, fallbacks, deferrals, exits), and users
  reached (:mod:`engine.stats.reach`: the sends not yet delivered, the
  :attr:`Limits.messages` most recent ones, are remembered for it);
* the same per-type counts in hourly and daily buckets of the outcome's own ``ts``, for the
  most recent :attr:`Limits.hours` hours and :attr:`Limits.days` days of data;
* edges taken (``node_entered`` of a target, attributed to the node its run was at before)
  and split variants (users per variant, and the goal conversions of their runs);
* runs per control-group arm and their conversions (:mod:`engine.stats.lift`).

Outcomes are delivered at least once: one whose ``outcome_id`` is among the last
:attr:`Limits.seen_ids` counted ids is a duplicate and changes nothing. Runs are remembered
(node, split variants) for the :attr:`Limits.instances` most recently active ones; an edge or
a conversion of a run forgotten by then is counted in the totals but not per edge / variant.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.durations import format_ts, parse_ts_ms
from engine.journey.diagram import ENTRY_ID
from engine.journey.model import Journey
from engine.stats.aggregate import (
    ACTED,
    counter_keys,
    journey_summary,
    lift_reports,
    node_rows,
    reached_keys,
    variant_rows,
)
from engine.stats.lift import arm_of, global_report
from engine.stats.reach import Reach
from engine.stats.winner import winner_report

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BUCKETS = {"hour": HOUR_MS, "day": DAY_MS}
SERIES = {
    "journey_entered": "entered",
    "message_sent": "sent",
    "message_delivered": "delivered",
    "message_clicked": "clicked",
    "goal_converted": "converted",
}

FUNNEL = (  # summary key, label, rate key, what the rate is a share of
    ("entered", "Entered", None, ""),
    ("sent", "Sent", None, ""),
    ("reached", "Reached", "reach_rate_of_sends", "of sends, by RCS or SMS"),
    ("read", "Read", "read_rate", "of RCS delivered"),
    ("clicked", "Clicked", "click_through_rate", "of RCS delivered (CTR)"),
    ("converted", "Converted", "conversion_rate", "of entered"),
)
JV = tuple[str, int]  # journey id, version
WKey = tuple[int, str, str]  # version, node id ("" for none), outcome type


@dataclass(frozen=True)
class Limits:
    seen_ids: int = 200_000
    instances: int = 100_000
    messages: int = 200_000
    hours: int = 24 * 14
    days: int = 400


@dataclass
class _Run:
    journey_id: str
    version: int
    node: str
    variants: list[tuple[int, str, str]] = field(default_factory=list)  # version, split, name
    acted: set[str] = field(default_factory=set)  # clicked / read: counted for its variants
    # the version it entered and its control-group arm (engine.stats.lift), for its goal
    arm: tuple[int, str] | None = None


def _ts_ms(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return parse_ts_ms(value)
        except ValueError:
            return None
    return None


class WindowStats:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.totals: dict[JV, dict[str, Counter[str]]] = {}
        # bucket name -> journey id -> bucket start (epoch ms) -> counts
        self.windows: dict[str, dict[str, dict[int, Counter[WKey]]]] = {"hour": {}, "day": {}}
        self.edges: dict[JV, Counter[tuple[str, str]]] = {}
        self.variants: dict[JV, Counter[tuple[str, str, str]]] = {}  # split, variant, what
        # splits that pick their winner (engine.stats.winner): split -> the decision's
        # outcome, and split -> its first entry (epoch ms)
        self.decisions: dict[JV, dict[str, dict[str, Any]]] = {}
        self.first_entry: dict[JV, dict[str, int]] = {}
        self.arms: dict[JV, Counter[tuple[str, str]]] = {}  # arm, "users" or "converted"
        self.by_type: Counter[str] = Counter()
        self.counted = 0
        self.duplicates = 0
        self.invalid = 0
        self.last_ts: int | None = None
        self._seen: dict[str, None] = {}
        self._runs: OrderedDict[str, _Run] = OrderedDict()
        self._reach = Reach(self.limits.messages)

    # ------------------------------------------------------------------ counting

    def add(self, o: Mapping[str, Any]) -> bool:
        """Count one outcome; False for a duplicate or something that isn't an outcome."""
        oid, kind = o.get("outcome_id"), o.get("type")
        if not isinstance(oid, str) or not oid or not isinstance(kind, str) or not kind:
            self.invalid += 1
            return False
        if oid in self._seen:
            self.duplicates += 1
            return False
        self._seen[oid] = None
        if len(self._seen) > self.limits.seen_ids:
            del self._seen[next(iter(self._seen))]
        self.counted += 1
        self.by_type[kind] += 1
        jid, ver = o.get("journey_id"), o.get("journey_version")
        if not isinstance(jid, str) or not isinstance(ver, int) or isinstance(ver, bool):
            return True  # not about a journey (a HELP answer, an opt-out): by type only
        raw_node, raw_attrs = o.get("node_id"), o.get("attributes")
        node = raw_node if isinstance(raw_node, str) else ""
        attrs: Mapping[str, Any] = raw_attrs if isinstance(raw_attrs, dict) else {}
        counts = self.totals.setdefault((jid, ver), {}).setdefault(node, Counter())
        counts.update(counter_keys(o))
        if kind == "message_sent":
            self._reach.sent(o)
        elif kind == "message_delivered" and self._reach.delivered(o):
            counts.update(reached_keys(o))
        ts = _ts_ms(o.get("ts"))
        if ts is not None:
            self._window(ts, jid, (ver, node, kind))
        if kind == "split_winner_chosen":
            self.decisions.setdefault((jid, ver), {})[node] = dict(o)
        self._follow(o.get("instance_id"), kind, jid, ver, node, attrs, ts)
        return True

    def add_all(self, outcomes: Iterable[Mapping[str, Any]]) -> int:
        return sum(1 for o in outcomes if self.add(o))

    def _window(self, ts: int, jid: str, key: WKey) -> None:
        last = self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        for name, size in BUCKETS.items():
            keep = self.limits.hours if name == "hour" else self.limits.days
            horizon = last - last % size - keep * size  # buckets up to here are dropped
            start = ts - ts % size
            if start <= horizon:
                continue  # older than the window: in the totals only
            buckets = self.windows[name].setdefault(jid, {})
            buckets.setdefault(start, Counter())[key] += 1
            if len(buckets) > keep:
                for old in [b for b in buckets if b <= horizon]:
                    del buckets[old]

    def _follow(
        self,
        iid: Any,
        kind: str,
        jid: str,
        ver: int,
        node: str,
        attrs: Mapping[str, Any],
        ts: int | None = None,
    ) -> None:
        if not isinstance(iid, str):
            return
        run = self._runs.get(iid)
        if run is not None:
            self._runs.move_to_end(iid)
        if kind == "journey_entered":
            run = self._runs[iid] = _Run(jid, ver, ENTRY_ID, arm=(ver, arm_of(attrs)))
            self.arms.setdefault((jid, ver), Counter())[(arm_of(attrs), "users")] += 1
            if len(self._runs) > self.limits.instances:
                self._runs.popitem(last=False)
        elif kind == "node_entered" and run is not None:
            self.edges.setdefault((run.journey_id, run.version), Counter())[(run.node, node)] += 1
            run.node = node
        elif kind == "instance_migrated" and run is not None:
            run.version, run.node = ver, node
        elif kind == "goal_converted" and run is not None:
            if run.arm is not None:
                entered, arm = run.arm
                self.arms.setdefault((jid, entered), Counter())[(arm, "converted")] += 1
            for v, split, name in run.variants:
                self.variants.setdefault((jid, v), Counter())[(split, name, "converted")] += 1
        elif kind in ACTED and run is not None and ACTED[kind] not in run.acted:
            run.acted.add(ACTED[kind])
            for v, split, name in run.variants:
                self.variants.setdefault((jid, v), Counter())[(split, name, ACTED[kind])] += 1
        variant = attrs.get("variant")
        if kind == "node_entered" and isinstance(variant, str) and attrs.get("winner"):
            # took a split's decided winner: not part of the experiment any more
            self.variants.setdefault((jid, ver), Counter())[(node, variant, "after_decision")] += 1
        elif kind == "node_entered" and isinstance(variant, str):
            self.variants.setdefault((jid, ver), Counter())[(node, variant, "users")] += 1
            if ts is not None:
                firsts = self.first_entry.setdefault((jid, ver), {})
                firsts[node] = min(ts, firsts.get(node, ts))
            if run is not None:
                run.variants.append((ver, node, variant))

    # ------------------------------------------------------------------ reading

    def journeys(self) -> list[JV]:
        return sorted(self.totals)

    def node_counts(self, jid: str, ver: int) -> dict[str, Counter[str]]:
        return self.totals.get((jid, ver), {})

    def journey_totals(self, jid: str, ver: int) -> Counter[str]:
        """Counts of one version over all its nodes (keys as in ``node_counts``)."""
        t: Counter[str] = Counter()
        for c in self.node_counts(jid, ver).values():
            t.update(c)
        return t

    def summary(self, jid: str, ver: int) -> dict[str, Any]:
        """Journey-level figures of one version."""
        return journey_summary(jid, ver, self.journey_totals(jid, ver))

    def node_report(
        self, jid: str, ver: int, journey: Journey | None = None
    ) -> dict[str, dict[str, Any]]:
        """Per node, in flow order (the journey's nodes, all of them, when it is given): the
        figures and rates of ``journeys stats`` (:func:`engine.stats.aggregate.node_rows`)."""
        edges = self.edges.get((jid, ver), Counter())
        return node_rows(self.node_counts(jid, ver), journey, edges)

    def edge_report(self, jid: str, ver: int) -> list[dict[str, Any]]:
        edges = self.edges.get((jid, ver), Counter())
        return [{"source": s, "target": t, "users": n} for (s, t), n in sorted(edges.items())]

    def split_report(self, jid: str, ver: int, journey: Journey | None = None) -> dict[str, Any]:
        """Per split node: users and conversions per variant, differences with a 95% CI;
        for a split that picks its winner, its decision or what is missing
        (:mod:`engine.stats.winner`)."""
        counts = self.variants.get((jid, ver), Counter())
        decisions = self.decisions.get((jid, ver), {})
        out: dict[str, Any] = {}
        for split in sorted({s for s, _, _ in counts} | set(decisions)):
            names = {v for s, v, w in counts if s == split and w != "after_decision"}
            raw = {n: (counts[(split, n, "converted")], counts[(split, n, "users")]) for n in names}
            out[split] = variant_rows(raw)
            by_variant: dict[str, dict[str, int]] = {}
            for (s, v, what), n in counts.items():
                if s == split:
                    by_variant.setdefault(v, {})[what] = n
            won = winner_report(
                journey,
                split,
                by_variant,
                self.first_entry.get((jid, ver), {}).get(split),
                self.last_ts,
                decisions.get(split),
            )
            if won is not None:
                out[split]["winner"] = won
        return out

    def arm_counts(self, jid: str, ver: int) -> dict[str, tuple[int, int]]:
        """(converted, runs) per control-group arm of one version (:mod:`engine.stats.lift`)."""
        c = self.arms.get((jid, ver), Counter())
        arms = [arm for arm, what in c if what == "users"]
        return {arm: (c[(arm, "converted")], c[(arm, "users")]) for arm in arms}

    def global_control(
        self, has_goal: Callable[[str, int], bool | None] = lambda j, v: None
    ) -> dict[str, Any] | None:
        """The global control group's lift across journey versions (``has_goal`` says
        which have a goal, None when not known)."""
        return global_report((self.arm_counts(j, v), has_goal(j, v)) for j, v in sorted(self.arms))

    def report(self, jid: str, ver: int, journey: Journey | None = None) -> dict[str, Any]:
        """One version: summary, funnel, per-node figures in flow order (with label and
        type), edges taken, split variants with their 95% intervals."""
        nodes = self.node_report(jid, ver, journey)
        summary = self.summary(jid, ver)
        funnel = [
            {
                "step": key,
                "label": label,
                "count": summary[key],
                "rate": summary[rate] if rate else None,
                "rate_of": of,
            }
            for key, label, rate, of in FUNNEL
        ]
        return {
            "summary": summary,
            "funnel": funnel,
            "nodes": nodes,
            "edges": self.edge_report(jid, ver),
            "splits": self.split_report(jid, ver, journey),
            **lift_reports(self.arm_counts(jid, ver), journey),
        }

    def series(
        self,
        jid: str,
        bucket: str,
        *,
        version: int | None = None,
        points: int = 48,
        now_ms: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries, sends, deliveries, clicks and conversions per bucket of the journey (all
        versions unless ``version``): the last ``points`` buckets up to the later of the
        newest data and ``now_ms``, empty buckets included."""
        size = BUCKETS[bucket]
        mine = self.windows[bucket].get(jid, {})
        ends = [max(mine)] if mine else []
        if now_ms is not None:
            ends.append(now_ms - now_ms % size)
        if not ends:
            return []
        last = max(ends)
        out = []
        for i in range(points - 1, -1, -1):
            start = last - i * size
            row: dict[str, Any] = {"start": format_ts(start), **dict.fromkeys(SERIES.values(), 0)}
            for (v, _, kind), n in mine.get(start, Counter()).items():
                if kind in SERIES and (version is None or v == version):
                    row[SERIES[kind]] += n
            out.append(row)
        return out

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        return {
            "totals": [
                [j, v, n, dict(c)]
                for (j, v), nodes in self.totals.items()
                for n, c in nodes.items()
            ],
            "windows": {
                name: [
                    [j, b, [[*k, n] for k, n in c.items()]]
                    for j, by_start in per_journey.items()
                    for b, c in by_start.items()
                ]
                for name, per_journey in self.windows.items()
            },
            "edges": [
                [j, v, s, t, n] for (j, v), c in self.edges.items() for (s, t), n in c.items()
            ],
            "variants": [
                [j, v, *k, n] for (j, v), c in self.variants.items() for k, n in c.items()
            ],
            "arms": [[j, v, *k, n] for (j, v), c in self.arms.items() for k, n in c.items()],
            "by_type": dict(self.by_type),
            "counted": self.counted,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "last_ts": self.last_ts,
            "seen": list(self._seen),
            "reach": self._reach.to_state(),
            "runs": [
                [i, r.journey_id, r.version, r.node, [list(x) for x in r.variants], sorted(r.acted),
                 list(r.arm) if r.arm else None]
                for i, r in self._runs.items()
            ],
            "decisions": [
                [j, v, n, o] for (j, v), by in self.decisions.items() for n, o in by.items()
            ],
            "first_entry": [
                [j, v, n, t] for (j, v), by in self.first_entry.items() for n, t in by.items()
            ],
        }

    @classmethod
    def from_state(cls, data: Mapping[str, Any], limits: Limits | None = None) -> WindowStats:
        s = cls(limits)
        for j, v, n, c in data.get("totals", ()):
            s.totals.setdefault((j, v), {})[n] = Counter(c)
        for name, rows in data.get("windows", {}).items():
            for j, start, counts in rows:
                got = Counter({(v, n, k): c for v, n, k, c in counts})
                s.windows.setdefault(name, {}).setdefault(j, {})[start] = got
        for j, v, src, dst, n in data.get("edges", ()):
            s.edges.setdefault((j, v), Counter())[(src, dst)] = n
        for j, v, split, name, what, n in data.get("variants", ()):
            s.variants.setdefault((j, v), Counter())[(split, name, what)] = n
        for j, v, arm, what, n in data.get("arms", ()):  # files from before holdouts: none
            s.arms.setdefault((j, v), Counter())[(arm, what)] = n
        s.by_type = Counter(data.get("by_type", {}))
        s.counted, s.duplicates = data.get("counted", 0), data.get("duplicates", 0)
        s.invalid, s.last_ts = data.get("invalid", 0), data.get("last_ts")
        s._seen = dict.fromkeys(data.get("seen", ())[-s.limits.seen_ids :])
        s._reach = Reach.from_state(data.get("reach", ()), s.limits.messages)
        for i, j, v, node, variants, *more in data.get("runs", ())[-s.limits.instances :]:
            acted = set(more[0]) if more and more[0] else set()
            arm = (more[1][0], more[1][1]) if len(more) > 1 and more[1] else None
            s._runs[i] = _Run(j, v, node, [(a, b, c) for a, b, c in variants], acted, arm)
        for j, v, n, o in data.get("decisions", ()):
            s.decisions.setdefault((j, v), {})[n] = o
        for j, v, n, t in data.get("first_entry", ()):
            s.first_entry.setdefault((j, v), {})[n] = t
        return s
