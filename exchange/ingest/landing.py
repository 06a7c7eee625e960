"""Landing one judged micro-batch of a resource (`land_batch`).

Accepted records land in `landing_<code>`; deletes land as `op = delete` rows; a message id
already landed is skipped. Rejected messages go to `govex.dlq.<CODE>` (headers `govex-error`
and `govex-message-id`) and to `quality_quarantine`.

A dead letter also names where the original is: headers `govex-source-topic`,
`govex-source-partition` and `govex-source-offset` (and `govex-source`, `partition/offset`).
Its value is the original's when that fits the message limit; otherwise (an oversized message,
or one without a value) `govex-value: reference` says the value is a small JSON reference,
`{"original": {"topic": …, "partition": …, "offset": …, "value_bytes": …}}`, to the message in
the source topic (there for that topic's retention time). `govex-value: original` marks a copy.

Exactly-once landing: the landed rows, the quarantine rows and the next offsets of the batch
are written in ONE database transaction. A crash before the commit leaves neither rows nor
offsets, and the restarted worker seeks to the stored offsets and reads the batch again; a
crash after it leaves both, and the batch is not read again. So a record never lands twice
and is never skipped. Per-key order holds because a record's Kafka message key is its record
key (one partition per key, read in offset order) and rows land in that order with an
increasing `_govex_seq`.

The transaction first claims the batch's partitions: it moves each one's stored offset from
where this worker read it to past the batch, and rolls the batch back if another worker moved
it first (a partition handed to another worker of the group while this one was still landing:
`group`); `land_batch` then returns None and the worker reads on from the stored offsets.

The DLQ messages of a batch are produced and flushed inside that transaction, after the claim
and before the commit, so a worker that lost the claim sends none. A crash between the flush
and the commit leaves letters of messages that are read again: the next reader finds them in
the DLQ (`sent_letters`) and passes their offsets as `sent`, so none is sent twice; none is
ever lost.

A store outage retries the landing transaction (dead letters an earlier attempt sent are not
sent again), and that transaction is idempotent (a batch whose commit reached the database
but whose answer did not reach us finds its own offsets stored and lands nothing more).
`store_retries` is how the worker rides out an unreachable store everywhere else too.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
import uuid
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from exchange.ingest.checks import Judged
from exchange.ingest.envelope import Accepted, Reject, field_text
from exchange.ingest.resource import IngestResource
from exchange.ingest.tables import offsets
from govex.errors import FatalError, TransientError
from quality.tables import quarantine_table

Progress = Callable[[str], None]
_T = TypeVar("_T")

# Errors of the store's connection (refused, dropped, timed out, locked): worth a retry.
# Anything else the database says (a constraint, a missing table) is not.
STORE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError)
# The widest Kafka key a DLQ reference keeps (bytes): a key beyond it may be why the
# message was too big to copy.
_REFERENCE_KEY = 1024


def dlq_topic(code: str) -> str:
    return f"govex.dlq.{code}"


def land_batch(store: sa.Engine, producer: Any, res: IngestResource, batch: Judged, *,
               read_from: Mapping[int, int | None], sent: Container[tuple[int, int]] = (),
               max_message_bytes: int, retry_limit: float = 0.0,
               progress: Progress | None = None) -> tuple[int, int] | None:
    """Dead-letter and land one judged micro-batch of `res`; store its offsets. Returns (rows
    landed, messages skipped as already landed), or None when another worker had moved the
    stored offset of one of the batch's partitions first (nothing of the batch is committed
    or sent then).

    `read_from` is, per partition of the batch, the stored offset this worker read it from
    (None: none was stored); `sent`, the (partition, offset) of rejected messages whose dead
    letter is in the DLQ already. The landing transaction is retried while the store is
    unreachable, for at most `retry_limit` seconds."""
    next_offsets: dict[int, int] = {}
    for m in batch.messages:
        next_offsets[m.partition] = max(next_offsets.get(m.partition, 0), m.offset + 1)
    letters = [r for r in batch.rejects
               if (r.message.partition, r.message.offset) not in sent]
    sending = _Once(lambda: _dead_letter(producer, res, letters, max_message_bytes))
    claim = _Claim(res, {p: read_from[p] for p in next_offsets}, next_offsets)

    def attempt() -> tuple[int, int] | None:
        try:
            return _land(store, res, batch, claim, sending)
        except _Moved:
            return None

    return store_retries(
        store, attempt, limit=retry_limit, progress=progress,
        failed=f"{len(batch.messages)} message(s) of {res.code} were read but not landed. "
        "Nothing of them was committed: the stored offsets are still those of the last landed "
        "batch, and `govex ingest` continues from there once the store is back",
    )


class _Once:
    """An action done at most once across the retries of a transaction."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action = action
        self._done = False

    def __call__(self) -> None:
        if not self._done:
            self._action()
            self._done = True


