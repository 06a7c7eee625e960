"""Disclosure (使用情况公开): every department that received or verified one record — when,
which fields, under which subscription and purpose.

Two tables say where a record went, both by the record key in provenance's text form (`KEY`:
key values joined by ','): `lineage_provenance`, one row per delivery of the record to a bulk
subscription (a `DELETED` fingerprint is a delete reaching the consumer's copy, shown as
`deleted`), and `verify_records`, one row per time a verify subscription asked about it (shown
as `verified`, with the fields asked and whether the record was found and matched). Neither
holds a purpose or a department: those come from the subscription's declaration in the catalog
(consumer, delivery, fields, masking, purpose) and its state there (`active`, `revoked`).
Deliveries are read through `records.provenance` (only the partitions that can hold the keys);
from months that retention dropped, each subscription's last delivery of a record is still
there, marked `beyond_retention` (the earlier ones of those months are gone).

A subscription since removed from the catalog (`govex apply` deletes a workspace subscription
whose file is gone; revoked and expired ones stay) is shown from what govex still holds of it,
and `declared_in` says from where:

- `lineage`: the `govex_subscription` facet of the newest OpenLineage event govex stored for one
  of its deliveries (consumer, purpose, fields, masking as declared at that delivery; events in
  govex's namespace are govex's own, never accepted over HTTP);
- null: nothing of its declaration is left (lineage was switched off, or it was a verify
  subscription, which has no delivery events). The consumer is then taken from its metering rows
  (`usage_daily`, which keep the consumer beside each day's counts) when there are any, else
  null; a verification still names the fields asked; purpose and masking are null.

`search_pii` answers the same for every record holding one value of a personal-data category
(`x-govex-pii`, e.g. every record of one ID number) across the resources whose contracts mark
a field with it. Where the field is the record key, that is a lookup by key. Where it is one of
several key fields, the key texts are matched by the value's position (a scan of the
resource's provenance rows, not an index lookup). Where it is not in the key, govex does not
hold the value (provenance keeps keys and hashes only), so the authoritative source is read,
filtered on the field, to find the keys of the records that hold the value now: a record
deleted at its source, or whose value has changed there since, is not found that way.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import catalog
import contracts
from govex.errors import DeclarationError
from records.provenance import DELETED, deliveries_of_keys, record_keys, split_key
from records.provenance_tables import latest, provenance
from records.trace import key_query, landed_record, source_read_spec_types
from records.usage import usage_daily
from records.verifications import verify_records

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["ACTIONS", "disclosure", "disclosures", "search_pii"]

Action = Literal["delivered", "deleted", "verified"]
ACTIONS: tuple[Action, ...] = ("delivered", "deleted", "verified")

# Tables of other packages, by name only (records imports neither lineage nor the catalog's
# internals).
_subscriptions = sa.table(
    "catalog_subscriptions", sa.column("id"), sa.column("resource_code"), sa.column("state"),
)
_events = sa.table(
    "lineage_events", sa.column("job_namespace"), sa.column("job_name"),
    sa.column("event_time"), sa.column("id"), sa.column("payload"),
)
_GOVEX_NAMESPACE = "govex"  # lineage.JOB_NAMESPACE
_SCAN_BATCH = 50_000  # rows per batch when a file source is scanned for a value


def _delivery_job(code: str, subscription: str) -> str:
    """The job name of a subscription's deliveries, as `lineage.delivery_job_name` forms it."""
    return f"exchange.{code}.deliver.{subscription}"


@dataclass(frozen=True)
class _Declared:
    """What is known of one subscription's declaration (see the module docstring)."""

    consumer: str | None
    delivery: str | None
    fields: list[str] | None
    masking: dict[str, str] | None
    purpose: str | None
    state: str  # active | revoked | removed
    declared_in: str | None  # catalog | lineage | None


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC values
    return value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # name-only column: text


