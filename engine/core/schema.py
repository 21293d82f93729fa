"""Pydantic models of the wire records, and the JSON Schema files generated from them.

The models describe exactly what :mod:`engine.core.wire` writes and reads: outcomes, send
requests and revokes, the inputs (user events, receipts, inbound messages, wake-ups), dead
letters, trace records, and the engine's table value (internal: no schema file). Consumers
in any language can validate messages and generate types from the files in
``docs/schemas/``. An outcome is a union discriminated by ``type``, with a typed
``attributes`` object per type. Objects allow extra keys: new attributes (and new outcome
types, with a new ``schema_version`` only when a change breaks readers) may appear, and
readers must ignore what they don't know. What the engine itself writes has no key the
models leave out (``tests/unit/test_wire_schema.py``).

    journeys schema --wire docs/schemas/           # (re)write the schema files
    journeys schema --wire docs/schemas/ --check   # exit 1 when they are out of date
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model, model_validator

from engine.core.effects import SCHEMA_VERSION
from engine.core.inputs import ReceiptStatus

DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://journey-engine.dev/schemas/"

Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$",
        json_schema_extra={"format": "date-time"},
        description="ISO-8601 instant; the engine writes UTC with a Z, milliseconds if any",
        examples=["2026-11-29T10:00:00Z"],
    ),
]
# Inputs carry ISO-8601 text only (an epoch number is dead-lettered as bad_timestamp),
# inside the window the worker is configured with (docs/operations.md).
InputTimestamp = Annotated[
    Timestamp,
    Field(description="ISO-8601 instant (epoch numbers are refused), inside the accepted window"),
]
Base64 = Annotated[
    str, Field(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
]
Channel = Literal["rcs", "sms"]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- attributes


class NoAttributes(_Open):
    """No attributes defined (yet): an empty object."""


class JourneyEnteredAttributes(_Open):
    event: str = Field(description="name of the user event that entered the user")
    holdout: Literal[True] | None = Field(
        None, description="true: the run is in the journey's holdout (no message is sent)"
    )
    global_control: Literal[True] | None = Field(
        None,
        description="true: the user is in the global control group (no marketing send); "
        "only on journeys with a marketing send",
    )


class NodeEnteredAttributes(_Open):
    variant: str | None = Field(
        None, description="on a split node: the variant the user got (deterministic per user)"
    )
    via: str | None = Field(
        None,
        description="how a wait_for node was left: 'event <name>', 'click <postback>', "
        "'reply <..>', 'read <node>', or 'timeout'",
    )
    winner: Literal[True] | None = Field(
        None, description="on a split node: the variant is the split's decided winner"
    )


class MessageSentAttributes(_Open):
    fallback_of: str | None = Field(
        None, description="an SMS sent as the fallback of this RCS message_id"
    )
    purpose: Literal["help"] | None = Field(None, description="'help': the answer to HELP")


class ReasonAttributes(_Open):
    reason: str = Field(description="machine-readable reason (see docs/outcomes.md)")


class MessageUnknownAttributes(ReasonAttributes):
    """reason: the gateway's reason (e.g. why it could not ask the provider), or unknown"""


class MessageFailedAttributes(ReasonAttributes):
    detail: str | None = Field(None, description="human-readable detail (template errors)")


class FallbackTriggeredAttributes(ReasonAttributes):
    """reason: not_capable, failed, ttl_expired, no_receipt, revoke_failed, quiet_hours..."""


class MessageSuppressedAttributes(ReasonAttributes):
    """reason: holdout, global_control, quiet_hours, frequency_cap, opted_out,
    invalid_phone, missing_phone..."""

    fallback_of: str | None = Field(None, description="a fallback SMS of this RCS message_id")


class MessageDeferredAttributes(ReasonAttributes):
    until: Timestamp = Field(description="when the send is tried again")
    fallback_of: str | None = Field(None, description="a deferred fallback SMS of this RCS")


class MessageClickedAttributes(_Open):
    postback: str = Field(description="postback of the tapped suggestion")


class MessageRepliedAttributes(_Open):
    text: str = Field(max_length=500, description="the reply, cut to 500 characters")


class GoalConvertedAttributes(_Open):
    event: str = Field(description="name of the goal event")
    after_ms: int = Field(ge=0, description="time from journey entry to the goal event, in ms")


class JourneyExitedAttributes(ReasonAttributes):
    """reason: completed (or the exit node's reason), exit_event, goal, timeout, loop_guard..."""


class InstanceMigratedAttributes(_Open):
    from_version: int
    from_node: str
    to_version: int


