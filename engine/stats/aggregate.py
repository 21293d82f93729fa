"""Count outcomes per journey version and node, and turn the counts into figures and rates.

Both the stats service (:mod:`engine.stats.windows`, live and bounded) and ``journeys
stats`` (:class:`Aggregator`, one pass over a file or the topic) keep *flat counters*: per
node, one key per outcome type, plus ``<type>:<channel or reason>`` breakdowns and a few
derived keys (:data:`FALLBACK_SENT`, :data:`REACHED`). The functions here turn such a
counter into the rows both show (:func:`node_row`, :func:`journey_summary`,
:func:`variant_rows`), so the table, the JSON and the dashboard agree by construction.

Outcomes are delivered at least once: duplicates (same ``outcome_id``) count once. Split
variants are attributed per instance (the ``variant`` of the split's ``node_entered``), so
conversions can be compared between variants with a confidence interval
(:mod:`engine.stats.proportions`); runs by control group too, for the lift of a journey
over its holdout and of all journeys over the global control group
(:mod:`engine.stats.lift`). Users reached: :mod:`engine.stats.reach`; node order:
:mod:`engine.stats.flow`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.durations import parse_ts_ms
from engine.journey.diagram import ENTRY_ID
from engine.journey.model import Journey
from engine.stats.flow import node_order
from engine.stats.lift import arm_of, global_report, holdout_report
from engine.stats.proportions import diff_ci, rate_ci, small_sample
from engine.stats.reach import Reach, fallback_of
from engine.stats.winner import winner_report

#: outcome type -> its count's name in a node row.
_COUNTED = {
    "node_entered": "entered",
    "message_delivered": "delivered",
    "message_read": "read",
    "message_clicked": "clicked",
    "message_replied": "replied",
    "message_failed": "failed",
    "message_unknown": "unknown",  # the gateway can't tell whether the provider took it
    "fallback_triggered": "fallback",
    "message_deferred": "deferred",
    "user_opted_out": "opted_out",
    "profile_updated": "profile_updated",  # an update_profile node that changed something
    "profile_update_refused": "profile_refused",  # ...whose update broke a profile limit
    "webhook_called": "webhook_called",  # webhook nodes: calls answered 2xx
    "webhook_failed": "webhook_failed",  # and calls that failed (by reason below)
}

#: outcome type -> the attribute its count is broken down by (message_sent and
#: message_delivered: by channel).
QUALIFIER = {
    "message_suppressed": "reason",
    "message_failed": "reason",
    "fallback_triggered": "reason",
    "message_deferred": "reason",
    "journey_exited": "reason",
    "profile_update_refused": "reason",
    "webhook_failed": "reason",
}
BY_CHANNEL = ("message_sent", "message_delivered")
ACTED = {"message_clicked": "clicked", "message_read": "read"}  # what a run did, by outcome
FALLBACK_SENT = "message_sent+fallback"  # an SMS sent as the fallback of an RCS message
REACHED = "message_delivered+reached"  # the first delivery of a send (engine.stats.reach)


def _ts_ms(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return parse_ts_ms(value)
        except ValueError:
            return None
    return None


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


ratio = _ratio


def counter_keys(o: Mapping[str, Any]) -> list[str]:
    """The flat counter keys one outcome adds to its node (reach aside: :func:`reached_keys`)."""
    kind = str(o.get("type"))
    attrs = o.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    keys = [kind]
    if kind in BY_CHANNEL:
        keys.append(f"{kind}:{o.get('channel') or '?'}")
        if kind == "message_sent" and attrs.get("fallback_of"):
            keys.append(FALLBACK_SENT)
    elif kind in QUALIFIER:
        keys.append(f"{kind}:{attrs.get(QUALIFIER[kind]) or '?'}")
    return keys


def reached_keys(o: Mapping[str, Any]) -> list[str]:
    """The keys a delivery adds when it is the first of its send: total and by channel."""
    return [REACHED, f"{REACHED}:{o.get('channel') or '?'}"]


def breakdown(c: Mapping[str, int], kind: str) -> dict[str, int]:
    prefix = kind + ":"
    return {k[len(prefix) :]: n for k, n in sorted(c.items()) if k.startswith(prefix)}


def node_row(c: Mapping[str, int]) -> dict[str, Any]:
    """A node's figures and rates from its flat counter.

    ``reached``: sends delivered by either channel, once each; ``reach_rate`` is over the
    users who entered the node, ``reach_rate_of_sends`` over its sends (a fallback SMS is
    part of its RCS send). ``delivery_rate`` counts messages (an RCS attempt and its
    fallback SMS are two). Read and click-through rates are over *RCS* deliveries, the only
    channel that reports them: None (shown "-") where nothing went out by RCS."""
    g = c.get
    sent, delivered = breakdown(c, "message_sent"), breakdown(c, "message_delivered")
    fallback_sent = g(FALLBACK_SENT, 0)
    sends = g("message_sent", 0) - fallback_sent
    rcs_delivered = delivered.get("rcs", 0)
    row: dict[str, Any] = {name: g(kind, 0) for kind, name in _COUNTED.items()}
    row.update(
        sent=sent,
        sends=sends,
        fallback_sent=fallback_sent,
        delivered_by_channel=delivered,
        reached=g(REACHED, 0),
        reached_by_channel=breakdown(c, REACHED),
        suppressed=breakdown(c, "message_suppressed"),
        exited=breakdown(c, "journey_exited"),
        failed_reasons=breakdown(c, "message_failed"),
        fallback_reasons=breakdown(c, "fallback_triggered"),
        profile_refused_reasons=breakdown(c, "profile_update_refused"),
        webhook_failed_reasons=breakdown(c, "webhook_failed"),
        reach_rate=_ratio(g(REACHED, 0), row["entered"]),
        reach_rate_of_sends=_ratio(g(REACHED, 0), sends),
        delivery_rate=_ratio(row["delivered"], g("message_sent", 0)),
        delivery_rate_by_channel={ch: _ratio(delivered.get(ch, 0), n) for ch, n in sent.items()},
        read_rate=_ratio(row["read"], rcs_delivered),
        click_through_rate=_ratio(row["clicked"], rcs_delivered),
        fallback_rate=_ratio(row["fallback"], sent.get("rcs", 0)),
    )
    return row


def node_rows(
    counted: Mapping[str, Mapping[str, int]],
    journey: Journey | None = None,
    edges: Mapping[tuple[str, str], int] | Iterable[tuple[str, str]] = (),
) -> dict[str, dict[str, Any]]:
    """Every node's row (the journey's nodes too when it is known, even those nobody
    reached), in flow order (:func:`engine.stats.flow.node_order`), with label and type."""
    out: dict[str, dict[str, Any]] = {}
    for nid in node_order(counted, journey, edges):
        row = node_row(counted.get(nid, {}))
        node = journey.nodes.get(nid) if journey is not None else None
        row["label"] = journey.label(nid) if journey is not None else nid
        row["type"] = node.type if node is not None else None
        out[nid] = row
    return out


def journey_summary(jid: str, ver: int, t: Mapping[str, int]) -> dict[str, Any]:
    """Journey-level figures and rates from a version's flat counter (all nodes summed)."""
    g = t.get
    entered, converted = g("journey_entered", 0), g("goal_converted", 0)
    sent, delivered = g("message_sent", 0), g("message_delivered", 0)
    sends = sent - g(FALLBACK_SENT, 0)
    rcs_delivered = g("message_delivered:rcs", 0)
    return {
        "journey_id": jid,
        "version": ver,
        "entered": entered,
        "converted": converted,
        "conversion_rate": _ratio(converted, entered),
        "sent": sent,
        "sends": sends,
        "delivered": delivered,
        "reached": g(REACHED, 0),
        "read": g("message_read", 0),
        "clicked": g("message_clicked", 0),
        "replied": g("message_replied", 0),
        "failed": g("message_failed", 0),
        "fallback": g("fallback_triggered", 0),
        "suppressed": g("message_suppressed", 0),
        "deferred": g("message_deferred", 0),
        "opted_out": g("user_opted_out", 0),
        "exited": g("journey_exited", 0),
        "reach_rate_of_sends": _ratio(g(REACHED, 0), sends),
        "delivery_rate": _ratio(delivered, sent),
        "read_rate": _ratio(g("message_read", 0), rcs_delivered),
        "click_through_rate": _ratio(g("message_clicked", 0), rcs_delivered),
        "fallback_rate": _ratio(g("fallback_triggered", 0), g("message_sent:rcs", 0)),
    }


