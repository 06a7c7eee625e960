"""The Kafka ingestion worker behind `govex ingest`: vertical systems push, govex lands.

For every Kafka-fed resource (`source.kafka`) the worker reads topic `source.kafka.topic`
(default `govex.ingest.<CODE>`) with kafka-python, assigning every partition by hand and
seeking to the offsets stored in `ingest_offsets` (no consumer group: the database is the one
truth of what was consumed). Each poll is a micro-batch, bounded by size (`batch_size`
records) and time (`batch_wait` seconds). Per message:

1. UTF-8 JSON of at most `max_message_bytes`, exactly the INTERFACES.md envelope
   (message_id, resource == the resource's code, contract_version == the pinned version,
   op upsert|delete, key = the resource's key fields, data, source_system, event_time);
2. for upserts, the contract (jsonschema's verdict per record; see `_contract` for how the
   vectorised validator spares most records the per-record call) and then the resource's
   quality gate (`quality.QualityGate`) on an Arrow table of the batch's `data`, row by row.

Accepted records land in `landing_<code>`; deletes land as `op = delete` rows; a message id
already landed is skipped. Rejected messages go to `govex.dlq.<CODE>` (headers `govex-error`
and `govex-message-id`) and to `quality_quarantine`. Nothing a producer sends crashes the
worker.

Exactly-once landing: the landed rows, the quarantine rows and the next offsets of the batch
are written in ONE database transaction. A crash before the commit leaves neither rows nor
offsets, and the restarted worker seeks to the stored offsets and reads the batch again; a
crash after it leaves both, and the batch is not read again. So a record never lands twice
and is never skipped. The DLQ messages of a batch are produced and flushed BEFORE that commit:
a crash between the flush and the commit re-sends them on restart (a DLQ message may be
duplicated) but none is ever lost. Per-key order holds because a record's Kafka message key is
its record key (one partition per key, read in offset order) and rows land in that order with
an increasing `_govex_seq`.

Outages: an unreachable broker at start, and an unreachable metadata store while running, are
retried with backoff (0.25 s doubling to 5 s) for at most the idle timeout (a minute without
one); then the worker stops with one error naming the broker or the store. A store outage
retries only the landing transaction (the batch's dead letters are already flushed), and that
transaction is idempotent (landed message ids are skipped), so a commit whose answer was lost
on the way back cannot land anything twice.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa
import sqlalchemy as sa

import catalog
import contracts
from exchange.ingest.tables import landing_table, offsets
from govex.errors import FatalError, TransientError
from govex.settings import DEFAULT_KAFKA_BOOTSTRAP, load_settings

MAX_MESSAGE_BYTES = 1024 * 1024
BATCH_SIZE = 5000
BATCH_WAIT = 1.0
# Without --idle-timeout, how long to keep retrying a broker that is not there at start.
CONNECT_RETRY_LIMIT = 60.0
ENVELOPE_FIELDS = frozenset(
    {"message_id", "resource", "contract_version", "op", "key", "data", "source_system",
     "event_time"}
)
_PYTHON_TYPES: dict[pa.DataType, type] = {
    pa.string(): str, pa.int64(): int, pa.float64(): float, pa.bool_(): bool,
}
# Integers a float64 holds exactly: an integer in a `number` column within this range compares
# and divides the same as its float.
_EXACT_INT = 2**53

Progress = Callable[[str], None]
_T = TypeVar("_T")


def ingest_topic(resource: catalog.Resource) -> str:
    """The topic a Kafka-fed resource is read from."""
    kafka = resource.source.kafka
    return (kafka.topic if kafka is not None and kafka.topic else None) or (
        f"govex.ingest.{resource.code}"
    )


def dlq_topic(code: str) -> str:
    return f"govex.dlq.{code}"


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


@dataclass(frozen=True)
class _Message:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class _Reject:
    message: _Message
    reason: str
    message_id: str
    record_key: str
    checks: list[dict[str, str]]
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Accepted:
    message: _Message
    envelope: dict[str, Any]
    record_key: str


class _Bad(Exception):  # noqa: N818 - a verdict on one message, never shown as an error
    def __init__(self, reason: str, check: str, column: str = "") -> None:
        super().__init__(reason)
        self.reason, self.check, self.column = reason, check, column


class _Resource:
    """One Kafka-fed resource as the worker needs it: declaration, contract, gate, tables."""

    def __init__(self, resource: catalog.Resource, contract: contracts.Contract) -> None:
        import quality

        self.resource = resource
        self.code = resource.code
        self.key = list(resource.key)
        self.contract = contract
        self.topic = ingest_topic(resource)
        self.landing = landing_table(resource.code, contract)
        self.validator = contracts.reference_validator(contract)
        self.gate = quality.resource_gate(contract, resource, keyed=False)
        self.schema = _json_arrow_schema(contract)
        self.batch_validator = contracts.BatchValidator(contract)
        self.required = contract.required
        self.field_set = frozenset(contract.fields)
        self.nullable = frozenset(
            name for name in contract.fields if contracts.allows_null(contract.property(name))
        )
        # The one Python type a value of each column must have to round-trip exactly.
        self.exact_types: dict[str, type | None] = {
            f.name: _PYTHON_TYPES.get(f.type) for f in self.schema
        }
        self.stats = IngestStats(resource.code)


def _json_arrow_schema(contract: contracts.Contract) -> pa.Schema:
    """`contracts.arrow_schema` as the JSON arrives: dates and date-times stay strings (the
    contract gate judges text dates with jsonschema's semantics), other types as declared."""
    typed = contracts.arrow_schema(contract)
    fields = []
    for f in typed:
        kind = f.type
        if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind, nullable=True))
    return pa.schema(fields)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(value: Any) -> str | None:
    """A contract field as typed text: strings unchanged, other scalars in JSON spelling."""
    kind = type(value)  # exact types first: this runs for every field of every landed record
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)  # what json.dumps writes for an int
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if kind is float and value.is_integer() and abs(value) <= _EXACT_INT:
        # 1.0 is the integer 1 to JSON Schema: one spelling per value, so a key sent as 1
        # and as 1.0 is one record, and an integer column reads back exactly.
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)



