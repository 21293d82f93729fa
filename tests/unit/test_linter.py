"""The journey linter: one small broken file per rule, each problem with its exact line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import networkx as nx
import pytest

from engine.errors import InvalidJourney, Problem
from engine.journey.loader import load_paths, load_text
from engine.lint import linter
from engine.lint.linter import journey_graph, lint_loaded, lint_paths, load_journeys

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OK = FIXTURES / "ok"
BROKEN = FIXTURES / "broken"

SMS_DONE = """\
hello: {type: send, channel: sms, text: "Hi", next: done}
done: {type: exit}
"""


def doc(nodes: str = SMS_DONE, head: str = "", *, start: str = "hello", version: int = 1,
        entry: str = "entry: {event: signed_up}") -> str:
    """A journey file: the header lines, then ``nodes`` (written without indentation)."""
    return (f"id: t\nversion: {version}\n{entry}\n{textwrap.dedent(head)}start: {start}\n"
            f"nodes:\n{textwrap.indent(textwrap.dedent(nodes), '  ')}")


def rcs(body: str, extra: str = "") -> str:
    """An rcs send ``hello`` with ``body`` (its content keys), then an exit."""
    return (f"hello:\n  type: send\n  channel: rcs\n{textwrap.indent(textwrap.dedent(body), '  ')}"
            f"  next: done\ndone: {{type: exit}}\n{textwrap.dedent(extra)}")


def replies(n: int, indent: str = "  ") -> str:
    return "".join(f"{indent}- reply: {{text: 'R{i}', postback: r{i}}}\n" for i in range(n))


def cards(n: int) -> str:
    return "carousel:\n  cards:\n" + "".join(f"    - {{title: 'Card {i}'}}\n" for i in range(n))


def line_of(text: str, marker: str) -> int:
    """The line holding ``marker`` (``^...``: the line starting with it); it must be unique."""
    lines = enumerate(text.splitlines(), 1)
    if marker.startswith("^"):
        hits = [i for i, line in lines if line.startswith(marker[1:])]
    else:
        hits = [i for i, line in lines if marker in line]
    assert len(hits) == 1, f"marker {marker!r} is on lines {hits}"
    return hits[0]


def lint_text(tmp_path: Path, text: str, name: str = "j.yaml") -> list[Problem]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return lint_paths([path])


BROKEN_FILES = [
    # ------------------------------------------------------------ targets
    pytest.param(doc(start="helo"), "start: helo", "journey", "did you mean 'hello'?",
                 id="start-unknown"),
    pytest.param(doc("""\
        fork: {type: branch, cases: [{when: "user.vip", next: hello}], default: done}
        hello: {type: send, channel: sms, text: "Hi", next: dnoe}
        done: {type: exit}
        """, start="fork"), "next: dnoe", "hello",
        "next 'dnoe' names no node: did you mean 'done'?", id="next-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths: [{event: clicked, next: done}]
          timeout: 1d
          on_timeout: nudeg
        done: {type: exit}
        """), "on_timeout: nudeg", "wait", "'nudeg' names no node", id="on-timeout-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: pick}
        pick:
          type: branch
          cases: [{when: "user.vip", next: done}]
          default: dnoe
        done: {type: exit}
        """), "default: dnoe", "pick", "default 'dnoe' names no node: did you mean 'done'?",
        id="default-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {event: clicked, next: dnoe}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "{event: clicked, next: dnoe}", "wait", "did you mean 'done'?",
        id="path-next-unknown"),
    pytest.param(doc("""\
        fork:
          type: split
          variants:
            - {name: a, weight: 1, next: done}
            - {name: b, weight: 1, next: doen}
        done: {type: exit}
        """, start="fork"), "next: doen", "fork", "did you mean 'done'?",
        id="variant-next-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {reply: "yes", of: helo, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "of: helo", "wait", "of 'helo' names no node: did you mean 'hello'?",
        id="path-of-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {read: hallo, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "read: hallo", "wait", "read 'hallo' names no node: did you mean 'hello'?",
        id="path-read-unknown"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {read: wait, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "read: wait", "wait", "is a wait_for node: name the send", id="path-read-not-send"),
    pytest.param(doc(head="""\
        migrate:
          - from_version: 1
            nodes: {old_hello: helo}
        """, version=2), "old_hello: helo", "journey",
        "'old_hello' -> 'helo' names no node: did you mean 'hello'?", id="migrate-target-unknown"),
    # ------------------------------------------------------------ graph shape
    pytest.param(doc(SMS_DONE + 'orphan: {type: send, channel: sms, text: "x", next: done}\n'),
                 "orphan:", "orphan", "unreachable from start 'hello'", id="unreachable"),
    pytest.param(doc("""\
        fork:
          type: split
          variants: [{name: a, weight: 1, next: done}, {name: b, weight: 1, next: stuck}]
        stuck: {type: wait, duration: 1d, next: stuck}
        done: {type: exit}
        """, start="fork"), "stuck:", "stuck", "no path from here to an exit node",
        id="no-path-to-exit"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: pause}
        pause: {type: wait, duration: 1d, next: hello}
        """), "nodes:", "journey", "has no exit node", id="no-exit-node"),
    pytest.param(doc("nodes_only: {type: exit}\n", start="nodes_only"), "start: nodes_only",
                 "journey", "is an exit node: users would leave at once", id="start-is-exit"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: check}
        check: {type: branch, cases: [{when: "user.vip", next: hello}], default: done}
        done: {type: exit}
        """), "hello:", "hello", "loop with no wait or wait_for: hello -> check -> hello",
        id="loop-without-wait"),
    pytest.param(doc("""\
        again: {type: branch, cases: [{when: "user.vip", next: again}], default: done}
        done: {type: exit}
        """, start="again"), "again:", "again", "loop with no wait or wait_for: again -> again",
        id="self-loop"),
    # ------------------------------------------------------------ wait_for
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait: {type: wait_for, paths: [{event: clicked, next: done}]}
        done: {type: exit}
        """), "wait: {", "wait", "wait_for has no timeout", id="wait-for-no-timeout"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths: [{event: clicked, next: done}]
          timeout: 1d
        done: {type: exit}
        """), "timeout: 1d", "wait", "timeout without on_timeout", id="timeout-no-on-timeout"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths: [{event: clicked, next: done}]
          on_timeout: done
        done: {type: exit}
        """), "on_timeout: done", "wait", "on_timeout without timeout", id="on-timeout-no-timeout"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {event: clicked, next: done}
            - {event: clicked, next: done}  # again
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "# again", "wait", "path 1 is the same as path 0", id="duplicate-path"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {click: go, of: hello, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "click: go", "wait", "no suggestion with postback 'go' in send 'hello'",
        id="click-postback-not-offered"),
    pytest.param(doc("""\
        fork:
          type: split
          variants: [{name: a, weight: 1, next: wait}, {name: b, weight: 1, next: other}]
        other: {type: send, channel: sms, text: "Hi", next: done}
        wait:
          type: wait_for
          paths:
            - {reply: "yes", of: other, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """, start="fork"), "of: other", "wait", "send 'other' is not on any path to this wait_for",
        id="of-send-not-before"),
    pytest.param(doc("""\
        wait:
          type: wait_for
          paths:
            - {reply: "yes", next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """, start="wait"), "reply: \"yes\"", "wait", "no send comes before this wait_for",
        id="reply-without-send"),
    # ------------------------------------------------------------ split, branch, wait
    pytest.param(doc("""\
        fork:
          type: split
          variants:
            - {name: a, weight: 1, next: done}
            - {name: b, weight: 0, next: done}
        done: {type: exit}
        """, start="fork"), "name: b", "fork", "weight 0: a weight is a positive number",
        id="split-weight-zero"),
    pytest.param(doc("""\
        fork:
          type: split
          variants:
            - {name: a, weight: -5, next: done}
            - {name: b, weight: 1, next: done}
        done: {type: exit}
        """, start="fork"), "name: a", "fork", "weight -5", id="split-weight-negative"),
    pytest.param(doc("""\
        fork:
          type: split
          variants:
            - {name: a, weight: 1, next: done}
            - {name: a, weight: 2, next: done}
        done: {type: exit}
        """, start="fork"), "weight: 2", "fork", "variant name 'a' is used twice",
        id="duplicate-variant-name"),
    pytest.param(doc("""\
        pick:
          type: branch
          cases:
            - {when: "user.vip", next: done}
            - {when: "user.vip", next: done}  # again
          default: done
        done: {type: exit}
        """, start="pick"), "# again", "pick", "same condition as case 0", id="duplicate-case"),
    pytest.param(doc("""\
        pause: {type: wait, until: {time: "10:00", days: []}, next: done}
        done: {type: exit}
        """, start="pause"), "pause:", "pause", "until.days is empty", id="until-days-empty"),
    pytest.param(doc("""\
        pause: {type: wait, until_property: account.renewal, next: done}
        done: {type: exit}
        """, start="pause"), "pause:", "pause", "until_property is a dotted path like user.",
        id="until-property-root"),
    # ------------------------------------------------------------ expressions, templates
    pytest.param(doc(entry="entry:\n  event: signed_up\n  when: \"event.total == = 1\""),
                 "when:", "journey", "entry.when: condition doesn't parse at column 16",
                 id="entry-when"),
    pytest.param(doc(head="goal: {event: bought, when: \"event.total >\"}\n"), "goal:", "journey",
                 "goal.when: condition doesn't parse", id="goal-when"),
    pytest.param(doc("""\
        pick:
          type: branch
          cases:
            - {when: "user.vip and", next: done}
          default: done
        done: {type: exit}
        """, start="pick"), "user.vip and", "pick", "cases[0].when: condition doesn't parse",
        id="case-when"),
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Hi", next: wait}
        wait:
          type: wait_for
          paths:
            - {event: clicked, next: done}
            - {event: opened, when: "os.system('x')", next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """), "opened", "wait", "paths[1].when: condition doesn't parse at column 1",
        id="path-when"),
    pytest.param(doc('hello: {type: send, channel: sms, text: "Hi {{ user.name ", next: done}\n'
                     'done: {type: exit}\n'), "hello:", "hello", "text: cannot parse",
                 id="template-text"),
    pytest.param(doc(rcs("""\
        rich_card:
          title: "Hi {{ user.name | shout }}"
        """)), "title:", "hello", "rich_card.title: unknown filter 'shout'", id="template-title"),
    pytest.param(doc(rcs("""\
        text: "Hi"
        suggestions:
          - open_url: {text: "Open", url: "https://x.example.com/{{ user.id"}
        """)), "open_url", "hello", "suggestions[0].open_url.url: cannot parse",
        id="template-suggestion-url"),
    pytest.param(doc(rcs("""\
        rich_card:
          media: {url: "https://cdn.example.com/{% if %}a.png"}
        """)), "media:", "hello", "rich_card.media.url: cannot parse", id="template-media-url"),
    pytest.param(doc(rcs("""\
        text: "Hi"
        fallback:
          sms: "Hi {{ user.name"
        """)), "sms:", "hello", "fallback.sms: cannot parse", id="template-fallback-sms"),
    # ------------------------------------------------------------ RCS limits
    pytest.param(doc(rcs(cards(1))), "cards:", "hello",
                 "a carousel has 2 to 10 cards, this one has 1", id="carousel-one-card"),
    pytest.param(doc(rcs(cards(11))), "cards:", "hello", "this one has 11", id="carousel-11-cards"),
    pytest.param(doc(rcs("rich_card:\n  title: Pick\n  suggestions:\n" + replies(5, "    "))),
                 "suggestions:", "hello", "has 5 suggestions; a card takes at most 4",
                 id="card-5-suggestions"),
    pytest.param(doc(rcs("text: Pick\nsuggestions:\n" + replies(12))), "suggestions:", "hello",
                 "the message has 12 suggestion chips; RCS allows at most 11",
                 id="message-12-chips"),
    pytest.param(doc(rcs("rich_card:\n  title: Pick\n  suggestions:\n" + replies(4, "    ")
                         + "suggestions:\n"
                         + replies(8).replace("'R", "'S").replace(": r", ": s"))),
                 "^    suggestions:", "hello", "the message has 12 suggestion chips",
                 id="card-plus-message-12-chips"),
    pytest.param(doc(rcs("text: Pick\nsuggestions:\n"
                         f"  - reply: {{text: '{'x' * 26}', postback: p}}\n")),
                 "reply:", "hello",
                 "suggestions[0].reply.text is 26 characters; RCS allows at most 25",
                 id="chip-text-26"),
    pytest.param(doc(rcs("text: Pick\nsuggestions:\n"
                         f"  - reply: {{text: Go, postback: '{'p' * 2049}'}}\n")),
                 "reply:", "hello", "postback is 2049 characters; RCS allows at most 2048",
                 id="postback-2049"),
    pytest.param(doc(rcs(f"rich_card:\n  title: '{'é' * 101}'\n")), "title:", "hello",
                 "rich_card.title is 202 bytes; RCS allows at most 200", id="card-title-bytes"),
    pytest.param(doc(rcs(f"rich_card:\n  description: '{'d' * 2001}'\n")), "description:", "hello",
                 "rich_card.description is 2001 bytes; RCS allows at most 2000",
                 id="card-description-2001"),
    pytest.param(doc(rcs(f"text: '{'t' * 3073}'\n")), "text:", "hello",
                 "text is 3073 characters; RCS allows at most 3072", id="rcs-text-3073"),
    pytest.param(doc(rcs("text: '   '\n")), "text:", "hello", "text is empty", id="rcs-text-empty"),
    pytest.param(doc(rcs("""\
        carousel:
          cards:
            - {title: A, media: {url: "https://cdn.example.com/a.png", height: TALL}}
            - {title: B}
        """)), "height: TALL", "hello",
        "carousel.cards[0]: TALL media is not allowed in a carousel", id="carousel-tall-media"),
    pytest.param(doc(rcs("""\
        carousel:
          cards:
            - {title: A}
            - {title: B, orientation: HORIZONTAL, thumbnail_alignment: LEFT}
        """)), "HORIZONTAL", "hello", "carousel cards are vertical", id="carousel-horizontal"),
    pytest.param(doc(rcs("""\
        rich_card:
          media: {url: "http://cdn.example.com/a.png"}
        """)), "media:", "hello", "is not a public https URL", id="media-http"),
    pytest.param(doc(rcs("""\
        rich_card:
          media: {url: "https://cdn.example.com/a.webp"}
        """)), "media:", "hello", "can't tell the file type from 'webp'", id="media-type-ext"),
    pytest.param(doc(rcs("""\
        rich_card:
          media:
            url: "https://cdn.example.com/a"
            content_type: image/webp
        """)), "content_type:", "hello", "content_type 'image/webp' is not a type RCS takes",
        id="media-content-type"),
    pytest.param(doc(rcs("""\
        rich_card:
          media:
            url: "https://cdn.example.com/a.mp4"
            thumbnail_url: "https://cdn.example.com/a.mp4"
        """)), "thumbnail_url:", "hello", "rich_card.media.thumbnail_url: can't tell the file type",
        id="thumbnail-not-image"),
    pytest.param(doc(rcs("""\
        text: Call?
        suggestions:
          - dial: {text: Call, phone: "+1 415 555 0100"}
        """)), "dial:", "hello", "is not an E.164 phone number: write +14155550100",
        id="dial-not-e164"),
    pytest.param(doc(rcs("""\
        text: Call?
        suggestions:
          - dial: {text: Call, phone: "call us"}
        """)), "dial:", "hello", "write it in E.164, like +14155550100", id="dial-not-a-phone"),
    pytest.param(doc(rcs(f"""\
        text: Book?
        suggestions:
          - calendar:
              text: Book
              title: '{"c" * 101}'
              start: "2026-12-01T10:00:00Z"
              end: "2026-12-01T11:00:00Z"
        """)), "title:", "hello", "calendar.title is 101 characters; RCS allows at most 100",
        id="calendar-title-101"),
    pytest.param(doc(rcs(f"""\
        text: Book?
        suggestions:
          - calendar:
              text: Book
              title: Call
              description: '{"c" * 501}'
              start: "2026-12-01T10:00:00Z"
              end: "2026-12-01T11:00:00Z"
        """)), "description:", "hello", "calendar.description is 501 characters",
        id="calendar-description-501"),
    pytest.param(doc(rcs("""\
        text: Book?
        suggestions:
          - calendar:
              text: Book
              title: Call
              start: "2026-12-01T10:00:00Z"
              end: "2026-12-01T09:00:00Z"
        """)), "end:", "hello", "calendar.end is not after start", id="calendar-end-before-start"),
    pytest.param(doc(rcs("""\
        text: Book?
        suggestions:
          - calendar:
              text: Book
              title: Call
              start: "2026-12-01 10:00"
              end: "2026-12-01T11:00:00Z"
        """)), "start: \"2026-12-01 10:00\"", "hello",
        "is not an ISO-8601 time with a UTC offset", id="calendar-no-offset"),
    pytest.param(doc(rcs(f"""\
        text: Open?
        suggestions:
          - open_url: {{text: Open, url: "https://example.com/{"u" * 2030}"}}
        """)), "open_url:", "hello", "open_url.url is 2050 characters; RCS allows at most 2048",
        id="open-url-2050"),
    pytest.param(doc(rcs("""\
        text: Open?
        suggestions:
          - open_url: {text: Open, url: "www.example.com"}
        """)), "open_url:", "hello", "is not an absolute http(s) URL", id="open-url-relative"),
    pytest.param(doc(rcs("""\
        text: Where?
        suggestions:
          - view_location: {text: Map, lat: 95, long: 2}
        """)), "view_location:", "hello", "lat 95.0 is out of range", id="location-range"),
    pytest.param(doc(rcs("""\
        text: Pick
        suggestions:
          - reply: {text: "Yes", postback: ok}
          - reply: {text: "Sure", postback: ok}
        """)), "Sure", "hello", "postback 'ok' is used twice in this message",
        id="duplicate-postback"),
    pytest.param(doc(rcs("""\
        text: Pick
        suggestions:
          - open_url: {text: "Open", url: "https://a.example.com/"}
          - open_url: {text: "open!", url: "https://b.example.com/"}
        """)), "open!", "hello", "postback 'open' is used twice", id="duplicate-default-postback"),
    # ------------------------------------------------------------ SMS
    pytest.param(doc(f'hello: {{type: send, channel: sms, text: "{"a" * 1531}", next: done}}\n'
                     "done: {type: exit}\n"), "hello:", "hello",
                 "text is 11 SMS segments (gsm7); the cap is 10", id="sms-11-segments"),
    pytest.param(doc(rcs(f"text: Hi\nfallback: {{sms: '{'ж' * 671}'}}\n")), "fallback:", "hello",
                 "fallback.sms is 11 SMS segments (ucs2)", id="fallback-sms-11-segments"),
    pytest.param(doc('hello: {type: send, channel: sms, text: "Hi", ttl: 1h, next: done}\n'
                     "done: {type: exit}\n"), "hello:", "hello", "ttl applies to rcs sends only",
                 id="ttl-on-sms"),
    pytest.param(doc('hello: {type: send, channel: sms, text: "Hi", fallback: {sms: x},\n'
                     "        next: done}\ndone: {type: exit}\n"), "hello:", "hello",
                 "fallback applies to rcs sends only", id="fallback-on-sms"),
    # ------------------------------------------------------------ journey level
    pytest.param(doc(head="exit_on: [cancelled, signed_up]\n"), "exit_on:", "journey",
                 "exit_on has the entry event 'signed_up'", id="exit-on-entry-event"),
    pytest.param(doc(head="goal: {event: signed_up}\n"), "goal:", "journey",
                 "goal event 'signed_up' is the entry event", id="goal-is-entry-event"),
    pytest.param(doc(head="migrate:\n  - from_version: 2\n    nodes: {}\n", version=2),
                 "from_version", "journey", "from_version 2 is not lower than this version (2)",
                 id="migrate-from-not-lower"),
    pytest.param(doc(head="""\
        migrate:
          - {from_version: 1, nodes: {}}
          - {from_version: 1, nodes: {}}  # again
        """, version=3), "# again", "journey", "from_version 1 is migrated twice",
        id="migrate-twice"),
    pytest.param(doc(entry="entry: {event: signed_up, reentry: never, cooldown: 1d}"), "entry:",
                 "journey", "cooldown has no effect with reentry: never", id="cooldown-never"),
    pytest.param(doc(head='settings:\n  quiet_hours: {from: "21:00", to: "21:00"}\n'),
                 "quiet_hours:", "journey", "from 21:00 to 21:00 is an empty window",
                 id="quiet-hours-empty"),
    pytest.param(doc(head='settings:\n  quiet_hours: {from: "21:00", to: "08:00", days: []}\n'),
                 "quiet_hours:", "journey", "quiet_hours.days is empty", id="quiet-hours-no-days"),
    pytest.param(doc(head="settings:\n  send_rate:\n    max: 0\n    per: 1s\n"), "max: 0",
                 "journey", "send_rate.max is 0: the journey could never send",
                 id="send-rate-max-0"),
    pytest.param(doc(head="settings:\n  send_rate:\n    max: 10\n    per: 0s\n"), "per: 0s",
                 "journey", "send_rate.per is '0s': give a positive duration",
                 id="send-rate-per-0"),
    pytest.param(doc(head="settings:\n  default_timezone: Mars/Olympus\n"), "default_timezone",
                 "journey", "'Mars/Olympus' is not an IANA time zone", id="default-timezone"),
]


@pytest.mark.parametrize(("text", "marker", "node", "phrase"), BROKEN_FILES)
def test_each_rule_reports_one_problem_at_its_line(
    tmp_path: Path, text: str, marker: str, node: str, phrase: str
) -> None:
    problems = lint_text(tmp_path, text)
    assert len(problems) == 1, "\n".join(map(str, problems))
    (p,) = problems
    assert (p.file, p.line, p.node) == (str(tmp_path / "j.yaml"), line_of(text, marker), node)
    assert phrase in p.message
    assert str(p) == f"{tmp_path / 'j.yaml'}:{p.line}: {node}: {p.message}"


def test_clean_file_reports_nothing() -> None:
    assert lint_paths([OK]) == []
    journeys = load_journeys([OK])
    kinds = {n.type for j in journeys for n in j.nodes.values()}
    assert kinds == {"send", "wait", "wait_for", "branch", "split", "exit"}


def test_clean_file_uses_all_six_suggestion_kinds() -> None:
    (journey,) = load_journeys([OK / "full.yaml"])
    used = set()
    for node in journey.nodes.values():
        for card in [getattr(node, "rich_card", None), *getattr(getattr(node, "carousel", None),
                                                                 "cards", [])]:
            used |= {s.kind for s in getattr(card, "suggestions", [])}
        used |= {s.kind for s in getattr(node, "suggestions", [])}
    assert used == {"reply", "open_url", "dial", "view_location", "share_location", "calendar"}


def test_many_problems_are_reported_at_once() -> None:
    path = BROKEN / "many.yaml"
    text = path.read_text(encoding="utf-8")
    got = [(p.line, p.node, p.message) for p in lint_paths([path])]
    expected = [
        ("goal:", "journey", "goal event 'order_placed' is the entry event"),
        ("exit_on:", "journey", "exit_on has the entry event"),
        ("quiet_hours:", "journey", "empty window"),
        ("title: \"{{ event.order_id\"", "welcome", "rich_card.title: cannot parse"),
        ("A label far too long", "welcome", "is 33 characters; RCS allows at most 25"),
        ("dial: {text: Call", "welcome", "is not an E.164 phone number"),
        ("postback: track}  # twice", "welcome", "postback 'track' is used twice"),
        ("await:", "await", "wait_for has no timeout"),
        ("when: \"event.id ==\"", "await", "paths[0].when: condition doesn't parse"),
        ("next: shiped", "await", "did you mean 'shipped'?"),
        ("shipped:", "shipped", "loop with no wait or wait_for: shipped -> again -> shipped"),
        ("{name: a, weight: 0", "ab", "weight 0"),
        ("{name: a, weight: 1", "ab", "used twice"),
        ("lost:", "lost", "unreachable from start"),
    ]
    want = sorted((line_of(text, m), n, phrase) for m, n, phrase in expected)
    assert len(got) == len(want), "\n".join(map(str, got))
    for (line, node, message), (wline, wnode, phrase) in zip(got, want, strict=True):
        assert (line, node) == (wline, wnode) and phrase in message, (line, node, message)


# --------------------------------------------------------------------------- good shapes


@pytest.mark.parametrize("text", [
    pytest.param(doc("""\
        hello: {type: send, channel: sms, text: "Reply YES to confirm", next: wait}
        wait:
          type: wait_for
          paths: [{reply: "YES", of: hello, next: done}, {reply: "*", next: done}]
          timeout: 1d
          on_timeout: hello
        done: {type: exit}
        """), id="free-text-reply-and-loop-through-wait-for"),
    pytest.param(doc(rcs(f"text: \"{{{{ user.name }}}}{'a' * 4000}\"\n")), id="templated-text"),
    pytest.param(doc(rcs("text: Pick\nsuggestions:\n"
                         "  - reply: {text: Go, postback: '{{ event.id }}'}\n", extra="""\
        wait:
          type: wait_for
          paths: [{click: anything, of: hello, next: done}]
          timeout: 1d
          on_timeout: done
        """).replace("next: done\ndone:", "next: wait\ndone:")), id="templated-postback"),
    pytest.param(doc("""\
        a: {type: branch, cases: [{when: "user.x", next: b}], default: done}
        b: {type: wait, duration: 1h, next: c}
        c:
          type: branch
          cases: [{when: "user.y", next: a}, {when: "user.z", next: b}]
          default: done
        done: {type: exit}
        """, start="a"), id="loops-through-a-wait"),
])
def test_valid_shapes_report_nothing(tmp_path: Path, text: str) -> None:
    assert lint_text(tmp_path, text) == []


def test_loop_region_is_reported_once_naming_its_nodes(tmp_path: Path) -> None:
    text = doc("""\
        a: {type: branch, cases: [{when: "user.x", next: b}], default: done}
        b:
          type: branch
          cases: [{when: "user.y", next: a}, {when: "user.z", next: c}]
          default: done
        c: {type: send, channel: sms, text: "Hi", next: b}
        done: {type: exit}
        """, start="a")
    (p,) = lint_text(tmp_path, text)
    assert (p.line, p.node) == (line_of(text, "a: {"), "a")
    assert "a -> b -> a" in p.message and "also through c" in p.message


# --------------------------------------------------------------------------- across files


def test_same_id_and_version_in_two_files_is_reported_in_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(doc(), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# copy\n" + doc(), encoding="utf-8")
    problems = lint_paths([tmp_path])
    assert [(Path(p.file).name, p.line, p.node) for p in problems] == [
        ("a.yaml", 1, "journey"), ("b.yaml", 2, "journey")]
    assert f"also defined in {tmp_path / 'b.yaml'}" in problems[0].message
    assert f"also defined in {tmp_path / 'a.yaml'}" in problems[1].message


def test_two_versions_of_one_journey_are_fine(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(doc(), encoding="utf-8")
    v2 = doc(head="migrate:\n  - from_version: 1\n    nodes: {hello: hello}\n", version=2)
    (tmp_path / "v2.yaml").write_text(v2, encoding="utf-8")
    assert lint_paths([tmp_path]) == []
    assert sorted(j.key for j in load_journeys([tmp_path])) == [("t", 1), ("t", 2)]


def test_migrate_names_a_node_the_old_version_lacks(tmp_path: Path) -> None:
    (tmp_path / "v1.yaml").write_text(doc(), encoding="utf-8")
    v2 = doc(head="migrate:\n  - from_version: 1\n    nodes: {hallo: hello}\n", version=2)
    (tmp_path / "v2.yaml").write_text(v2, encoding="utf-8")
    (p,) = lint_paths([tmp_path])
    assert (Path(p.file).name, p.line, p.node) == ("v2.yaml", line_of(v2, "hallo"), "journey")
    assert "'hallo' names no node of version 1: did you mean 'hello'?" in p.message


# --------------------------------------------------------------------------- API


def test_load_journeys_raises_every_problem(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(doc(start="helo"), encoding="utf-8")
    (tmp_path / "worse.yaml").write_text("id: [", encoding="utf-8")
    with pytest.raises(InvalidJourney) as info:
        load_journeys([tmp_path])
    assert [Path(p.file).name for p in info.value.problems] == ["bad.yaml", "worse.yaml"]
    assert "bad.yaml:4: journey: start 'helo' names no node" in str(info.value)


def test_lint_loaded_skips_files_the_schema_refused_and_is_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(doc(start="helo", version=2), encoding="utf-8")
    (tmp_path / "a.yaml").write_text(doc(SMS_DONE + "x: {type: exit}\n"), encoding="utf-8")
    (tmp_path / "c.yaml").write_text("id: t\n", encoding="utf-8")
    loaded, load_problems = load_paths([tmp_path])
    assert load_problems and all(p.file.endswith("c.yaml") for p in load_problems)
    problems = lint_loaded(loaded)
    assert problems == sorted(problems)
    assert [Path(p.file).name for p in problems] == ["a.yaml", "b.yaml"]


def test_a_failing_rule_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_rule(_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(linter, "RULES", (broken_rule, *linter.RULES))
    loaded, _ = load_text(doc(), "x.yaml")
    assert loaded is not None
    (p,) = lint_loaded([loaded])
    assert (p.file, p.line, p.node) == ("x.yaml", 1, "journey")
    assert "broken_rule" in p.message and "boom" in p.message


def test_journey_graph_has_labelled_edges() -> None:
    (journey,) = load_journeys([OK / "full.yaml"])
    g = journey_graph(journey)
    assert isinstance(g, nx.DiGraph)
    assert set(g.nodes) == set(journey.nodes)
    assert g.graph["start"] == "welcome"
    assert g.nodes["await_answer"]["type"] == "wait_for"
    assert g.edges["await_answer", "nudge"]["label"] == "timeout"
    assert g.edges["await_answer", "tour"]["label"] == "reply tour of welcome"
    assert g.edges["segment", "done"]["label"] == "default"
    assert g.edges["ab_test", "until_renewal"]["label"] == "control (50)"
    assert g.edges["settle", "await_answer"]["label"] == ""
    # a case and the default to the same node make one edge with both labels
    loaded, _ = load_text(doc("""\
        pick: {type: branch, cases: [{when: "user.vip", next: done}], default: done}
        done: {type: exit}
        """, start="pick"), "x.yaml")
    assert loaded is not None and loaded.journey is not None
    assert journey_graph(loaded.journey).edges["pick", "done"]["label"] == "user.vip | default"


def test_journey_graph_leaves_out_broken_targets() -> None:
    loaded, _ = load_text(doc(SMS_DONE.replace("next: done", "next: nowhere")), "x.yaml")
    assert loaded is not None and loaded.journey is not None
    g = journey_graph(loaded.journey)
    assert list(g.edges) == [] and "nowhere" not in g


def test_a_reply_path_may_be_free_text(tmp_path: Path) -> None:
    """``reply`` matches a tap *or* free text, so a value no chip offers is still valid."""
    path = tmp_path / "free.yaml"
    path.write_text(doc("""\
        hello:
          type: send
          channel: rcs
          text: "Track your order?"
          suggestions:
            - reply: {text: "Track", postback: track}
          next: wait
        wait:
          type: wait_for
          paths:
            - {reply: trak, of: hello, next: done}
          timeout: 1d
          on_timeout: done
        done: {type: exit}
        """))
    assert lint_paths([path]) == []
