"""The Kafka ingestion worker behind `govex ingest`: vertical systems push, govex lands.

For every Kafka-fed resource (`source.kafka`) the worker reads topic `source.kafka.topic`
(default `govex.ingest.<CODE>`) with kafka-python. With a consumer group (`--group`, see
`group`) the workers of the group split the topics' partitions between them; without one (the
demo, a worker alone) it assigns itself every partition. Either way it seeks each partition it
is handed to the offset stored in `ingest_offsets` (nothing is committed to Kafka: the database
is the one truth of what was consumed), after looking in the DLQ for dead letters a worker that
died already sent (`sent_letters`). Each poll is a micro-batch, bounded by size (`batch_size`
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
from exchange.ingest.group import (
    SESSION_TIMEOUT,
    Partitions,
    describe,
    group_config,
    rebalance_listener,
)
from exchange.ingest.landing import (
    STORE_DOWN,
    Progress,
    dlq_topic,
    land_batch,
    store_retries,
    store_unreachable,
)
from exchange.ingest.resource import IngestResource, ingest_topic
from exchange.ingest.sent_letters import Since, sent_past
from exchange.ingest.tables import offsets
from govex import progress as meter
from govex.errors import FatalError, TransientError
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
    """One resource as this worker consumes it: what judges and lands it, what it did, and the
    (partition, offset) of its rejected messages past the stored offsets whose dead letter is
    in the DLQ already (`sent_letters`)."""

    resource: IngestResource
    stats: IngestStats
    sent: set[tuple[int, int]] = field(default_factory=set)


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
    """A started worker: its store and clients, its resources by topic, its consumer group
    (None: it assigns itself every partition), the partitions it holds and the stored offset
    it read each one from (None: none was stored)."""

    store: sa.Engine
    consumer: Any
    producer: Any
    feeds: dict[str, _Feed]
    say: Progress
    bootstrap: str
    group: str | None
    from_beginning: bool
    partitions: Partitions = field(default_factory=Partitions)
    read_from: dict[tuple[str, int], int | None] = field(default_factory=dict)

    def close(self) -> None:
        _close_consumer(self.consumer)
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
    group: str | None = None,
    session_timeout: float = SESSION_TIMEOUT,
) -> list[IngestStats]:
    """Consume, judge and land until `max_messages` were consumed or nothing arrived for
    `idle_timeout` seconds while the worker held its partitions (neither: until interrupted).
    With `group`, read the partitions that consumer group assigns this worker (`govex ingest
    --group`); without, every partition. Returns per resource stats."""
    say: Progress = progress or (lambda _message: None)
    # How long to wait for the broker at start, and for the store once running: without
    # --idle-timeout a minute, else the idle timeout (a worker told to stop when idle for N s
    # should not hang much longer than that on an outage either).
    limit = CONNECT_RETRY_LIMIT if idle_timeout is None else idle_timeout
    worker = _start(store, resource, bootstrap, limit=limit, say=say,
                    from_beginning=from_beginning, max_message_bytes=max_message_bytes,
                    group=group, session_timeout=session_timeout)
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
           say: Progress, from_beginning: bool, max_message_bytes: int,
           group: str | None, session_timeout: float) -> _Worker | None:
    """Resolve the resources and the broker, connect, make the landing tables, join the
    group; None when no resource is fed by Kafka."""
    resolved = _resolve(store, code, bootstrap)
    if resolved is None:
        say("govex ingest: no Kafka-fed resource in the catalog; nothing to do")
        return None
    declared, pinned, bootstrap = resolved
    # The broker before the quality gates: building those loads Great Expectations (seconds),
    # and an operator who forgot to start the broker should hear about that first.
    consumer, producer = _connect(bootstrap, limit, say, max_message_bytes,
                                  group, session_timeout)
    try:
        feeds = _prepare(store, declared, pinned, from_beginning=from_beginning, say=say)
    except BaseException as error:
        _close_consumer(consumer)
        producer.close(timeout=5)
        if isinstance(error, STORE_DOWN):
            raise store_unreachable(store, error, _RESTART) from error
        raise
    _freeze_long_lived()
    worker = _Worker(store, consumer, producer, feeds, say, bootstrap, group, from_beginning)
    if group is None:
        say(f"govex ingest: reading {', '.join(feeds)} from {bootstrap}")
    else:
        # Joined only now, with the gates built: a member that takes seconds to start would
        # hold up the group's rebalance.
        consumer.subscribe(topics=list(feeds), listener=rebalance_listener(
            worker.partitions, consumer, group, say))
        say(f"govex ingest: reading {', '.join(feeds)} from {bootstrap} as a member of "
            f"group {group}")
    return worker


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


def _connect(bootstrap: str, limit: float, say: Progress, max_message_bytes: int,
             group: str | None, session_timeout: float) -> tuple[Any, Any]:
    """A consumer (of `group`, if any) and a producer, retrying with backoff for at most
    `limit` s."""
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
            return _clients(bootstrap, attempt_ms, max_message_bytes, group,
                            session_timeout)
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


def _clients(bootstrap: str, attempt_ms: int, max_message_bytes: int,
             group: str | None, session_timeout: float) -> tuple[Any, Any]:
    """One attempt at the consumer and the DLQ producer (closing the one when the other
    fails). The producer takes a copy of a message of `max_message_bytes` with its
    dead-letter headers (a few KiB)."""
    from kafka import KafkaConsumer, KafkaProducer  # loaded only when the worker runs

    membership = {"group_id": None} if group is None else group_config(group, session_timeout)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False,
        auto_offset_reset="earliest", client_id="govex-ingest",
        request_timeout_ms=10_000, bootstrap_timeout_ms=attempt_ms, **membership,
    )
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", client_id="govex-ingest-dlq",
            max_request_size=max_message_bytes + 64 * 1024,
            bootstrap_timeout_ms=max(attempt_ms, 5000),
        )
    except BaseException:
        _close_consumer(consumer)
        raise
    return consumer, producer


# How long a stopping worker tries to leave its group. Offsets live in the store, so nothing
# is committed to Kafka on the way out; a worker that cannot say goodbye in time is dropped
# by the group after its session timeout instead. kafka-python would wait for its request
# timeout (five minutes) on a coordinator that does not answer a LeaveGroup.
_LEAVE_GROUP_MS = 5_000


def _close_consumer(consumer: Any) -> None:
    consumer.close(autocommit=False, timeout_ms=_LEAVE_GROUP_MS)


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
        _create_landing(store, res)
    if from_beginning:
        _forget_offsets(store, [res.code for res in ready], say)
    return {res.topic: _Feed(res, IngestStats(res.code)) for res in ready}


def _create_landing(store: sa.Engine, res: IngestResource) -> None:
    """Make the landing table of `res` if it is not there yet. The workers of a group start
    together, and PostgreSQL's check-then-create is not atomic between sessions (the loser
    hits a duplicate catalog row): the loser finds the winner's table and goes on."""
    try:
        with store.begin() as conn:
            res.landing.create(conn, checkfirst=True)
    except sa.exc.DBAPIError:
        with store.connect() as conn:
            if not sa.inspect(conn).has_table(res.landing.name):
                raise


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
    last_look = 0.0
    meter.start("ingest", limits.max_messages)
    while limits.max_messages is None or total < limits.max_messages:
        if worker.group is None and (time.monotonic() - last_look >= 1.0
                                     or not worker.partitions.held):
            _assign_new(worker)
            last_look = time.monotonic()
        if worker.partitions.unpositioned:
            _position(worker, limits.retry_limit)
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
        elif limits.idle_timeout is not None and _quiet(worker, last_message,
                                                         now) >= limits.idle_timeout:
            break


