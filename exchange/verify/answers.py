"""What a verification call writes in its transaction: the per-key answer counts, one
`records.verify_records` row per answered record, and the day's usage (`records.usage_daily`).

On PostgreSQL a call sends two statements (`direct`: prepared, without SQLAlchemy's
per-statement work): the answer-count upsert with the index lookup of the keys it admitted,
then the records with the usage upsert (a CTE), where four statements cost a single-record
call four round trips. Each statement takes one text parameter a column however many records:
the key digests joined by ',' (hex: no comma in them), the record keys and asked fields joined
by the ASCII unit separator and the flags as one 't'/'f' a row, taken apart by the database
(`string_to_array`; the rows as one JSON array, `json_to_recordset`, when a key holds the
separator: 2.5 ms more a thousand rows). A 1000-record call would otherwise
spend more time building and sending a thousand rows of parameters than the database spends
on them (measured 3–4× slower through executemany, and array parameters are dumped element
by element in Python). Elsewhere (a SQLite store) SQLAlchemy's executemany does the same.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

import records
from exchange.verify import direct, index
from exchange.verify.tables import verify_answers
from govex.workdays import local_date

__all__ = ["Answered", "grant", "record", "record_rows"]


class Answered(NamedTuple):
    """One answered record, as `verify_records` keeps it (a tuple: a call makes a thousand)."""

    record_key: str
    fields: str  # the fields asked, joined by ','
    found: bool
    matched: bool


def grant(
    conn: sa.Connection, subscription: str, keys: Sequence[str], at: dt.datetime, limit: int
) -> tuple[list[bool], dict[str, dict[str, str]]]:
    """Which asked records (by key digest, in order) get an answer, and what the index holds
    for them ({key digest: {field: digest}}, `index.lookup`). Each key's answers on `at`'s day
    (Asia/Shanghai) stay within `limit`, counted in `verify_answers` in the call's
    transaction. Exact across processes: the upsert adds only where the sum stays within the
    limit and locks the key's row either way, so a concurrent call waits for this one. On
    PostgreSQL the upsert and the lookup of the keys it added to are one statement."""
    day = local_date(at)
    asking = {k: min(n, limit) for k, n in Counter(keys).items()}
    ordered = sorted(asking)  # one lock order for every call: no deadlock
    counts = [asking[k] for k in ordered]
    held: dict[str, dict[str, str]] | None = None
    if direct.applies(conn):
        added, found = _ADD_LOOK_UP.row(conn, {
            "subscription": subscription, "day": day, "keys": ",".join(ordered),
            "counts": ",".join(map(str, counts)), "limit": limit})
        granted = {k: asking[k] for k in added.split(",")} if added else {}
        held = index.decoded(found)
    else:
        granted = {k: asking[k] for k in _add_within(conn, subscription, day, ordered, counts,
                                                     limit)}
    short = [k for k in ordered if k not in granted]
    if short:  # already near or at the limit: what is left of it, if anything
        c = verify_answers.c
        used = dict(conn.execute(
            sa.select(c.key_digest, c.answers)
            .where(c.subscription == subscription, c.day == day, c.key_digest.in_(short))
            .order_by(c.key_digest).with_for_update()
        ).all())
        for k in short:
            left = max(0, limit - used.get(k, limit))
            if left:
                conn.execute(sa.update(verify_answers).where(
                    c.subscription == subscription, c.day == day, c.key_digest == k,
                ).values(answers=c.answers + left))
            granted[k] = left
    if held is None:
        held = index.lookup(conn, subscription, [k for k in ordered if granted[k]])
    else:  # the keys granted what was left of their limit, which the statement did not add
        held.update(index.lookup(conn, subscription, [k for k in short if granted[k]]))
    answered = []
    for k in keys:
        answered.append(granted[k] > 0)
        granted[k] -= 1
    return answered, held


def record(
    conn: sa.Connection, *, call_id: str, resource: str, subscription: str, consumer: str,
    at: dt.datetime, answered: Sequence[Answered], body_bytes: int,
) -> None:
    """One `verify_records` row per answered record, and the call's usage on its day
    (`records.count_usage`: one call, the records answered, the body's bytes, the records found
    with every asked field matching, the records not found). On PostgreSQL one statement."""
    usage = records.usage_counts(
        subscription=subscription, resource=resource, consumer=consumer, at=at,
        records=len(answered), bytes=body_bytes, calls=1,
        matches=sum(1 for a in answered if a.found and a.matched),
        not_found=sum(1 for a in answered if not a.found))
    if not direct.applies(conn):
        record_rows(conn, call_id=call_id, resource=resource, subscription=subscription,
                    at=at, answered=answered)
        conn.execute(records.usage_upsert(conn.dialect.name), usage)
        return
    params = {**usage, "call_id": call_id, "at": at}
    listed = _listed_rows(answered)
    if listed is not None:
        _RECORD_LISTED_COUNTED.execute(conn, {**params, **listed})
    else:
        _RECORD_JSON_COUNTED.execute(conn, {**params, "rows": _json_rows(answered)})


def record_rows(
    conn: sa.Connection, *, call_id: str, resource: str, subscription: str, at: dt.datetime,
    answered: Sequence[Answered],
) -> None:
    """One `verify_records` row per answered record (no usage counted)."""
    if not answered:
        return
    if conn.dialect.name == "postgresql":
        params = {"call_id": call_id, "resource": resource, "subscription": subscription,
                  "at": at}
        listed = _listed_rows(answered)
        if listed is not None:
            conn.execute(_RECORD_LISTED, {**params, **listed})
        else:
            conn.execute(_RECORD_JSON, {**params, "rows": _json_rows(answered)})
        return
    conn.execute(sa.insert(records.verify_records), [
        {"call_id": call_id, "resource": resource, "record_key": a.record_key,
         "subscription": subscription, "fields": a.fields, "found": a.found,
         "matched": a.matched, "verified_at": at}
        for a in answered
    ])


def _listed_rows(answered: Sequence[Answered]) -> dict[str, str] | None:
    """The `_columns` parameters of `answered`: each column one text, joined by the unit
    separator. None when a text holds the separator itself (source data is anyone's), or a
    column of one row is the empty text (a record asking no field), which `string_to_array`
    reads as no row at all: `_json_rows` then."""
    if not answered:
        return {"keys": "", "fields": "", "found": "", "matched": ""}
    keys = _UNIT.join(a.record_key for a in answered)
    fields = _UNIT.join(a.fields for a in answered)
    if not keys.count(_UNIT) == fields.count(_UNIT) == len(answered) - 1 or "" in (keys, fields):
        return None
    return {"keys": keys, "fields": fields,
            "found": "".join("t" if a.found else "f" for a in answered),
            "matched": "".join("t" if a.matched else "f" for a in answered)}


def _json_rows(answered: Sequence[Answered]) -> str:
    """`answered` as one JSON array of row objects (`_asked`)."""
    return orjson.dumps([{"record_key": a.record_key, "fields": a.fields, "found": a.found,
                          "matched": a.matched} for a in answered]).decode()


def _add_within(
    conn: sa.Connection, subscription: str, day: dt.date, keys: list[str], counts: list[int],
    limit: int,
) -> list[str]:
    """INSERT each key's count for the day, or add it where the sum stays within `limit`;
    the keys whose whole count fitted."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        params: Any = {"subscription": subscription, "day": day, "keys": ",".join(keys),
                       "counts": ",".join(map(str, counts)), "limit": limit}
        added = conn.execute(_ADD_LISTED, params).scalar()
        return added.split(",") if added else []
    if dialect == "sqlite":
        params = [{"subscription": subscription, "key_digest": k, "day": day, "answers": n,
                   "limit": limit} for k, n in zip(keys, counts, strict=True)]
        return list(conn.execute(_ADD_ROWS, params).scalars().all())
    msg = f"verification needs an upsert with RETURNING: the {dialect} store is not supported"
    raise NotImplementedError(msg)


