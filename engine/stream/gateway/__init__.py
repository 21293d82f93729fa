"""The channel gateway (``journeys gateway``), with a durable dedupe.

Consumes ``journey.send-requests`` (sends and revokes), calls a provider, and produces the
receipts to ``journey.channel-receipts`` on the request's partition. A send reaches the
provider once, whatever is replayed. One job per module:

* :mod:`.runtime` -- one send request or revoke: claim, settle the batch, deliver;
* :mod:`.claims` -- the durable claim table (one record per message_id) and its sweep;
* :mod:`.receipts` -- receipts produced now, or kept in the record and produced when due;
* :mod:`.provider` -- the :class:`~.provider.Provider` protocol and the simulated provider;
* :mod:`.stats` -- the counters of the stats lines;
* :mod:`.service` -- the configuration of the service skeleton, and ``main``.

Everything becomes durable through the same
:class:`~engine.stream.common.checkpoint.Checkpoint` as the engine worker's.
"""