def _declared(conn: sa.Connection, code: str, ids: Collection[str]) -> dict[str, _Declared]:
    """Each subscription's declaration: from the catalog, else from what is left of it."""
    if not ids:
        return {}
    declarations = catalog.subscription_declarations(conn, code)
    states: dict[str, str] = {
        sub_id: state for sub_id, state in conn.execute(
            sa.select(_subscriptions.c.id, _subscriptions.c.state)
            .where(_subscriptions.c.id.in_(list(ids))))
    }
    known: dict[str, _Declared] = {}
    for sub_id in ids:
        declaration = declarations.get(sub_id)
        if declaration is not None:
            known[sub_id] = _Declared(
                consumer=declaration["consumer"],
                delivery=declaration.get("delivery", "bulk"),
                fields=list(declaration["fields"]),
                masking=dict(declaration.get("masking") or {}),
                purpose=declaration["purpose"],
                state=str(states.get(sub_id) or "active"),
                declared_in="catalog",
            )
        else:
            known[sub_id] = _removed(conn, code, sub_id)
    return known


def _removed(conn: sa.Connection, code: str, sub_id: str) -> _Declared:
    """A subscription no longer in the catalog: its last delivery event's facet, else the
    consumer its metering rows name, else nothing."""
    payload = conn.execute(
        sa.select(_events.c.payload)
        .where(_events.c.job_namespace == _GOVEX_NAMESPACE,
               _events.c.job_name == _delivery_job(code, sub_id))
        .order_by(_events.c.event_time.desc(), _events.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    facet = (((_json(payload) or {}).get("run") or {}).get("facets") or {}).get(
        "govex_subscription") if payload is not None else None
    if isinstance(facet, dict) and facet.get("id") == sub_id:
        return _Declared(
            consumer=facet.get("consumer"), delivery="bulk",
            fields=list(facet.get("fields") or []),
            # The facet lists every field, `none` for the unmasked: the declaration's form.
            masking={f: m for f, m in (facet.get("masking") or {}).items() if m != "none"},
            purpose=facet.get("purpose"), state="removed", declared_in="lineage",
        )
    consumer = conn.execute(
        sa.select(usage_daily.c.consumer).where(usage_daily.c.subscription == sub_id)
        .order_by(usage_daily.c.day.desc()).limit(1)
    ).scalar_one_or_none()
    return _Declared(consumer=consumer, delivery=None, fields=None, masking=None, purpose=None,
                     state="removed", declared_in=None)


def _iso(value: Any) -> str | None:
    value = _aware(value)
    return value.isoformat() if isinstance(value, dt.datetime) else None


def disclosures(
    conn: sa.Connection, code: str, keys: Sequence[str], *, verified_as: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Every delivery, delete and verification of the records `keys` of resource `code`,
    newest first: {key, action (delivered | deleted | verified), at, consumer, subscription,
    delivery, fields, masking, purpose, subscription_state, declared_in, run_id (deliveries
    and deletes), call_id, found, matched (verifications), beyond_retention (a delivery from
    a month retention dropped, kept as the subscription's last one then)}. `verified_as`:
    further spellings of those keys that verifications are recorded under (a call records the
    key normalised as it compared it, e.g. an ID number's check character x in upper case)."""
    if not keys:
        return []
    wanted = list(dict.fromkeys(keys))
    asked_as = list(dict.fromkeys([*wanted, *verified_as]))
    v = verify_records
    delivered = deliveries_of_keys(conn, code, wanted)  # beyond retention included
    verified = conn.execute(
        sa.select(v.c.record_key, v.c.subscription, v.c.call_id, v.c.verified_at, v.c.fields,
                  v.c.found, v.c.matched, v.c.id)
        .where(v.c.resource == code, v.c.record_key.in_(asked_as))
    ).all()
    subs = _declared(conn, code, {d["subscription"] for d in delivered} | {
        r.subscription for r in verified})
    items: list[tuple[dt.datetime, int, dict[str, Any]]] = []
    for d in delivered:
        known = subs[d["subscription"]]
        deleted = d["hash"] == DELETED
        items.append((_aware(d["delivered_at"]), d["id"], {
            **_entry(d["key"], "deleted" if deleted else "delivered",
                     d["delivered_at"], d["subscription"], known),
            "delivery": "bulk",  # provenance rows are bulk deliveries, whatever is known
            # A delete sends the key alone, never a field value.
            "fields": [] if deleted else known.fields,
            "run_id": d["run_id"],
            "beyond_retention": d["beyond_retention"],
        }))
    for asked in verified:
        known = subs[asked.subscription]
        items.append((_aware(asked.verified_at), asked.id, {
            **_entry(asked.record_key, "verified", asked.verified_at, asked.subscription,
                     known),
            "delivery": "verify",
            "fields": [f for f in str(asked.fields).split(",") if f],  # the fields asked
            "masking": None,  # a verification answers match or not: nothing is masked
            "call_id": asked.call_id,
            "found": bool(asked.found),
            "matched": bool(asked.matched),
        }))
    items.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [item for _, _, item in items]


def _entry(
    key: str, action: Action, at: Any, subscription: str, known: _Declared
) -> dict[str, Any]:
    return {
        "key": key,
        "action": action,
        "at": _iso(at),
        "consumer": known.consumer,
        "subscription": subscription,
        "delivery": known.delivery,
        "fields": known.fields,
        "masking": known.masking,
        "purpose": known.purpose,
        "subscription_state": known.state,
        "declared_in": known.declared_in,
        "run_id": None,
        "call_id": None,
        "found": None,
        "matched": None,
        "beyond_retention": False,
    }


def departments(items: Iterable[dict[str, Any]]) -> list[str]:
    """The departments (consumers) that `items` name, sorted; an unknown consumer is left out."""
    return sorted({str(item["consumer"]) for item in items if item["consumer"]})


def disclosure(
    conn_or_store: sa.Connection | sa.Engine, code: str, key: str, *,
    verified_as: str | None = None,
) -> dict[str, Any]:
    """The `govex disclosure --json` object for record `key` of resource `code`:
    {resource, key, provider, departments, disclosures}. A key nobody received has no
    disclosures (the record may exist all the same: the answer is the same). `verified_as`:
    the key as verifications record it, where that differs
    (`exchange.verify.service.recorded_key`).
    An unknown resource, or a key with the wrong number of parts, raises DeclarationError."""
    if isinstance(conn_or_store, sa.Engine):
        with conn_or_store.connect() as conn:
            return disclosure(conn, code, key, verified_as=verified_as)
    conn = conn_or_store
    resource = catalog.load_resource(conn, code)
    split_key(key, resource.key)
    items = disclosures(conn, code, [key], verified_as=[verified_as] if verified_as else [])
    for item in items:
        del item["key"]  # one record: its key is the answer's
    return {
        "resource": code,
        "key": key,
        "provider": resource.provider,
        "departments": departments(items),
        "disclosures": items,
    }


# ---- by personal data ---------------------------------------------------------------------


def search_pii(
    conn: sa.Connection,
    category: str,
    values: Sequence[str],
    *,
    resources: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """Per resource (of `resources`, default all) and field marked `x-govex-pii: category`,
    the records holding one of `values` (spellings of one value, e.g. an ID number with its
    check character X in either case) and their disclosures: {resource, name, provider,
    field, searched ("key", "key part" or "source"), keys, departments, disclosures, error}.
    `error` (then nothing was found there) says why a source could not be searched."""
    found: list[dict[str, Any]] = []
    for code, declaration in catalog.resource_declarations(conn).items():
        if resources is not None and code not in resources:
            continue
        resource = catalog.Resource.model_validate(declaration)
        contract = catalog.load_contract_version(conn, resource.contract)
        for field in contract.fields:
            if contract.pii(field) != category:
                continue
            found.append(_search_field(conn, resource, contract, field, values))
    return found


def _search_field(
    conn: sa.Connection, resource: catalog.Resource, contract: contracts.Contract,
    field: str, values: Sequence[str],
) -> dict[str, Any]:
    searched = ("key" if resource.key == [field] else
                "key part" if field in resource.key else "source")
    item: dict[str, Any] = {
        "resource": resource.code, "name": resource.name, "provider": resource.provider,
        "field": field, "searched": searched, "keys": [], "departments": [],
        "disclosures": [], "error": None,
    }
    if searched == "key":
        keys = list(values)
    elif searched == "key part":
        keys = _keys_by_part(conn, resource, field, values)
    else:
        try:
            keys = source_keys(conn, resource, contract, field, values)
        except Exception as error:  # noqa: BLE001 - one unreadable source must not hide the rest
            item["error"] = f"the source of {resource.code} cannot be read: {error}"
            return item
    items = disclosures(conn, resource.code, keys)
    # A key spelling nobody received is not a record govex knows of; a key found at the
    # source is one, delivered or not.
    shown = keys if searched == "source" else sorted({i["key"] for i in items})
    item.update(keys=sorted(set(shown)), departments=departments(items), disclosures=items)
    return item


def _like(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value)


def _keys_by_part(
    conn: sa.Connection, resource: catalog.Resource, field: str, values: Sequence[str]
) -> list[str]:
    """Keys delivered or verified whose `field` part is one of `values`: LIKE on the key text
    by the field's position, then each candidate split and compared exactly."""
    at, last = resource.key.index(field), len(resource.key) - 1
    patterns = [
        f"{_like(v)},%" if at == 0 else f"%,{_like(v)}" if at == last else f"%,{_like(v)},%"
        for v in values
    ]
    wanted = set(values)
    keys: set[str] = set()
    for table in (provenance, latest, verify_records):
        column = table.c.record_key
        candidates = conn.execute(
            sa.select(column).distinct().where(
                table.c.resource == resource.code,
                sa.or_(*[column.like(p, escape="\\") for p in patterns]),
            )
        ).scalars()
        for key in candidates:
            try:
                part = split_key(key, resource.key)[field]
            except DeclarationError:  # a key of another shape holds no such part
                continue
            if part in wanted:
                keys.add(key)
    return sorted(keys)


def source_keys(
    conn: sa.Connection, resource: catalog.Resource, contract: contracts.Contract,
    field: str, values: Sequence[str],
) -> list[str]:
    """The keys of the records whose `field` holds one of `values` at the authoritative
    source now: a SQL source is queried on the field (one `WHERE field = 'v'` per value,
    literals rendered for its dialect); a file source is scanned in bounded batches; a Kafka
    resource's landing table is searched and each key's latest landed row confirmed."""
    import connectors  # the drivers load with the source that needs them

    decl = resource.source
    if decl.kafka is not None:
        return _landed_keys(conn, resource, contract, field, values)
    resolved = catalog.load_connection(conn, decl.connection)
    source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
    keys: list[str] = []
    try:
        if resolved.kind == "url":
            for value in values:
                spec = connectors.ReadSpec(
                    table=None, query=key_query(resolved.target, resource, {field: value}),
                    columns=None, key=tuple(resource.key), watermark=None,
                    batch_rows=_SCAN_BATCH,
                )
                for batch in source.read_batches(spec):
                    if batch.num_rows:
                        keys += [str(k) for k in record_keys(batch, resource.key).to_pylist()]
        else:
            spec = connectors.ReadSpec(
                table=decl.table, query=None, columns=None, key=tuple(resource.key),
                watermark=None, batch_rows=_SCAN_BATCH, types=source_read_spec_types(contract),
            )
            wanted = pa.array(list(values), pa.string())
            for batch in source.read_batches(spec):
                if not batch.num_rows or field not in batch.column_names:
                    continue
                text = pc.cast(batch.column(field), pa.string())
                hit = batch.filter(pc.fill_null(pc.is_in(text, value_set=wanted), False))
                if hit.num_rows:
                    keys += [str(k) for k in record_keys(hit, resource.key).to_pylist()]
    finally:
        source.close()
    return sorted(set(keys))


def _landed_keys(
    conn: sa.Connection, resource: catalog.Resource, contract: contracts.Contract,
    field: str, values: Sequence[str],
) -> list[str]:
    """A Kafka-fed resource: keys landed with `field` in `values` whose latest landed row
    still holds it (not deleted since, not changed since)."""
    name = "landing_" + re.sub(r"[^a-z0-9_]", "_", resource.code.lower())
    if not sa.inspect(conn).has_table(name):
        return []
    landed = sa.table(name, sa.column(field), sa.column("_govex_key"))
    candidates = conn.execute(
        sa.select(landed.c._govex_key).distinct().where(landed.c[field].in_(list(values)))
    ).scalars().all()
    keys = []
    for key in candidates:
        now = landed_record(conn, resource, contract, str(key))
        if now.num_rows and pc.cast(now.column(field), pa.string())[0].as_py() in values:
            keys.append(str(key))
    return sorted(keys)
