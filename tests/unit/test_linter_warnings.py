"""Linter warnings: what probably loses or garbles messages, each proven on a small file.

Every warning is asserted with its exact line (and node) and the words that tell the
author what to do; each rule also has files it must leave alone. Warnings print as
``file:line: node: warning: message``, never stop a journey from loading, and fail
``journeys validate`` only with ``--strict``.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from engine.cli import main
from engine.errors import Problem
from engine.lint.expression_hints import expression_hint
from engine.lint.linter import lint_paths, load_journeys
from engine.lint.sms_text import printed_always
from engine.lint.variables import required_paths

ROOT = Path(__file__).resolve().parents[2]
EXIT = "done: {type: exit}\n"


def journey(nodes: str, head: str = "", *, start: str = "hello", jid: str = "t",
            entry: str = "entry: {event: signed_up}") -> str:
    """A journey file: ``head`` (top-level lines), then ``nodes`` (written unindented)."""
    return (f"id: {jid}\nversion: 1\n{entry}\n{textwrap.dedent(head)}start: {start}\n"
            f"nodes:\n{textwrap.indent(textwrap.dedent(nodes), '  ')}")


def line_of(text: str, marker: str) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) == 1, f"marker {marker!r} is on lines {hits}"
    return hits[0]


def warnings_of(tmp_path: Path, text: str, name: str = "j.yaml") -> list[Problem]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    found = lint_paths([path], warnings=True)
    assert not [p for p in found if not p.is_warning], "\n".join(map(str, found))
    return found


def one_warning(tmp_path: Path, text: str) -> Problem:
    found = warnings_of(tmp_path, text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def assert_warning(p: Problem, text: str, marker: str, node: str, *phrases: str) -> None:
    assert (p.line, p.node, p.severity) == (line_of(text, marker), node, "warning")
    for phrase in phrases:
        assert phrase in p.message, p.message
    assert str(p) == f"{p.file}:{p.line}: {node}: warning: {p.message}"


# --------------------------------------------------------------------------- RCS fallback

CAROUSEL = """\
hello:
  type: send
  channel: rcs
  carousel:
    cards:
      - {title: "Shoes", suggestions: [{open_url: {text: "Shoes", url: "https://x.example/s"}}]}
      - {title: "Jackets", suggestions: [{open_url: {text: "Coats", url: "https://x.example/j"}}]}
  next: done
