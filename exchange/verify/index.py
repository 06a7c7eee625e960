"""The verification index of a verify subscription, kept by the runs like a target.

Why an index and not the source: verification answers at 100 calls a second with a known
latency, and the department databases behind resources are production systems that must not
take that online traffic; sources may also be files or Kafka landing tables, which cannot be
asked by key at all. So a run keeps, per verify subscription, one row per record in the
metadata store (`tables.verify_index`): the keyed digest of its key and of each field the
subscription may ask about (`digests`), no value.

A run's delivery to a verify subscription comes here instead of a target sink
(`exchange.run.delivery`), with the same batches a bulk subscription would get, so the
subscription's progress, backfills and deletes apply unchanged:

- each batch is upserted in one store transaction (a record already indexed takes its new
  digests); each batch of deleted keys is removed in one;
- a run that sends everything (a full read, a resource read whole each run, a backfill)
  replaces the subscription's index: it upserts every record under its run id, then removes
  the rows no batch of the run touched, so answers stay available while it works and the
  records the source no longer holds leave the index;
- when the subscription ends (revoked, expired), its rows are removed (`remove`);
- a key reconciliation (`exchange.run.reconcile`) compares the key digests the index holds
  (`held_digests`) with those of every key the source holds (`key_digests`) and removes the
  records the source deleted outright by digest (`forget`), since the index knows no key.

The runs also keep `verify_answers` small: the per-key answer counts matter only on their own
day (Asia/Shanghai), so each run forgets the subscription's counts of earlier days, and an
ended subscription's go with its index.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

import contracts
from exchange.verify.canonical import FieldRule, field_rules
from exchange.verify.digests import Digester
from exchange.verify.tables import verify_answers, verify_index
from govex import progress as meter
from govex.workdays import local_date

__all__ = [
    "IndexShape", "decoded", "forget", "held_among", "held_digests", "key_digests", "lookup",
    "maintain", "remove",
]

# Digests per DELETE or lookup statement: an IN list the planner takes in stride.
CHUNK = 1000
# Rows a run writes or removes past which it refreshes the planner's statistics itself.
ANALYZE_AFTER = 10_000
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


@dataclass(frozen=True)
class IndexShape:
    """What a subscription's index holds: its resource's key and the fields it may ask about,
    each with the rule it compares by (`canonical`)."""

    key: tuple[FieldRule, ...]
    fields: tuple[FieldRule, ...]

    @classmethod
    def of(cls, contract: contracts.Contract, key: Sequence[str],
           fields: Sequence[str]) -> IndexShape:
        rules = field_rules(contract)
        return cls(tuple(rules[k] for k in key), tuple(rules[f] for f in fields))


def key_digests(digester: Digester, shape: IndexShape, batch: pa.Table) -> list[str]:
    """The key digest the index holds each record of `batch` under (contract-typed, its key
    columns at least): the one derivation runs, deletes and reconciliations all use."""
    return digester.key_digests(batch.select([r.name for r in shape.key]), shape.key)


def entries(digester: Digester, shape: IndexShape, batch: pa.Table) -> dict[str, str]:
    """{key digest: digests JSON} of a contract-typed batch; a record repeated in the batch
    keeps its last row (one statement may not upsert one row twice)."""
    keys = key_digests(digester, shape, batch)
    columns = [(r.name, digester.field_digests(batch.column(r.name), r)) for r in shape.fields]
    found: dict[str, str] = {}
    for row, key in enumerate(keys):
        digests = {name: values[row] for name, values in columns if values[row] is not None}
        found[key] = _JSON.encode(digests)
    return found


def maintain(
    store: sa.Engine,
    subscription: str,
    *,
    key: bytes,
    shape: IndexShape,
    run_id: str,
    at: dt.datetime,
    batches: Iterable[pa.Table],
    deletes: Iterable[pa.Table] = (),
    replace: bool = False,
) -> int:
    """Index `batches` (contract-typed records) and remove `deletes` (key tables) for
    `subscription`, digested under the subscription's `key`; with `replace`, then remove every
    row this run did not write. Returns the rows written and removed, as a target's delivery
    counts them."""
    digester = Digester(key)
    changed = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        rows = [{"subscription": subscription, "key_digest": key, "digests": digests,
                 "run_id": run_id, "indexed_at": at}
                for key, digests in entries(digester, shape, batch).items()]
        with store.begin() as conn:
            conn.execute(_upsert(conn.dialect.name), rows)
        changed += batch.num_rows
        meter.advance(batch.num_rows)
    for keys in deletes:
        if not keys.num_rows:
            continue
        with store.begin() as conn:
            changed += _delete(conn, subscription, key_digests(digester, shape, keys))
    if replace:
        with store.begin() as conn:
            changed += conn.execute(sa.delete(verify_index).where(
                verify_index.c.subscription == subscription,
                verify_index.c.run_id != run_id,
            )).rowcount
    with store.begin() as conn:  # yesterday's answer counts limit nothing any more
        conn.execute(sa.delete(verify_answers).where(
            verify_answers.c.subscription == subscription,
            verify_answers.c.day < local_date(at),
        ))
    _analyze_after(store, changed)
    return changed


def held_digests(
    conn: sa.Connection, subscription: str, *, batch: int = 50_000
) -> Iterator[list[str]]:
    """The key digests `subscription`'s index holds, in lists of at most `batch`: one query,
    streamed."""
    rows = conn.execute(
        sa.select(verify_index.c.key_digest)
        .where(verify_index.c.subscription == subscription)
        .execution_options(yield_per=batch)
    )
    for part in rows.partitions(batch):
        yield [digest for (digest,) in part]


def forget(store: sa.Engine, subscription: str, digests: Iterable[Sequence[str]]) -> int:
    """Remove the records of `digests` (key digests, as `key_digests` makes them) from
    `subscription`'s index, one store transaction per batch; the rows removed, as a target's
    delivery counts its deletes."""
    changed = 0
    for gone in digests:
        if gone:
            with store.begin() as conn:
                changed += _delete(conn, subscription, gone)
    _analyze_after(store, changed)
    return changed


def _delete(conn: sa.Connection, subscription: str, digests: Sequence[str]) -> int:
    """Remove the index rows of `digests`, CHUNK per statement; the rows removed."""
    listed = conn.dialect.name == "postgresql"
    removed = 0
    for start in range(0, len(digests), CHUNK):
        chunk = digests[start:start + CHUNK]
        removed += conn.execute(_DELETE_LISTED if listed else _DELETE_IN, {
            "subscription": subscription, "keys": ",".join(chunk) if listed else list(chunk),
        }).rowcount
    return removed


def _analyze_after(store: sa.Engine, changed: int) -> None:
    if changed >= ANALYZE_AFTER and store.dialect.name == "postgresql":
        # A backfill can multiply the table: until autovacuum's next ANALYZE the planner
        # would read the calls' lookups as scans of a small table (measured 9x slower).
        with store.begin() as conn:
            conn.execute(sa.text(f"ANALYZE {verify_index.name}"))


def remove(conn: sa.Connection, subscription: str) -> int:
    """Remove the whole index of `subscription`, and its answer counts, in the caller's
    transaction; the index rows removed."""
    conn.execute(sa.delete(verify_answers).where(verify_answers.c.subscription == subscription))
    return int(conn.execute(
        sa.delete(verify_index).where(verify_index.c.subscription == subscription)
    ).rowcount)


def lookup(
    conn: sa.Connection, subscription: str, keys: Sequence[str]
) -> dict[str, dict[str, str]]:
    """{key digest: {field: digest}} of the indexed records among `keys`: one statement per
    CHUNK keys. On PostgreSQL the keys are one text parameter, joined to the index row by row
    (`unnest(string_to_array(:keys, ','))`): an IN list of a thousand is a thousand parameters
    to send and a query text to parse each time, and the planner reads a thousand-value
    `= ANY(…)` on a large index as a sequential scan (measured 3× slower at 100,000 rows, and
    it grows with the index). The digests' JSON texts are decoded in one call."""
    found: dict[str, dict[str, str]] = {}
    distinct = sorted(set(keys))
    listed = conn.dialect.name == "postgresql"
    for start in range(0, len(distinct), CHUNK):
        chunk = distinct[start:start + CHUNK]
        if listed:  # one JSON object text {key digest: digests}, decoded in one call
            found.update(decoded(conn.execute(_LOOKUP_LISTED, {
                "subscription": subscription, "keys": ",".join(chunk)}).scalar()))
            continue
        rows = conn.execute(_LOOKUP_IN, {"subscription": subscription, "keys": chunk}).all()
        digests = orjson.loads("[" + ",".join(r.digests for r in rows) + "]")
        found.update(zip((r.key_digest for r in rows), digests, strict=True))
    return found


