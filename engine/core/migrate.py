"""Version migration: moving a waiting run onto the newest version of its journey.

A new version may declare ``migrate: [{from_version, nodes: {old node: new node}}]``.
A run waiting in a mapped node moves when it next wakes up or takes a path; a run in an
unmapped node stays on its version.
"""

from __future__ import annotations

from engine.core.catalog import Catalog
from engine.core.context import Step
from engine.core.state import Instance


def migration_for(catalog: Catalog, inst: Instance) -> tuple[int, str] | None:
    """(version, node) the newest version maps this waiting run to, if it declares one."""
    newest = catalog.latest.get(inst.journey_id)
    if newest is None or newest.version == inst.version:
        return None
    for m in newest.migrate:
        if m.from_version == inst.version and inst.node in m.nodes:
            return newest.version, m.nodes[inst.node]
    return None


def migrate(step: Step, inst: Instance) -> None:
    """Move a waiting user to the newest version that declares a mapping for them."""
    target = migration_for(step.catalog, inst)
    if target is None:
        return
    version, node_id = target
    from_version, from_node = inst.version, inst.node
    mapping = next(
        m.nodes
        for m in step.catalog.latest[inst.journey_id].migrate
        if m.from_version == inst.version
    )
    # Earlier sends keep answering paths that name their node in the new version.
    inst.sends = {mapping.get(k, k): v for k, v in inst.sends.items()}
    inst.version, inst.node = version, node_id
    # Reported as the new (version, node) pair: node_id names a node of journey_version.
    step.inst_outcome(
        "instance_migrated",
        inst,
        node_id,
        from_version=from_version,
        from_node=from_node,
        to_version=version,
    )
    step.trace("migrate", "migrated", inst, from_version=from_version, from_node=from_node)