""" + EXIT


def test_rcs_send_without_fallback(tmp_path: Path) -> None:
    text = journey(CAROUSEL)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "channel: rcs", "hello", "rcs send without fallback",
                   "message_failed, reason not_capable", "add fallback: {sms:")


@pytest.mark.parametrize("extra", ["  fallback: {sms: \"New picks: https://x.example\"}\n",
                                   "  fallback: {}\n", "  ttl: 1d\n"],
                         ids=["fallback-sms", "fallback-derived", "ttl-means-rcs-only"])
def test_a_fallback_or_a_ttl_leaves_the_send_alone(tmp_path: Path, extra: str) -> None:
    assert warnings_of(tmp_path, journey(CAROUSEL.replace("  next: done\n", extra +
                                                          "  next: done\n"))) == []


def test_a_send_reached_only_by_a_tap_needs_no_fallback(tmp_path: Path) -> None:
    # The user just tapped an RCS chip (or read an RCS message): the phone takes RCS.
    text = journey("""\
        hello:
          type: send
          channel: rcs
          text: "Your order is confirmed"
          suggestions: [{reply: {text: "Track", postback: track}}]
          fallback: {sms: "Your order is confirmed"}
          next: await
        await:
          type: wait_for
          paths:
            - {click: track, next: tracking}
            - {read: hello, next: tracking}
          timeout: 1d
          on_timeout: done
        tracking: {type: send, channel: rcs, text: "It is being packed", next: done}
        """ + EXIT)
    assert warnings_of(tmp_path, text) == []
    # A typed reply may come from an SMS: a send after a reply path needs its fallback.
    text = text.replace("{click: track, next: tracking}", "{reply: track, next: tracking}")
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "tracking: {type: send, channel: rcs", "tracking",
                   "rcs send without fallback")


# --------------------------------------------------------------------------- chips

def test_chips_on_a_later_message_than_the_wait_for_answers(tmp_path: Path) -> None:
    # The issue's case: the wait_for answers `remind`, the chips are on `ask`.
    text = journey("""\
        remind:
          type: send
          channel: rcs
          text: "Your appointment is tomorrow at 10:00"
          fallback: {sms: "Your appointment is tomorrow at 10:00"}
          next: ask
        ask:
          type: send
          channel: rcs
          text: "Can you make it?"
          suggestions:
            - reply: {text: "Confirm", postback: confirm}
            - reply: {text: "Reschedule", postback: reschedule}
          fallback: {sms: "Can you make it? Reply CONFIRM or RESCHEDULE"}
          next: await
        await:
          type: wait_for
          paths:
            - {reply: confirm, of: remind, next: done}
            - {reply: reschedule, of: remind, next: done}
          timeout: 12h
          on_timeout: done
        """ + EXIT, start="remind")
    found = warnings_of(tmp_path, text)
    assert len(found) == 2, "\n".join(map(str, found))
    confirm, reschedule = found
    assert_warning(confirm, text, "postback: confirm}", "ask",
                   "chip 'Confirm' (postback 'confirm'): no wait_for after this send listens "
                   "to it, so a tap does nothing: add {reply: confirm, of: ask, next: ...} to "
                   "'await' (the paths after it answer 'remind')")
    assert_warning(reschedule, text, "postback: reschedule}", "ask", "chip 'Reschedule'")


def test_chips_with_no_wait_for_after_them(tmp_path: Path) -> None:
    text = journey("""\
        hello:
          type: send
          channel: rcs
          text: "New arrivals are in"
          suggestions:
            - open_url: {text: "Shop", url: "https://x.example"}
            - reply: {text: "Stop these tips", postback: no_tips}
          fallback: {sms: "New arrivals: https://x.example"}
          next: done
        """ + EXIT)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "Stop these tips", "hello", "no wait_for comes after this send, "
                   "so a tap on its reply chips ('Stop these tips') does nothing")


ANSWERED = """\
hello:
  type: send
  channel: rcs
  rich_card:
    title: "Keep your plan?"
    suggestions:
      - reply: {text: "Keep", postback: keep}
      - reply: {text: "Cancel", postback: cancel}
  fallback: {sms: "Your plan renews soon. Reply KEEP or CANCEL"}
  next: await
await:
  type: wait_for
  paths:
    - PATH_A
    - PATH_B
  timeout: 1d
  on_timeout: done