def _key_text(values: Sequence[Any]) -> str:
    if len(values) == 1 and type(values[0]) is str:
        return values[0]  # type: ignore[no-any-return]
    return ",".join("None" if v is None else str(_text(v)) for v in values)


# -- one message -------------------------------------------------------------------------------


def _decode(value: bytes | None, limit: int) -> Any:
    """The JSON in a message's value; _Bad when it is empty, too big, not UTF-8 or not JSON."""
    if value is None:
        msg = "empty message (no value)"
        raise _Bad(msg, "envelope")
    if len(value) > limit:
        msg = f"message of {len(value)} bytes exceeds the {limit}-byte limit"
        raise _Bad(msg, "size")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"message is not UTF-8 ({error.reason} at byte {error.start})"
        raise _Bad(msg, "encoding") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError as error:
        msg = f"message is not valid JSON ({error})"
        raise _Bad(msg, "json") from None
    except RecursionError:
        msg = "message is not usable JSON (nested too deeply)"
        raise _Bad(msg, "json") from None


def _no_constant(name: str) -> Any:
    """Python's json accepts NaN, Infinity and -Infinity; JSON (RFC 8259) does not."""
    msg = f"{name} is not a JSON value"
    raise ValueError(msg)


def _parse(res: _Resource, message: _Message, limit: int) -> _Accepted | _Reject:
    """The envelope of one message, or the reason it is rejected (never raises)."""
    fallback_id = f"{res.topic}/{message.partition}/{message.offset}"
    envelope: Any = None
    try:
        envelope = _decode(message.value, limit)
        accepted = _check_envelope(res, envelope)
    except _Bad as bad:
        message_id = fallback_id
        key = f"message:{fallback_id}"
        record: dict[str, Any] = {}
        if isinstance(envelope, dict):
            if isinstance(envelope.get("message_id"), str) and envelope["message_id"]:
                message_id = envelope["message_id"]
                key = f"message:{message_id}"
            if isinstance(envelope.get("key"), dict):
                key = _key_text([envelope["key"].get(k) for k in res.key])
            if isinstance(envelope.get("data"), dict):
                record = envelope["data"]
        return _Reject(message, bad.reason, message_id, key,
                       [{"check": bad.check, "column": bad.column}], record)
    return _Accepted(message, accepted, _key_text([accepted["key"][k] for k in res.key]))


