"""`journeys preview`: each send as the user will see it (engine.channels.preview, its SVG
phone mock-ups in engine.channels.preview_svg), and the rendered text in simulate --trace."""

# ruff: noqa: E501  (JOURNEY keeps its cards on one line each, as an author writes them)

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.channels.fallback_text import derive_sms
from engine.channels.preview import (
    NodePreview,
    format_text,
    limit_breaks,
    preview_journey,
    send_summary,
)
from engine.channels.preview_svg import to_html, to_svg
from engine.cli import main
from engine.core.wire import decode_line
from engine.errors import ConfigError
from engine.journey.model import Journey
from engine.journey.render import (
    RenderedCard,
    RenderedCarousel,
    RenderedMessage,
    RenderedSuggestion,
)
from engine.journey.sample import SampleData
from engine.sim.simulator import Simulator

SVG = "{http://www.w3.org/2000/svg}"

JOURNEY = """\
id: orders
version: 2
name: Order updates
entry: {event: order_shipped}
start: shipped
nodes:
  shipped:
    type: send
    name: Shipped card
    channel: rcs
    rich_card:
      title: "Hi {{ user.first_name }}, order {{ event.order_id }} shipped"
      description: "It arrives {{ event.eta | default: 'soon' }}."
      media: {url: "https://cdn.example.com/img/truck.png", height: TALL}
      suggestions:
        - open_url: {text: "Track parcel", url: "https://t.example.com/{{ event.order_id }}"}
        - dial: {text: "Call us", phone: "+14155550100"}
        - reply: {text: "Thanks", postback: thanks}
    fallback: {after: 10m}
    next: pause
  pause: {type: wait, duration: 1d, next: picks}
  picks:
    type: send
    name: Picks
    channel: rcs
    carousel:
      width: SMALL
      cards:
        - {title: "Coat", description: "Wool", media: {url: "https://cdn.example.com/coat.jpg", height: SHORT}, suggestions: [{reply: {text: "Coat", postback: coat}}]}
        - {title: "Scarf", suggestions: [{open_url: {text: "See scarf", url: "https://shop.example.com/scarf"}}]}
        - {title: "Hat {{ user.size }}", media: {url: "https://cdn.example.com/hat.mp4", height: MEDIUM}}
    suggestions:
      - reply: {text: "No thanks", postback: no_thanks}
    fallback: {sms: "New picks for you: https://shop.example.com/picks", after: 1h}
    next: bye
  bye:
    type: send
    channel: sms
    text: "Bye {{ user.first_name }} 👋"
    next: done
  done: {type: exit}
"""

HORIZONTAL = """\
id: basket
version: 1
entry: {event: cart_abandoned}
start: card
nodes:
  card:
    type: send
    channel: rcs
    rich_card:
      orientation: HORIZONTAL
      thumbnail_alignment: RIGHT
      title: "{{ event.title }}"
      description: "Reserved for 24 hours."
      media: {url: "https://cdn.example.com/basket.png", height: MEDIUM}
      suggestions:
        - reply: {text: "{{ event.chip }}", postback: open}
    next: done
  done: {type: exit}
"""

EVENT = {"order_id": "A-1"}


def journey(text: str = JOURNEY) -> Journey:
    return Journey.model_validate(yaml.safe_load(text))


def previews(profile: dict[str, Any] | None = None, **kw: Any) -> list[NodePreview]:
    return preview_journey(journey(), SampleData(EVENT, profile or {"size": "M"}), **kw)


def svg_of(items: list[NodePreview]) -> ET.Element:
    return ET.fromstring(to_svg(items, title="Order updates"))


def panel(root: ET.Element, node_id: str) -> ET.Element:
    found = root.find(f".//{SVG}g[@data-node='{node_id}']")
    assert found is not None, f"no panel for {node_id}"
    return found


def text_of(el: ET.Element) -> str:
    return "".join(el.itertext())


def lines(el: ET.Element, cls: str) -> str:
    """The lines of one wrapped text, joined as the reader reads them."""
    return " ".join(text_of(t) for t in el.iter(f"{SVG}text") if t.get("class") == cls)


