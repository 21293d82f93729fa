"""Up to when ``journey.outcomes`` is complete: the instant before which the decider has
seen every outcome there will be, as far as a reader of the topic can tell.

Kafka orders records within a partition, not across them, and the engine writes a user's
outcomes to the partition number of the user's inputs. So per partition the decider keeps
the latest outcome ``ts`` it read, and the low watermark is the smallest of them: every
partition has moved past it. A partition with nothing to say would hold everyone back, so
a partition counts as *idle*, and is left out, when all three hold:

* the decider has read it to its end;
* nothing arrived on it for ``idle_s`` seconds;
* the engine has processed every input of that partition number (its consumer group's
  committed offsets are at the end of the four input topics' partition): no outcome of an
  input already waiting can still come.

When every partition is idle, everything written so far has been read: the watermark is
the latest ``ts`` seen. Outcomes are mostly, not strictly, in ``ts`` order within a
partition (a late receipt, a late wake-up): the watermark is a good estimate, exact for
the outcomes of user events, which are what a conversion experiment counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Watermark:
    idle_s: float
    partitions: set[int] = field(default_factory=set)
    latest: dict[int, int] = field(default_factory=dict)  # partition -> latest ts read
    last_read: dict[int, float] = field(default_factory=dict)  # partition -> monotonic time
    settled: dict[int, bool] = field(default_factory=dict)  # read to the end, engine idle

    def read(self, partition: int, ts: int, now: float) -> None:
        self.partitions.add(partition)
        self.latest[partition] = max(ts, self.latest.get(partition, ts))
        self.last_read[partition] = now

    def settle(self, partition: int, settled: bool) -> None:
        self.partitions.add(partition)
        self.settled[partition] = settled

    def idle(self, partition: int, now: float) -> bool:
        quiet = now - self.last_read.get(partition, float("-inf")) >= self.idle_s
        return self.settled.get(partition, False) and quiet

    def low(self, now: float) -> int | None:
        """Every outcome before the returned instant has been read (None: can't tell yet)."""
        busy = [p for p in sorted(self.partitions) if not self.idle(p, now)]
        if not busy:
            return max(self.latest.values(), default=None)
        if any(p not in self.latest for p in busy):
            return None  # a partition with work pending and nothing read from it yet
        return min(self.latest[p] for p in busy)