def variant_rows(raw: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """``{variant: (converted, users)}`` -> per variant its rate with a 95% Wilson interval;
    differences to the first variant (by name) with a 95% Newcombe interval; and
    ``small_sample`` when a variant is under the thresholds of
    :mod:`engine.stats.proportions`."""
    names = sorted(raw)
    rows = {
        n: {
            "users": users,
            "converted": conv,
            "conversion_rate": _ratio(conv, users),
            **rate_ci(conv, users),
        }
        for n, (conv, users) in ((n, raw[n]) for n in names)
    }
    diffs = {f"{o} - {names[0]}": diff_ci(*raw[o], *raw[names[0]]) for o in names[1:]}
    return {
        "variants": rows,
        "differences": diffs,
        "small_sample": small_sample(raw.values()),
    }


# --------------------------------------------------------------------------- one pass


def _sets_by_variant() -> dict[str, dict[str, set[str]]]:
    # Named functions, not lambdas: a JourneyStats pickles (``journeys backtest --jobs``
    # sends them between processes).
    return defaultdict(_variant_sets)


def _variant_sets() -> dict[str, set[str]]:
    return defaultdict(set)


@dataclass
class JourneyStats:
    """The counts of one journey version, exact: every run and send is remembered."""

    journey_id: str
    version: int
    counts: dict[str, Counter[str]] = field(default_factory=dict)  # node ("": none) -> keys
    edges: Counter[tuple[str, str]] = field(default_factory=Counter)
    # split node -> variant -> instance ids; and converted instance ids
    variants: dict[str, dict[str, set[str]]] = field(default_factory=_sets_by_variant)
    converted_instances: set[str] = field(default_factory=set)
    # splits that pick their winner (engine.stats.winner)
    acted: dict[str, set[str]] = field(default_factory=lambda: {"clicked": set(), "read": set()})
    first_entry: dict[str, int] = field(default_factory=dict)  # split -> its first entry
    after_decision: dict[str, Counter[str]] = field(default_factory=dict)  # split -> variants
    decisions: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # split -> outcome
    last_ts: int | None = None
    # treated / holdout / control (engine.stats.lift) -> instance ids
    arms: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    messages: list[Mapping[str, Any]] = field(default_factory=list)  # sends, deliveries
    at: dict[str, str] = field(default_factory=dict)  # instance -> the node it is at

    def add(self, o: Mapping[str, Any]) -> None:
        kind, node, iid = o.get("type"), o.get("node_id"), o.get("instance_id")
        node = node if isinstance(node, str) else ""
        iid = iid if isinstance(iid, str) else ""
        self.counts.setdefault(node, Counter()).update(counter_keys(o))
        attrs = o.get("attributes")
        attrs = attrs if isinstance(attrs, dict) else {}
        if kind == "journey_entered":
            self.at[iid] = ENTRY_ID
            self.arms[arm_of(attrs)].add(iid)
        elif kind == "goal_converted":
            self.converted_instances.add(iid)
        elif kind in ("message_sent", "message_delivered"):
            self.messages.append(o)
        elif kind in ACTED:
            self.acted[ACTED[kind]].add(iid)
        elif kind == "split_winner_chosen":
            self.decisions[node] = o
        ts = _ts_ms(o.get("ts"))
        if ts is not None:
            self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if kind == "node_entered":
            if iid in self.at:
                self.edges[(self.at[iid], node)] += 1
            self.at[iid] = node
            variant = attrs.get("variant")
            if isinstance(variant, str) and attrs.get("winner"):
                self.after_decision.setdefault(node, Counter())[variant] += 1
            elif isinstance(variant, str):
                self.variants[node][variant].add(iid)
                if ts is not None:
                    self.first_entry[node] = min(ts, self.first_entry.get(node, ts))

    def counters(self) -> dict[str, Counter[str]]:
        """The flat counters with users reached: every send first, then their fallback SMS,
        then the deliveries in the order they came (so the input's order between users
        does not matter)."""
        out = {n: Counter(c) for n, c in self.counts.items()}
        reach = Reach()
        sent = [o for o in self.messages if o.get("type") == "message_sent"]
        for o in sorted(sent, key=lambda o: fallback_of(o) is not None):
            reach.sent(o)
        for o in self.messages:
            if o.get("type") == "message_delivered" and reach.delivered(o):
                out[o.get("node_id") or ""].update(reached_keys(o))
        return out

    def fold_reach(self) -> None:
        """Count the users reached by the messages so far into the counters, and forget the
        messages. Only for whole users (``journeys backtest`` counts batches of users):
        a delivery that comes later could no longer find its send."""
        self.counts = self.counters()
        self.messages = []

    def merge(self, other: JourneyStats) -> None:
        """Add the counts of other users (none of them counted here): ``journeys
        backtest`` counts partitions apart and merges them, and gets the report of all of
        them. Every field is merged here: a field added to the class must be added here
        too (tests/unit/test_backtest.py fails until it is)."""
        for node, c in other.counts.items():
            self.counts.setdefault(node, Counter()).update(c)
        self.edges.update(other.edges)
        for split, by_variant in other.variants.items():
            for variant, instances in by_variant.items():
                self.variants[split][variant] |= instances
        self.converted_instances |= other.converted_instances
        for what, instances in other.acted.items():
            self.acted.setdefault(what, set()).update(instances)
        for split, ts in other.first_entry.items():
            self.first_entry[split] = min(ts, self.first_entry.get(split, ts))
        for split, after in other.after_decision.items():
            self.after_decision.setdefault(split, Counter()).update(after)
        self.decisions.update(other.decisions)
        if other.last_ts is not None:
            self.last_ts = max(other.last_ts, self.last_ts or other.last_ts)
        for arm, instances in other.arms.items():
            self.arms[arm] |= instances
        self.messages.extend(other.messages)
        self.at.update(other.at)

    def variant_report(self, journey: Journey | None = None) -> dict[str, Any]:
        out = {}
        splits = set(self.variants) | set(self.decisions) | set(self.after_decision)
        for split in sorted(splits):
            by_variant = self.variants.get(split, {})
            raw = {n: (len(m & self.converted_instances), len(m)) for n, m in by_variant.items()}
            out[split] = variant_rows(raw)
            counts = {
                n: {
                    "users": len(m),
                    "converted": len(m & self.converted_instances),
                    "clicked": len(m & self.acted["clicked"]),
                    "read": len(m & self.acted["read"]),
                }
                for n, m in by_variant.items()
            }
            for n, after in self.after_decision.get(split, Counter()).items():
                counts.setdefault(n, {})["after_decision"] = after
            won = winner_report(
                journey,
                split,
                counts,
                self.first_entry.get(split),
                self.last_ts,
                self.decisions.get(split),
            )
            if won is not None:
                out[split]["winner"] = won
        return out

    def arm_counts(self) -> dict[str, tuple[int, int]]:
        """(converted, runs) per arm (:mod:`engine.stats.lift`)."""
        return {a: (len(m & self.converted_instances), len(m)) for a, m in self.arms.items()}

    def to_json(self, journey: Journey | None = None) -> dict[str, Any]:
        counters = self.counters()
        totals: Counter[str] = Counter()
        for c in counters.values():
            totals.update(c)
        return {
            **journey_summary(self.journey_id, self.version, totals),
            "nodes": node_rows(counters, journey, self.edges),
            "edges": [{"source": s, "target": t, "users": n} for (s, t), n in self.edges.items()],
            "splits": self.variant_report(journey),
            **lift_reports(self.arm_counts(), journey),
        }


class Aggregator:
    def __init__(self) -> None:
        self.journeys: dict[tuple[str, int], JourneyStats] = {}
        self._seen: set[str] = set()

    def add(self, o: Mapping[str, Any]) -> bool:
        """Count one outcome; False when it was a duplicate or not about a journey."""
        oid = o.get("outcome_id")
        jid, ver = o.get("journey_id"), o.get("journey_version")
        if not isinstance(oid, str) or oid in self._seen or not isinstance(jid, str):
            return False
        if not isinstance(ver, int) or isinstance(ver, bool):
            return False
        self._seen.add(oid)
        js = self.journeys.get((jid, ver))
        if js is None:
            js = self.journeys[(jid, ver)] = JourneyStats(jid, ver)
        js.add(o)
        return True

    def add_all(self, outcomes: Iterable[Mapping[str, Any]]) -> None:
        for o in outcomes:
            self.add(o)

    def to_json(self, journeys: Iterable[Journey] = ()) -> list[dict[str, Any]]:
        """One report per journey version, by id and version; with the journey files, nodes
        in flow order and every node of the file listed."""
        files = {(j.id, j.version): j for j in journeys}
        return [self.journeys[k].to_json(files.get(k)) for k in sorted(self.journeys)]

    def global_control(self, journeys: Iterable[Journey] = ()) -> dict[str, Any] | None:
        """The global control group's lift across journeys (:func:`lift.global_report`)."""
        files = {(j.id, j.version): j for j in journeys}
        return global_report(
            (js.arm_counts(), has_goal(files.get(k))) for k, js in sorted(self.journeys.items())
        )


def has_goal(journey: Journey | None) -> bool | None:
    return None if journey is None else journey.goal is not None


def lift_reports(arms: Mapping[str, tuple[int, int]], journey: Journey | None) -> dict[str, Any]:
    """A version's ``holdout`` (its lift over the holdout) and ``global_control`` (over the
    global control group, this version alone): None when there is no such group."""
    share = journey.holdout if journey is not None else None
    return {
        "holdout": holdout_report(arms, share),
        "global_control": global_report([(arms, has_goal(journey))]),
    }


# --------------------------------------------------------------------------- Prometheus

Metric = tuple[str, str, str, list[tuple[dict[str, Any], float | int | None]]]


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_prometheus(metrics: Iterable[Metric]) -> str:
    """(name, counter|gauge, help, [(labels, value)]) -> the text exposition format 0.0.4.
    Samples whose value is None are left out."""
    out: list[str] = []
    for name, kind, help_, samples in metrics:
        out += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            if value is None:
                continue
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
    return "\n".join(out) + "\n"
