"""`govex trace`: the provenance of one record, in the shape INTERFACES.md fixes.

Which source it comes from (and its fingerprint there now), every delivery of it (newest first:
subscription, consumer, run, time, the fingerprint of what the consumer received and which
fields; from months retention dropped only each subscription's last delivery, marked
`beyond_retention`), its quality history and its disputes. Provenance is read only from the
partitions that can hold the record (`records.partitions`).

The source is re-read by key through the source connector: a SQL source gets a query filtered
on the key (`SELECT * FROM <table | (query)> WHERE k = 'v'`, literals rendered by SQLAlchemy
for the source's dialect, so quoting is the database's own); a file source is scanned in
bounded batches and filtered in Arrow. The record is hashed over the contract's fields in the
contract's types, the same `value_hashes` the deliveries use.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from collections.abc import Sequence
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import catalog
import contracts
from records.disputes import list_disputes
from records.provenance import deliveries_of, record_keys, split_key, value_hashes

pc: Any = _pc

__all__ = [
    "key_query", "landed_record", "read_source_record", "source_hash", "source_read_spec_types",
    "trace",
]

# Tables of other packages, by name only (lineage does not import their internals).
_runs = sa.table("exchange_runs", sa.column("run_id"), sa.column("started_at"))
_quarantine = sa.table(
    "quality_quarantine", sa.column("resource"), sa.column("record_key"),
    sa.column("run_id"), sa.column("failed_checks"),
)
_SCAN_BATCH = 50_000  # rows per batch when a file source must be scanned for one key


def _json_types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def source_read_spec_types(contract: contracts.Contract) -> dict[str, pa.DataType]:
    """Untyped files (CSV): the contract's text fields stay text, as the exchange reads them."""
    return {
        name: pa.string()
        for name in contract.fields
        if "string" in _json_types(contract.property(name))
    }


def key_query(url: str, source: catalog.Resource, values: dict[str, str]) -> str:
    """The source's table or query, filtered on the key, as SQL text for its own dialect."""
    dialect = sa.make_url(url).get_dialect()()
    decl = source.source
    relation: Any
    if decl.table is not None:
        schema, _, name = decl.table.rpartition(".")
        relation = sa.table(name, schema=schema or None)
    else:
        query = (decl.query or "").strip().rstrip(";")
        relation = sa.text(f"({query})").columns().subquery("_govex_src")
    select = sa.select(sa.text("*")).select_from(relation).where(
        *[sa.column(k) == sa.literal(v, sa.String()) for k, v in values.items()]
    )
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _contract_columns(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays: list[Any] = [
        batch.column(f.name) if f.name in batch.column_names
        else pa.nulls(batch.num_rows, type=cast(Any, f.type))
        for f in schema
    ]
    return pa.table(arrays, names=schema.names)


def read_source_record(
    conn: sa.Connection, resource: catalog.Resource, contract: contracts.Contract, key: str
) -> pa.Table:
    """The record `key` as the source holds it now, in the contract's columns (not yet cast
    to the contract's types: the gate judges it as the exchange would). Zero rows: gone."""
    import connectors

    values = split_key(key, resource.key)
    decl = resource.source
    if decl.kafka is not None:
        return landed_record(conn, resource, contract, key)
    resolved = catalog.load_connection(conn, decl.connection)
    schema = contracts.arrow_schema(contract)
    source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
    parts: list[pa.Table] = []
    try:
        if resolved.kind == "url":
            spec = connectors.ReadSpec(
                table=None, query=key_query(resolved.target, resource, values), columns=None,
                key=tuple(resource.key), watermark=None, batch_rows=_SCAN_BATCH,
            )
            parts = [b for b in source.read_batches(spec) if b.num_rows]
        else:  # a file: scan in bounded batches, keep the matching rows
            spec = connectors.ReadSpec(
                table=decl.table, query=None, columns=None, key=tuple(resource.key),
                watermark=None, batch_rows=_SCAN_BATCH, types=source_read_spec_types(contract),
            )
            for batch in source.read_batches(spec):
                if batch.num_rows:
                    hit = batch.filter(pc.equal(record_keys(batch, resource.key), key))
                    if hit.num_rows:
                        parts.append(hit)
    finally:
        source.close()
    if not parts:
        return schema.empty_table()
    return _contract_columns(pa.concat_tables(parts, promote_options="permissive"), schema)


def landed_record(
    conn: sa.Connection, resource: catalog.Resource, contract: contracts.Contract, key: str
) -> pa.Table:
    """A Kafka-fed resource's source is its landing table in the store (exchange.ingest.tables,
    named `landing_<code>`): the record is the latest landed row of the key, gone when that
    row is a delete."""
    schema = contracts.arrow_schema(contract)
    name = "landing_" + re.sub(r"[^a-z0-9_]", "_", resource.code.lower())
    if not sa.inspect(conn).has_table(name):
        return schema.empty_table()
    landed = sa.table(name, *(sa.column(f) for f in contract.fields), sa.column("_govex_key"),
                      sa.column("_govex_op"), sa.column("_govex_seq"))
    row = conn.execute(
        sa.select(landed).where(landed.c._govex_key == key)
        .order_by(landed.c._govex_seq.desc()).limit(1)
    ).mappings().first()
    if row is None or row["_govex_op"] == "delete":
        return schema.empty_table()
    return pa.table({f.name: _landed_value(row[f.name], f.type) for f in schema})


def _landed_value(text: str | None, kind: pa.DataType) -> pa.Array[Any]:
    """One landed value: text as landed for strings, dates and times (the gate judges them as
    text, as for any untyped source); numbers and booleans from their JSON spelling."""
    if text is None or pa.types.is_string(kind) or pa.types.is_temporal(kind):
        return pa.array([text], pa.string())
    return pa.array([json.loads(text)], kind)


def _conformed(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast to the contract's types where the values allow (a value the gate would refuse
    keeps its source type: the hash still tells whether it changed)."""
    arrays = []
    for f in schema:
        column = batch.column(f.name)
        if column.type != f.type:
            try:
                column = pc.cast(column, f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                if pa.types.is_timestamp(f.type) and f.type.tz is not None:
                    with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                        column = pc.cast(pc.cast(column, pa.timestamp(f.type.unit)), f.type)
        arrays.append(column)
    return pa.table(arrays, names=schema.names)


def source_hash(batch: pa.Table, contract: contracts.Contract) -> str | None:
    """The fingerprint of a source record over the contract's fields (None: no record)."""
    if batch.num_rows == 0:
        return None
    schema = contracts.arrow_schema(contract)
    hashed = value_hashes(_conformed(batch.slice(0, 1), schema), schema.names)
    return str(hashed[0].as_py())


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value).isoformat()
    return None if value is None else str(value)


