"""The channel gateway on Kafka (``journeys gateway``): the Kafka shell around the
channel gateway library (:class:`engine.channels.gateway.ChannelGateway`).

Consumes ``journey.send-requests`` (sends and revokes), sends through the chosen
providers, produces receipts to ``journey.channel-receipts`` on the request's partition,
and serves the providers' webhooks. A send reaches a provider at most once, across
``kill -9`` at any moment. One job per module:

* :mod:`.runtime` -- one send request or revoke; the sender's jobs; recovery of unsettled
  sends after a crash;
* :mod:`.sender` -- many sends in flight, each user's in order, each journey in its rate;
* :mod:`.claims` -- the durable claim table (one record per message_id): the library's
  dedupe store;
* :mod:`.receipts` -- receipts produced now, or kept in the record and produced when due;
* :mod:`.idmap` -- message id <-> user, phone, provider id, in a compacted topic;
* :mod:`.ingress` -- the webhook server (the library's receiver) with Kafka behind it;
* :mod:`.stats` -- the counters of the stats lines;
* :mod:`.service` -- the configuration of the service skeleton, and ``main``.

Everything becomes durable through the same
:class:`~engine.stream.common.checkpoint.Checkpoint` as the engine worker's.
"""