# -- the dead-letter queue -----------------------------------------------------------------------


def _dead_letter(producer: Any, res: IngestResource, rejects: Sequence[Reject],
                 max_message_bytes: int) -> None:
    """Produce the rejected messages to the DLQ and wait until the broker has them all."""
    # kafka-python loads only when a batch is landed: the run engine imports this package for
    # its landing tables and should not pay for the Kafka client.
    from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

    try:
        sent = [(item, _send(producer, res, item, copy=_fits(item, max_message_bytes)))
                for item in rejects]
        producer.flush(timeout=30)
        refused = []
        for item, future in sent:
            try:
                future.get(timeout=30)
            except (MessageSizeTooLargeError, RecordListTooLargeError):
                refused.append(item)
        if refused:
            # The broker's own limit (its message.max.bytes) can be below the worker's: a copy
            # it refuses goes as a reference instead, so no message blocks the DLQ.
            futures = [_send(producer, res, item, copy=False) for item in refused]
            producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=30)
    except KafkaError as error:
        msg = (f"cannot write {len(rejects)} rejected message(s) to {dlq_topic(res.code)} "
               f"({error}); nothing of this batch was committed, so a restart reads it again "
               "from the stored offsets")
        raise FatalError(msg) from None


def _fits(item: Reject, max_message_bytes: int) -> bool:
    """Whether the DLQ can carry a copy of the message: it has a value, and key and value
    together are within the limit (the headers a dead letter adds are a few KiB at most, and
    the producer allows 64 KiB beyond the limit)."""
    message = item.message
    return message.value is not None and (
        len(message.key or b"") + len(message.value) <= max_message_bytes)


def _send(producer: Any, res: IngestResource, item: Reject, *, copy: bool) -> Any:
    """Send the dead letter of `item`: a copy of the message, or (`copy` False, or a copy the
    producer refuses as too large) a reference to it. Returns the send's future."""
    from kafka.errors import MessageSizeTooLargeError  # loaded only when a batch is landed

    message = item.message
    if copy:
        try:
            return producer.send(dlq_topic(res.code), key=message.key, value=message.value,
                                 headers=_headers(res, item, "original"))
        except MessageSizeTooLargeError:
            pass  # beyond the producer's own limit: send the reference
    reference = {"original": {
        "topic": res.topic, "partition": message.partition, "offset": message.offset,
        "value_bytes": None if message.value is None else len(message.value)}}
    # The key too, unless it is what made the message too big.
    key = message.key if message.key is not None and len(message.key) <= _REFERENCE_KEY else None
    return producer.send(dlq_topic(res.code), key=key,
                         value=json.dumps(reference).encode(),
                         headers=_headers(res, item, "reference"))


def _headers(res: IngestResource, item: Reject, value: str) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (the reject's reason and message id are holdable text of
    bounded length: see `Reject`)."""
    message = item.message
    return [
        ("govex-error", item.reason.encode("utf-8")),
        ("govex-message-id", item.message_id.encode("utf-8")),
        ("govex-source", f"{message.partition}/{message.offset}".encode()),
        ("govex-source-topic", res.topic.encode("utf-8")),
        ("govex-source-partition", str(message.partition).encode()),
        ("govex-source-offset", str(message.offset).encode()),
        ("govex-value", value.encode()),
    ]


# -- the landing transaction ---------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _land(store: sa.Engine, res: IngestResource, batch: Judged, claim: _Claim,
          send_letters: Callable[[], None]) -> tuple[int, int]:
    """The one transaction of a micro-batch: claim, dead letters, landed rows, quarantine
    rows. Returns (rows landed, messages skipped as already landed); raises `_Moved` (after
    the rollback) when another worker moved a claimed offset first.

    Safe to run again after a failure, even one where the commit reached the database but
    its answer did not reach us: the claim then finds the batch's own offsets stored."""
    now = _now()
    batch_id = str(uuid.uuid4())
    with store.begin() as conn:
        if not claim.take(conn, now):
            return 0, len(batch.accepted)  # this batch landed already
        if batch.rejects:
            send_letters()  # flushed before the commit: see the module docstring
        landed, duplicates = _insert_accepted(conn, res, batch.accepted, now)
        if batch.rejects:
            _quarantine(conn, res, batch_id, batch.rejects)
    return landed, duplicates


class _Moved(Exception):  # noqa: N818 - an outcome, not an error
    """Another worker stored a partition's offset first: the batch rolls back."""