def _check_envelope(res: _Resource, envelope: Any) -> dict[str, Any]:
    if not isinstance(envelope, dict):
        msg = "message is not a JSON object (the govex envelope)"
        raise _Bad(msg, "envelope")
    missing = sorted(ENVELOPE_FIELDS - envelope.keys())
    extra = sorted(envelope.keys() - ENVELOPE_FIELDS)
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(extra)}"] if extra else [])
        msg = f"not the govex envelope ({'; '.join(parts)})"
        raise _Bad(msg, "envelope")
    for name in ("message_id", "resource", "contract_version", "source_system", "event_time"):
        if not isinstance(envelope[name], str) or not envelope[name]:
            msg = f"envelope field {name} must be a non-empty string"
            raise _Bad(msg, "envelope", name)
    if len(envelope["message_id"]) > 200:  # noqa: PLR2004 - the landing column's width
        msg = "envelope message_id is longer than 200 characters"
        raise _Bad(msg, "envelope",
                   "message_id")
    if envelope["resource"] != res.code:
        msg = f"message is for resource {envelope['resource']}, not {res.code}"
        raise _Bad(msg, "resource", "resource")
    if envelope["contract_version"] != res.contract.version:
        msg = (f"contract_version {envelope['contract_version']} is not the version "
               f"{res.contract.ref} that {res.code} pins")
        raise _Bad(msg, "contract_version", "contract_version")
    if envelope["op"] not in ("upsert", "delete"):
        msg = f"op {envelope['op']!r} is not upsert or delete"
        raise _Bad(msg, "envelope", "op")
    try:
        dt.datetime.fromisoformat(envelope["event_time"])
    except ValueError:
        msg = f"event_time {envelope['event_time']!r} is not an ISO 8601 date-time"
        raise _Bad(msg,
                   "envelope", "event_time") from None
    key, data = envelope["key"], envelope["data"]
    if not isinstance(key, dict) or not isinstance(data, dict):
        msg = "envelope key and data must be JSON objects"
        raise _Bad(msg, "envelope", "key")
    if set(key) != set(res.key):
        msg = f"key must hold exactly the key fields {', '.join(res.key)} (got {sorted(key)})"
        raise _Bad(msg, "key", ",".join(res.key))
    for name in res.key:
        value = key[name]
        if value is None or isinstance(value, dict | list):
            msg = f"key field {name} must be a non-null scalar"
            raise _Bad(msg, "key", name)
    if envelope["op"] == "upsert":
        for name in res.key:
            if data.get(name) != key[name]:
                msg = f"data.{name} does not match key.{name}"
                raise _Bad(msg, "key", name)
    return envelope


