"""``journeys backtest``: replay real history (a topic's records between two times, or an
events file) through the simulator, and count what the journeys would have done.

Above the stream (it reads Kafka) and the simulator (it runs it), below the CLI; the counts
are those of :mod:`engine.stats.aggregate`, so a backtest's table is ``journeys stats`` over
the outcomes ``journeys simulate`` gives for the same events.

* :mod:`.window` -- ``--since 30d`` / ``--until 2026-11-01T00:00:00Z`` to instants;
* :mod:`.partitions` -- the Kafka default partitioner, to split a file's users as a topic
  splits them;
* :mod:`.topic` -- a topic's offsets between two times, and the records of one partition;
* :mod:`.job` -- one partition: decode, simulate (users in batches), count;
* :mod:`.tally` -- the counts of a partition, merged over partitions;
* :mod:`.run` -- the partitions in ``--jobs`` worker processes, with progress;
* :mod:`.progress` -- the progress line on standard error;
* :mod:`.compare` -- baseline and candidate side by side;
* :mod:`.table` -- the text tables.
"""