def held_among(keys: Any) -> sa.Select[Any]:
    """The index rows of subscription `:subscription` whose key digest is in `keys` (a
    selectable with a column `key_digest`) as one text, `"<key digest>":<digests>` joined by
    ',' (the digests are JSON objects and the key digests hex), which `decoded` takes apart:
    a thousand rows returned cost the call more CPU to take apart than the database spends
    finding them."""
    return sa.select(sa.func.string_agg(
        sa.func.concat('"', verify_index.c.key_digest, '":', verify_index.c.digests),
        sa.literal_column("','"),
    )).select_from(keys).join(
        verify_index, sa.and_(_OF_SUBSCRIPTION, verify_index.c.key_digest == keys.c.key_digest))


def decoded(held: str | None) -> dict[str, dict[str, str]]:
    """{key digest: {field: digest}} of a `held_among` text (None: no row found)."""
    found: dict[str, dict[str, str]] = orjson.loads("{" + held + "}") if held else {}
    return found


# Built once (see `service._SUBSCRIPTIONS`).
_listed = sa.func.unnest(sa.func.string_to_array(
    sa.bindparam("keys", type_=sa.Text), sa.literal_column("','"))
).table_valued("key_digest").render_derived()
_OF_SUBSCRIPTION = verify_index.c.subscription == sa.bindparam("subscription")
_LOOKUP = sa.select(verify_index.c.key_digest, verify_index.c.digests)
_LOOKUP_LISTED = held_among(_listed)
_LOOKUP_IN = _LOOKUP.where(
    _OF_SUBSCRIPTION, verify_index.c.key_digest.in_(sa.bindparam("keys", expanding=True)))