# Built once: a statement built per call costs more CPU than the call's own work.


def _within(insert: Any) -> Any:
    """`insert` ON CONFLICT adding to the day's count where the sum stays within `:limit`,
    RETURNING the keys it inserted or added to."""
    c = verify_answers.c
    total = c.answers + insert.excluded.answers
    return insert.on_conflict_do_update(
        index_elements=[c.subscription, c.key_digest, c.day],
        set_={"answers": total},
        where=total <= sa.bindparam("limit"),
    ).returning(c.key_digest)


def _listed(name: str) -> Any:
    """The elements of a text parameter written `a,b,c` (PostgreSQL's `string_to_array`)."""
    return sa.func.string_to_array(sa.bindparam(name, type_=sa.Text), sa.literal_column("','"))


_counts = sa.func.unnest(
    _listed("keys"), sa.cast(_listed("counts"), postgresql.ARRAY(sa.Integer)),
).table_valued("key_digest", "answers").render_derived()
_added = _within(postgresql.insert(verify_answers).from_select(
    ["subscription", "key_digest", "day", "answers"],
    sa.select(sa.bindparam("subscription", type_=sa.String), _counts.c.key_digest,
              sa.bindparam("day", type_=sa.Date), _counts.c.answers),
)).cte("added")
# The keys added to, as one text joined by ',' (hex: no comma in them): a thousand rows
# returned cost the call more CPU to take apart than the database spends on the upsert.
_ADD_LISTED = sa.select(sa.func.string_agg(_added.c.key_digest, sa.literal_column("','")))
# The same, and the index rows of the keys added to (`index.held_among`): one round trip.
_ADD_LOOK_UP = direct.Statement(sa.select(
    _ADD_LISTED.scalar_subquery(), index.held_among(_added).scalar_subquery()))
