"""The Kafka ingestion worker behind `govex ingest`: vertical systems push, govex lands.

For every Kafka-fed resource (`source.kafka`) the worker reads topic `source.kafka.topic`
(default `govex.ingest.<CODE>`) with kafka-python, assigning every partition by hand and
seeking to the offsets stored in `ingest_offsets` (no consumer group: the database is the one
truth of what was consumed). Each poll is a micro-batch, bounded by size (`batch_size`
records) and time (`batch_wait` seconds), judged by `checks` and landed by `landing`.

Outages: an unreachable broker at start, and an unreachable metadata store while running, are
retried with backoff (0.25 s doubling to 5 s) for at most the idle timeout (a minute without
one); then the worker stops with one error naming the broker or the store.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

import catalog
import contracts
import quality
from exchange.ingest.checks import judge
from exchange.ingest.envelope import MAX_MESSAGE_BYTES, Message
from exchange.ingest.landing import (
    STORE_DOWN,
    Progress,
    land_batch,
    store_retries,
    store_unreachable,
)
from exchange.ingest.resource import IngestResource, ingest_topic
from exchange.ingest.tables import offsets
from govex import progress as meter
from govex.errors import FatalError
from govex.settings import DEFAULT_KAFKA_BOOTSTRAP, load_settings

BATCH_SIZE = 5000
BATCH_WAIT = 1.0
# Without --idle-timeout, how long to keep retrying a broker that is not there at start.
CONNECT_RETRY_LIMIT = 60.0
_RESTART = "start `govex ingest` again once it is back"


@dataclass
class IngestStats:
    """What one worker run did for one resource (the command prints these)."""

    resource: str
    consumed: int = 0
    landed: int = 0
    rejected: int = 0
    duplicates: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "consumed": self.consumed, "landed": self.landed,
                "rejected": self.rejected, "duplicates": self.duplicates}


@dataclass
class _Feed:
    """One resource as this worker consumes it: what judges and lands it, what it did."""

    resource: IngestResource
    stats: IngestStats


@dataclass(frozen=True)
class _Limits:
    """When the poll loop stops and how big its batches are (`run_ingest`'s arguments)."""

    max_messages: int | None
    idle_timeout: float | None
    batch_size: int
    batch_wait: float
    max_message_bytes: int
    retry_limit: float


@dataclass
class _Worker:
    """A started worker: its store and clients, its resources by topic, the partitions it has
    assigned itself."""

    store: sa.Engine
    consumer: Any
    producer: Any
    feeds: dict[str, _Feed]
    say: Progress
    assigned: set[tuple[str, int]] = field(default_factory=set)

    def close(self) -> None:
        self.consumer.close()
        self.producer.close(timeout=5)


def run_ingest(
    store: sa.Engine,
    *,
    resource: str | None = None,
    max_messages: int | None = None,
    idle_timeout: float | None = None,
    bootstrap: str | None = None,
    batch_size: int = BATCH_SIZE,
    batch_wait: float = BATCH_WAIT,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    progress: Progress | None = None,
    from_beginning: bool = False,
) -> list[IngestStats]:
    """Consume, judge and land until `max_messages` were consumed or nothing arrived for
    `idle_timeout` seconds (neither: until interrupted). Returns per resource stats."""
    say: Progress = progress or (lambda _message: None)
    # How long to wait for the broker at start, and for the store once running: without
    # --idle-timeout a minute, else the idle timeout (a worker told to stop when idle for N s
    # should not hang much longer than that on an outage either).
    limit = CONNECT_RETRY_LIMIT if idle_timeout is None else idle_timeout
    worker = _start(store, resource, bootstrap, limit=limit, say=say,
                    from_beginning=from_beginning, max_message_bytes=max_message_bytes)
    if worker is None:
        return []
    try:
        _poll(worker, _Limits(max_messages, idle_timeout, batch_size, batch_wait,
                              max_message_bytes, limit))
    finally:
        worker.close()
    return [feed.stats for feed in worker.feeds.values()]


# -- the start step ------------------------------------------------------------------------------


def kafka_resources(store: sa.Engine, code: str | None = None) -> list[catalog.Resource]:
    """Every Kafka-fed resource in the catalog (or just `code`, which must be Kafka-fed)."""
    with store.connect() as conn:
        if code is not None:
            resource = catalog.load_resource(conn, code)
            if resource.source.kind != "kafka":
                msg = (f"resource {code} is not fed by Kafka (its source is a "
                       f"{resource.source.kind}); `govex ingest` only reads Kafka sources")
                raise FatalError(msg)
            return [resource]
        declared = catalog.resource_declarations(conn)
    found = [catalog.Resource.model_validate(d) for d in declared.values()]
    return [r for r in found if r.source.kind == "kafka"]


def resolve_bootstrap(store: sa.Engine, resources: Sequence[catalog.Resource],
                      env: Mapping[str, str] | None = None) -> str:
    """GOVEX_KAFKA_BOOTSTRAP, else the resources' kafka connection, else 127.0.0.1:9092."""
    configured = load_settings(env).kafka_bootstrap
    if configured:
        return configured
    with store.connect() as conn:
        for resource in resources:
            resolved = catalog.load_connection(conn, resource.source.connection, env)
            if resolved.kind == "kafka" and resolved.target:
                return resolved.target
    return DEFAULT_KAFKA_BOOTSTRAP


def _start(store: sa.Engine, code: str | None, bootstrap: str | None, *, limit: float,
           say: Progress, from_beginning: bool,
           max_message_bytes: int) -> _Worker | None:
    """Resolve the resources and the broker, connect, make the landing tables; None when no
    resource is fed by Kafka."""
    resolved = _resolve(store, code, bootstrap)
    if resolved is None:
        say("govex ingest: no Kafka-fed resource in the catalog; nothing to do")
        return None
    declared, pinned, bootstrap = resolved
    # The broker before the quality gates: building those loads Great Expectations (seconds),
    # and an operator who forgot to start the broker should hear about that first.
    consumer, producer = _connect(bootstrap, limit, say, max_message_bytes)
    try:
        feeds = _prepare(store, declared, pinned, from_beginning=from_beginning, say=say)
    except BaseException as error:
        consumer.close()
        producer.close(timeout=5)
        if isinstance(error, STORE_DOWN):
            raise store_unreachable(store, error, _RESTART) from error
        raise
    _freeze_long_lived()
    say(f"govex ingest: reading {', '.join(feeds)} from {bootstrap}")
    return _Worker(store, consumer, producer, feeds, say)


def _resolve(store: sa.Engine, code: str | None, bootstrap: str | None,
             ) -> tuple[list[catalog.Resource], list[contracts.Contract], str] | None:
    """The Kafka-fed resources to read, their pinned contracts and the broker's address; None
    when there is none to read."""
    try:
        declared = kafka_resources(store, code)
        if not declared:
            return None
        if len({ingest_topic(r) for r in declared}) != len(declared):
            msg = ("two Kafka-fed resources read the same topic; give each its own "
                   "source.kafka.topic")
            raise FatalError(msg)
        bootstrap = bootstrap or resolve_bootstrap(store, declared)
        with store.connect() as conn:
            pinned = [catalog.load_contract_version(conn, r.contract) for r in declared]
    except STORE_DOWN as error:
        raise store_unreachable(store, error, _RESTART) from error
    return declared, pinned, bootstrap


def _connect(bootstrap: str, limit: float, say: Progress,
             max_message_bytes: int) -> tuple[Any, Any]:
    """A consumer (no group) and a producer, retrying with backoff for at most `limit` s."""
    # kafka-python loads only when the worker runs: the run engine imports this package for
    # its landing tables and should not pay for the Kafka client.
    from kafka.errors import KafkaError

    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        # kafka-python retries the bootstrap itself; cap each attempt so the whole wait stays
        # within `limit` and the user sees progress between attempts.
        attempt_ms = int(max(0.5, min(deadline - time.monotonic(), limit / 3, 5.0)) * 1000)
        try:
            return _clients(bootstrap, attempt_ms, max_message_bytes)
        except KafkaError as error:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = (f"cannot reach the Kafka broker at {bootstrap} ({error}); start it "
                       "(`govex broker` for development) or set GOVEX_KAFKA_BOOTSTRAP")
                raise FatalError(msg) from None
            say(f"govex ingest: Kafka broker at {bootstrap} is not reachable yet "
                f"({error}); retrying in {min(delay, remaining):.2g}s")
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)


