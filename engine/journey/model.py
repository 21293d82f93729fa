"""The journey file format as pydantic v2 models (documented in docs/journeys.md).

Models only check the *shape* of one file: types, required fields, enums, the
"exactly one of" rules inside a node. Rules that need the whole graph (targets
exist, reachability, cycles), expression and template parsing, and channel limits
live in :mod:`engine.lint.linter`, so that every problem in a file is reported
at once with its line.

Durations are kept as written (``"10m"``) and exposed in milliseconds via ``*_ms``
properties; the core works in integer milliseconds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from engine.durations import parse_duration_ms

NodeId = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_\-]*$", max_length=64)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _check_duration(value: str | int | None, *, allow_negative: bool = False) -> str | int | None:
    if value is None:
        return None
    parse_duration_ms(value, allow_negative=allow_negative)  # raises ValueError with the format
    return value


def _check_time(value: str) -> str:
    if not _TIME_RE.match(value):
        raise ValueError(f"{value!r} is not a time of day: write HH:MM on a 24-hour clock")
    return value


_PERCENT_RE = re.compile(r"^(\d{1,3}(\.\d{1,4})?)%$")


def _check_percent(value: str | None) -> str | None:
    """``"10%"``, ``"2.5%"``: a share written as a percentage (a bare number is refused, so
    that 0.1 and 10 can't be confused). The range is the linter's business."""
    if value is None:
        return None
    if not isinstance(value, str) or not _PERCENT_RE.match(value.strip()):
        raise ValueError(f"{value!r} is not a percentage: write it like 10% (or 2.5%)")
    if float(value.strip()[:-1]) > 100:
        raise ValueError(f"{value!r} is more than 100%")
    return value.strip()


def percent_share(value: str | None) -> float:
    """``"10%"`` -> 0.1; None -> 0.0."""
    return 0.0 if value is None else float(value[:-1]) / 100


def time_to_minutes(value: str) -> int:
    """``"21:30"`` -> 1290 minutes after midnight."""
    h, m = value.split(":")
    return int(h) * 60 + int(m)


class _Model(BaseModel):
    # extra="forbid": a misspelt key is a problem, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Duration = Annotated[
    str | int, Field(description="30s, 15m, 1h, 2d, 1w (a bare number is seconds)")
]


# --------------------------------------------------------------------------- suggestions


class ReplyAction(_Model):
    text: str = Field(description="Chip label, at most 25 characters")
    postback: str = Field(description="Data sent back when tapped, at most 2048 characters")


class _ActionBase(_Model):
    text: str = Field(description="Chip label, at most 25 characters")
    postback: str | None = Field(default=None, description="Defaults to a slug of the text")
    fallback_url: str | None = None


class OpenUrlAction(_ActionBase):
    url: str


class DialAction(_ActionBase):
    phone: str = Field(description="E.164 phone number, e.g. +14155550100")


class ViewLocationAction(_ActionBase):
    lat: float | None = None
    long: float | None = None
    label: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _where(self) -> ViewLocationAction:
        if (self.lat is None) != (self.long is None):
            raise ValueError("view_location needs both lat and long, or a query")
        if self.lat is None and not self.query:
            raise ValueError("view_location needs lat and long, or a query")
        return self


class ShareLocationAction(_ActionBase):
    pass


class CalendarAction(_ActionBase):
    title: str
    description: str | None = None
    start: str = Field(description="ISO-8601 start time (may be a template)")
    end: str = Field(description="ISO-8601 end time (may be a template)")


SUGGESTION_KINDS = ("reply", "open_url", "dial", "view_location", "share_location", "calendar")


class Suggestion(_Model):
    """Exactly one of the six kinds: ``- reply: {text, postback}``, ``- dial: {...}``..."""

    reply: ReplyAction | None = None
    open_url: OpenUrlAction | None = None
    dial: DialAction | None = None
    view_location: ViewLocationAction | None = None
    share_location: ShareLocationAction | None = None
    calendar: CalendarAction | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Suggestion:
        set_kinds = [k for k in SUGGESTION_KINDS if getattr(self, k) is not None]
        if len(set_kinds) != 1:
            raise ValueError(
                "a suggestion is exactly one of "
                + ", ".join(SUGGESTION_KINDS)
                + (f"; this one has {', '.join(set_kinds)}" if set_kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in SUGGESTION_KINDS if getattr(self, k) is not None)

    @property
    def action(self) -> ReplyAction | _ActionBase:
        value = getattr(self, self.kind)
        assert isinstance(value, ReplyAction | _ActionBase)
        return value

    @property
    def postback(self) -> str:
        """The postback a tap sends back; actions without one get a slug of their label."""
        pb = self.action.postback
        return pb if pb else slug(self.action.text)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "action"


# --------------------------------------------------------------------------- rich content


class Media(_Model):
    url: str = Field(description="Public https URL of an image, video, audio or PDF file")
    height: Literal["SHORT", "MEDIUM", "TALL"] = "MEDIUM"
    thumbnail_url: str | None = None
    content_type: str | None = Field(
        default=None, description="e.g. image/png; guessed from the URL"
    )


class RichCard(_Model):
    title: str | None = None
    description: str | None = None
    media: Media | None = None
    suggestions: list[Suggestion] = Field(default_factory=list)
    orientation: Literal["VERTICAL", "HORIZONTAL"] = "VERTICAL"
    thumbnail_alignment: Literal["LEFT", "RIGHT"] | None = None

    @model_validator(mode="after")
    def _content(self) -> RichCard:
        if not (self.title or self.description or self.media):
            raise ValueError("a card needs at least one of title, description, media")
        if self.orientation == "HORIZONTAL" and self.thumbnail_alignment is None:
            raise ValueError("a HORIZONTAL card needs thumbnail_alignment LEFT or RIGHT")
        return self


class Carousel(_Model):
    width: Literal["SMALL", "MEDIUM"] = "MEDIUM"
    cards: list[RichCard]


class Fallback(_Model):
    sms: str | None = Field(
        default=None, description="SMS text (template); derived from the card when absent"
    )
    after: Duration = Field(
        default="10m", description="How long to wait for an RCS delivery receipt before SMS"
    )

    _v_after = field_validator("after")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def after_ms(self) -> int:
        return parse_duration_ms(self.after)


# --------------------------------------------------------------------------- nodes


class _Node(_Model):
    name: str | None = Field(default=None, description="Readable label for drawings and stats")
    description: str | None = None


class SendNode(_Node):
    type: Literal["send"]
    channel: Literal["rcs", "sms"]
    text: str | None = Field(default=None, description="Message text (Liquid template)")
    rich_card: RichCard | None = None
    carousel: Carousel | None = None
    suggestions: list[Suggestion] = Field(
        default_factory=list, description="Message-level chips (at most 11)"
    )
    fallback: Fallback | None = None
    ttl: Duration | None = Field(default=None, description="RCS message expiry")
    marketing: bool = Field(default=True, description="Quiet hours apply to marketing sends")
    next: NodeId

    _v_ttl = field_validator("ttl")(classmethod(lambda cls, v: _check_duration(v)))

    @model_validator(mode="after")
    def _content(self) -> SendNode:
        given = [k for k in ("text", "rich_card", "carousel") if getattr(self, k) is not None]
        if self.channel == "sms":
            if self.text is None or given != ["text"]:
                raise ValueError("an sms send needs text (and no rich_card or carousel)")
            if self.suggestions:
                raise ValueError("an sms send can't have suggestions")
            if self.fallback is not None:
                raise ValueError("fallback applies to rcs sends only")
        elif len(given) != 1:
            raise ValueError("an rcs send needs exactly one of text, rich_card, carousel")
        return self

    @property
    def ttl_ms(self) -> int | None:
        return None if self.ttl is None else parse_duration_ms(self.ttl)


class Until(_Model):
    time: str = Field(description="Local time of day HH:MM in the user's time zone")
    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))

    _v_time = field_validator("time")(classmethod(lambda cls, v: _check_time(v)))

    @property
    def minutes(self) -> int:
        return time_to_minutes(self.time)


BEST_TIME = "best_time"
BEST_TIME_WITHIN = "24h"  # the window of until: best_time when within is not given
BEST_TIME_DEFAULT = "10:00"  # its local time when the user's history is too thin


class WaitNode(_Node):
    type: Literal["wait"]
    duration: Duration | None = None
    until: Until | Literal["best_time"] | None = Field(
        default=None,
        description="{time, days}: a local time; best_time: the user's most engaged hour "
        "within `within` (send-time optimization)",
    )
    within: Duration | None = Field(
        default=None, description="until: best_time only: the window to pick the hour in (24h)"
    )
    default: str | None = Field(
        default=None,
        description="until: best_time only: local HH:MM used when the user's history is too "
        "thin (10:00)",
    )
    until_property: str | None = Field(
        default=None, description="Dotted path to a timestamp, e.g. user.renewal_date"
    )
    offset: Duration | None = Field(default=None, description="Added to until_property; may be -")
    next: NodeId

    _v_duration = field_validator("duration", "within")(
        classmethod(lambda cls, v: _check_duration(v))
    )
    @field_validator("until", mode="before")
    @classmethod
    def _until_kind(cls, v: Any) -> Any:
        if isinstance(v, str) and v != BEST_TIME:
            raise ValueError(
                f"until is {{time: HH:MM, days: [...]}} or best_time, not {v!r}"
                + (f": write until: {{time: \"{v}\"}}" if _TIME_RE.match(v) else "")
            )
        # A mapping is validated here so that its problems read "until.time: ...", not
        # once per member of the union.
        return Until.model_validate(v) if isinstance(v, dict) else v

    _v_default = field_validator("default")(
        classmethod(lambda cls, v: None if v is None else _check_time(v))
    )
    _v_offset = field_validator("offset")(
        classmethod(lambda cls, v: _check_duration(v, allow_negative=True))
    )

    @model_validator(mode="after")
    def _one_kind(self) -> WaitNode:
        given = [k for k in ("duration", "until", "until_property") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a wait needs exactly one of duration, until, until_property")
        if self.offset is not None and self.until_property is None:
            raise ValueError("offset goes with until_property")
        if self.until_property is not None and not re.match(
            r"^(event|entry|user)(\.[A-Za-z0-9_]+)+$", self.until_property
        ):
            raise ValueError("until_property is a dotted path like user.renewal_date")
        if (self.within is not None or self.default is not None) and not self.best_time:
            raise ValueError("within and default go with until: best_time")
        return self

    @property
    def best_time(self) -> bool:
        return self.until == BEST_TIME

    @property
    def until_time(self) -> Until | None:
        """``until`` when it is a local time ({time, days}); None for best_time."""
        return self.until if isinstance(self.until, Until) else None

    @property
    def within_ms(self) -> int:
        return parse_duration_ms(self.within if self.within is not None else BEST_TIME_WITHIN)

    @property
    def default_minutes(self) -> int:
        return time_to_minutes(self.default if self.default is not None else BEST_TIME_DEFAULT)

    @property
    def duration_ms(self) -> int | None:
        return None if self.duration is None else parse_duration_ms(self.duration)

    @property
    def offset_ms(self) -> int:
        return 0 if self.offset is None else parse_duration_ms(self.offset, allow_negative=True)


class WaitPath(_Model):
    """One way out of a ``wait_for``: a user event, or an answer to / read of an earlier send.

    - ``{event: name, when: expr}``: the user does ``name`` (and ``when`` holds);
    - ``{reply: postback-or-text, of: send_node}``: a tap on a suggestion with that postback,
      or free text equal to it (case-insensitive); ``"*"`` is any answer;
    - ``{click: postback, of: send_node}``: a tap on a suggestion with that postback (``"*"``: any);
    - ``{read: send_node}``: the message from that send is read.

    ``of`` defaults to the latest send of the journey instance.
    """

    event: str | None = None
    reply: str | None = None
    click: str | None = None
    read: str | None = Field(default=None, description="Send node whose message must be read")
    of: NodeId | None = None
    when: str | None = None
    next: NodeId

    @model_validator(mode="after")
    def _one_kind(self) -> WaitPath:
        given = [k for k in ("event", "reply", "click", "read") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a path is exactly one of event, reply, click, read")
        if self.of is not None and self.event is not None:
            raise ValueError("'of' goes with reply, click or read, not event")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("event", "reply", "click", "read") if getattr(self, k) is not None)

    @property
    def of_node(self) -> str | None:
        return self.read if self.read is not None else self.of


class WaitForNode(_Node):
    type: Literal["wait_for"]
    paths: list[WaitPath] = Field(min_length=1)
    timeout: Duration | None = Field(
        default=None, description="Required: how long to wait before on_timeout"
    )
    on_timeout: NodeId | None = None

    _v_timeout = field_validator("timeout")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def timeout_ms(self) -> int | None:
        return None if self.timeout is None else parse_duration_ms(self.timeout)


class Case(_Model):
    when: str
    next: NodeId


class BranchNode(_Node):
    type: Literal["branch"]
    cases: list[Case] = Field(min_length=1)
    default: NodeId


class Variant(_Model):
    name: str
    weight: float
    next: NodeId


WinnerMetric = Literal["conversion", "click", "read"]
WINNER_METRICS: tuple[str, ...] = ("conversion", "click", "read")


class Winner(_Model):
    """Let the split pick its best variant (docs/journeys.md, "Experiments that pick their
    winner"); the linter checks that ``after`` and ``min_users`` are positive."""

    metric: WinnerMetric = Field(
        description="conversion: the journey's goal; click / read: a tap on / a read of a "
        "message sent after the split"
    )
    after: Duration = Field(description="How long after the split's first entry to decide")
    min_users: int = Field(description="Users every variant needs before a decision, >= 1")

    _v_after = field_validator("after")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def after_ms(self) -> int:
        return parse_duration_ms(self.after)


class SplitNode(_Node):
    type: Literal["split"]
    variants: list[Variant] = Field(min_length=2)
    winner: Winner | None = Field(
        default=None, description="Pick the best variant once the figures are clear"
    )


class ExitNode(_Node):
    type: Literal["exit"]
    reason: str = Field(default="completed", description="attributes.reason of journey_exited")


Node = Annotated[
    SendNode | WaitNode | WaitForNode | BranchNode | SplitNode | ExitNode,
    Field(discriminator="type"),
]
NODE_TYPES = ("send", "wait", "wait_for", "branch", "split", "exit")


# --------------------------------------------------------------------------- journey


class Entry(_Model):
    event: str
    when: str | None = None
    reentry: Literal["never", "after_exit", "always"] = Field(
        default="after_exit",
        description="never: once per user; after_exit: again once the last run ended; "
        "always: every matching event starts a run, even while one is active",
    )
    cooldown: Duration | None = Field(default=None, description="Minimum time between entries")

    _v_cooldown = field_validator("cooldown")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def cooldown_ms(self) -> int:
        return 0 if self.cooldown is None else parse_duration_ms(self.cooldown)


class Goal(_Model):
    event: str
    when: str | None = None
    within: Duration = "7d"
    exit: bool = Field(default=True, description="End the journey when the goal is reached")

    _v_within = field_validator("within")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def within_ms(self) -> int:
        return parse_duration_ms(self.within)


class QuietHours(_Model):
    from_: str = Field(alias="from", description="Start of the quiet window, HH:MM local time")
    to: str = Field(description="End of the quiet window, HH:MM local time")
    action: Literal["defer", "skip"] = "defer"
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS), description="Days the window starts on"
    )

    _v_times = field_validator("from_", "to")(classmethod(lambda cls, v: _check_time(v)))