def _contract_reject(res: _Resource, item: _Accepted) -> _Reject | None:
    """jsonschema's verdict on one upsert's data: the reject naming its first error, or None."""
    data = item.envelope["data"]
    try:
        errors = sorted(res.validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    except (ArithmeticError, ValueError, TypeError, RecursionError) as error:
        # jsonschema itself fails on some numbers (multipleOf of an infinity, say: JSON text
        # like 1e999 parses to one): a record it cannot judge is not a valid one.
        reason = f"contract {res.contract.ref}: cannot be checked ({error.__class__.__name__}: " \
            f"{error})"
        return _Reject(item.message, reason[:500], item.envelope["message_id"],
                       item.record_key, [{"check": "contract", "column": ""}], data)
    if not errors:
        return None
    first = errors[0]
    column = str(first.absolute_path[0]) if first.absolute_path else ""
    where = f" on {column}" if column else ""
    reason = f"contract {res.contract.ref}: {first.validator}{where}: {first.message}"
    return _Reject(item.message, reason[:500], item.envelope["message_id"], item.record_key,
                   [{"check": str(first.validator), "column": column}], data)


def _projects_back(res: _Resource, data: Mapping[str, Any]) -> bool:
    """Whether `data` survives the trip to an Arrow row of `res.schema` and back through
    `contracts.json_projection` unchanged in every way jsonschema could tell apart, so that
    the vectorised validator (which agrees with jsonschema on that projection row for row)
    can stand in for jsonschema on `data` itself.

    That needs: every required field present (an absent nullable field becomes a present null,
    which only ever fails *more* keywords, never `required`); no undeclared field (Arrow would
    drop it); null only where the property allows null (elsewhere a NULL projects to absent);
    every value of exactly its column's Python type (bool is not an int), floats finite, and an
    integer in a number column within 2**53 (where float64 holds it exactly)."""
    keys = data.keys()
    if not res.required <= keys or not keys <= res.field_set:
        return False
    for name, value in data.items():
        if value is None:
            if name not in res.nullable:
                return False
            continue
        kind = type(value)
        expected = res.exact_types[name]
        if kind is expected:
            if kind is float and not math.isfinite(value):
                return False
        elif not (expected is float and kind is int and -_EXACT_INT <= value <= _EXACT_INT):
            return False
    return True


def _contract(res: _Resource,
              upserts: list[_Accepted]) -> tuple[list[_Reject], pa.Table | None]:
    """The contract on the batch's upserts; returns (and removes) the ones jsonschema refuses,
    and the Arrow batch of the remaining upserts when it has it already (else None).

    jsonschema per record costs more than everything else a message goes through, so it runs
    only where the answer is not already known: a record that projects back exactly
    (`_projects_back`) and that the vectorised validator passes is valid for jsonschema too.
    Every other record (and every record the vectorised validator flags) is judged by
    jsonschema itself, so verdicts and reasons are exactly those of jsonschema per record."""
    fast = [item for item in upserts if _projects_back(res, item.envelope["data"])]
    suspects: set[int] = {id(item) for item in upserts} - {id(item) for item in fast}
    table: pa.Table | None = None
    if fast:
        try:
            table = pa.Table.from_arrays(
                [pa.array([item.envelope["data"].get(f.name) for item in fast], type=f.type)
                 for f in res.schema], schema=res.schema)
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            suspects = {id(item) for item in upserts}
        else:
            valid = res.batch_validator.validate(table).valid
            suspects.update(id(item) for item, ok in zip(fast, valid, strict=True) if not ok)
    rejects: list[_Reject] = []
    keep: list[_Accepted] = []
    for item in upserts:
        reject = _contract_reject(res, item) if id(item) in suspects else None
        if reject is None:
            keep.append(item)
        else:
            rejects.append(reject)
    if table is not None and len(fast) == len(upserts):
        # Every record went the fast way: the gate's batch is this table minus the rejects.
        if rejects:
            kept = {id(item) for item in keep}
            table = table.filter(pa.array([id(item) in kept for item in fast], pa.bool_()))
    else:
        table = None
    upserts[:] = keep
    return rejects, table


def _arrow_rows(res: _Resource, items: Sequence[_Accepted]) -> list[dict[str, Any]]:
    return [
        {f.name: _arrow_value(f.type, item.envelope["data"].get(f.name)) for f in res.schema}
        for item in items
    ]


def _arrow_value(kind: pa.DataType, value: Any) -> Any:
    if pa.types.is_integer(kind) and isinstance(value, float) and value.is_integer():
        return int(value)
    if pa.types.is_floating(kind) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _gate(res: _Resource, upserts: list[_Accepted],
          table: pa.Table | None = None) -> list[_Reject]:
    """The quality gate on the batch's upserts (`table`: their Arrow batch, when known), row
    by row; returns (and removes) failures."""
    rejects: list[_Reject] = []
    rows = [] if table is not None else _arrow_rows(res, upserts)
    try:
        batch = table if table is not None else pa.Table.from_pylist(rows, schema=res.schema)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        # Some value passed jsonschema yet does not fit its Arrow column (an integer beyond
        # 64 bits, say): find those rows one by one and reject only them.
        fits = []
        for values, item in zip(rows, upserts, strict=True):
            try:
                pa.Table.from_pylist([values], schema=res.schema)
            except (pa.ArrowException, OverflowError, TypeError, ValueError) as error:
                reason = f"contract {res.contract.ref}: a value does not fit its type ({error})"
                rejects.append(_Reject(item.message, reason[:500], item.envelope["message_id"],
                                       item.record_key, [{"check": "type",
                                                          "column": ""}],
                                       item.envelope["data"]))
            else:
                fits.append((values, item))
        rows = [values for values, _ in fits]
        upserts[:] = [item for _, item in fits]
        batch = pa.Table.from_pylist(rows, schema=res.schema)
    if not upserts:
        return rejects
    result = res.gate.evaluate(batch)
    if not result.num_failed:
        return rejects
    checks: dict[int, list[dict[str, str]]] = {}
    messages: dict[int, str] = {}
    for failure in result.failures.to_pylist():
        row = int(failure["row"])
        checks.setdefault(row, []).append(
            {"check": str(failure["check"]), "column": str(failure["column"] or "")}
        )
        messages.setdefault(row, str(failure["message"] or failure["check"]))
    keep = []
    for row, item in enumerate(upserts):
        if bool(result.passed[row]):
            keep.append(item)
            continue
        named = ", ".join(
            f"{c['check']} on {c['column']}" if c["column"] else c["check"]
            for c in checks.get(row, [])
        ) or "a batch-level check"
        reason = f"quality gate of {res.code}: {named} ({messages.get(row, 'failed')})"
        rejects.append(_Reject(item.message, reason[:500], item.envelope["message_id"],
                               item.record_key, checks.get(row, []), item.envelope["data"]))
    upserts[:] = keep
    return rejects


# -- one batch -----------------------------------------------------------------------------------


def _quarantine(conn: sa.Connection, res: _Resource, batch_id: str,
                rejects: Iterable[_Reject]) -> None:
    """Hold the batch's rejects in quarantine, the last reject of a key winning; a key held
    before keeps its first_seen. Three statements per batch, whatever its size."""
    from quality.tables import quarantine_table as q

    now = _now()
    by_key: dict[str, _Reject] = {}
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
         "record": json.loads(json.dumps(item.record, ensure_ascii=False, default=str)),
         "first_seen": first_seen.get(key) or now, "last_seen": now}
        for key, item in by_key.items()
    ])