class _Claim:
    """The stored offsets a batch moves: each partition's from where this worker read it
    (`read_from`, None when none was stored) to past the batch (`next_offsets`)."""

    def __init__(self, res: IngestResource, read_from: Mapping[int, int | None],
                 next_offsets: Mapping[int, int]) -> None:
        self.res = res
        self.read_from = read_from
        self.next_offsets = next_offsets

    def take(self, conn: sa.Connection, now: dt.datetime) -> bool:
        """Move the offsets (True); or find all of them moved past the batch already, by this
        batch's own earlier commit (False). Raises `_Moved` when another worker moved one."""
        moved = [self._move(conn, p, now) for p in sorted(self.next_offsets)]
        if all(moved):
            return True
        if not any(moved) and all(self._stored(conn, p) == self.next_offsets[p]
                                  for p in self.next_offsets):
            return False
        raise _Moved

    def _move(self, conn: sa.Connection, partition: int, now: dt.datetime) -> bool:
        """Set the partition's next offset if it is still where this worker read it from."""
        where = (offsets.c.resource == self.res.code, offsets.c.topic == self.res.topic,
                 offsets.c.partition == partition)
        target = self.next_offsets[partition]
        expected = self.read_from[partition]
        if expected is not None:
            return bool(conn.execute(
                sa.update(offsets).where(*where, offsets.c.next_offset == expected)
                .values(next_offset=target, updated_at=now)).rowcount)
        if self._stored(conn, partition) is not None:
            return False
        try:
            conn.execute(sa.insert(offsets), {
                "resource": self.res.code, "topic": self.res.topic, "partition": partition,
                "next_offset": target, "updated_at": now,
            })
        except sa.exc.IntegrityError:  # another worker stored it a moment ago
            raise _Moved from None
        return True

    def _stored(self, conn: sa.Connection, partition: int) -> int | None:
        stored: int | None = conn.execute(sa.select(offsets.c.next_offset).where(
            offsets.c.resource == self.res.code, offsets.c.topic == self.res.topic,
            offsets.c.partition == partition)).scalar_one_or_none()
        return stored


def _insert_accepted(conn: sa.Connection, res: IngestResource, accepted: Sequence[Accepted],
                     now: dt.datetime) -> tuple[int, int]:
    """Land the accepted messages in message order; returns (rows landed, duplicates)."""
    skip_landed = _insert_skipping_landed(conn.dialect.name)
    known = _landed_ids(conn, res, accepted) if skip_landed is None else set()
    rows, duplicates = _landing_rows(res, accepted, known, now)
    if not rows:
        return 0, duplicates
    if skip_landed is None:
        conn.execute(sa.insert(res.landing), rows)
        return len(rows), duplicates
    landed = _insert_new(conn, res.landing, skip_landed, rows)
    return landed, duplicates + len(rows) - landed


def _landed_ids(conn: sa.Connection, res: IngestResource,
                accepted: Sequence[Accepted]) -> set[str]:
    """The message ids of `accepted` that landed before (for a store without ON CONFLICT)."""
    known: set[str] = set()
    ids = [a.envelope["message_id"] for a in accepted]
    for start in range(0, len(ids), 500):
        known.update(conn.execute(
            sa.select(res.landing.c._govex_message_id).where(
                res.landing.c._govex_message_id.in_(ids[start:start + 500]))
        ).scalars())
    return known


def _landing_rows(res: IngestResource, accepted: Sequence[Accepted], known: set[str],
                  now: dt.datetime) -> tuple[list[dict[str, Any]], int]:
    """The landing rows of the accepted messages whose ids are not `known` (nor repeated in
    the batch), and how many were skipped for that."""
    rows = []
    duplicates = 0
    fields = res.contract.fields
    for item in accepted:
        env = item.envelope
        if env["message_id"] in known:
            duplicates += 1
            continue
        known.add(env["message_id"])
        values = env["data"] if env["op"] == "upsert" else env["key"]
        row: dict[str, Any] = {name: field_text(values.get(name)) for name in fields}
        row.update({
            "_govex_key": item.record_key[:500], "_govex_op": env["op"],
            "_govex_message_id": env["message_id"],
            "_govex_source_system": env["source_system"][:200],
            "_govex_event_time": env["event_time"][:64],
            "_govex_partition": item.message.partition,
            "_govex_offset": item.message.offset, "_govex_landed_at": now,
        })
        rows.append(row)
    return rows, duplicates