class FrequencyCap(_Model):
    max: int = Field(ge=1)
    per: Duration

    _v_per = field_validator("per")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def per_ms(self) -> int:
        return parse_duration_ms(self.per)


class SendRate(_Model):
    """At most ``max`` sends of the journey (all users) per ``per``; the gateway holds the
    others back, in order. The linter checks that both are positive."""

    max: int = Field(description="Sends allowed in each `per`, at least 1")
    per: Duration = Field(description="The window the rate counts in, a positive duration")

    _v_per = field_validator("per")(classmethod(lambda cls, v: _check_duration(v)))

    @property
    def per_ms(self) -> int:
        return parse_duration_ms(self.per)


class Settings(_Model):
    quiet_hours: QuietHours | None = None
    frequency_cap: FrequencyCap | None = None
    send_rate: SendRate | None = Field(
        default=None, description="How fast the gateway sends this journey's messages"
    )
    default_timezone: str = "UTC"
    help_text: str | None = Field(default=None, description="Answer to HELP / INFO")

    @field_validator("default_timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{v!r} is not an IANA time zone (e.g. Europe/Paris)") from exc
        return v


class Migration(_Model):
    """How users in flight on an older version move to this one at their next step."""

    from_version: int
    nodes: dict[str, NodeId] = Field(description="old node id -> new node id")