def _clients(bootstrap: str, attempt_ms: int,
             max_message_bytes: int) -> tuple[Any, Any]:
    """One attempt at the consumer and the DLQ producer (closing the one when the other
    fails). The producer takes a copy of a message of `max_message_bytes` with its
    dead-letter headers (a few KiB)."""
    from kafka import KafkaConsumer, KafkaProducer  # loaded only when the worker runs

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id="govex-ingest",
        request_timeout_ms=10_000, bootstrap_timeout_ms=attempt_ms,
    )
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="govex-ingest-dlq",
            max_request_size=max_message_bytes + 64 * 1024,
            bootstrap_timeout_ms=max(attempt_ms, 5000),
        )
    except BaseException:
        consumer.close()
        raise
    return consumer, producer


def _prepare(store: sa.Engine, declared: Sequence[catalog.Resource],
             pinned: Sequence[contracts.Contract], *, from_beginning: bool,
             say: Progress) -> dict[str, _Feed]:
    """Each resource's checks and landing table, by topic; with `from_beginning`, its stored
    offsets forgotten."""
    with store.connect() as conn:  # the workspace's GB/T 2260 additions, as last applied
        stored = catalog.stored_reference(conn)
    quality.use_division_overrides(stored.rows if stored else [])
    ready = [IngestResource(r, contract) for r, contract in zip(declared, pinned, strict=True)]
    for res in ready:
        with store.begin() as conn:
            res.landing.create(conn, checkfirst=True)
    if from_beginning:
        _forget_offsets(store, [res.code for res in ready], say)
    return {res.topic: _Feed(res, IngestStats(res.code)) for res in ready}