class VariantFigures(_Open):
    users: int = Field(ge=0, description="runs that took the variant before the decision")
    successes: int = Field(ge=0, description="of them, runs that converted / clicked / read")
    rate: float | None = Field(description="successes / users")
    ci_low: float | None = Field(description="95% Wilson interval of the rate")
    ci_high: float | None


class DifferenceFigures(_Open):
    difference: float | None = Field(description="the winner's rate minus this variant's")
    ci_low: float | None = Field(description="95% Newcombe interval of the difference")
    ci_high: float | None


class SplitFigures(_Open):
    variants: dict[str, VariantFigures] = Field(description="per variant, in file order")
    differences: dict[str, DifferenceFigures] = Field(
        description="'<winner> - <other>' for every other variant: all intervals above 0"
    )
    method: Literal["newcombe-wilson"]


class SplitWinnerChosenAttributes(SplitFigures):
    variant: str = Field(description="the winner: every entrant from effective_at on takes it")
    metric: Literal["conversion", "click", "read"]
    effective_at: Timestamp = Field(description="split entries at or after this take it")
    first_entry_at: Timestamp = Field(description="the split's first entry (this version)")
    after_ms: int = Field(ge=1, description="winner.after of the split")
    min_users: int = Field(ge=1, description="winner.min_users of the split")


# --------------------------------------------------------------------------- outcomes


class UserForgottenAttributes(_Open):
    runs_ended: int = Field(description="runs the user was in when forgotten")
    request_id: str = Field(description="the forget request's id")


class _Outcome(_Open):
    outcome_id: NonEmpty = Field(description="deterministic id: dedupe on it")
    ts: Timestamp
    user_id: NonEmpty = Field(description="the Kafka message key")
    journey_id: str | None
    journey_version: int | None = Field(ge=1)
    instance_id: str | None = Field(description="one run of a user through a journey version")
    node_id: str | None
    channel: Channel | None
    message_id: str | None
    schema_version: int = Field(
        ge=1, description=f"wire format version ({SCHEMA_VERSION}); bumped on breaking changes"
    )


class _InJourney(_Outcome):
    journey_id: str
    journey_version: int = Field(ge=1)
    instance_id: str


class _AtNode(_InJourney):
    node_id: str


class _AboutMessage(_AtNode):
    channel: Channel
    message_id: str


class _WithChannel(_AtNode):
    channel: Channel


class _AboutSplit(_Outcome):
    user_id: NonEmpty = Field(description="no user: the split's key, journey:version:node")
    journey_id: str
    journey_version: int = Field(ge=1)
    instance_id: None
    node_id: str


class _Sent(_Outcome):
    channel: Channel
    message_id: str