def _insert_new(conn: sa.Connection, table: sa.Table, insert: Callable[[sa.Table], Any],
                rows: list[dict[str, Any]]) -> int:
    """Insert `rows` (all with the same keys) into a landing table, skipping those whose
    message id landed before (the unique index decides); returns how many went in.

    The statement goes to the driver's own executemany (psycopg pipelines it; sqlite3 loops
    in C) with values already in the driver's form, rather than through SQLAlchemy's
    insertmanyvalues: that renders 1,000 rows into one statement text that psycopg then
    re-parses placeholder by placeholder, which cost more than everything else per message."""
    statement = insert(table).on_conflict_do_nothing(
        index_elements=[table.c._govex_message_id]).inline()
    keys = list(rows[0])
    compiled = statement.compile(dialect=conn.dialect, column_keys=keys)
    if compiled.escaped_bind_names:  # column names the driver cannot take as they are
        return len(conn.execute(
            statement.returning(table.c._govex_message_id), rows).all())
    for key in keys:
        process = table.c[key].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if process is not None:  # e.g. SQLite's text form of a DateTime
            for row in rows:
                row[key] = process(row[key])
    params: list[Any] = rows
    if compiled.positional:
        order = compiled.positiontup or []
        params = [tuple(row[key] for key in order) for row in rows]
    return int(conn.exec_driver_sql(str(compiled), params).rowcount)


def _insert_skipping_landed(dialect: str) -> Callable[[sa.Table], Any] | None:
    """The INSERT construct with ON CONFLICT DO NOTHING of the store's dialect, or None.

    The store is SQLite or PostgreSQL (ARCHITECTURE.md) and both have it. It replaces looking
    up the batch's message ids first, which on PostgreSQL is a trap: psycopg prepares a query
    after five runs, and the generic plan made while the landing table was nearly empty scans
    it whole, so every batch got slower as the table grew (534 messages/s at 200,000)."""
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    return None


def _quarantine(conn: sa.Connection, res: IngestResource, batch_id: str,
                rejects: Iterable[Reject]) -> None:
    """Hold the batch's rejects in quarantine, the last reject of a key winning; a key held
    before keeps its first_seen. Three statements per batch, whatever its size."""
    q = quarantine_table
    now = _now()
    by_key: dict[str, Reject] = {}
    for item in rejects:
        by_key[item.record_key[:500]] = item
    keys = list(by_key)
    held = (q.c.resource == res.code, q.c.record_key.in_(keys))
    first_seen = dict(conn.execute(sa.select(q.c.record_key, q.c.first_seen).where(*held)).all())
    conn.execute(sa.delete(q).where(*held))
    conn.execute(sa.insert(q), [
        {"resource": res.code, "record_key": key, "run_id": batch_id,
         "failed_checks": [*item.checks, {"check": "ingest", "column": "",
                                          "message": item.reason}],
         "record": _json_safe(item.record),
         "first_seen": first_seen.get(key) or now, "last_seen": now}
        for key, item in by_key.items()
    ])


def _json_safe(value: Any) -> Any:
    """`value` as JSON every store's JSON column takes: a number JSON cannot spell (1e999 in a
    message is a float infinity once parsed; PostgreSQL's json refuses `Infinity`) becomes the
    text `Infinity` (as the landing table spells it), and anything else not JSON, its text.
    (Recursive: a message nests at most `envelope.MAX_DEPTH` levels.)"""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# -- store outages -------------------------------------------------------------------------------


def store_retries(store: sa.Engine, action: Callable[[], _T], *, limit: float,
                  progress: Progress | None, failed: str) -> _T:
    """`action()`, retried with backoff (0.25 s doubling to 5 s) while the store is
    unreachable, for at most `limit` seconds; then a TransientError naming the store."""
    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        try:
            return action()
        except STORE_DOWN as error:
            if _is_schema_error(error):
                msg = (f"the metadata store at {_store_name(store)} refused a statement "
                       f"({_reason(error)}); is it up to date (`govex db upgrade`)?")
                raise FatalError(msg) from error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise store_unreachable(store, error, failed) from error
            wait = min(delay, remaining)
            if progress is not None:
                progress(f"govex ingest: the metadata store at {_store_name(store)} is not "
                         f"reachable ({_reason(error)}); retrying in {wait:.2g}s")
            time.sleep(wait)
            delay = min(delay * 2, 5.0)


def store_unreachable(store: sa.Engine, error: sa.exc.DBAPIError, failed: str) -> TransientError:
    msg = f"cannot reach the metadata store at {_store_name(store)} ({_reason(error)}); {failed}"
    return TransientError(msg)


def _is_schema_error(error: sa.exc.DBAPIError) -> bool:
    """SQLite reports a missing table or column as an OperationalError, like an outage; no
    retry brings those back."""
    return str(error.orig).startswith(("no such table", "no such column"))


def _store_name(store: sa.Engine) -> str:
    return store.url.render_as_string(hide_password=True)


def _reason(error: sa.exc.DBAPIError) -> str:
    """The driver's own words, first line only (psycopg adds advice on further lines)."""
    text = str(error.orig if error.orig is not None else error).strip()
    return text.splitlines()[0] if text else error.__class__.__name__