def _forget_offsets(store: sa.Engine, codes: Sequence[str], say: Progress) -> None:
    """Drop the stored offsets of `codes`, so their topics are read from the beginning.

    For a broker that lost its log (the in-memory embedded broker restarted, a topic deleted
    and created again): the stored offsets then point past the new log's end, and a broker
    need not say so (the embedded one answers with nothing). Re-reading is safe because a
    message id lands once; rejected messages are dead-lettered again."""
    with store.begin() as conn:
        dropped = conn.execute(sa.delete(offsets).where(offsets.c.resource.in_(codes))).rowcount
    say(f"govex ingest: forgot {dropped} stored offset(s) of {', '.join(codes)}; reading "
        "from the beginning")


def _freeze_long_lived() -> None:
    """What is alive now (modules, Great Expectations' and pandas' millions of objects) lives
    as long as the worker: take it out of the cyclic collector's sight. Otherwise every full
    collection, triggered by the batches' short-lived objects, walks all of it again; that
    was up to a third of the worker's time. Reference counting still frees what it frees."""
    gc.collect()
    gc.freeze()


# -- the poll loop -------------------------------------------------------------------------------


def _poll(worker: _Worker, limits: _Limits) -> None:
    """Read, judge and land micro-batches until `max_messages` were consumed or nothing
    arrived for `idle_timeout` seconds (neither: until interrupted)."""
    total = 0
    last_message = time.monotonic()
    last_assign = 0.0
    meter.start("ingest", limits.max_messages)
    while limits.max_messages is None or total < limits.max_messages:
        if time.monotonic() - last_assign >= 1.0 or not worker.assigned:
            store_retries(worker.store, lambda: _assign(worker), limit=limits.retry_limit,
                          progress=worker.say,
                          failed="the stored offsets of new partitions cannot be read; "
                          f"{_RESTART}")
            last_assign = time.monotonic()
        want = limits.batch_size if limits.max_messages is None else min(
            limits.batch_size, limits.max_messages - total)
        batches = _fetch(worker, want, limits.batch_wait)
        for topic, batch in batches.items():
            _process(worker, worker.feeds[topic], batch, limits)
        got = sum(len(batch) for batch in batches.values())
        total += got
        meter.advance(got)  # per micro-batch
        now = time.monotonic()
        if got:
            last_message = now
        elif limits.idle_timeout is not None and now - last_message >= limits.idle_timeout:
            break