def groups(el: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in el.iter(f"{SVG}g") if cls in (g.get("class") or "").split()]


def chips(el: ET.Element) -> list[tuple[str, str, str]]:
    """(kind, glyph, text) of every chip, in drawing order."""
    out = []
    for g in groups(el, "chip"):
        icon = [text_of(t) for t in g.iter(f"{SVG}text") if t.get("class") == "chip-icon"]
        out.append((g.get("data-kind") or "", "".join(icon), lines(g, "chip-text")))
    return out


def missing_vars(el: ET.Element) -> list[str]:
    return [t.get("data-var") or "" for t in el.iter(f"{SVG}tspan") if t.get("class") == "missing"]


# --------------------------------------------------------------------------- the picture


def test_rich_card_picture_has_title_description_media_chips_and_the_missing_marker() -> None:
    root = svg_of(previews())
    shipped = panel(root, "shipped")
    [card] = groups(shipped, "card")
    assert lines(card, "title") == "Hi {{user.first_name}}, order A-1 shipped"
    assert missing_vars(card) == ["user.first_name"]
    assert groups(card, "missing-badge")
    assert lines(card, "description") == "It arrives soon."
    [media] = groups(card, "media")
    assert media.get("data-height") == "TALL"
    assert lines(media, "media-name") == "truck.png"
    assert lines(media, "media-height") == "TALL · 264 dp"
    assert chips(card) == [
        ("open_url", "↗", "Track parcel"),
        ("dial", "☎", "Call us"),
        ("reply", "", "Thanks"),
    ]
    # the SMS a phone without RCS gets: derived from the card, with its size
    [sms] = groups(shipped, "sms")
    sent = derive_sms(shipped_message("", "A-1"))
    assert lines(sms, "sms-text").replace("{{user.first_name}}", "") == " ".join(sent.split())
    assert "user.first_name" in missing_vars(sms)
    assert lines(sms, "sms-size") == f"1 segment, GSM-7: {len(sent)} of 160 septets"
    problems = lines(shipped, "problem")
    assert "user.first_name is not in the sample data: prints as nothing in card title" in problems


def shipped_message(first_name: str, order: str) -> RenderedMessage:
    """The shipped card as the engine renders it, to compare with what the preview shows."""
    return RenderedMessage(
        "rcs",
        rich_card=RenderedCard(
            title=f"Hi {first_name}, order {order} shipped",
            description="It arrives soon.",
            suggestions=(
                RenderedSuggestion(
                    "open_url", "Track parcel", "track_parcel", url=f"https://t.example.com/{order}"
                ),
                RenderedSuggestion("dial", "Call us", "call_us", phone="+14155550100"),
                RenderedSuggestion("reply", "Thanks", "thanks"),
            ),
        ),
    )


def test_with_the_data_given_nothing_is_flagged() -> None:
    root = svg_of(previews({"first_name": "Asha", "size": "M"}, node_id="shipped"))
    shipped = panel(root, "shipped")
    assert lines(shipped, "title") == "Hi Asha, order A-1 shipped"
    assert missing_vars(root) == []
    assert not groups(root, "missing-badge")
    assert lines(shipped, "problem") == ""
    assert lines(shipped, "ok") == "✓ no missing value, no broken limit"


def test_carousel_picture_has_its_cards_side_by_side() -> None:
    picks = panel(svg_of(previews()), "picks")
    [carousel] = groups(picks, "carousel")
    assert carousel.get("data-width") == "SMALL"
    cards = groups(carousel, "card")
    assert [lines(c, "title") for c in cards] == ["Coat", "Scarf", "Hat M"]
    assert lines(cards[0], "description") == "Wool"
    assert [chips(c) for c in cards] == [
        [("reply", "", "Coat")],
        [("open_url", "↗", "See scarf")],
        [],
    ]
    frames = [c.find(f"{SVG}rect") for c in cards]
    xs = [float(f.get("x", "")) for f in frames if f is not None]
    ys = {f.get("y") for f in frames if f is not None}
    widths = {f.get("width") for f in frames if f is not None}
    heights = {f.get("height") for f in frames if f is not None}
    assert xs == sorted(xs) and xs[1] - xs[0] >= 120  # side by side, SMALL = 120 dp
    assert len(ys) == 1 and widths == {"120"} and len(heights) == 1  # as tall as the tallest
    assert [m.get("data-height") for m in groups(carousel, "media")] == ["SHORT", "MEDIUM"]
    # message-level chips are pills under the carousel
    [pills] = groups(picks, "message-chips")
    assert chips(pills) == [("reply", "", "No thanks")]
    [sms] = groups(picks, "sms")
    # a long word (the URL) may be cut over two lines
    assert (
        lines(sms, "sms-text").replace(" ", "") == "Newpicksforyou:https://shop.example.com/picks"
    )
    assert lines(picks, "phone-caption") == "RCS SMS fallback after 1h (fallback.sms)"


