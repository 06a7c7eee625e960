"""Partitioned ingest (`govex ingest --group NAME`): the workers of one Kafka consumer group
split the partitions of their topics between them, and a worker that dies hands its partitions
to the others.

Kafka only says which worker reads which partition; where to read stays in the metadata store
(`ingest_offsets`, written with the landed records), and nothing is committed to Kafka. So:

- on assignment a worker pauses the partitions it was handed (the listener runs on
  kafka-python's IO thread, where the store must not be waited for) and its poll loop seeks
  each one to its stored offset before fetching from it (`Partitions.unpositioned`);
- on revocation there is no open micro-batch to land or drop: a rebalance runs inside
  `KafkaConsumer.poll`, which the loop calls only after the last batch committed, and a batch
  cut short by a stop rolled its transaction back before `close()` gives its partitions up.
  A worker too slow to take part in a rebalance (the embedded broker does not wait for it)
  can still be landing a batch of a partition that already has a new owner: the landing
  transaction claims the partition's stored offset first, so one of the two commits and the
  other rolls back without sending a dead letter (`landing`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from govex.settings import DEFAULT_INGEST_GROUP, DEFAULT_INGEST_SESSION_TIMEOUT

DEFAULT_GROUP = DEFAULT_INGEST_GROUP
# How long (seconds) the group waits for a worker that stopped answering before its partitions
# go to the others. Kafka's default is 45 s, for clients whose heartbeats stop while they
# process a batch; kafka-python (3.x) heartbeats from its own IO thread, so a busy worker stays
# in the group and a short timeout only makes failover quick. It is also what makes group joins
# slow on the embedded broker: Tansu holds every JoinGroup for half the group's session timeout
# and a SyncGroup for up to 0.8 of it, collecting members (its coordinator's `join` and `sync`;
# it does not wait for the rebalance timeout), so with Kafka's 45 s every rebalance took about
# 23 s there, and with 10 s it takes about 5 s.
SESSION_TIMEOUT = DEFAULT_INGEST_SESSION_TIMEOUT
# Heartbeats per session timeout: Kafka advises at most a third of it; a fifth leaves a worker
# four missed heartbeats before the group gives its partitions away.
_HEARTBEATS_PER_SESSION = 5
# How often (ms) the consumer refreshes the topics' metadata: a topic created after the worker
# started, or given more partitions, joins the assignment within this (kafka-python's default
# is five minutes; the worker without a group looked every second).
_METADATA_MAX_AGE_MS = 5_000

Progress = Callable[[str], None]


def group_config(group: str, session_timeout: float) -> dict[str, Any]:
    """The KafkaConsumer settings of a member of `group`.

    `max_poll_interval_ms`, the longest a worker may spend between two polls (and, on Kafka,
    how long a rebalance waits for members to rejoin), stays at kafka-python's five minutes: a
    batch that rides out a store outage (up to a minute) must not cost the worker its
    partitions half-way. Tansu does not use it."""
    session_ms = int(session_timeout * 1000)
    return {
        "group_id": group,
        "session_timeout_ms": session_ms,
        "heartbeat_interval_ms": max(100, session_ms // _HEARTBEATS_PER_SESSION),
        "metadata_max_age_ms": _METADATA_MAX_AGE_MS,
    }


@dataclass
class Partitions:
    """The partitions a worker holds (TopicPartitions), those of them it has not seeked to their
    stored offsets yet, and since when it holds them (None while it is joining its group: the
    idle timeout does not count that time)."""

    held: set[Any] = field(default_factory=set)
    unpositioned: set[Any] = field(default_factory=set)
    settled_at: float | None = None

    def positioned(self, done: set[Any]) -> None:
        self.unpositioned -= done


def rebalance_listener(partitions: Partitions, consumer: Any, group: str,
                       say: Progress) -> Any:
    """The ConsumerRebalanceListener of a worker in `group` (kafka-python calls it on its IO
    thread, inside `poll` or `close`)."""
    from kafka import ConsumerRebalanceListener  # loaded only when the worker runs

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            # Nothing to land or drop here: see the module docstring.
            partitions.held -= set(revoked)
            partitions.unpositioned -= set(revoked)
            partitions.settled_at = None

        def on_partitions_assigned(self, assigned: Any) -> None:
            handed = set(assigned)
            # Not fetched until the poll loop has seeked them to their stored offsets.
            consumer.pause(*handed)
            partitions.held = handed
            partitions.unpositioned = set(handed)
            partitions.settled_at = time.monotonic()
            say(f"govex ingest: group {group} assigned this worker "
                f"{describe(handed) or 'no partition'}")

    return Listener()


def describe(partitions: set[Any]) -> str:
    """`topic partitions 0, 1; other 3` for a set of TopicPartitions."""
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{topic} partitions {', '.join(map(str, sorted(numbers)))}"
                     for topic, numbers in sorted(by_topic.items()))