def _assign(worker: _Worker) -> None:
    """Assign partitions not assigned yet (topics may appear later) and seek each to its
    stored next offset, or to the beginning for a partition never read."""
    from kafka import TopicPartition  # loaded only when the worker runs

    consumer = worker.consumer
    new: list[Any] = []
    for topic in worker.feeds:
        partitions = consumer.partitions_for_topic(topic) or set()
        new += [TopicPartition(topic, p) for p in sorted(partitions)
                if (topic, p) not in worker.assigned]
    if not new:
        return
    stored = _stored_offsets(worker.store, [f.resource.code for f in worker.feeds.values()])
    consumer.assign(list(consumer.assignment()) + new)
    for tp in new:
        worker.assigned.add((tp.topic, tp.partition))
        if (tp.topic, tp.partition) in stored:
            consumer.seek(tp, stored[(tp.topic, tp.partition)])
        else:
            consumer.seek_to_beginning(tp)


def _stored_offsets(store: sa.Engine, codes: Sequence[str]) -> dict[tuple[str, int], int]:
    """The next offset to read of every (topic, partition) of `codes` read before."""
    with store.connect() as conn:
        return {
            (row.topic, row.partition): row.next_offset
            for row in conn.execute(sa.select(offsets).where(offsets.c.resource.in_(codes)))
        }


def _fetch(worker: _Worker, want: int, batch_wait: float) -> dict[str, list[Message]]:
    """At most `want` messages, waiting at most `batch_wait` seconds: one micro-batch (one
    transaction, one gate evaluation) per topic, holding every partition polled, since the
    gate's cost is mostly per call, not per row."""
    if not worker.assigned:
        time.sleep(min(batch_wait, 0.2))
        return {}
    polled = worker.consumer.poll(timeout_ms=int(batch_wait * 1000), max_records=want)
    got = 0
    batches: dict[str, list[Message]] = {}
    for tp, fetched in sorted(polled.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        records = fetched[: want - got]
        batches.setdefault(tp.topic, []).extend(
            Message(tp.partition, r.offset, r.key, r.value) for r in records)
        got += len(records)
        if len(records) < len(fetched):
            # Fetched but not processed (--max-messages reached): read it again.
            worker.consumer.seek(tp, fetched[len(records)].offset)
    return batches


def _process(worker: _Worker, feed: _Feed, messages: Sequence[Message], limits: _Limits) -> None:
    """Judge, dead-letter and land one micro-batch of one resource; count what it did."""
    if not messages:
        return
    judged = judge(feed.resource, messages, limits.max_message_bytes)
    landed, duplicates = land_batch(
        worker.store, worker.producer, feed.resource, judged,
        max_message_bytes=limits.max_message_bytes, retry_limit=limits.retry_limit,
        progress=worker.say)
    feed.stats.consumed += len(messages)
    feed.stats.landed += landed
    feed.stats.duplicates += duplicates
    feed.stats.rejected += len(judged.rejects)