def _quiet(worker: _Worker, last_message: float, now: float) -> float:
    """Seconds without a message. In a group, only while the worker holds its partitions:
    joining the group, and each rebalance, takes seconds in which nothing can arrive."""
    if worker.group is None:
        return now - last_message
    settled = worker.partitions.settled_at
    return 0.0 if settled is None else now - max(last_message, settled)


def _assign_new(worker: _Worker) -> None:
    """Without a group: assign the partitions not assigned yet (topics may appear later)."""
    from kafka import TopicPartition  # loaded only when the worker runs

    consumer = worker.consumer
    new: set[Any] = set()
    for topic in worker.feeds:
        partitions = consumer.partitions_for_topic(topic) or set()
        new |= {TopicPartition(topic, p) for p in partitions} - worker.partitions.held
    if new:
        consumer.assign(sorted(worker.partitions.held | new))
        worker.partitions.held |= new
        worker.partitions.unpositioned |= new


def _position(worker: _Worker, retry_limit: float) -> None:
    """Seek each partition handed to the worker and not read yet to its stored next offset
    (the beginning, for one never landed), after looking in the DLQ for letters already sent
    past it; then let it be fetched."""
    handed = sorted(worker.partitions.unpositioned)
    stored = store_retries(
        worker.store,
        lambda: _stored_offsets(worker.store, [f.resource.code for f in worker.feeds.values()]),
        limit=retry_limit, progress=worker.say,
        failed=f"the stored offsets of new partitions cannot be read; {_RESTART}")
    for feed in worker.feeds.values():
        mine = [tp for tp in handed if tp.topic == feed.resource.topic]
        feed.sent |= _sent_letters(worker, feed.resource, mine, stored)
    consumer = worker.consumer
    for tp in handed:
        since = stored.get((tp.topic, tp.partition))
        if since is not None and since.next_offset is not None:
            consumer.seek(tp, since.next_offset)
        else:
            consumer.seek_to_beginning(tp)
        worker.read_from[(tp.topic, tp.partition)] = None if since is None else (
            since.next_offset)
    consumer.resume(*handed)
    worker.partitions.positioned(set(handed))