def _headers(item: _Reject) -> list[tuple[str, bytes]]:
    return [
        ("govex-error", item.reason.encode("utf-8")),
        ("govex-message-id", item.message_id.encode("utf-8")),
        ("govex-source", f"{item.message.partition}/{item.message.offset}".encode()),
    ]


def _dead_letter(producer: Any, res: _Resource, rejects: Sequence[_Reject],
                 max_message_bytes: int) -> None:
    """Produce the rejected messages to the DLQ and wait until the broker has them all."""
    from kafka.errors import KafkaError

    try:
        futures = [
            producer.send(dlq_topic(res.code), key=item.message.key,
                          value=item.message.value if item.message.value is not None
                          and len(item.message.value) <= max_message_bytes else None,
                          headers=_headers(item))
            for item in rejects
        ]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    except KafkaError as error:
        msg = (f"cannot write {len(rejects)} rejected message(s) to {dlq_topic(res.code)} "
               f"({error}); nothing of this batch was committed, so a restart reads it again "
               "from the stored offsets")
        raise FatalError(msg) from None


def _process(
    store: sa.Engine, producer: Any, res: _Resource, messages: Sequence[_Message],
    *, max_message_bytes: int, retry_limit: float = 0.0, progress: Progress | None = None,
) -> None:
    """Judge, dead-letter and land one micro-batch of one resource; store its offsets.

    The landing transaction is retried while the store is unreachable, for at most
    `retry_limit` seconds; the dead letters are not sent again for that."""
    parsed = [_parse(res, m, max_message_bytes) for m in messages]
    rejects = [p for p in parsed if isinstance(p, _Reject)]
    accepted = [p for p in parsed if isinstance(p, _Accepted)]
    upserts = [a for a in accepted if a.envelope["op"] == "upsert"]
    refused, table = _contract(res, upserts)
    # In message order, as if each message had been judged alone; the gate's come after.
    rejects = sorted(rejects + refused, key=lambda r: (r.message.partition, r.message.offset))
    rejects += _gate(res, upserts, table)
    passed = {id(a) for a in upserts}
    accepted = [a for a in accepted if a.envelope["op"] == "delete" or id(a) in passed]
    accepted.sort(key=lambda a: (a.message.partition, a.message.offset))
    # Dead letters first, flushed: see the module docstring for why this order is safe.
    if rejects:
        _dead_letter(producer, res, rejects, max_message_bytes)
    next_offsets: dict[int, int] = {}
    for m in messages:
        next_offsets[m.partition] = max(next_offsets.get(m.partition, 0), m.offset + 1)
    landed, duplicates = _store_retries(
        store, lambda: _land(store, res, accepted, rejects, next_offsets),
        limit=retry_limit, progress=progress,
        failed=f"{len(messages)} message(s) of {res.code} were read but not landed. Nothing "
        "of them was committed: the stored offsets are still those of the last landed batch, "
        "and `govex ingest` continues from there once the store is back",
    )
    res.stats.consumed += len(messages)
    res.stats.landed += landed
    res.stats.duplicates += duplicates
    res.stats.rejected += len(rejects)


