"""Aggregate outcomes into per-journey, per-node counts and rates.

Pure: feed outcome dicts (the wire form) in any order; duplicates (same ``outcome_id``)
count once, since outcomes are delivered at least once. Split variants are attributed
per instance (the ``variant`` of the split's ``node_entered``), so conversions can be
compared between variants with a confidence interval.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Z95 = 1.959963984540054

_COUNTED = {
    "node_entered": "entered",
    "message_delivered": "delivered",
    "message_read": "read",
    "message_clicked": "clicked",
    "message_replied": "replied",
    "message_failed": "failed",
    "fallback_triggered": "fallback",
    "message_deferred": "deferred",
    "user_opted_out": "opted_out",
}


@dataclass
class NodeStats:
    counts: Counter[str] = field(default_factory=Counter)
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)
    exited: Counter[str] = field(default_factory=Counter)

    def rates(self) -> dict[str, float | None]:
        c = self.counts
        sent = sum(self.sent_by_channel.values())
        return {
            "delivery_rate": _ratio(c["delivered"], sent),
            "read_rate": _ratio(c["read"], c["delivered"]),
            "click_through_rate": _ratio(c["clicked"], c["delivered"]),
            "fallback_rate": _ratio(c["fallback"], self.sent_by_channel["rcs"]),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: self.counts[k] for k in sorted(set(_COUNTED.values()))},
            "sent": dict(sorted(self.sent_by_channel.items())),
            "suppressed": dict(sorted(self.suppressed.items())),
            "exited": dict(sorted(self.exited.items())),
            **self.rates(),
        }


@dataclass
class JourneyStats:
    journey_id: str
    version: int
    entered: int = 0
    converted: int = 0
    nodes: dict[str, NodeStats] = field(default_factory=lambda: defaultdict(NodeStats))
    # split node -> variant -> instance ids; and converted instance ids
    variants: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )
    converted_instances: set[str] = field(default_factory=set)

    def variant_report(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for split, by_variant in sorted(self.variants.items()):
            rows: dict[str, dict[str, Any]] = {}
            raw: dict[str, tuple[int, int]] = {}
            for name, members in sorted(by_variant.items()):
                conv = len(members & self.converted_instances)
                raw[name] = (conv, len(members))
                rows[name] = {
                    "users": len(members),
                    "converted": conv,
                    "conversion_rate": _ratio(conv, len(members)),
                }
            names = sorted(rows)
            diffs = {}
            base = names[0] if names else ""
            for other in names[1:]:
                diffs[f"{other} - {base}"] = diff_ci(*raw[other], *raw[base])
            out[split] = {"variants": rows, "differences": diffs}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "journey_id": self.journey_id,
            "version": self.version,
            "entered": self.entered,
            "converted": self.converted,
            "conversion_rate": _ratio(self.converted, self.entered),
            "nodes": {n: s.to_json() for n, s in sorted(self.nodes.items())},
            "splits": self.variant_report(),
        }


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def diff_ci(conv_a: int, n_a: int, conv_b: int, n_b: int) -> dict[str, float | None]:
    """Difference of two conversion rates (a - b) with a 95% Wald interval."""
    if not n_a or not n_b:
        return {"difference": None, "ci_low": None, "ci_high": None}
    pa, pb = conv_a / n_a, conv_b / n_b
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    d = pa - pb
    return {
        "difference": round(d, 4),
        "ci_low": round(d - Z95 * se, 4),
        "ci_high": round(d + Z95 * se, 4),
    }


class Aggregator:
    def __init__(self) -> None:
        self.journeys: dict[tuple[str, int], JourneyStats] = {}
        self._seen: set[str] = set()

    def add(self, o: Mapping[str, Any]) -> bool:
        """Count one outcome; False when it was a duplicate or not about a journey."""
        oid = o.get("outcome_id")
        jid, ver = o.get("journey_id"), o.get("journey_version")
        if not isinstance(oid, str) or oid in self._seen or not jid or ver is None:
            return False
        self._seen.add(oid)
        js = self.journeys.get((jid, ver))
        if js is None:
            js = self.journeys[(jid, ver)] = JourneyStats(jid, ver)
        kind, node = o.get("type"), o.get("node_id")
        attrs = o.get("attributes") or {}
        if kind == "journey_entered":
            js.entered += 1
        elif kind == "goal_converted":
            js.converted += 1
            js.converted_instances.add(o.get("instance_id") or "")
        if node is None:
            return True
        ns = js.nodes[node]
        if kind in _COUNTED:
            ns.counts[_COUNTED[kind]] += 1
        if kind == "message_sent":
            ns.sent_by_channel[o.get("channel") or "?"] += 1
        elif kind == "message_suppressed":
            ns.suppressed[attrs.get("reason", "?")] += 1
        elif kind == "journey_exited":
            ns.exited[attrs.get("reason", "?")] += 1
        elif kind == "node_entered" and "variant" in attrs:
            js.variants[node][attrs["variant"]].add(o.get("instance_id") or "")
        return True

    def add_all(self, outcomes: Iterable[Mapping[str, Any]]) -> None:
        for o in outcomes:
            self.add(o)

    def to_json(self) -> list[dict[str, Any]]:
        return [self.journeys[k].to_json() for k in sorted(self.journeys)]


def format_table(report: list[dict[str, Any]]) -> str:
    """A readable table: one block per journey version, one row per node."""
    lines: list[str] = []
    cols = ("entered", "sent", "delivered", "read", "clicked", "replied", "failed", "fallback")
    for j in report:
        rate = j["conversion_rate"]
        lines.append(
            f"{j['journey_id']} v{j['version']}: {j['entered']} entered, {j['converted']} "
            f"converted" + (f" ({rate:.1%})" if rate is not None else "")
        )
        lines.append(
            f"  {'node':<22}"
            + "".join(f"{c:>10}" for c in cols)
            + f"{'deliv%':>8}{'read%':>8}{'ctr%':>8}{'fb%':>8}  other"
        )
        for node, s in j["nodes"].items():
            sent = sum(s["sent"].values())
            row = [
                s["entered"],
                sent,
                s["delivered"],
                s["read"],
                s["clicked"],
                s["replied"],
                s["failed"],
                s["fallback"],
            ]
            pct = [s["delivery_rate"], s["read_rate"], s["click_through_rate"], s["fallback_rate"]]
            other = [f"suppressed:{k}={v}" for k, v in s["suppressed"].items()]
            other += [f"exited:{k}={v}" for k, v in s["exited"].items()]
            lines.append(
                f"  {node:<22}"
                + "".join(f"{v:>10}" for v in row)
                + "".join(f"{'-' if p is None else f'{p:.0%}':>8}" for p in pct)
                + ("  " + " ".join(other) if other else "")
            )
        for split, rep in j["splits"].items():
            for name, v in rep["variants"].items():
                cr = v["conversion_rate"]
                lines.append(
                    f"  split {split} variant {name}: {v['users']} users, "
                    f"{v['converted']} converted" + (f" ({cr:.1%})" if cr is not None else "")
                )
            for label, d in rep["differences"].items():
                if d["difference"] is not None:
                    lines.append(
                        f"  split {split} {label}: {d['difference']:+.1%} "
                        f"(95% CI {d['ci_low']:+.1%} .. {d['ci_high']:+.1%})"
                    )
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- flat counters
# The stats service (engine.stats.windows) keeps flat counters per node: one key per outcome
# type, plus "<type>:<channel or reason>" breakdowns and FALLBACK_SENT. These turn such a
# counter into the report rows above, so `journeys stats` and the service agree.

#: outcome type -> the attribute its count is broken down by (message_sent: by channel).
QUALIFIER = {
    "message_suppressed": "reason",
    "message_failed": "reason",
    "fallback_triggered": "reason",
    "message_deferred": "reason",
    "journey_exited": "reason",
}
FALLBACK_SENT = "message_sent+fallback"  # an SMS sent as the fallback of an RCS message
ratio = _ratio


def counter_keys(o: Mapping[str, Any]) -> list[str]:
    """The flat counter keys one outcome adds to its node."""
    kind = str(o.get("type"))
    attrs = o.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    keys = [kind]
    if kind == "message_sent":
        keys.append(f"message_sent:{o.get('channel') or '?'}")
        if attrs.get("fallback_of"):
            keys.append(FALLBACK_SENT)
    elif kind in QUALIFIER:
        keys.append(f"{kind}:{attrs.get(QUALIFIER[kind]) or '?'}")
    return keys


def breakdown(c: Mapping[str, int], kind: str) -> dict[str, int]:
    prefix = kind + ":"
    return {k[len(prefix) :]: n for k, n in sorted(c.items()) if k.startswith(prefix)}


def node_row(c: Mapping[str, int]) -> dict[str, Any]:
    """A node's flat counter as a ``NodeStats`` row, plus fallback sends and reasons."""
    ns = NodeStats(
        Counter({name: c.get(kind, 0) for kind, name in _COUNTED.items()}),
        Counter(breakdown(c, "message_sent")),
        Counter(breakdown(c, "message_suppressed")),
        Counter(breakdown(c, "journey_exited")),
    )
    row = ns.to_json()
    row["fallback_sent"] = c.get(FALLBACK_SENT, 0)
    row["failed_reasons"] = breakdown(c, "message_failed")
    row["fallback_reasons"] = breakdown(c, "fallback_triggered")
    return row