_ADD_ROWS = _within(sqlite.insert(verify_answers))

_UNIT = "\x1f"  # ASCII unit separator: joins one column's texts into one parameter
_UNIT_SQL: Any = sa.literal_column("chr(31)")


def _flags(name: str) -> Any:
    """A text parameter of one 't' or 'f' per row as a boolean array."""
    return sa.cast(sa.func.string_to_array(sa.bindparam(name, type_=sa.Text), sa.null()),
                   postgresql.ARRAY(sa.Boolean))


_columns = sa.func.unnest(
    sa.func.string_to_array(sa.bindparam("keys", type_=sa.Text), _UNIT_SQL),
    sa.func.string_to_array(sa.bindparam("fields", type_=sa.Text), _UNIT_SQL),
    _flags("found"), _flags("matched"),
).table_valued("record_key", "fields", "found", "matched").render_derived()
_asked = sa.func.json_to_recordset(sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSON)
                                   ).table_valued(
    sa.column("record_key", sa.Text), sa.column("fields", sa.Text),
    sa.column("found", sa.Boolean), sa.column("matched", sa.Boolean),
).render_derived(with_types=True)


def _recorded(rows: Any) -> Any:
    """INSERT INTO verify_records the rows of `rows` (record_key, fields, found, matched),
    with the call's own values bound."""
    return sa.insert(records.verify_records).from_select(
        ["call_id", "resource", "record_key", "subscription", "fields", "found", "matched",
         "verified_at"],
        sa.select(sa.bindparam("call_id", type_=sa.String),
                  sa.bindparam("resource", type_=sa.String), rows.c.record_key,
                  sa.bindparam("subscription", type_=sa.String), rows.c.fields,
                  rows.c.found, rows.c.matched,
                  sa.bindparam("at", type_=sa.DateTime(timezone=True))),
    )


_RECORD_JSON = _recorded(_asked)
_RECORD_LISTED = _recorded(_columns)


def _counted(recorded: Any) -> direct.Statement:
    """`recorded` (a `_recorded` insert) as a CTE of the call's usage upsert: one statement.
    Both bind the call's subscription and resource by the same names."""
    return direct.Statement(records.usage_upsert("postgresql").add_cte(
        recorded.cte("recorded")))


_RECORD_JSON_COUNTED = _counted(_RECORD_JSON)
_RECORD_LISTED_COUNTED = _counted(_RECORD_LISTED)