def _sent_letters(worker: _Worker, res: IngestResource, handed: Sequence[Any],
                  stored: Mapping[tuple[str, int], Since]) -> set[tuple[int, int]]:
    """The letters in the DLQ of messages of `handed` past their stored offsets. A partition
    never landed is looked for only when the worker did not forget the offsets on purpose
    (`--from-beginning`: its letters go again). (Whether a partition has anything past its
    stored offset is not asked first: Tansu answers `end_offsets` short of the last batch.)"""
    from kafka.errors import KafkaError  # loaded only when the worker runs

    wanted: dict[int, Since] = {}
    for tp in handed:
        since = stored.get((tp.topic, tp.partition))
        if since is not None:
            wanted[tp.partition] = since
        elif not worker.from_beginning:
            wanted[tp.partition] = Since(None, None)
    try:
        return sent_past(worker.bootstrap, res.topic, dlq_topic(res.code), wanted)
    except KafkaError as error:
        msg = (f"cannot read {dlq_topic(res.code)} to see which rejected messages of "
               f"{res.code} it holds already ({error}); {_RESTART}")
        raise TransientError(msg) from None


def _stored_offsets(store: sa.Engine, codes: Sequence[str]) -> dict[tuple[str, int], Since]:
    """The next offset to read of every (topic, partition) of `codes` read before, and when
    it was stored."""
    with store.connect() as conn:
        return {
            (row.topic, row.partition): Since(row.next_offset, row.updated_at)
            for row in conn.execute(sa.select(offsets).where(offsets.c.resource.in_(codes)))
        }


def _fetch(worker: _Worker, want: int, batch_wait: float) -> dict[str, list[Message]]:
    """At most `want` messages, waiting at most `batch_wait` seconds: one micro-batch (one
    transaction, one gate evaluation) per topic, holding every partition polled, since the
    gate's cost is mostly per call, not per row. (In a group, the poll is also where the
    worker joins it and where rebalances happen.)"""
    if worker.group is None and not worker.partitions.held:
        time.sleep(min(batch_wait, 0.2))
        return {}
    polled = worker.consumer.poll(timeout_ms=int(batch_wait * 1000), max_records=want)
    got = 0
    batches: dict[str, list[Message]] = {}
    for tp, fetched in sorted(polled.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
        if tp in worker.partitions.unpositioned or tp not in worker.partitions.held:
            continue  # handed over, or handed back, during this poll: not from its offset
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
    res = feed.resource
    judged = judge(res, messages, limits.max_message_bytes)
    partitions = sorted({m.partition for m in messages})
    outcome = land_batch(
        worker.store, worker.producer, res, judged,
        read_from={p: worker.read_from[(res.topic, p)] for p in partitions}, sent=feed.sent,
        max_message_bytes=limits.max_message_bytes, retry_limit=limits.retry_limit,
        progress=worker.say)
    if outcome is None:
        _read_again(worker, res.topic, partitions)
        return
    landed, duplicates = outcome
    for m in messages:
        worker.read_from[(res.topic, m.partition)] = m.offset + 1
    feed.sent -= {(m.partition, m.offset) for m in messages}
    feed.stats.consumed += len(messages)
    feed.stats.landed += landed
    feed.stats.duplicates += duplicates
    feed.stats.rejected += len(judged.rejects)


def _read_again(worker: _Worker, topic: str, partitions: Sequence[int]) -> None:
    """Another worker landed these partitions first (they were handed to it while this one
    was landing): this batch was rolled back; read on from the stored offsets, if the group
    leaves the partitions here."""
    from kafka import TopicPartition  # loaded only when the worker runs

    again = {TopicPartition(topic, p) for p in partitions} & worker.partitions.held
    if again:
        worker.consumer.pause(*again)
        worker.partitions.unpositioned |= again
        worker.say(f"govex ingest: another worker landed {describe(again)} first; reading "
                   "on from the stored offsets")