class Journey(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=64)
    version: int = Field(ge=1)
    name: str | None = None
    description: str | None = None
    entry: Entry
    exit_on: list[str] = Field(default_factory=list)
    goal: Goal | None = None
    holdout: str | None = Field(
        default=None,
        description="Share of entering users held out (no sends) to measure the journey's "
        "lift, e.g. 10%; the same users whatever the version",
    )
    settings: Settings = Field(default_factory=Settings)
    migrate: list[Migration] = Field(default_factory=list)
    start: NodeId
    nodes: dict[NodeId, Node] = Field(min_length=1)

    _v_holdout = field_validator("holdout", mode="before")(
        classmethod(lambda cls, v: _check_percent(v))
    )

    @property
    def holdout_share(self) -> float:
        """The holdout as a fraction (``10%`` -> 0.1; none -> 0.0)."""
        return percent_share(self.holdout)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    def node(
        self, node_id: str
    ) -> SendNode | WaitNode | WaitForNode | BranchNode | SplitNode | ExitNode:
        return self.nodes[node_id]

    def label(self, node_id: str) -> str:
        n = self.nodes.get(node_id)
        return (n.name if n is not None and n.name else None) or node_id


def successors(node: Any) -> list[tuple[str, str]]:
    """(label, target) of every edge out of a node, in file order."""
    match node:
        case SendNode() | WaitNode():
            return [("", node.next)]
        case WaitForNode():
            out = [(_path_label(p), p.next) for p in node.paths]
            if node.on_timeout is not None:
                out.append(("timeout", node.on_timeout))
            return out
        case BranchNode():
            return [(c.when, c.next) for c in node.cases] + [("default", node.default)]
        case SplitNode():
            return [(f"{v.name} ({v.weight:g})", v.next) for v in node.variants]
        case _:
            return []


def _path_label(p: WaitPath) -> str:
    match p.kind:
        case "event":
            return f"event {p.event}" + (f" [{p.when}]" if p.when else "")
        case "read":
            return f"read {p.read}"
        case kind:
            value = getattr(p, kind)
            return f"{kind} {value}" + (f" of {p.of}" if p.of else "")