def test_horizontal_card_puts_the_media_on_its_side() -> None:
    j = journey(HORIZONTAL)
    data = SampleData({"title": "Your basket", "chip": "Open"}, {})
    root = ET.fromstring(to_svg(preview_journey(j, data), title="basket"))
    [card] = groups(root, "card")
    [media] = groups(card, "media")
    title = next(t for t in card.iter(f"{SVG}text") if t.get("class") == "title")
    frame = card.find(f"{SVG}rect")
    assert frame is not None
    box = media.find(f"{SVG}path")
    assert box is not None
    media_left = float(box.get("d", "")[1:].split(",")[0])  # the path starts at its top left
    assert float(title.get("x", "0")) < media_left  # RIGHT: text first, media after it
    assert media_left > float(frame.get("x", "0")) + 50


def test_broken_limits_are_listed_all_at_once() -> None:
    j = journey(HORIZONTAL)
    data = SampleData({"title": "x" * 250, "chip": "a chip text much longer than 25"}, {})
    [p] = preview_journey(j, data)
    assert [b.limit for b in p.limits] == ["rcs.card_title_length", "rcs.suggestion_text_length"]
    root = ET.fromstring(to_svg([p], title="basket"))
    problems = lines(root, "problem")
    assert "rcs.card_title_length: card title in UTF-8 bytes is 250, at most 200" in problems
    assert "rcs.suggestion_text_length" in problems


def test_limit_breaks_checks_every_card_of_a_carousel() -> None:
    long_title = RenderedCard(title="t" * 201)
    msg = RenderedMessage(
        "rcs",
        carousel=RenderedCarousel("MEDIUM", (RenderedCard(title="ok"), long_title, long_title)),
    )
    details = [b.detail for b in limit_breaks(msg)]
    assert details == [
        "carousel card 2 title in UTF-8 bytes is 201, at most 200",
        "carousel card 3 title in UTF-8 bytes is 201, at most 200",
    ]


def test_sms_only_send_has_one_phone() -> None:
    bye = panel(svg_of(previews()), "bye")
    assert [g.get("class") for g in groups(bye, "phone")] == ["phone sms"]
    assert lines(bye, "sms-text") == "Bye {{user.first_name}} 👋"
    assert lines(bye, "sms-size") == "1 segment, UCS-2: 7 of 70 units"
    assert "UCS-2" in lines(bye, "note")


def test_html_page_holds_the_pictures_and_the_text() -> None:
    page = to_html(previews(), title="Order updates", note="orders v2")
    assert page.startswith("<!doctype html>")
    assert page.count("<svg ") == 3 and page.count("<pre>") == 3
    assert "Hi &lt;missing: user.first_name&gt;, order A-1 shipped" in page


# --------------------------------------------------------------------------- text