""" + EXIT


@pytest.mark.parametrize(("a", "b"), [
    ("{reply: keep, next: done}", "{click: cancel, next: done}"),         # the latest send
    ("{reply: KEEP, of: hello, next: done}", "{reply: '*', next: done}"),  # any answer
])
def test_chips_that_a_path_answers(tmp_path: Path, a: str, b: str) -> None:
    text = journey(ANSWERED.replace("PATH_A", a).replace("PATH_B", b))
    assert warnings_of(tmp_path, text) == []


def test_a_click_answers_the_latest_send_but_the_chip_is_on_an_earlier_one(
    tmp_path: Path,
) -> None:
    text = journey(ANSWERED.replace("next: await\n", "next: note\n", 1).replace(
        "PATH_A", "{click: keep, next: done}").replace("PATH_B", "{click: cancel, of: hello, "
        "next: done}") + "note: {type: send, channel: sms, text: \"Thanks\", next: await}\n")
    chip, path = warnings_of(tmp_path, text)
    assert_warning(chip, text, "postback: keep}", "hello", "chip 'Keep' (postback 'keep'): "
                   "no wait_for after this send listens to it")
    assert_warning(path, text, "{click: keep, next: done}", "await",
                   "click 'keep' answers the latest send ('note'), which has no chip with that "
                   "postback; the chip is on 'hello': write of: hello")


def test_a_reply_value_no_chip_has(tmp_path: Path) -> None:
    text = journey(ANSWERED.replace("PATH_A", "{reply: kep, next: done}")
                   .replace("PATH_B", "{reply: cancel, next: done}"))
    chip, p = warnings_of(tmp_path, text)  # the chip 'Keep' is not answered either
    assert_warning(chip, text, "postback: keep}", "hello", "chip 'Keep' (postback 'keep')")
    assert_warning(p, text, "{reply: kep, next: done}", "await",
                   "reply 'kep': no chip of 'hello' has that postback, so only typed text "
                   "'kep' takes this path: did you mean 'keep'?")


def test_a_reply_to_a_message_without_chips_is_typed_text(tmp_path: Path) -> None:
    text = journey("""\
        hello: {type: send, channel: sms, text: "Reply YES to confirm", next: await}
        await:
          type: wait_for
          paths: [{reply: "yes", next: done}]
          timeout: 1d
          on_timeout: done
        """ + EXIT)
    assert warnings_of(tmp_path, text) == []


# --------------------------------------------------------------------------- SMS cost

def sms(text: str, key: str = "text") -> str:
    if key == "text":
        return journey(f"hello: {{type: send, channel: sms, text: \"{text}\", next: done}}\n"
                       + EXIT)
    return journey(f"hello:\n  type: send\n  channel: rcs\n  text: \"Hi\"\n  fallback:\n"
                   f"    sms: \"{text}\"\n  next: done\n" + EXIT)


def test_sms_over_one_segment(tmp_path: Path) -> None:
    text = sms("Your order has shipped. " * 7)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "text:", "hello", "text is 2 SMS segments (168 GSM-7 characters; "
                   "one SMS holds 160), each billed as one SMS: shorten it by 8")


def test_sms_made_ucs2_by_one_character(tmp_path: Path) -> None:
    text = sms("We\u2019re open today until 6pm.", key="fallback")
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "sms:", "hello", "fallback.sms is UCS-2 because of '\u2019' "
                   "(U+2019 RIGHT SINGLE QUOTATION MARK) at character 3: one SMS then holds 70 "
                   "characters instead of 160: replace '\u2019' with \"'\"")


def test_four_segments_because_of_an_emoji(tmp_path: Path) -> None:
    # The issue's case: 4 segments in UCS-2, 2 in GSM-7 without the emoji.
    text = sms("Big sale \U0001F389 " + "everything must go, " * 11)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "text:", "hello", "text is 4 SMS segments, in UCS-2 because of "
                   "'\U0001F389' (U+1F389 PARTY POPPER) at character 10; in GSM-7 it would be "
                   "2: remove '\U0001F389'")


def test_a_template_is_measured_by_what_it_always_prints(tmp_path: Path) -> None:
    body = "x" * 158
    text = sms("Hi {{ user.first_name | default: 'there' }}, " + body)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "text:", "hello", "text is at least 2 SMS segments")
    # What an if-block prints may not be printed: it doesn't count.
    assert warnings_of(tmp_path, sms("{% if user.vip %}" + body + "!!{% endif %}Hi")) == []
    assert printed_always("a{{ x }}b{% if y %}c{% endif %} {{- z }}") == [(0, "a"), (8, "b")]


@pytest.mark.parametrize("body", ["Short and plain.", "Γειά σας, το πακέτο σας έφτασε.",
                                  "x" * 160])
def test_sms_that_costs_one_plain_message(tmp_path: Path, body: str) -> None:
    # A text in another script is UCS-2 on purpose: no warning while it fits one SMS.
    assert warnings_of(tmp_path, sms(body)) == []


# --------------------------------------------------------------------------- variables

def card(title: str, head: str = "", start: str = "hello", before: str = "") -> str:
    return journey(textwrap.dedent(before) + textwrap.dedent(f"""\
        hello:
          type: send
          channel: rcs
          rich_card: {{title: "{title}"}}
          fallback: {{sms: "Hello"}}
          next: done
        """) + EXIT, head=head, start=start)


def test_a_user_attribute_without_default(tmp_path: Path) -> None:
    text = card("Hi {{ user.first_name }}, welcome")
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "rich_card:", "hello", "rich_card.title: {{ user.first_name }} "
                   "prints nothing for a user without 'first_name' (it reads \"Hi , welcome\"): "
                   "write {{ user.first_name | default: '...' }}, or test exists(user.first_name) "
                   "in a branch before this send")


@pytest.mark.parametrize("title", [
    "Hi {{ user.first_name | default: 'there' }}",
    "Hi{% if user.first_name %} {{ user.first_name }}{% endif %}",
    "Call {{ user.phone }}",  # a send only goes to users with a phone
    "{{ journey.id }} v{{ journey.version }}",
    "Your {{ event.plan }} plan",  # event properties are the sender's contract
])
def test_outputs_that_are_always_there(tmp_path: Path, title: str) -> None:
    assert warnings_of(tmp_path, card(title)) == []


def test_a_condition_on_every_way_guarantees_a_value(tmp_path: Path) -> None:
    branch = """\
        pick:
          type: branch
          cases: [{when: "exists(user.first_name) and user.tier == 'gold'", next: hello}]
          default: DEFAULT
        """
    text = card("Hi {{ user.first_name }} ({{ user.tier }})", start="pick",
                before=branch.replace("DEFAULT", "done"))
    assert warnings_of(tmp_path, text) == []
    text = card("Hi {{ user.first_name }}", start="hello",
                head="", before="").replace("entry: {event: signed_up}",
                                            "entry: {event: signed_up, when: "
                                            "\"user.first_name != None\"}")
    assert warnings_of(tmp_path, text) != []  # `!= None` compares, it doesn't require
    # The default way skips the check: some users get here without a first name.
    text = card("Hi {{ user.first_name }}", start="pick", before=branch.replace("DEFAULT",
                                                                                 "hello"))
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "rich_card:", "hello", "{{ user.first_name }} prints nothing")


def test_an_event_property_the_journey_says_can_be_missing(tmp_path: Path) -> None:
    text = journey("""\
        hello:
          type: send
          channel: rcs
          text: "Arrives {{ event.eta | default: 'soon' }}"
          fallback: {sms: "Arrives {{ event.eta }}"}
          next: done
        """ + EXIT)
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "sms:", "hello", "fallback.sms: {{ event.eta }} can be missing "
                   "(this journey gives it a default or tests it elsewhere)",
                   "or require exists(event.eta) where the event comes in")
    required = text.replace("entry: {event: signed_up}",
                            "entry: {event: signed_up, when: \"exists(event.eta)\"}")
    assert warnings_of(tmp_path, required) == []


def test_journey_has_only_id_and_version(tmp_path: Path) -> None:
    text = card("{{ journey.name }}")
    p = one_warning(tmp_path, text)
    assert_warning(p, text, "rich_card:", "hello", "{{ journey.name }} is never set")


@pytest.mark.parametrize(("condition", "paths"), [
    ("exists(user.a) and user.b > 3", {"user.a", "user.b"}),
    ("exists(user.a) or exists(user.b)", set()),
    ("exists(user.a) || (user.a == 1 && exists(event.x.y))", {"user.a"}),
    ("user.a in ['x', 'y'] and 'v' in user.tags and !user.c", {"user.a", "user.tags"}),
    ("user.a == None or user.b != 'x'", set()),
    ("event.x.y == 'z'", {"event.x", "event.x.y"}),
    ("user.a == ", set()),
])
def test_what_a_condition_requires(condition: str, paths: set[str]) -> None:
    assert required_paths(condition) == paths


# --------------------------------------------------------------------------- frequency cap

CAPPED = journey("hello: {type: send, channel: sms, text: \"Sale!\", next: done}\n" + EXIT,
                 head="settings:\n  frequency_cap: {max: 2, per: 7d}\n", jid="capped")


def test_a_cap_other_journeys_sends_count_against(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(CAPPED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(journey(
        "hello: {type: send, channel: sms, text: \"News\", next: done}\n" + EXIT, jid="news"),
        encoding="utf-8")
    (p,) = lint_paths([tmp_path], warnings=True)
    assert (p.file, p.line, p.node) == (str(tmp_path / "a.yaml"),
                                        line_of(CAPPED, "frequency_cap"), "journey")
    assert p.message == (
        "frequency_cap (2 per 7d) counts the marketing sends of every journey, and news (no "
        "cap) sends marketing messages under another cap: their sends use up this one, and "
        "sends here are then suppressed (reason frequency_cap); give every marketing journey "
        "the same cap")


@pytest.mark.parametrize("other", [
    # the same cap: one budget, shared on purpose
    journey("hello: {type: send, channel: sms, text: \"News\", next: done}\n" + EXIT,
            head="settings:\n  frequency_cap: {max: 2, per: 7d}\n", jid="news"),
    # 168h is 7d: the same cap, written another way
    journey("hello: {type: send, channel: sms, text: \"News\", next: done}\n" + EXIT,
            head="settings:\n  frequency_cap: {max: 2, per: 168h}\n", jid="news"),
    # utility sends are never capped nor counted
    journey("hello: {type: send, channel: sms, marketing: false, text: \"Receipt\", "
            "next: done}\n" + EXIT, jid="receipts"),
])
def test_caps_that_are_not_eaten_by_others(tmp_path: Path, other: str) -> None:
    (tmp_path / "a.yaml").write_text(CAPPED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(other, encoding="utf-8")
    assert lint_paths([tmp_path], warnings=True) == []


# --------------------------------------------------------------------------- did you mean

@pytest.mark.parametrize(("line", "message"), [
    ("    nxet: done", "unknown field 'nxet': did you mean 'next'?"),
    ("    fallbak: {sms: hi}", "unknown field 'fallbak': did you mean 'fallback'?"),
    ("    colour: red", "unknown field 'colour': the fields here are name, description, type, "
                      "channel, text, rich_card, carousel, suggestions, fallback, ttl, "
                      "marketing, next"),
])
def test_a_misspelt_field_gets_a_did_you_mean(tmp_path: Path, line: str, message: str) -> None:
    text = ("id: t\nversion: 1\nentry: {event: signed_up}\nstart: hello\nnodes:\n  hello:\n"
            "    type: send\n    channel: sms\n    text: Hi\n    next: done\n" + line + "\n"
            "  done: {type: exit}\n")
    path = tmp_path / "j.yaml"
    path.write_text(text, encoding="utf-8")
    (p,) = lint_paths([path])
    assert (p.line, p.node, p.message, p.severity) == (11, "hello", message, "error")


def test_did_you_mean_reads_aliases_and_nested_fields(tmp_path: Path) -> None:
    text = journey("hello: {type: send, channel: sms, text: \"Hi\", next: done}\n" + EXIT,
                   head="settings:\n  quiet_hours: {fron: \"21:00\", to: \"08:00\"}\n",
                   entry="entry: {event: signed_up, reentri: never}")
    path = tmp_path / "j.yaml"
    path.write_text(text, encoding="utf-8")
    messages = {p.message for p in lint_paths([path])}
    assert "unknown field 'fron': did you mean 'from'?" in messages
    assert "unknown field 'reentri': did you mean 'reentry'?" in messages


@pytest.mark.parametrize(("condition", "hint"), [
    ("user.tier = 'gold'", "use == to compare (= alone is not an operator) (column 11)"),
    ("user.tier === 'gold'", "use == instead of === (column 11)"),
    ("user.tier !== 'gold'", "use != instead of !== (column 11)"),
    ("user.tier <> 'gold'", "use != instead of <> (column 11)"),
    ("user.age => 18", "use >= instead of => (column 10)"),
    ("user.age =< 18", "use <= instead of =< (column 10)"),
    ("user.vip AND user.age > 18", "write and in lower case (and / or / not) (column 10)"),
    ("NOT user.vip", "write not in lower case (and / or / not) (column 1)"),
])
def test_a_condition_in_another_language_gets_a_hint(
    tmp_path: Path, condition: str, hint: str
) -> None:
    assert expression_hint(condition) == hint
    text = journey("hello: {type: send, channel: sms, text: \"Hi\", next: done}\n" + EXIT,
                   entry=f"entry: {{event: signed_up, when: \"{condition}\"}}")
    path = tmp_path / "j.yaml"
    path.write_text(text, encoding="utf-8")
    (p,) = lint_paths([path])
    assert p.line == 3 and p.severity == "error"
    assert p.message.startswith("entry.when: condition doesn't parse")
    assert p.message.endswith(": " + hint)


@pytest.mark.parametrize("condition", ["user.vip && user.age >= 18 || !user.blocked",
                                       "user.note == 'a = b' and user.x != 1"])
def test_accepted_conditions_need_no_hint(condition: str) -> None:
    assert expression_hint(condition) is None


# --------------------------------------------------------------------------- validate

def test_validate_prints_warnings_and_strict_fails_on_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.yaml"
    text = journey(CAROUSEL)
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == (f"{path}:{line_of(text, 'channel: rcs')}: hello: warning: rcs send without "
                   "fallback: users whose phone can't take RCS get nothing (message_failed, "
                   "reason not_capable): add fallback: {sms: \"...\"} (fallback: {} derives "
                   "the text from the message), or set ttl if the send is meant for RCS only\n")
    assert err == "0 problem(s), 1 warning(s)\n"
    assert main(["validate", "--strict", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "warning: rcs send without fallback" in out
    assert err == "0 problem(s), 1 warning(s) (--strict: warnings fail)\n"


def test_errors_and_warnings_are_printed_together_in_line_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(journey(CAROUSEL.replace("next: done", "next: dnoe")), encoding="utf-8")
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [re.sub(r"^.*?:(\d+): (\w+): (warning: )?.*$", r"\1 \2 \3", x) for x in lines] == [
        "8 hello warning: ", "13 hello ", "14 done "]
    assert "did you mean 'done'?" in lines[1]
    assert err == "2 problem(s), 1 warning(s)\n"


def test_a_clean_file_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(journey("hello: {type: send, channel: sms, text: \"Hi\", next: done}\n"
                            + EXIT), encoding="utf-8")
    assert main(["validate", "--strict", str(path)]) == 0
    assert capsys.readouterr() == ("", "")


def test_warnings_never_stop_a_journey_from_loading(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text(journey(CAROUSEL), encoding="utf-8")
    assert [j.id for j in load_journeys([path])] == ["t"]
    assert lint_paths([path]) == []  # without warnings=True: the errors only


# --------------------------------------------------------------------------- the examples

def test_the_example_journeys_warn_only_about_their_shared_caps() -> None:
    # Black Friday (2 per 1d), win-back (2 per 7d) and the renewal's retention offer (no
    # cap) share one cap budget per user: the golden scenarios pin that down, so the
    # examples keep their caps and the warning stays true.
    found = lint_paths([ROOT / "journeys"], warnings=True)
    assert [(Path(p.file).name, p.node, p.message.split(" counts")[0]) for p in found] == [
        ("black-friday-promo.yaml", "journey", "frequency_cap (2 per 1d)"),
        ("winback-inactive.yaml", "journey", "frequency_cap (2 per 7d)"),
    ]
    assert all(p.is_warning for p in found)


def test_the_clean_reference_file_gives_no_warning() -> None:
    assert lint_paths([ROOT / "tests" / "fixtures" / "ok"], warnings=True) == []


def test_the_docs_examples_give_no_warning(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "journeys.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
              if b.startswith("id:")]
    assert len(blocks) >= 10
    for i, block in enumerate(blocks):
        (tmp_path / f"{i}.yaml").write_text(block, encoding="utf-8")
        found = lint_paths([tmp_path / f"{i}.yaml"], warnings=True)
        assert found == [], "\n".join(map(str, found))


# --------------------------------------------------------------------------- unknown names


def test_a_template_name_the_engine_never_sets_is_a_warning(tmp_path: Path) -> None:
    text = journey(
        'hello: {type: send, channel: sms, marketing: false, text: "Hi {{ user_id }}", '
        "next: done}  # here\n" + EXIT
    )
    assert_warning(
        one_warning(tmp_path, text), text, "# here", "hello",
        "{{ user_id }} is not a name the engine sets", "prints nothing", "user.id",
    )


def test_a_misspelt_scope_name_gets_a_suggestion(tmp_path: Path) -> None:
    text = journey(
        'hello: {type: send, channel: sms, marketing: false, text: "Hi {{ usr.first_name | '
        "default: 'you' }}\", next: done}  # here\n" + EXIT
    )
    assert_warning(one_warning(tmp_path, text), text, "# here", "hello", "did you mean 'user'?")


def test_names_a_template_defines_itself_and_the_four_scope_names_are_fine(
    tmp_path: Path,
) -> None:
    text = journey(
        'hello: {type: send, channel: sms, marketing: false, text: "{% assign n = '
        "user.first_name | default: 'you' %}{% for i in (1..2) %}{{ i }}{% endfor %}{{ n }} "
        "{{ journey.id }} {{ event.plan | default: 'x' }} {{ entry.plan | default: 'x' }}\", "
        "next: done}\n" + EXIT
    )
    assert warnings_of(tmp_path, text) == []


def test_a_webhook_body_name_the_engine_never_sets_is_a_warning(tmp_path: Path) -> None:
    head = 'settings: {webhooks: {allow: ["https://crm.example.com/api/"]}}\n'
    text = journey(
        "hello:\n"
        "  type: webhook\n"
        '  url: "https://crm.example.com/api/x"\n'
        '  body: {who: "{{ customer.id }}"}  # here\n'
        "  next: done\n"
        "  on_failure: done\n" + EXIT,
        head,
    )
    assert_warning(
        one_warning(tmp_path, text), text, "# here", "hello", "{{ customer }} is not a name"
    )
