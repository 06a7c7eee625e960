"""What a subscription's target table looks like, and how a batch is shaped to fit it.

Columns: the approved fields, typed from the contract (masked fields become text), then the
`_govex_*` columns. The primary key is the resource key when the consumer receives it intact
(unmasked or keyed-hashed, both one-to-one); when the key is not approved or is partially
masked (`110105********002X` is not unique), a `_govex_key` column — the subscription-keyed HMAC
of the key values — stands in, so upserts still land on the right row without revealing the key.
Append targets add `_govex_run_id` to the key: each run appends its own copy.

Upsert and snapshot targets also carry `_govex_disputed` (not null, default false): true on a
record's row while a dispute on the record is open or acknowledged (异议标注). A delivery
writes it as the store says at that moment; `exchange.run.dispute_flags` sets and clears it
when a dispute opens and closes. An append target keeps its history as delivered, so its open
disputes are rows of `_govex_disputes` beside it instead (`disputes_spec`): the append table,
the record's key as that table holds it, the dispute id.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

import catalog
import contracts
import records
from connectors.base import TargetColumn, TargetSpec, WriteMode
from exchange.run import masking

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

KEY_PRESERVING = ("none", "hash")
GOVEX_COLUMNS = (
    TargetColumn("_govex_resource", pa.string(), nullable=False),
    TargetColumn("_govex_run_id", pa.string(), nullable=False),
    TargetColumn("_govex_delivered_at", pa.timestamp("us", tz="UTC"), nullable=False),
)
DISPUTED = "_govex_disputed"
# With a default, so that a target table created before the column existed gets it added by
# the sink's compatibility check (existing rows read false) instead of being refused.
DISPUTED_COLUMN = TargetColumn(DISPUTED, pa.bool_(), nullable=False, default=False)
DISPUTES_TABLE = "_govex_disputes"
DISPUTES_COLUMNS = ("target_table", "record_key", "dispute")


def _key_is_delivered(resource: catalog.Resource, sub: catalog.Subscription) -> bool:
    return all(
        k in sub.fields and sub.masking.get(k, "none") in KEY_PRESERVING for k in resource.key
    )


def _key_stand_in(batch: pa.Table, resource: catalog.Resource, key: bytes) -> pa.Array[Any]:
    """`_govex_key`: the subscription-keyed HMAC of the key values joined by ','."""
    parts = [pc.cast(batch.column(k), pa.string()) for k in resource.key]
    joined = pc.binary_join_element_wise(*parts, ",") if len(parts) > 1 else parts[0]
    return masking.mask("hash", joined, key=key)


def write_mode(sub: catalog.Subscription) -> WriteMode:
    """How a batch lands: append targets append; upsert and snapshot targets merge by key (a
    snapshot is swapped whole only by a run that read everything)."""
    return "append" if sub.mode == "append" else "upsert"


def target_spec(
    resource: catalog.Resource, contract: contracts.Contract, sub: catalog.Subscription
) -> TargetSpec:
    schema = contracts.arrow_schema(contract)
    columns = [
        TargetColumn(
            name,
            masking.output_type(sub.masking.get(name, "none"), schema.field(name).type),
            nullable=name not in resource.key,
        )
        for name in sub.fields
    ]
    if _key_is_delivered(resource, sub):
        primary_key: tuple[str, ...] = tuple(resource.key)
    else:
        columns.append(TargetColumn("_govex_key", pa.string(), nullable=False))
        primary_key = ("_govex_key",)
    columns.extend(GOVEX_COLUMNS)
    if sub.mode == "append":
        primary_key = (*primary_key, "_govex_run_id")
    else:
        columns.append(DISPUTED_COLUMN)
    return TargetSpec(sub.sink.table, tuple(columns), primary_key)


def disputes_spec(spec: TargetSpec) -> TargetSpec:
    """`_govex_disputes`, beside an append target in its database: which records of which
    append table have an open dispute. One table serves every append target of the database
    (their keys differ, so the key is text: the target's key columns as it holds them, joined
    by ','); it holds nothing but what the consumer's own table holds, and dispute ids."""
    text = pa.string()
    return TargetSpec(
        DISPUTES_TABLE,
        tuple(TargetColumn(name, text, nullable=False) for name in DISPUTES_COLUMNS),
        DISPUTES_COLUMNS,
    )


def shape_batch(
    batch: pa.Table,
    spec: TargetSpec,
    resource: catalog.Resource,
    sub: catalog.Subscription,
    *,
    key: bytes,
    run_id: str,
    delivered_at: dt.datetime,
    disputed: frozenset[str] = frozenset(),
) -> pa.Table:
    """Project the approved fields, mask them, add the `_govex_*` columns: one vectorised pass.
    `disputed`: the record keys (provenance's text form) with an open dispute now."""
    shaped = masking.mask_table(batch.select(sub.fields), sub.masking, key=key)
    n = batch.num_rows
    if "_govex_key" in spec.column_names:
        shaped = shaped.append_column("_govex_key", _key_stand_in(batch, resource, key))
    constants: dict[str, Any] = {
        "_govex_resource": pa.scalar(resource.code, pa.string()),
        "_govex_run_id": pa.scalar(run_id, pa.string()),
        "_govex_delivered_at": pa.scalar(delivered_at, pa.timestamp("us", tz="UTC")),
    }
    for name, value in constants.items():
        shaped = shaped.append_column(name, pa.repeat(value, n))
    if DISPUTED in spec.column_names:
        shaped = shaped.append_column(DISPUTED, _disputed(batch, resource, disputed))
    return shaped.select(list(spec.column_names)).cast(spec.arrow_schema())


def _disputed(batch: pa.Table, resource: catalog.Resource, disputed: frozenset[str]) -> Any:
    """`_govex_disputed` of each row: whether its record key is one of `disputed`."""
    if not disputed:
        return pa.repeat(pa.scalar(False, pa.bool_()), batch.num_rows)
    keys = records.record_keys(batch, resource.key)
    return pc.is_in(keys, value_set=pa.array(sorted(disputed), pa.string()))


def shape_keys(
    keys: pa.Table,
    spec: TargetSpec,
    resource: catalog.Resource,
    sub: catalog.Subscription,
    *,
    key: bytes,
) -> pa.Table:
    """Record keys (the resource's key columns) as the target identifies its rows: the key
    fields as delivered (masked the same way) or the `_govex_key` stand-in; never the run id,
    since a delete removes the record whichever run delivered it."""
    if "_govex_key" in spec.primary_key:
        return pa.table({"_govex_key": _key_stand_in(keys, resource, key)})
    key_masking = {k: f for k, f in sub.masking.items() if k in resource.key}
    shaped = masking.mask_table(keys.select(list(resource.key)), key_masking, key=key)
    types = {c.name: c.type for c in spec.columns}
    return shaped.cast(pa.schema([pa.field(k, types[k]) for k in resource.key]))
