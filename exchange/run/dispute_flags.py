"""Writing the disputed-record flag (异议标注) into the consumers' targets.

The store says what every consumer copy of a disputed record must show (`records.dispute_flags`:
one row per dispute and subscription, written by the dispute's step); this module makes the
targets show it:

- an upsert or snapshot target: `_govex_disputed` on the record's row, true while the record
  has an open or acknowledged dispute (any of them), else false;
- an append target: a row (append table, the record's key as that table holds it, dispute id)
  of `_govex_disputes` in the same database while that dispute is open or acknowledged.

The record's row is found by its key as the target holds it (`targets.shape_keys`: the key
fields masked as the subscription masks them, or the `_govex_key` stand-in), so nothing of
another subscription's form of the key, nor the source key where the consumer got it hashed,
ever reaches a target.

When: `settle` right after a dispute opens or closes (`govex dispute`, the API and the pages)
and at the end of every run of the resource (`steps.finish`); `after_delivery` after each
delivery, with the delivery's own target. A target that cannot be written leaves the row
pending (with the error, for `govex dispute show` and the API) and the dispute's step
succeeds anyway: the flag follows at the next run.

Ordering without locks: a delivery writes `_govex_disputed` as the store said when it began,
and a dispute may move while it runs or while another writer is at work. Every writer
therefore reads the state, writes, and reads again; when the state moved meanwhile it writes
again (up to `ROUNDS` times, then it leaves the rows pending). Every change of state is
followed by a writer (the step's `settle`, or a delivery's `after_delivery`) that reads it
after its own last write, so the target ends as the store's final state says. Holding the
resource's lease instead would make a run wait on a dispute step writing to a slow target.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import catalog
import connectors
import contracts
import records
from connectors.base import SinkConnector
from exchange.run import masking
from exchange.run.secrets import master_key
from exchange.run.targets import DISPUTED, disputes_spec, shape_keys, target_spec
from govex.errors import FatalError

__all__ = ["ROUNDS", "Settled", "after_delivery", "settle"]

log = logging.getLogger(__name__)
pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

ROUNDS = 3  # writes of one target in a row while disputes keep moving, before leaving it


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Settled:
    """What one `settle` did: flag rows written to their targets, and rows left pending."""

    applied: int = 0
    pending: int = 0


@dataclass(frozen=True)
class _Resource:
    """What writing a flag of one resource needs."""

    resource: catalog.Resource
    contract: contracts.Contract
    subscriptions: dict[str, catalog.Subscription]
    secret: bytes


@dataclass(frozen=True)
class _State:
    """What the store says, for one subscription: which of the record keys at hand are
    disputed now, and its flag rows at hand as they are now."""

    disputed: frozenset[str]
    rows: tuple[records.FlagRow, ...]

    def same(self, other: _State) -> bool:
        """Whether nothing a target shows changed between the two reads."""
        def wishes(state: _State) -> list[tuple[str, bool, int]]:
            return [(r.dispute, r.flagged, r.version) for r in state.rows]

        return self.disputed == other.disputed and wishes(self) == wishes(other)


def settle(store: sa.Engine, code: str) -> Settled:
    """Write every pending flag of resource `code` to its target; never raises (a target
    that cannot be written keeps its rows pending, with the reason). First adds the rows a
    holder of a disputed record lacks (`records.sync_flags`)."""
    rows: list[records.FlagRow] = []
    applied = 0
    try:
        _sync(store, code)
        with store.connect() as conn:
            rows = records.pending_flags(conn, code)
        if rows:
            context = _context(store, code)
            for sub_id, sub_rows in _by_subscription(rows).items():
                applied += _settle_subscription(store, context, sub_id, sub_rows)
    except Exception:  # noqa: BLE001 - a flag never fails the step that moved the dispute
        log.exception("could not write the dispute flags of %s; they stay pending", code)
    return Settled(applied, len(rows) - applied)


def after_delivery(
    store: sa.Engine,
    sink: SinkConnector,
    resource: catalog.Resource,
    contract: contracts.Contract,
    sub: catalog.Subscription,
    secret: bytes,
    *,
    disputed_before: frozenset[str],
    besides: str | None = None,
) -> None:
    """After a delivery to `sub` through `sink`: the subscription's pending flags, and the
    rows of records whose dispute opened or closed while the delivery ran (it wrote them as
    the store said when it began, `disputed_before`). `besides`: the dispute a correction
    closes (its record was written as no longer disputed). Never raises."""
    code = resource.code
    try:
        _sync(store, code)
        with store.connect() as conn:
            rows = records.pending_flags(conn, code, sub.id)
            now = records.disputed_keys(conn, code, besides=besides)
        moved = frozenset() if sub.mode == "append" else disputed_before ^ now
        if rows or moved:
            context = _Resource(resource, contract, {sub.id: sub}, secret)
            _settle_subscription(store, context, sub.id, rows, sink=sink, keys=moved,
                                 besides=besides)
    except Exception:  # noqa: BLE001 - the delivery committed; its flags follow next time
        log.exception("could not write the dispute flags of %s to %s; they stay pending",
                      code, sub.id)


def _sync(store: sa.Engine, code: str) -> None:
    try:
        with store.begin() as conn:
            records.sync_flags(conn, code)
    except sa.exc.IntegrityError:
        pass  # another writer added the same rows at the same moment: they are there


def _context(store: sa.Engine, code: str) -> _Resource:
    secret = master_key(store)  # before the connection below: on first use it is written
    with store.connect() as conn:
        resource = catalog.load_resource(conn, code)
        contract = catalog.load_contract_version(conn, resource.contract)
        subs = {s.id: s for s in catalog.load_subscriptions(conn, code)}
    return _Resource(resource, contract, subs, secret)


def _by_subscription(
    rows: Iterable[records.FlagRow],
) -> dict[str, list[records.FlagRow]]:
    out: dict[str, list[records.FlagRow]] = {}
    for row in rows:
        out.setdefault(row.subscription, []).append(row)
    return out


def _open_sink(store: sa.Engine, sub: catalog.Subscription) -> SinkConnector:
    with store.connect() as conn:
        target = catalog.load_connection(conn, sub.sink.connection)
    return connectors.open_sink(target.kind, target.target, target.format)


def _settle_subscription(
    store: sa.Engine,
    context: _Resource,
    sub_id: str,
    rows: Sequence[records.FlagRow],
    *,
    sink: SinkConnector | None = None,
    keys: frozenset[str] = frozenset(),
    besides: str | None = None,
) -> int:
    """Write one subscription's flags (`rows`, and the rows of records `keys`) and mark the
    rows applied; returns how many were marked. A failure marks them failed instead."""
    sub = context.subscriptions.get(sub_id)
    if sub is None or sub.target is None:
        # Gone from the catalog (or never bulk): govex no longer writes its target at all.
        return _mark(store, rows)
    own = sink is None
    try:
        if sink is None:
            sink = _open_sink(store, sub)
        written = _write(store, sink, context, sub, rows, keys, besides)
    except Exception as error:  # noqa: BLE001 - any failure leaves the rows pending, named
        log.warning("dispute flags of %s not written to %s: %s", context.resource.code,
                    sub_id, error)
        with store.begin() as conn:
            for row in rows:
                records.flag_failed(conn, row, str(error), _now())
        return 0
    finally:
        if own and sink is not None:
            sink.close()
    return _mark(store, written)


def _mark(store: sa.Engine, rows: Iterable[records.FlagRow]) -> int:
    now = _now()
    with store.begin() as conn:
        return sum(records.flag_applied(conn, row, now) for row in rows)


def _write(
    store: sa.Engine,
    sink: SinkConnector,
    context: _Resource,
    sub: catalog.Subscription,
    rows: Sequence[records.FlagRow],
    keys: frozenset[str],
    besides: str | None,
) -> tuple[records.FlagRow, ...]:
    """Write until the store's state holds still across a write (see the module docstring);
    returns the rows as the last write saw them. FatalError when it never did."""
    spec = target_spec(context.resource, context.contract, sub)
    record_keys = frozenset(r.record_key for r in rows) | keys
    state = _read(store, context.resource.code, sub.id, record_keys, rows, besides)
    if sink.table_problems(spec) is None:
        return state.rows  # no table: nothing was delivered there, nothing to flag
    for _round in range(ROUNDS):
        if sub.mode == "append":
            _write_disputes_rows(sink, context, sub, spec, state.rows)
        else:
            _write_flags(sink, context, sub, spec, record_keys, state.disputed)
        again = _read(store, context.resource.code, sub.id, record_keys, rows, besides)
        if again.same(state):
            return state.rows
        state = again
    msg = (f"the disputes of {context.resource.code} kept moving while their flags were "
           f"written to {sub.id}; they are written again at the next run")
    raise FatalError(msg)


def _read(
    store: sa.Engine, code: str, sub_id: str, record_keys: frozenset[str],
    rows: Sequence[records.FlagRow], besides: str | None,
) -> _State:
    with store.connect() as conn:
        disputed = records.disputed_keys(conn, code, besides=besides) & record_keys
        current = records.current_flags(conn, sub_id, [r.dispute for r in rows])
    return _State(disputed, tuple(current))


def _held_keys(
    context: _Resource, sub: catalog.Subscription, spec: Any, record_keys: Sequence[str]
) -> pa.Table:
    """Source record keys (provenance's text form) as the target identifies their rows: the
    key fields typed by the contract, then masked as the subscription masks them (or the
    `_govex_key` stand-in), exactly as a delivery shapes them."""
    resource = context.resource
    schema = contracts.arrow_schema(context.contract)
    parts = [records.split_key(k, resource.key) for k in record_keys]
    typed = pa.table({
        name: pc.cast(pa.array([p[name] for p in parts], pa.string()), schema.field(name).type)
        for name in resource.key
    })
    key = masking.subscription_key(context.secret, sub.id)
    return shape_keys(typed, spec, resource, sub, key=key)


def _write_flags(
    sink: SinkConnector, context: _Resource, sub: catalog.Subscription, spec: Any,
    record_keys: frozenset[str], disputed: frozenset[str],
) -> None:
    """`_govex_disputed` of each record's row: true when it is disputed now."""
    ordered = sorted(record_keys)
    held = _held_keys(context, sub, spec, ordered)
    is_disputed = pa.array([k in disputed for k in ordered], pa.bool_())
    for value, chosen in ((True, is_disputed), (False, pc.invert(is_disputed))):
        part = held.filter(chosen)
        if part.num_rows:
            sink.flag_keys(spec, part, DISPUTED, value)


def _write_disputes_rows(
    sink: SinkConnector, context: _Resource, sub: catalog.Subscription, spec: Any,
    rows: Sequence[records.FlagRow],
) -> None:
    """The `_govex_disputes` rows of an append target: present while each dispute wants the
    flag, absent once it does not."""
    if not rows:
        return
    held = _held_keys(context, sub, spec, [r.record_key for r in rows])
    texts = [pc.cast(held.column(name), pa.string()) for name in held.column_names]
    joined = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, ",")
    table = pa.table({
        "target_table": pa.array([spec.table] * len(rows), pa.string()),
        "record_key": joined,
        "dispute": pa.array([r.dispute for r in rows], pa.string()),
    })
    wanted = pa.array([r.flagged for r in rows], pa.bool_())
    side = disputes_spec(spec)
    for present, chosen in ((True, wanted), (False, pc.invert(wanted))):
        part = table.filter(chosen)
        if part.num_rows:
            sink.mark_rows(side, part, present)