def test_text_output() -> None:
    assert (
        format_text(previews())
        == """\
== orders v2 · shipped "Shipped card"
RCS rich card, vertical
  media        truck.png, TALL (264 dp)
  title        Hi <missing: user.first_name>, order A-1 shipped
  description  It arrives soon.
  chips        [↗ Track parcel] -> https://t.example.com/A-1
               [☎ Call us] -> +14155550100
               [Thanks]
SMS fallback after 10m (derived from the RCS message): 1 segment, GSM-7: 124 of 160 septets
  | Hi <missing: user.first_name>, order A-1 shipped
  | It arrives soon.
  | Track parcel: https://t.example.com/A-1
  | Call us: +14155550100
  | Reply STOP to opt out.
  ✗ user.first_name is not in the sample data: prints as nothing in card title (give it, or write {{ user.first_name | default: '...' }})
  · event.eta is not in the sample data; a default, a condition or a filter covers it

== orders v2 · picks "Picks"
RCS carousel, 3 cards, SMALL width
  card 1
    media        coat.jpg, SHORT (112 dp)
    title        Coat
    description  Wool
    chips        [Coat]
  card 2
    title        Scarf
    chips        [↗ See scarf] -> https://shop.example.com/scarf
  card 3
    media        hat.mp4, MEDIUM (168 dp)
    title        Hat M
  chips        [No thanks]
SMS fallback after 1h (fallback.sms): 1 segment, GSM-7: 49 of 160 septets
  | New picks for you: https://shop.example.com/picks
  ✓ no missing value, no broken limit

== orders v2 · bye
SMS: 1 segment, UCS-2: 7 of 70 units
  | Bye <missing: user.first_name> 👋
  ✗ user.first_name is not in the sample data: prints as nothing in text (give it, or write {{ user.first_name | default: '...' }})
  · the SMS is UCS-2 (a character outside GSM-7): 70 characters a part
"""
    )