def journey_summary(jid: str, ver: int, t: Mapping[str, int]) -> dict[str, Any]:
    """Journey-level figures and rates from a version's flat counter (all nodes summed)."""
    g = t.get
    entered, converted = g("journey_entered", 0), g("goal_converted", 0)
    sent, delivered = g("message_sent", 0), g("message_delivered", 0)
    return {
        "journey_id": jid,
        "version": ver,
        "entered": entered,
        "converted": converted,
        "conversion_rate": _ratio(converted, entered),
        "sent": sent,
        "delivered": delivered,
        "read": g("message_read", 0),
        "clicked": g("message_clicked", 0),
        "replied": g("message_replied", 0),
        "failed": g("message_failed", 0),
        "fallback": g("fallback_triggered", 0),
        "suppressed": g("message_suppressed", 0),
        "exited": g("journey_exited", 0),
        "delivery_rate": _ratio(delivered, sent),
        "read_rate": _ratio(g("message_read", 0), delivered),
        "click_through_rate": _ratio(g("message_clicked", 0), delivered),
        "fallback_rate": _ratio(g("fallback_triggered", 0), sent - g(FALLBACK_SENT, 0)),
    }


def variant_rows(raw: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """``{variant: (converted, users)}`` -> rows and differences to the first variant (by
    name) with a 95% CI: the shape of ``JourneyStats.variant_report`` per split."""
    names = sorted(raw)
    rows = {
        n: {"users": users, "converted": conv, "conversion_rate": _ratio(conv, users)}
        for n, (conv, users) in ((n, raw[n]) for n in names)
    }
    diffs = {f"{o} - {names[0]}": diff_ci(*raw[o], *raw[names[0]]) for o in names[1:]}
    return {"variants": rows, "differences": diffs}


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