def _land(store: sa.Engine, res: _Resource, accepted: Sequence[_Accepted],
          rejects: Sequence[_Reject], next_offsets: Mapping[int, int]) -> tuple[int, int]:
    """The one transaction of a micro-batch: landed rows, quarantine rows and next offsets.
    Returns (rows landed, messages skipped as already landed).

    Safe to run again after a failure, even one where the commit reached the database but
    its answer did not reach us: message ids already landed are skipped, and the offsets and
    quarantine rows are set, not added to."""
    now = _now()
    batch_id = str(uuid.uuid4())
    duplicates = 0
    with store.begin() as conn:
        skip_landed = _insert_skipping_landed(conn.dialect.name)
        known: set[str] = set()
        if skip_landed is None:
            ids = [a.envelope["message_id"] for a in accepted]
            for start in range(0, len(ids), 500):
                known.update(conn.execute(
                    sa.select(res.landing.c._govex_message_id).where(
                        res.landing.c._govex_message_id.in_(ids[start:start + 500]))
                ).scalars())
        rows = []
        fields = res.contract.fields
        for item in accepted:
            env = item.envelope
            if env["message_id"] in known:
                duplicates += 1
                continue
            known.add(env["message_id"])
            values = env["data"] if env["op"] == "upsert" else env["key"]
            row: dict[str, Any] = {name: _text(values.get(name)) for name in fields}
            row.update({
                "_govex_key": item.record_key[:500], "_govex_op": env["op"],
                "_govex_message_id": env["message_id"],
                "_govex_source_system": env["source_system"][:200],
                "_govex_event_time": env["event_time"][:64],
                "_govex_partition": item.message.partition,
                "_govex_offset": item.message.offset, "_govex_landed_at": now,
            })
            rows.append(row)
        landed = len(rows)
        if rows and skip_landed is not None:
            landed = _insert_new(conn, res.landing, skip_landed, rows)
            duplicates += len(rows) - landed
        elif rows:
            conn.execute(sa.insert(res.landing), rows)
        if rejects:
            _quarantine(conn, res, batch_id, rejects)
        for partition, next_offset in next_offsets.items():
            where = (offsets.c.resource == res.code, offsets.c.topic == res.topic,
                     offsets.c.partition == partition)
            updated = conn.execute(
                sa.update(offsets).where(*where).values(next_offset=next_offset, updated_at=now)
            ).rowcount
            if not updated:
                conn.execute(sa.insert(offsets), {
                    "resource": res.code, "topic": res.topic, "partition": partition,
                    "next_offset": next_offset, "updated_at": now,
                })
    return landed, duplicates


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
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    return None