_DELETE_LISTED = sa.delete(verify_index).where(
    _OF_SUBSCRIPTION, verify_index.c.key_digest == _listed.c.key_digest)
_DELETE_IN = sa.delete(verify_index).where(
    _OF_SUBSCRIPTION, verify_index.c.key_digest.in_(sa.bindparam("keys", expanding=True)))


def _upsert(dialect: str) -> sa.Executable:
    """Insert, or replace the digests of a record already indexed (a multi-row statement
    under executemany: SQLAlchemy's insertmanyvalues)."""
    c = verify_index.c
    if dialect in ("mysql", "mariadb"):
        on_duplicate = mysql.insert(verify_index)
        new = on_duplicate.inserted
        return on_duplicate.on_duplicate_key_update(
            digests=new.digests, run_id=new.run_id, indexed_at=new.indexed_at)
    if dialect == "postgresql":
        on_conflict: Any = postgresql.insert(verify_index)
    elif dialect == "sqlite":
        on_conflict = sqlite.insert(verify_index)
    else:
        msg = f"the verification index needs an upsert: the {dialect} store is not supported"
        raise NotImplementedError(msg)
    excluded = on_conflict.excluded
    return on_conflict.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[c.subscription, c.key_digest],
        set_={"digests": excluded.digests, "run_id": excluded.run_id,
              "indexed_at": excluded.indexed_at},
    )
