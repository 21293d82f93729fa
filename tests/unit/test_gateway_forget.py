"""``journeys forget`` reaches the gateway: the engine forwards a ``forget`` record on
journey.send-requests, and the gateway drops the user's message records and id-map
entries (the phone number with them), and nobody else's."""

from __future__ import annotations

import uuid

from engine.core import wire
from engine.core.inputs import Forget
from tests.unit.test_gateway_runtime import PHONE, REQUESTS, World, request


async def test_forget_drops_the_users_records_and_ids_only() -> None:
    w = World()
    await w.feed(request(1, "sms", user="gone"))
    await w.feed(request(2, "sms", user="kept"))
    await w.idle()
    await w.checkpoint.commit("test")
    gone_id, kept_id = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))
    assert w.ids.by_message_id(gone_id) is not None

    value = wire.dumps(wire.forget_wire(Forget("gone", 1_790_000_000_000)))
    async with w.checkpoint.lock:
        await w.runtime.handle(REQUESTS, 0, w.offset, b"gone", value, None)

    assert w.checkpoint.get_dirty(gone_id.encode()) == (0, None)  # a tombstone
    assert w.checkpoint.get_dirty(kept_id.encode()) is None
    assert w.ids.by_message_id(gone_id) is None
    assert w.ids.by_provider_id(f"P-{gone_id}") is None
    kept = w.ids.by_message_id(kept_id)
    assert kept is not None and kept.user_id == "kept"
    assert w.ids.latest_for_phone(PHONE) == kept  # both shared the phone: it stays mapped
    ids_topic = w.settings.topics.gateway_ids
    tombstones = {k for t, k, v, _p in w.backend.produced if t == ids_topic and v is None}
    assert f"m:{gone_id}".encode() in tombstones
    assert not w.backend.records(w.settings.topics.dead_letters)