# Errors of the store's connection (refused, dropped, timed out, locked): worth a retry.
# Anything else the database says (a constraint, a missing table) is not.
_STORE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError)


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


def _store_unreachable(store: sa.Engine, error: sa.exc.DBAPIError, failed: str) -> TransientError:
    msg = f"cannot reach the metadata store at {_store_name(store)} ({_reason(error)}); {failed}"
    return TransientError(msg)


def _store_retries(store: sa.Engine, action: Callable[[], _T], *, limit: float,
                   progress: Progress | None, failed: str) -> _T:
    """`action()`, retried with backoff (0.25 s doubling to 5 s) while the store is
    unreachable, for at most `limit` seconds; then a TransientError naming the store."""
    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        try:
            return action()
        except _STORE_DOWN as error:
            if _is_schema_error(error):
                msg = (f"the metadata store at {_store_name(store)} refused a statement "
                       f"({_reason(error)}); is it up to date (`govex db upgrade`)?")
                raise FatalError(msg) from error
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _store_unreachable(store, error, failed) from error
            wait = min(delay, remaining)
            if progress is not None:
                progress(f"govex ingest: the metadata store at {_store_name(store)} is not "
                         f"reachable ({_reason(error)}); retrying in {wait:.2g}s")
            time.sleep(wait)
            delay = min(delay * 2, 5.0)


# -- the worker ------------------------------------------------------------------------------------


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


