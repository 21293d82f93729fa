"""``wait_for`` paths: which path a user event or a user action takes, and taking it.

A run waiting in a ``wait_for`` node moves on along the first path that matches: an
event path (``{event, when}``), or a read, tap (``click``) or reply on one of the run's
sends (``of`` names the send node; default: the latest send). The node is read as the
version the run would migrate to sees it: a path of the new version is what a migrating
user takes.
"""

from __future__ import annotations

from engine.core.catalog import Catalog
from engine.core.context import Step
from engine.core.ids import derive_uuid
from engine.core.inputs import UserEvent
from engine.core.migrate import migrate, migration_for
from engine.core.nodes import goto
from engine.core.state import Instance, Message
from engine.core.user_actions import UserAction, UserActionKind
from engine.journey.expressions import compile_expression
from engine.journey.model import WaitForNode, WaitPath


def waiting(catalog: Catalog, inst: Instance) -> WaitForNode | None:
    """The ``wait_for`` node the run waits in (as its migration target sees it), if any."""
    version, node_id = migration_for(catalog, inst) or (inst.version, inst.node)
    node = catalog.versions[inst.journey_id][version].nodes[node_id]
    return node if isinstance(node, WaitForNode) else None


def event_path(step: Step, inst: Instance, ev: UserEvent) -> None:
    """Move the run along the first event path ``ev`` matches."""
    node = waiting(step.catalog, inst)
    if node is None:
        return
    for path in node.paths:
        if path.event != ev.name:
            continue
        scope = step.scope(inst)
        scope["event"] = ev.properties
        if path.when is None or compile_expression(path.when).test(scope):
            inst.event = ev.properties
            take_path(step, inst, path, f"event {ev.name}")
            return


def route(step: Step, action: UserAction) -> None:
    """A read, tap or reply: move the message's run along the first path it answers."""
    inst = step.state.instances.get(action.message.instance_id)
    node = waiting(step.catalog, inst) if inst is not None else None
    if inst is None or node is None:
        return
    for path in node.paths:
        if path_matches(path, inst, action.message, action.kind, action.value):
            take_path(step, inst, path, f"{path.kind} {getattr(path, path.kind)}")
            return


def take_path(step: Step, inst: Instance, path: WaitPath, via: str) -> None:
    inst.wake_at = None
    migrate(step, inst)
    step.trace("wait_for", "path", inst, via=via, next=path.next)
    goto(step, inst, path.next, via=via)


def path_matches(
    path: WaitPath, inst: Instance, msg: Message, kind: UserActionKind, value: str | None
) -> bool:
    """Does a read / tap / reply on ``msg`` take ``path``? The path's ``of`` names the send
    node (default: the latest send); its fallback SMS counts as the same send."""
    if path.kind == "event":
        return False
    of = path.of_node
    target = inst.sends.get(of) if of is not None else inst.last_send
    if target is None or msg.id not in (target, derive_uuid("sms", target)):
        return False
    want = getattr(path, path.kind)
    match path.kind, kind:
        case "read", "read":
            return True
        case "click", "click":
            return bool(want == "*" or want == value)
        case "reply", ("click" | "reply"):
            return bool(want == "*" or (value or "").strip().lower() == str(want).strip().lower())
    return False