def test_a_template_that_fails_is_a_problem_not_a_crash() -> None:
    text = JOURNEY.replace('"Bye {{ user.first_name }} 👋"', "\"{{ 'now' | date: '%Y' }}\"")
    [p] = preview_journey(journey(text), SampleData({}, {}), "bye")
    assert p.sample is None and p.has_problems
    assert "'now' is not available" in format_text([p])
    assert "'now' is not available" in lines(svg_of([p]), "problem")


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("pause", "'pause' is a wait node, not a send; send nodes: shipped, picks, bye"),
        ("shiped", "no node 'shiped' in orders (did you mean 'shipped'?)"),
    ],
)
def test_a_node_that_is_not_a_send_is_refused(node: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        previews(node_id=node)
    assert str(err.value).startswith(message)


# --------------------------------------------------------------------------- the command


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "journey": tmp_path / "orders.yaml",
        "event": tmp_path / "event.json",
        "log": tmp_path / "events.jsonl",
        "profile": tmp_path / "profile.json",
    }
    paths["journey"].write_text(JOURNEY, encoding="utf-8")
    paths["event"].write_text(json.dumps({"order_id": "A-7"}), encoding="utf-8")
    paths["log"].write_text(
        '{"name": "order_placed", "properties": {"order_id": "A-0"}}\n'
        '{"name": "order_shipped", "properties": {"order_id": "A-9"}, "profile": {"first_name": "Bo"}}\n',
        encoding="utf-8",
    )
    paths["profile"].write_text(json.dumps({"first_name": "Cy", "size": "L"}), encoding="utf-8")
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["preview", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_cli_one_node_with_an_event_and_a_profile(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys,
        str(files["journey"]),
        "--node",
        "shipped",
        "--event",
        str(files["event"]),
        "--profile",
        str(files["profile"]),
    )
    assert code == 0, err
    assert out.count("== ") == 1 and "· shipped" in out
    assert "title        Hi Cy, order A-7 shipped" in out
    assert err == ""


def test_cli_event_log_and_user_profile_pairs(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        str(files["journey"]),
        "--node",
        "picks",
        "--event",
        str(files["log"]),
        "--user-profile",
        "size=XL",
    )
    assert code == 0
    assert "title        Hat XL" in out
    code, out, _ = run(capsys, str(files["journey"]), "--node", "bye", "--event", str(files["log"]))
    assert code == 0 and "| Bye Bo 👋" in out  # the event's profile gives user.*


def test_cli_problems_exit_1_and_svg_goes_to_a_file(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out_file = tmp_path / "preview.svg"
    code, out, err = run(capsys, str(files["journey"]), "--format", "svg", "--out", str(out_file))
    assert code == 1
    assert out == "" and f"wrote {out_file}" in err and "problem(s)" in err
    root = ET.fromstring(out_file.read_text(encoding="utf-8"))
    assert [g.get("data-node") for g in groups(root, "preview")] == ["shipped", "picks", "bye"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "missing.yaml: no such file"),
        (["{journey}", "--event", "nope.json"], "nope.json: no such file"),
        (["{journey}", "--event", "{bad}"], "not JSON"),
        (
            ["{journey}", "--event", "{log_other}"],
            "no 'order_shipped' event (it has: login, signup)",
        ),
        (["{journey}", "--profile", "{list}"], "expected a JSON object of profile fields"),
        (["{journey}", "--user-profile", "first_name"], "write KEY=VALUE"),
        (["{journey}", "--node", "pause"], "'pause' is a wait node, not a send"),
        (["{journey}", "--node", "nope"], "no node 'nope' in orders"),
    ],
)
def test_cli_bad_input_is_one_clear_line_and_exit_2(
    args: list[str],
    message: str,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    (tmp_path / "other.jsonl").write_text(
        '{"name": "signup"}\n{"name": "login"}\n', encoding="utf-8"
    )
    paths = {
        "journey": str(files["journey"]),
        "bad": str(tmp_path / "bad.json"),
        "list": str(tmp_path / "list.json"),
        "log_other": str(tmp_path / "other.jsonl"),
    }
    argv = [a.format(**paths) for a in args]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("journeys: ") and message in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- simulate --trace


def test_trace_shows_the_rendered_text_of_every_send() -> None:
    j = journey()
    events = [
        decode_line(
            {
                "event_id": "e1",
                "user_id": "u1",
                "name": "order_shipped",
                "ts": "2026-11-02T15:00:00Z",
                "properties": {"order_id": "A-5"},
                "profile": {"phone": "+14155550123", "first_name": "Di", "rcs_capable": False},
            }
        )
    ]
    result = Simulator([j]).run(events, trace=True)
    rendered = [line.strip() for line in result.trace["u1"] if "rendered" in line]
    # not RCS-capable: each fallback goes at once; the shipped card's is derived from it
    derived = " ".join(derive_sms(shipped_message("Di", "A-5")).split())
    assert rendered == [
        'rendered           orders@2:shipped [rcs] card "Hi Di, order A-5 shipped" | '
        '"It arrives soon." [↗ Track parcel] [☎ Call us] [Thanks]',
        f'rendered           orders@2:shipped [sms] text "{derived}"',
        'rendered           orders@2:picks [rcs] carousel 3 cards: "Coat"; "Scarf"; "Hat" '
        "[Coat] [↗ See scarf] [No thanks]",
        'rendered           orders@2:bye [sms] text "Bye Di 👋"',
        'rendered           orders@2:picks [sms] text "New picks for you: '
        'https://shop.example.com/picks"',
    ]
    # the outcomes don't change with --trace
    assert Simulator([j]).run(events).outcomes == result.outcomes


def test_send_summary_of_a_fallback_derived_from_a_message_it_cannot_find() -> None:
    assert (
        send_summary({"channel": "sms", "derive_from": "m-1"}) == "SMS derived from the RCS message"
    )
    assert send_summary({"channel": "sms", "text": "Hi\nthere"}) == 'text "Hi there"'


def test_any_rendered_text_makes_a_well_formed_picture() -> None:
    j = journey(HORIZONTAL)
    nasty = 'Tom & "Jerry" <b>\x01\x1b</b> \u00e9\u0301 🇫🇷'
    data = SampleData({"title": nasty, "chip": "<&>"}, {})
    previews = preview_journey(j, data)
    root = ET.fromstring(to_svg(previews, title="a & b"))
    assert lines(root, "title").startswith('Tom & "Jerry" <b>')
    assert chips(root) == [("reply", "", "<&>")]
    page = to_html(previews, title="<x>")
    assert "&lt;x&gt;" in page and "<x>" not in page
    for svg in page.split("<svg ")[1:]:
        ET.fromstring("<svg " + svg.split("</svg>")[0] + "</svg>")