def _quality(
    conn: sa.Connection, resource: str, key: str, delivered_runs: Sequence[str]
) -> list[dict[str, Any]]:
    """Per run: passed (the run delivered the record) or failed with the checks (the record is
    in quarantine from that run); newest run first."""
    items: dict[str, dict[str, Any]] = {
        run: {"run_id": run, "passed": True, "failed_checks": []} for run in delivered_runs
    }
    held = conn.execute(
        sa.select(_quarantine.c.run_id, _quarantine.c.failed_checks).where(
            _quarantine.c.resource == resource, _quarantine.c.record_key == key
        )
    ).first()
    if held is not None:
        checks = held[1]
        if isinstance(checks, str):  # a name-only table() column is not typed JSON
            checks = json.loads(checks)
        items[held[0]] = {"run_id": held[0], "passed": False, "failed_checks": list(checks or [])}
    started = {
        run: at for run, at in conn.execute(
            sa.select(_runs.c.run_id, _runs.c.started_at).where(_runs.c.run_id.in_(list(items)))
        )
    } if items else {}
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)

    def when(item: dict[str, Any]) -> dt.datetime:
        at = started.get(item["run_id"])
        if not isinstance(at, dt.datetime):
            return epoch
        return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at

    return sorted(items.values(), key=when, reverse=True)


def trace(
    conn_or_store: sa.Connection | sa.Engine,
    code: str,
    key: str,
    *,
    read_source: bool = True,
) -> dict[str, Any]:
    """The `govex trace --json` object for record `key` of resource `code`.

    An unknown resource, or a key with the wrong number of parts, raises DeclarationError.
    `source.current_hash` is null when the record is gone from the source; when the source
    cannot be read, also null, with `source.error` saying why."""
    if isinstance(conn_or_store, sa.Engine):
        with conn_or_store.connect() as conn:
            return trace(conn, code, key, read_source=read_source)
    conn = conn_or_store
    resource = catalog.load_resource(conn, code)
    contract = catalog.load_contract_version(conn, resource.contract)
    split_key(key, resource.key)
    subs = {s.id: s for s in catalog.load_subscriptions(conn, code)}
    delivered = deliveries_of(conn, code, key)
    deliveries = [
        {
            "subscription": d["subscription"],
            "consumer": subs[d["subscription"]].consumer if d["subscription"] in subs else None,
            "run_id": d["run_id"],
            "delivered_at": _iso(d["delivered_at"]),
            "hash": d["hash"],
            "fields": list(subs[d["subscription"]].fields) if d["subscription"] in subs else [],
            # Only on a delivery from a month retention dropped (the subscription's last one
            # then, kept): INTERFACES' shape stays as it was for every other delivery.
            **({"beyond_retention": True} if d["beyond_retention"] else {}),
        }
        for d in delivered
    ]
    runs = list(dict.fromkeys(d["run_id"] for d in delivered))
    source: dict[str, Any] = {
        "connection": resource.source.connection,
        "table": resource.source.table,
        "current_hash": None,
    }
    if resource.source.query is not None:
        source["query"] = resource.source.query
    if resource.source.kafka is not None:
        source["topic"] = resource.source.kafka.topic or f"govex.ingest.{code}"
    if read_source:
        try:
            source["current_hash"] = source_hash(
                read_source_record(conn, resource, contract, key), contract
            )
        except Exception as error:  # noqa: BLE001 - an unreachable source must not hide the rest
            source["error"] = f"cannot read the source: {error}"
    return {
        "resource": code,
        "key": key,
        "provider": resource.provider,
        "source": source,
        "deliveries": deliveries,
        "quality": _quality(conn, code, key, runs),
        "disputes": [
            {"id": d["id"], "state": d["state"]}
            for d in list_disputes(conn, resource=code, key=key)
        ],
    }
