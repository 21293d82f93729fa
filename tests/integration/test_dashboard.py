"""The dashboard in headless Chromium: the stats service runs in-process against the real
broker, Chromium loads the pages (and runs their script), and the dumped DOM must show the
journey's graph with the right counts on its nodes and edges. Screenshots are kept under
tests/artifacts/ (gitignored)."""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_stats_service import (
    JOURNEY_ID,
    TopicFactory,
    counts_match,
    expected,
    get,
    produce,
    running,
    simulate,
    until,
    write_journey,
)

from engine.stats.proportions import newcombe

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PNG = b"\x89PNG\r\n\x1a\n"
SPLIT_ID = "ab-it"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


def chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"headless Chromium is missing ({CHROMIUM}): run `bash .ci/install-chromium.sh` "
            "(apt-get install -y chromium; needs root), or set CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    return CHROMIUM


async def browse(url: str, profile: Path, screenshot: Path | None = None) -> str:
    """Load ``url`` (5 s of virtual time for the page script); the DOM, or a screenshot."""
    args = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,1000",
        "--virtual-time-budget=5000", "--hide-scrollbars",
    ]  # fmt: skip
    args.append(f"--screenshot={screenshot}" if screenshot else "--dump-dom")
    proc = await asyncio.create_subprocess_exec(
        *args, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {err.decode()[-2000:]}"
    return out.decode()


class Texts(HTMLParser):
    """The text inside every element that has an ``id`` or a ``data-*`` attribute, keyed by
    ``id=...`` / ``data-x=...``; and every element's attributes, by tag."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.open: list[tuple[str, list[str]]] = []
        self.texts: dict[str, list[str]] = defaultdict(list)
        self.attrs: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.attrs[tag].append(a)
        keys = [f"{k}={v}" for k, v in a.items() if k == "id" or k.startswith("data-")]
        if tag not in VOID:
            self.open.append((tag, keys))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs[tag].append({k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        if any(name == tag for name, _ in self.open):
            while self.open.pop()[0] != tag:
                pass

    def handle_data(self, data: str) -> None:
        if data.strip():
            for _, keys in self.open:
                for key in keys:
                    self.texts[key].append(data.strip())

    def text(self, key: str) -> list[str]:
        assert key in self.texts, f"no element with {key} in the page"
        return self.texts[key]


def split_outcomes() -> list[dict[str, object]]:
    """An A/B split with too few users to conclude (the issue's case): 3 users in A, one
    converts; 5 in B, all convert. No journey file: the page is drawn from outcomes only."""
    out: list[dict[str, object]] = []
    for i in range(8):
        base = {"user_id": f"ab{i}", "journey_id": SPLIT_ID, "journey_version": 1,
                "instance_id": f"ab-i{i}", "channel": None, "message_id": None,
                "ts": "2026-11-02T10:00:00Z", "schema_version": 1}  # fmt: skip
        variant = "A" if i < 3 else "B"
        out.append({**base, "outcome_id": f"ab-e{i}", "type": "journey_entered",
                    "node_id": "pick", "attributes": {"event": "signed_up"}})  # fmt: skip
        out.append({**base, "outcome_id": f"ab-n{i}", "type": "node_entered",
                    "node_id": "pick", "attributes": {"variant": variant}})  # fmt: skip
        if i == 0 or i >= 3:
            out.append({**base, "outcome_id": f"ab-g{i}", "type": "goal_converted",
                        "node_id": None, "attributes": {"event": "purchased"}})  # fmt: skip
    return out


HOLDOUT_ID = "holdout-it"


def holdout_outcomes() -> list[dict[str, object]]:
    """A journey with a holdout and users in the global control group (no journey file):
    40 treated runs (20 convert), 20 held out (4), 10 in the global control group (2)."""
    out: list[dict[str, object]] = []
    groups = (("t", {}, 40, 20), ("h", {"holdout": True}, 20, 4),
              ("c", {"global_control": True}, 10, 2))  # fmt: skip
    for tag, attrs, n, converted in groups:
        for i in range(n):
            iid = f"ho-{tag}{i}"
            base = {"user_id": f"u-{iid}", "journey_id": HOLDOUT_ID, "journey_version": 1,
                    "instance_id": iid, "channel": None, "message_id": None,
                    "ts": "2026-11-02T10:00:00Z", "schema_version": 1}  # fmt: skip
            out.append({**base, "outcome_id": f"{iid}-e", "type": "journey_entered",
                        "node_id": "hello", "attributes": {"event": "go", **attrs}})  # fmt: skip
            if i < converted:
                out.append({**base, "outcome_id": f"{iid}-g", "type": "goal_converted",
                            "node_id": None, "attributes": {"event": "buy"}})  # fmt: skip
    return out


@pytest.fixture
async def dashboard(
    kafka_bootstrap: str, create_topic: TopicFactory, unique_name: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[str]:  # fmt: skip
    """URL of a running stats service that has counted three users' outcomes."""
    topic = await create_topic(partitions=2)
    journeys = write_journey(tmp_path / "journeys").parent
    outcomes = simulate(journeys, range(3))
    await produce(kafka_bootstrap, topic, outcomes + split_outcomes() + holdout_outcomes())
    async with running(bootstrap=kafka_bootstrap, topic=topic, journeys_dir=str(journeys),
                       state_path=str(tmp_path / "state.json"), group_id=unique_name("dash"),
                       refresh_s=1.0) as svc:  # fmt: skip
        await counts_match(svc, expected(outcomes))

        async def split_counted() -> bool:
            r = await get(f"{svc.url}/api/journeys/{SPLIT_ID}")
            return bool(r["summary"]["converted"] == 6)

        await until(split_counted, "the split's conversions")

        async def holdout_counted() -> bool:
            r = await get(f"{svc.url}/api/journeys/{HOLDOUT_ID}")
            return bool(r["summary"]["converted"] == 26)

        await until(holdout_counted, "the holdout's conversions")
        yield svc.url


async def test_journey_page_shows_the_graph_with_live_counts(
    dashboard: str, tmp_path: Path
) -> None:
    page = Texts(await browse(f"{dashboard}/journeys/{JOURNEY_ID}", tmp_path / "chrome"))
    # The graph: counts on every node (users: u0 can't get RCS, u1 taps and buys, u2 waits).
    entry = page.text("id=node-journey.entry")
    assert "entered 3" in entry and "converted 1 (33%)" in entry
    hello = page.text("id=node-hello")
    assert "Welcome card" in hello
    assert {"entered 3", "sent 3 (100%)", "sms fallback 1 (33%)", "clicked 1 (33%)"} <= set(hello)
    assert "reached 3 (100%)" in hello  # u0's RCS could not arrive; its SMS fallback did
    assert "entered 3" in page.text("id=node-wait_shop")
    assert "entered 1" in page.text("id=node-offer")
    assert "entered 2" in page.text("id=node-reminder")
    assert "entered 3" in page.text("id=node-done")
    users = {
        (g["data-source"], g["data-target"]): g["data-users"]
        for g in page.attrs["g"]
        if "data-users" in g
    }
    assert users[("journey.entry", "hello")] == "3"
    assert users[("wait_shop", "offer")] == "1" and users[("wait_shop", "reminder")] == "2"
    # What the page script rendered from the JSON API.
    assert page.text("data-kpi=entered")[:2] == ["Entered", "3"]
    assert page.text("data-kpi=converted")[:3] == ["Converted", "1", "33% conversion"]
    assert page.text("data-step=entered")[-1] == "3"
    assert "33% of entered" in page.text("data-step=converted")
    assert len([s for s in page.attrs["svg"] if s.get("class") == "bars"]) == 2
    assert page.text("data-row=reminder")[:2] == ["Reminder", "send"]
    # The table of every step: the same figures as `journeys stats` (engine.stats.table).
    cell = {k.split("=", 1)[1]: v for k, v in page.texts.items() if k.startswith("data-cell=")}
    assert cell["hello.sent"] == ["3 / 1"] and cell["hello.delivered"] == ["2 / 1"]
    assert cell["hello.reached"] == ["3"] and cell["hello.reach_rate"] == ["100%"]
    assert cell["hello.read_rate"] == ["0%"]  # two RCS deliveries, no read receipt
    assert cell["reminder.read_rate"] == ["–"] and cell["reminder.click_through_rate"] == ["–"]
    assert cell["reminder.reached"] == ["2"] and cell["reminder.sent"] == ["0 / 2"]
    assert cell["offer.opted_out"] == ["0"] and cell["offer.deferred"] == ["0"]
    drawn = {td["data-cell"] for td in page.attrs["td"] if "data-cell" in td}
    assert "wait_shop.reached" in drawn and "wait_shop.reached" not in cell  # no messages
    rows = [r["data-row"] for r in page.attrs["tr"] if "data-row" in r]
    assert rows == ["hello", "wait_shop", "offer", "reminder", "done"]  # flow order
    assert page.text("data-kpi=reached")[:3] == ["Reached", "6", "100% of sends, by RCS or SMS"]
    assert page.text("data-metric=stats")
    assert page.text("id=updated") != ["–"], "the page script never refreshed"


async def test_screenshots(dashboard: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, url in (
        ("dashboard-journey.png", f"{dashboard}/journeys/{JOURNEY_ID}"),
        ("dashboard-index.png", f"{dashboard}/"),
    ):
        shot = ARTIFACTS / name
        shot.unlink(missing_ok=True)
        await browse(url, tmp_path / "chrome", screenshot=shot)
        data = shot.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, f"{shot}: not a real screenshot"


async def test_index_page_lists_the_journey(dashboard: str, tmp_path: Path) -> None:
    page = Texts(await browse(f"{dashboard}/", tmp_path / "chrome"))
    card = page.text(f"data-journey={JOURNEY_ID}")
    assert card[:2] == ["Welcome offer", f"{JOURNEY_ID} · v1"]
    assert card[2:4] == ["3", "entered"]
    assert page.text("id=sub")[0].startswith("3 journeys")
    # The lift of all journeys over the global control group (only holdout-it has one).
    control = " ".join(page.text("data-global-control=1"))
    assert "Global control group · 1 journey version with a goal" in control
    assert "Lift: +30.0% (95% CI " in control and "control" in control
    card = page.text(f"data-journey={JOURNEY_ID}")
    assert card[4:8] == ["7", "sent", "100%", "reached"]


async def test_split_shows_newcombe_interval_and_small_sample_warning(
    dashboard: str, tmp_path: Path
) -> None:
    page = Texts(await browse(f"{dashboard}/journeys/{SPLIT_ID}", tmp_path / "chrome"))
    split = " ".join(page.text("data-split=pick"))
    assert "B - A:" in split and "+66.7%" in split
    assert "(95% CI +3.5% to +93.8%) significant" in split  # Wald said +13.3% .. +120.0%
    warning = page.text("data-warning=B - A")
    assert warning == [
        "small sample: a variant has fewer than 30 users or 5 conversions, the difference "
        "may be chance"
    ]
    assert page.text("data-variant=A") == ["A", "3", "1", "33%", "6.2% to 79.2%"]


async def test_holdout_shows_both_rates_and_the_lift_interval(
    dashboard: str, tmp_path: Path
) -> None:
    page = Texts(await browse(f"{dashboard}/journeys/{HOLDOUT_ID}", tmp_path / "chrome"))
    card = " ".join(page.text("data-holdout=1"))
    assert page.text("data-arm=treated")[:4] == ["treated", "40", "20", "50%"]
    _, low, high = newcombe(20, 40, 4, 20)  # type: ignore[misc]
    interval = f"(95% CI +{round(low, 4) * 100:.1f}% to +{round(high, 4) * 100:.1f}%)"
    assert f"Lift: +30.0% {interval}, relative +150.0% significant" in card
    assert "small sample" in card  # 4 conversions in the holdout
    held = [t for t in page.texts["data-holdout=1"] if t.startswith("holdout")]
    assert held and page.text("data-lift=holdout")
