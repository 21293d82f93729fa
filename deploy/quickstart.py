"""Helpers for deploy/quickstart.sh (not part of the engine package).

python deploy/quickstart.py events --out FILE.jsonl
    Write the quick start's events: shoppers of the two journeys in
    deploy/quickstart/journeys, entering over about 20 seconds, some tapping, replying
    STOP, cancelling, buying. `journeys produce --now` replays them in real time.
python deploy/quickstart.py ready LOG:EVENT...
    Wait until each service has logged its ready line (worker.log:worker_ready ...).
python deploy/quickstart.py compare --journeys DIR --backtest FILE.json [--timeout S]
    Wait until the per-journey, per-node tables of the outcomes on Kafka are those of
    `journeys backtest` over the events the worker consumed (FILE.json, its --json
    output): exit 0 when every figure is identical, 1 (with the figures that differ) when
    they still differ after the timeout.

Why the two agree exactly: the events are replayed in real time and the journeys wait
seconds, not days, so the worker sees every event, provider receipt and timer in the
order of their times, as the simulator does; and the backtest replays exactly the records
the worker consumed, read back from the topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z; `journeys produce --now` moves it to now
FIRST_NAMES = ("Asha", "Ben", "Chloé", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon")


# --------------------------------------------------------------------------- events


def _scenario() -> Iterator[dict[str, Any]]:
    """Every user is at least 2 s away from the engine's own times (deliveries 5 s after a
    send, the 12 s fallback, the 15 s wait, the 20 s timeout) wherever order matters."""
    from engine.durations import format_ts

    def at(seconds: float) -> str:
        return format_ts(BASE_MS + int(seconds * 1000))

    def profile(i: int, prefix: int) -> dict[str, Any]:
        p: dict[str, Any] = {
            "phone": f"+1415555{prefix + i:04d}",
            "first_name": FIRST_NAMES[i % len(FIRST_NAMES)],
        }
        if i % 5 == 4:
            p["rcs_capable"] = False  # the fallback SMS goes out at once
        return p

    for i in range(30):  # quickstart-orders
        user, t0, order = f"qs-order-{i:02d}", 0.6 * i, f"Q{1000 + i}"
        prof = profile(i, 2000)
        if i == 7:
            del prof["phone"]  # suppressed: missing_phone
        if i == 13:
            prof["phone"] = "12345"  # suppressed: invalid_phone
        total = 0 if i == 11 else 20 + i  # a zero total doesn't enter
        yield {"event_id": f"{user}-placed", "user_id": user, "name": "order_placed",
               "ts": at(t0), "properties": {"order_id": order, "total": total},
               "profile": prof}  # fmt: skip
        kind = i % 6
        if kind in (0, 3):
            yield {"event_id": f"{user}-shipped", "user_id": user, "name": "order_shipped",
                   "ts": at(t0 + 10)}  # fmt: skip
        if kind == 0:
            yield {"event_id": f"{user}-delivered", "user_id": user, "name": "order_delivered",
                   "ts": at(t0 + 18)}  # fmt: skip
        if kind == 1:
            yield {"type": "inbound", "user_id": user, "ts": at(t0 + 9), "postback": "track"}
        if kind == 4:
            yield {"event_id": f"{user}-cancelled", "user_id": user, "name": "order_cancelled",
                   "ts": at(t0 + 7)}  # fmt: skip
        if kind == 5:
            yield {"type": "inbound", "user_id": user, "ts": at(t0 + 9), "text": "STOP"}
    for i in range(20):  # quickstart-promo
        user, t0 = f"qs-promo-{i:02d}", 1 + 0.8 * i
        yield {"event_id": f"{user}-joined", "user_id": user, "name": "campaign_audience_joined",
               "ts": at(t0), "profile": profile(i, 3000)}  # fmt: skip
        if i % 5 == 2:
            yield {"event_id": f"{user}-purchase", "user_id": user, "name": "purchase",
                   "ts": at(t0 + 10), "properties": {"total": 30 + i}}  # fmt: skip
        if i == 6:
            yield {"event_id": f"{user}-unsub", "user_id": user,
                   "name": "marketing_unsubscribed", "ts": at(t0 + 8)}  # fmt: skip
        if i == 9:
            yield {"type": "inbound", "user_id": user, "ts": at(t0 + 9), "text": "STOP"}


def _events(args: argparse.Namespace) -> int:
    lines = sorted(_scenario(), key=lambda d: str(d["ts"]))
    Path(args.out).write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in lines))
    span = (max(_ms(d) for d in lines) - BASE_MS) / 1000
    print(f"{len(lines)} events over {span:.0f} s in {args.out}")
    return 0


def _ms(d: dict[str, Any]) -> int:
    from engine.durations import parse_ts_ms

    return parse_ts_ms(str(d["ts"]))


# --------------------------------------------------------------------------- ready


def _ready(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    waiting = [tuple(w.rsplit(":", 1)) for w in args.waits]
    while waiting:
        waiting = [(log, ev) for log, ev in waiting if not _logged(Path(log), ev)]
        if not waiting:
            break
        if time.monotonic() > deadline:
            for log, ev in waiting:
                print(f"no {ev} in {log} after {args.timeout:.0f} s: see that log", file=sys.stderr)
            return 1
        time.sleep(0.2)
    return 0


def _logged(path: Path, name: str) -> bool:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    for line in data.splitlines():
        if line.startswith(b"{"):
            try:
                if orjson.loads(line).get("event") == name:
                    return True
            except orjson.JSONDecodeError:
                continue
    return False


# --------------------------------------------------------------------------- compare


def figures(report: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of a per-journey, per-node report, by a readable name (the backtest's
    SMS segments left out: outcomes don't say them; edges by their ends)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix} · {k}", v)
        else:
            out[prefix] = value

    for j in report:
        name = f"{j['journey_id']} v{j['version']}"
        for key, value in j.items():
            if key == "sms_segments":
                continue
            if key == "nodes":
                for node, row in value.items():
                    walk(f"{name} · {node}", {k: v for k, v in row.items() if k != "sms_segments"})
            elif key == "edges":
                for e in value:
                    out[f"{name} · edge {e['source']} -> {e['target']}"] = e["users"]
            else:
                walk(f"{name} · {key}", value)
    return out


def _compare(args: argparse.Namespace) -> int:
    from engine.stats.aggregate import Aggregator
    from engine.stats.catalog import load_tolerant
    from engine.stream.common.settings import Settings
    from engine.stream.devtools.outcomes import collect_outcomes

    backtest = json.loads(Path(args.backtest).read_text())
    expected = figures(backtest["journeys"])
    journeys, _ = load_tolerant(args.journeys)
    settings = Settings.from_env_and_args(argparse.Namespace())
    deadline = time.monotonic() + args.timeout
    differ: list[str] = list(expected)
    got: dict[str, Any] = {}
    agreed_at: float | None = None
    while time.monotonic() < deadline:
        agg = Aggregator()
        agg.add_all(asyncio.run(collect_outcomes(settings)))
        got = figures(agg.to_json(journeys))
        differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
        if sys.stdout.isatty():
            left = f"{len(differ)} of {len(expected)}"
            print(f"\r  figures still to come: {left}  ", end="", flush=True)
        if differ:
            agreed_at = None
        elif agreed_at is None:
            agreed_at = time.monotonic()
        elif time.monotonic() - agreed_at >= args.settle:
            break  # identical, and nothing more came in since
        time.sleep(1)
    if sys.stdout.isatty():
        print()
    nodes = sum(len(j["nodes"]) for j in backtest["journeys"])
    if not differ:
        print(
            f"The engine on Kafka and `journeys backtest` over the {backtest['inputs']} events "
            f"it consumed agree: {len(backtest['journeys'])} journeys, {nodes} nodes, "
            f"{len(expected)} figures, every one identical."
        )
        return 0
    print(f"{len(differ)} of {len(expected)} figures differ after {args.timeout:.0f} s:")
    for k in differ[:20]:
        print(f"  {k}: backtest {expected.get(k, '-')}, Kafka {got.get(k, '-')}")
    print(
        "The engine runs in real time here: on a machine too busy to keep up, an event can "
        "reach it after a timer that the simulator fired later. See worker.log and gateway.log."
    )
    return 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("events")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_events)
    p = sub.add_parser("ready")
    p.add_argument("waits", nargs="+", metavar="LOG:EVENT")
    p.add_argument("--timeout", type=float, default=120)
    p.set_defaults(func=_ready)
    p = sub.add_parser("compare")
    p.add_argument("--journeys", required=True)
    p.add_argument("--backtest", required=True, help="the --json output of journeys backtest")
    p.add_argument("--timeout", type=float, default=90)
    p.add_argument("--settle", type=float, default=3, help="seconds identical before done")
    p.set_defaults(func=_compare)
    args = parser.parse_args()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