# type: (fields that must be set, attributes, what it means). Each becomes a model named
# after the type (JourneyEntered, ...) whose ``type`` is that constant.
OUTCOME_SPECS: dict[str, tuple[type[_Outcome], type[_Open], str]] = {
    "journey_entered": (_AtNode, JourneyEnteredAttributes, "A user entered (node: the start)."),
    "node_entered": (_AtNode, NodeEnteredAttributes, "A run reached a node."),
    "message_sent": (
        _Sent,
        MessageSentAttributes,
        "A send went to the gateway (journey fields null for a HELP answer).",
    ),
    "message_delivered": (_AboutMessage, NoAttributes, "The message reached the phone."),
    "message_read": (_AboutMessage, NoAttributes, "The user opened it (RCS)."),
    "message_clicked": (_AboutMessage, MessageClickedAttributes, "A tap on a suggestion."),
    "message_replied": (_AboutMessage, MessageRepliedAttributes, "A free-text reply to it."),
    "message_failed": (
        _WithChannel,
        MessageFailedAttributes,
        "It can't be delivered (message_id null when it could not even be built).",
    ),
    "message_unknown": (
        _AboutMessage,
        MessageUnknownAttributes,
        "The gateway can't tell whether the provider took it: possibly delivered (an RCS "
        "fallback SMS then goes out only on an expiry or revocation verdict).",
    ),
    "fallback_triggered": (
        _AboutMessage,
        FallbackTriggeredAttributes,
        "An RCS message will not arrive: its SMS fallback is sent (or suppressed) next.",
    ),
    "message_suppressed": (_WithChannel, MessageSuppressedAttributes, "A rule held a send back."),
    "message_deferred": (
        _WithChannel,
        MessageDeferredAttributes,
        "A send waits for the end of quiet hours.",
    ),
    "goal_converted": (
        _InJourney,
        GoalConvertedAttributes,
        "The goal event arrived within the goal window (node_id null).",
    ),
    "journey_exited": (_AtNode, JourneyExitedAttributes, "A run ended."),
    "instance_migrated": (
        _AtNode,
        InstanceMigratedAttributes,
        "A waiting run moved to a newer version (journey_version, node_id: where it is now).",
    ),
    "user_opted_out": (
        _Outcome,
        NoAttributes,
        "STOP (journey fields: the message it answered, when known).",
    ),
    "user_opted_in": (_Outcome, NoAttributes, "START after a STOP."),
    "help_requested": (_Outcome, NoAttributes, "HELP (answered with a message_sent)."),
    "user_forgotten": (
        _Outcome,
        UserForgottenAttributes,
        "journeys forget: the engine erased the user's state; erase what you derived.",
    ),
    "split_winner_chosen": (
        _AboutSplit,
        SplitWinnerChosenAttributes,
        "A split with a winner chose it (engine.core.winner): the decision and its figures.",
    ),
}
OUTCOME_TYPES: tuple[str, ...] = tuple(OUTCOME_SPECS)
OUTCOME_MODELS: dict[str, type[_Outcome]] = {
    kind: create_model(
        kind.title().replace("_", ""),
        __base__=base,
        __doc__=doc,
        type=(cast(Any, Literal)[kind], ...),
        attributes=(attrs, ...),
    )
    for kind, (base, attrs, doc) in OUTCOME_SPECS.items()
}
Outcome: Any = Annotated[Union[tuple(OUTCOME_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
OUTCOME: TypeAdapter[Any] = TypeAdapter(Outcome)


# --------------------------------------------------------------------------- inputs, requests


def _names(key: str) -> dict[str, Any]:
    """JSON Schema: ``key`` is there and is a string (present but null does not count)."""
    return {"required": [key], "properties": {key: {"type": "string"}}}


class Profile(_Open):
    phone: str | None = Field(None, description="E.164, e.g. +14155550123")
    timezone: str | None = Field(None, description="IANA name, e.g. America/New_York")
    first_name: str | None = None
    rcs_capable: bool | None = Field(None, description="false: unreachable over RCS")


class UserEvent(_Open):
    """A user event on ``journey.user-events`` (key: user_id)."""

    type: Literal["event"] = Field(
        "event", description="simulation files mix inputs; a line without a type is an event"
    )
    event_id: NonEmpty = Field(description="producer's id; a repeated id is ignored")
    user_id: NonEmpty
    name: NonEmpty
    ts: InputTimestamp
    properties: dict[str, Any] = Field(default_factory=dict)
    profile: Profile | None = Field(None, description="merged into the user's attributes")


class Receipt(_Open):
    """A channel receipt on ``journey.channel-receipts`` (key: user_id)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"anyOf": [_names("message_id"), _names("node")]},
    )
    type: Literal["receipt"] | None = None
    user_id: NonEmpty
    ts: InputTimestamp
    status: ReceiptStatus = Field(
        description="accepted: the provider took it at ts, after the gateway held it back; "
        "unknown: the gateway can't tell whether the provider took it (see docs/outcomes.md)"
    )
    message_id: str | None = Field(None, description="the send request's message_id")
    node: str | None = Field(None, description="simulation files: the user's latest send there")
    reason: str | None = None

    @model_validator(mode="after")
    def _names_a_message(self) -> Receipt:
        if self.message_id is None and self.node is None:
            raise ValueError("a receipt names its message_id (or node)")
        return self


class Inbound(_Open):
    """A message from the user on ``journey.inbound`` (key: user_id)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"anyOf": [_names("postback"), _names("text")]},
    )
    type: Literal["inbound"] | None = None
    user_id: NonEmpty
    ts: InputTimestamp
    postback: str | None = Field(None, description="a suggestion tap")
    text: str | None = Field(None, description="free text (STOP/START/HELP are keywords)")
    message_id: str | None = None
    keyword: Literal["opt_out", "opt_in", "help"] | None = Field(
        None, description="set by the gateway when the whole text is a compliance keyword"
    )
    event_id: str | None = Field(None, description="gateway's id; a repeated id is ignored")

    @model_validator(mode="after")
    def _has_content(self) -> Inbound:
        if self.postback is None and self.text is None:
            raise ValueError("an inbound message has a postback or a text")
        return self


class SendRate(_Open):
    """The journey's ``settings.send_rate``: at most ``max`` sends of the journey per
    ``per_ms``; the gateway holds the others back, in order."""

    max: int = Field(ge=1)
    per_ms: int = Field(ge=1)


class SendRequest(_Open):
    """Engine -> channel gateway on ``journey.send-requests`` (key: user_id)."""

    type: Literal["send"] = Field(
        "send", description="the engine writes send; revokes share the topic (revoke.schema.json)"
    )
    message_id: NonEmpty = Field(description="deterministic; the gateway sends an id once")
    ts: Timestamp
    user_id: NonEmpty
    to: str = Field(description="E.164 phone number")
    channel: Channel
    content: dict[str, Any] = Field(
        description="rendered content: text | rich_card | carousel, suggestions; for SMS text"
    )
    journey_id: str | None
    journey_version: int | None
    instance_id: str | None
    node_id: str | None
    ttl_ms: int | None = Field(description="RCS: drop the message when undelivered by then")
    purpose: Literal["journey", "fallback", "help"]
    fallback_of: str | None
    profile: dict[str, Any] = Field(description="what adapters may need (rcs_capable, timezone)")
    send_rate: SendRate | None = Field(
        None, description="the journey's send rate; absent when the journey sets none"
    )


class Revoke(_Open):
    """Engine -> channel gateway on ``journey.send-requests`` (key: user_id): take back an
    RCS message that has not been delivered; the gateway answers with a receipt."""

    type: Literal["revoke"]
    message_id: NonEmpty = Field(description="the send request's message_id")
    user_id: NonEmpty
    ts: Timestamp


class Wake(_Open):
    """A durable timer on ``journey.timers`` (key: user_id), produced by the engine when the
    user's earliest timer is due; a wake-up that is no longer due changes nothing."""

    type: Literal["wake"] | None = None
    user_id: NonEmpty
    ts: Timestamp = Field(description="the timer's time")
    token: str = Field(
        "",
        description="which timer: wake-ups of replaced timers are dropped; without one, "
        "the wake-up scheduled at ts",
    )


class Forget(_Open):
    """``journeys forget USER_ID`` on ``journey.user-events`` (key: user_id): erase the
    user's state; the engine answers with a ``user_forgotten`` outcome."""

    type: Literal["forget"]
    user_id: NonEmpty
    ts: Timestamp
    request_id: NonEmpty | None = Field(
        None, description="makes the outcome's id; a repeat is one"
    )


class DeadLetter(_Open):
    """An unusable input on ``journey.dead-letters`` (key: the input's key)."""

    reason: NonEmpty = Field(description="machine-readable: bad_json, missing_field, ...")
    detail: str = Field(max_length=2000, description="human-readable detail, cut to 2000")
    stage: Literal["engine", "gateway"] = Field(description="the service that gave up on it")
    topic: NonEmpty = Field(description="where the input was")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    timestamp: Timestamp | None = Field(description="the input's Kafka timestamp")
    key: str | None = Field(description="the input's key as text (null: none, or not UTF-8)")
    key_b64: Base64 | None = Field(description="the input's key bytes, base64")
    value_b64: Base64 | None = Field(description="the input's bytes, base64 (cut at 2 MiB)")
    size: int | None = Field(ge=0, description="length of the input's bytes")
    truncated: bool = Field(description="true: value_b64 holds the first 2 MiB only")
    dead_lettered_at: Timestamp = Field(description="when it was dead-lettered (wall clock)")


class SplitDecision(_Open):
    """A split's winner on ``journey.control`` (compacted; key: journey:version:node).
    Written once by the decider, read in full by every worker; it never changes."""

    type: Literal["split_decision"]
    journey_id: NonEmpty
    journey_version: int = Field(ge=1)
    node_id: NonEmpty
    variant: NonEmpty = Field(description="the winner")
    metric: Literal["conversion", "click", "read"]
    decided_at: Timestamp = Field(description="the instant (journey time) the figures are of")
    effective_at: Timestamp = Field(description="split entries at or after this take it")
    first_entry_at: Timestamp = Field(description="the split's first entry (this version)")
    min_users: int = Field(ge=1)
    after_ms: int = Field(ge=1)
    figures: SplitFigures
    schema_version: int = Field(ge=1)
class Trace(_Open):
    """A trace record on ``journey.traces`` (key: user_id): one decision of the core about a
    traced user (``JOURNEYS_TRACE_USERS``, ``JOURNEYS_TRACE_SAMPLE``), with what it was
    decided on. ``journeys explain`` reads them; docs/journeys.md lists kinds and reasons."""

    trace_id: NonEmpty = Field(description="deterministic id: dedupe on it")
    ts: Timestamp
    user_id: NonEmpty = Field(description="the Kafka message key")
    kind: NonEmpty = Field(
        description="what was decided: input, entry, node, wait, wait_for, branch, split, "
        "exit, goal, migrate, send, fallback, message, keyword, inbound",
        examples=["entry", "send"],
    )
    reason: NonEmpty = Field(
        description="the verdict: entered / when_false / cooldown / ... for entry, "
        "sent / frequency_cap / quiet_hours / ... for send",
        examples=["cooldown", "frequency_cap"],
    )
    journey_id: str | None
    journey_version: int | None = Field(ge=1)
    instance_id: str | None = Field(description="the run it is about, if any")
    node_id: str | None
    values: dict[str, Any] = Field(
        description="what it was decided on: a condition's operands, a cap's count and "
        "window, the time left of a cooldown, ... (phone numbers masked)"
    )
    schema_version: int = Field(
        ge=1, description=f"wire format version ({SCHEMA_VERSION}); bumped on breaking changes"
    )


# --------------------------------------------------------------------------- the table value
# Internal: the engine's state table, not a contract for anyone else (no schema file). Lists
# are positional (see engine.core.state): millions of these sit in a table.


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# id, journey_id, version, node, entered_at, entry, event, step, wake_at, last_send, sends,
# and 1 at the end for a run in its journey's holdout
InstanceWire = (
    tuple[
        str, str, int, str, int, dict[str, Any], dict[str, Any], int, int | None, str | None,
        dict[str, str],
    ]
    | tuple[
        str, str, int, str, int, dict[str, Any], dict[str, Any], int, int | None, str | None,
        dict[str, str], Literal[1],
    ]
)  # fmt: skip
# id, instance_id, journey_id, version, node, channel, sent_at, status, postbacks,
# fallback_sms, timer_at, counted_at
MessageWire = tuple[
    str, str, str, int, str, str, int, str, list[str], str | None, int | None, int | None,
]  # fmt: skip
Tracking = tuple[str, int, int, dict[str, Any]] | tuple[str, int, int]  # older states: three
HistoryWire = tuple[int, int | None, list[Tracking], list[str]]  # entries, last, tracking, done


class UserStateWire(_Closed):
    """:meth:`engine.core.state.UserState.to_wire`: short keys, empty ones left out."""

    user_id: str = Field(alias="u")
    clock: int = Field(0, alias="c")
    attrs: dict[str, Any] = Field(default_factory=dict, alias="a")
    seen: list[str] = Field(default_factory=list, alias="s")
    opted_out: Literal[1] | None = Field(None, alias="o")
    send_log: list[int] = Field(default_factory=list, alias="l")
    instances: list[InstanceWire] = Field(default_factory=list, alias="i")
    messages: list[MessageWire] = Field(default_factory=list, alias="m")
    history: dict[str, HistoryWire] = Field(default_factory=dict, alias="h")
    wake_at: int | None = Field(None, alias="w")
    engagement: list[Annotated[int, Field(ge=0)]] = Field(
        default_factory=list,
        alias="e",
        min_length=0,
        max_length=24,
        description="reads, taps and replies per local hour 0-23 (engine.core.send_time)",
    )


class StateRecord(_Closed):
    """The engine's table value (key: user_id): the user's partition and state."""

    partition: int = Field(ge=0, alias="p")
    state: UserStateWire = Field(alias="s")


# --------------------------------------------------------------------------- files

SCHEMAS: dict[str, tuple[str, Any]] = {
    "outcome": ("Outcome (journey.outcomes)", Outcome),
    "user-event": ("User event (journey.user-events)", UserEvent),
    "receipt": ("Channel receipt (journey.channel-receipts)", Receipt),
    "inbound": ("Inbound message (journey.inbound)", Inbound),
    "send-request": ("Send request (journey.send-requests)", SendRequest),
    "revoke": ("Revoke (journey.send-requests)", Revoke),
    "wake": ("Wake-up (journey.timers)", Wake),
    "forget": ("Forget request (journey.user-events)", Forget),
    "dead-letter": ("Dead letter (journey.dead-letters)", DeadLetter),
    "split-decision": ("Split decision (journey.control)", SplitDecision),
    "trace": ("Trace record (journey.traces)", Trace),
}


def json_schema(name: str) -> dict[str, Any]:
    title, model = SCHEMAS[name]
    body = TypeAdapter(model).json_schema(mode="validation")
    head = {
        "$schema": DIALECT,
        "$id": f"{BASE_ID}{name}.schema.json",
        "title": title,
        "x-schema-version": SCHEMA_VERSION,
    }
    return {**head, **{k: v for k, v in body.items() if k != "title"}}


def render_all() -> dict[str, bytes]:
    """File name -> bytes of every schema file (stable: sorted keys, two-space indent)."""
    opts = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    return {f"{n}.schema.json": orjson.dumps(json_schema(n), option=opts) for n in SCHEMAS}