def _connect(bootstrap: str, limit: float, progress: Progress) -> tuple[Any, Any]:
    """A consumer (no group) and a producer, retrying with backoff for at most `limit` s."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.errors import KafkaError

    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        # kafka-python retries the bootstrap itself; cap each attempt so the whole wait stays
        # within `limit` and the user sees progress between attempts.
        attempt_ms = int(max(0.5, min(deadline - time.monotonic(), limit / 3, 5.0)) * 1000)
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", client_id="govex-ingest",
                request_timeout_ms=10_000, bootstrap_timeout_ms=attempt_ms,
            )
            try:
                producer = KafkaProducer(
                    bootstrap_servers=bootstrap, acks="all", client_id="govex-ingest-dlq",
                    max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
                    bootstrap_timeout_ms=max(attempt_ms, 5000),
                )
            except BaseException:
                consumer.close()
                raise
        except KafkaError as error:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = (f"cannot reach the Kafka broker at {bootstrap} ({error}); start it "
                       "(`govex broker` for development) or set GOVEX_KAFKA_BOOTSTRAP")
                raise FatalError(msg) from None
            progress(f"govex ingest: Kafka broker at {bootstrap} is not reachable yet "
                     f"({error}); retrying in {min(delay, remaining):.2g}s")
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 5.0)
        else:
            return consumer, producer


def _assign(store: sa.Engine, consumer: Any, by_topic: Mapping[str, _Resource],
            assigned: set[tuple[str, int]]) -> None:
    """Assign partitions not assigned yet (topics may appear later) and seek each to its
    stored next offset, or to the beginning for a partition never read."""
    from kafka import TopicPartition

    new: list[Any] = []
    for topic in by_topic:
        partitions = consumer.partitions_for_topic(topic) or set()
        new += [TopicPartition(topic, p) for p in sorted(partitions)
                if (topic, p) not in assigned]
    if not new:
        return
    with store.connect() as conn:
        stored = {
            (row.topic, row.partition): row.next_offset
            for row in conn.execute(sa.select(offsets).where(
                offsets.c.resource.in_([r.code for r in by_topic.values()])))
        }
    current = list(consumer.assignment())
    consumer.assign(current + new)
    for tp in new:
        assigned.add((tp.topic, tp.partition))
        if (tp.topic, tp.partition) in stored:
            consumer.seek(tp, stored[(tp.topic, tp.partition)])
        else:
            consumer.seek_to_beginning(tp)


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
    try:
        declared = kafka_resources(store, resource)
        if not declared:
            say("govex ingest: no Kafka-fed resource in the catalog; nothing to do")
            return []
        if len({ingest_topic(r) for r in declared}) != len(declared):
            msg = ("two Kafka-fed resources read the same topic; give each its own "
                   "source.kafka.topic")
            raise FatalError(msg)
        bootstrap = bootstrap or resolve_bootstrap(store, declared)
        with store.connect() as conn:
            pinned = [catalog.load_contract_version(conn, r.contract) for r in declared]
    except _STORE_DOWN as error:
        raise _store_unreachable(
            store, error, "start `govex ingest` again once it is back") from error
    # How long to wait for the broker at start, and for the store once running: without
    # --idle-timeout a minute, else the idle timeout (a worker told to stop when idle for N s
    # should not hang much longer than that on an outage either).
    limit = CONNECT_RETRY_LIMIT if idle_timeout is None else idle_timeout
    # The broker before the quality gates: building those loads Great Expectations (seconds),
    # and an operator who forgot to start the broker should hear about that first.
    consumer, producer = _connect(bootstrap, limit, say)
    try:
        ready = [_Resource(r, contract) for r, contract in zip(declared, pinned, strict=True)]
        by_topic = {r.topic: r for r in ready}
        for r in ready:
            with store.begin() as conn:
                r.landing.create(conn, checkfirst=True)
        if from_beginning:
            _forget_offsets(store, [r.code for r in ready], say)
    except BaseException as error:
        consumer.close()
        producer.close(timeout=5)
        if isinstance(error, _STORE_DOWN):
            raise _store_unreachable(
                store, error, "start `govex ingest` again once it is back") from error
        raise
    # What is alive now (modules, Great Expectations' and pandas' millions of objects) lives
    # as long as the worker: take it out of the cyclic collector's sight. Otherwise every full
    # collection, triggered by the batches' short-lived objects, walks all of it again; that
    # was up to a third of the worker's time. Reference counting still frees what it frees.
    gc.collect()
    gc.freeze()
    say(f"govex ingest: reading {', '.join(by_topic)} from {bootstrap}")
    assigned: set[tuple[str, int]] = set()
    total = 0
    last_message = time.monotonic()
    last_assign = 0.0
    try:
        while max_messages is None or total < max_messages:
            if time.monotonic() - last_assign >= 1.0 or not assigned:
                _store_retries(store, lambda: _assign(store, consumer, by_topic, assigned),
                               limit=limit, progress=say,
                               failed="the stored offsets of new partitions cannot be read; "
                               "start `govex ingest` again once it is back")
                last_assign = time.monotonic()
            want = batch_size if max_messages is None else min(batch_size, max_messages - total)
            polled = consumer.poll(timeout_ms=int(batch_wait * 1000), max_records=want) \
                if assigned else {}
            if not assigned:
                time.sleep(min(batch_wait, 0.2))
            got = 0
            # One micro-batch (one transaction, one gate evaluation) per topic, holding every
            # partition polled: the gate's cost is mostly per call, not per row.
            batches: dict[str, list[_Message]] = {}
            for tp, fetched in sorted(polled.items(),
                                      key=lambda kv: (kv[0].topic, kv[0].partition)):
                records = fetched[: want - got]
                batches.setdefault(tp.topic, []).extend(
                    _Message(tp.partition, r.offset, r.key, r.value) for r in records)
                got += len(records)
                if len(records) < len(fetched):
                    # Fetched but not processed (--max-messages reached): read it again.
                    consumer.seek(tp, fetched[len(records)].offset)
            for topic, batch in batches.items():
                if batch:
                    _process(store, producer, by_topic[topic], batch,
                             max_message_bytes=max_message_bytes, retry_limit=limit,
                             progress=say)
            total += got
            now = time.monotonic()
            if got:
                last_message = now
            elif idle_timeout is not None and now - last_message >= idle_timeout:
                break
    finally:
        consumer.close()
        producer.close(timeout=5)
    return [r.stats for r in ready]


__all__ = [
    "BATCH_SIZE",
    "MAX_MESSAGE_BYTES",
    "IngestStats",
    "dlq_topic",
    "ingest_topic",
    "kafka_resources",
    "resolve_bootstrap",
    "run_ingest",
]
