"""`govex leak identify`: which subscription a leaked file came from.

Provenance keeps, for every row govex delivered, the fingerprint of exactly what the consumer
received (`records.value_hashes` over the subscription's fields in its order, each masked as
delivered — `hash` keyed per subscription — and typed as its target column). So for each bulk
subscription of the resource (a verify subscription receives no rows), the file's columns
are mapped to its fields (`mapping`), typed as delivered (`values`), fingerprinted the same
way, and looked up among the fingerprints delivered to it, at any time (deletes left out):
`matched` is the share of the file's rows found there.

Two passes over the resource's provenance, streamed (`records.delivered_hashes`), whatever the
number of subscriptions: the first scores the candidate column assignments of every
subscription on a sample of rows (only for subscriptions whose columns are not settled by
their names alone), the second counts the file's rows under each one's best assignment. Memory
grows with the file (at most `files.MAX_ROWS` rows), not with provenance.

What a file cannot tell:

- subscriptions receiving the same fields with the same masking and nothing keyed
  (`catalog.indistinguishable`) received equal values; when both match, each names the others
  in `tie_with` and a `note` says so (`govex apply` warns about such pairs);
- a subscription receiving a subset of another's fields matches that other's file too; the
  ranking puts first, on equal shares, the subscription whose fields account for more of the
  file's columns, and `unexplained` lists the columns a subscription never received;
- a subscription no longer in the catalog is not ranked (its fields and masking are gone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import catalog
import records
from exchange.leak import files, mapping, values
from exchange.run import targets

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["SAMPLE_ROWS", "Identified", "Suspect", "identify"]

SAMPLE_ROWS = 48  # rows, spread over the file, that score the column assignments
GOVEX_PREFIX = "_govex_"  # govex's own columns: not fields of any subscription


@dataclass
class Suspect:
    """One subscription's share of the file's rows, and how the file was read for it."""

    subscription: str
    consumer: str
    matched: float = 0.0
    matched_rows: int = 0
    rows: int = 0
    # Where rows matched: field -> the file column holding it, and the file's columns this
    # subscription never received (`_govex_*` aside).
    columns: dict[str, str] = field(default_factory=dict)
    unexplained: list[str] = field(default_factory=list)
    tie_with: list[str] = field(default_factory=list)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription, "consumer": self.consumer,
            "matched": self.matched, "matched_rows": self.matched_rows, "rows": self.rows,
            "columns": self.columns, "unexplained": self.unexplained,
            "tie_with": self.tie_with, "note": self.note,
        }


@dataclass(frozen=True)
class Identified:
    """The ranking, best first, and how the file was read."""

    resource: str
    rows: int
    format: str
    truncated: bool
    suspects: list[Suspect]


@dataclass
class _Subscription:
    """A bulk subscription as the file is compared with it."""

    sub: catalog.Subscription
    types: dict[str, pa.DataType]  # field -> delivered Arrow type
    masking: dict[str, str]  # field -> masking function ("none" where unmasked)
    candidates: list[mapping.Assignment] = field(default_factory=list)
    chosen: mapping.Assignment | None = None


class _Columns:
    """The file's text columns typed per (column, delivered type), computed once."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._typed: dict[tuple[str, str], tuple[pa.Array[Any], pa.Array[Any]]] = {}

    def typed(self, column: str, kind: pa.DataType) -> tuple[pa.Array[Any], pa.Array[Any]]:
        key = (column, str(kind))
        if key not in self._typed:
            self._typed[key] = values.typed(self.table.column(column), kind)
        return self._typed[key]


def identify(store: sa.Engine, path: Path, code: str) -> Identified:
    """Rank the bulk subscriptions of resource `code` by the share of the rows of the leaked
    file at `path` that match what govex delivered to them. An unknown resource or a file that
    is not CSV or JSON Lines raises DeclarationError naming it."""
    with store.connect() as conn:
        resource = catalog.load_resource(conn, code)  # unknown: DeclarationError
        contract = catalog.load_contract_version(conn, resource.contract)
        subs = [s for s in catalog.load_subscriptions(conn, code) if s.delivery == "bulk"]
    leaked = files.read_leaked(path)
    table = leaked.table
    names = [n for n in table.column_names if not n.startswith(GOVEX_PREFIX)]
    rows = table.num_rows
    full = _Columns(table.select(names))
    sample = _Columns(full.table.take(_spread(rows, SAMPLE_ROWS)))
    compared: list[_Subscription] = []
    suspects: dict[str, Suspect] = {}
    for sub in subs:
        spec = targets.target_spec(resource, contract, sub)
        kinds = {c.name: c.type for c in spec.columns}
        item = _Subscription(sub, {f: kinds[f] for f in sub.fields},
                             {f: sub.masking.get(f, "none") for f in sub.fields})
        suspect = Suspect(sub.id, sub.consumer, rows=rows)
        suspects[sub.id] = suspect

        def fit(column: str, name: str, item: _Subscription = item) -> bool:
            kind = item.types[name]
            text = sample.table.column(column)
            return values.fits(text, kind, item.masking[name])

        found = mapping.candidates(names, sub.fields, fit)
        if found.missing:
            suspect.note = (f"the file has no column that can hold {', '.join(found.missing)} "
                            "as delivered to this subscription")
        elif found.too_many:
            suspect.note = (
                f"more than {mapping.MAX_ASSIGNMENTS} ways to place the file's renamed "
                "columns on this subscription's fields: rename the columns after its fields "
                f"({', '.join(sub.fields)}) and ask again")
        elif not found.assignments:
            suspect.note = "the file's columns cannot hold all of this subscription's fields"
        else:
            item.candidates = found.assignments
            compared.append(item)
    with store.connect() as conn:
        _choose(conn, code, compared, sample)
        _count(conn, code, compared, full, suspects)
    _ties(subs, suspects)
    ranked = sorted(suspects.values(),
                    key=lambda s: (-s.matched, -len(s.columns), s.subscription))
    return Identified(code, rows, leaked.format, leaked.truncated, ranked)


def _spread(rows: int, wanted: int) -> pa.Array[Any]:
    """Up to `wanted` row numbers spread evenly over `rows` (a file may be several pastes)."""
    picks = np.unique(np.linspace(0, max(rows - 1, 0), num=min(rows, wanted)).astype(np.int64))
    return pa.array(picks, pa.int64())


def _hashes(columns: _Columns, item: _Subscription, assignment: dict[str, str]
            ) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """The fingerprints of the rows of `columns` under `assignment`, and which rows are usable
    (every value parsed as delivered)."""
    arrays: dict[str, pa.Array[Any]] = {}
    usable: Any = None
    for name in item.sub.fields:
        typed, ok = columns.typed(assignment[name], item.types[name])
        arrays[name] = typed
        usable = ok if usable is None else pc.and_(usable, ok)
    shaped = pa.table(arrays)
    return records.value_hashes(shaped, item.sub.fields), usable


def _choose(conn: sa.Connection, code: str, compared: list[_Subscription],
            sample: _Columns) -> None:
    """Each subscription's best assignment: the only one, or the one whose sampled rows match
    most (then the one keeping more names), scored in one pass over provenance."""
    scoring: dict[str, list[tuple[mapping.Assignment, pa.Array[Any]]]] = {}
    for item in compared:
        if len(item.candidates) == 1:
            item.chosen = item.candidates[0]
            continue
        scored = []
        for assignment in item.candidates:
            hashes, ok = _hashes(sample, item, assignment.columns)
            scored.append((assignment, pc.filter(hashes, ok)))
        scoring[item.sub.id] = scored
    if not scoring:
        return
    wanted = {
        sub_id: pc.unique(pa.concat_arrays([h for _, h in scored]))
        for sub_id, scored in scoring.items()
    }
    seen = _delivered(conn, code, wanted)
    for item in compared:
        if item.sub.id not in scoring:
            continue
        hits = pa.array(sorted(seen[item.sub.id]), pa.string())
        item.chosen = max(
            scoring[item.sub.id],
            key=lambda pair: (int(pc.sum(pc.is_in(pair[1], value_set=hits)).as_py() or 0),
                              pair[0].named),
        )[0]


def _delivered(conn: sa.Connection, code: str, wanted: dict[str, pa.Array[Any]]
               ) -> dict[str, set[str]]:
    """Which of the `wanted` fingerprints (per subscription) govex delivered to it."""
    seen: dict[str, set[str]] = {sub_id: set() for sub_id in wanted}
    for subs, hashes in records.delivered_hashes(conn, code, list(wanted)):
        for sub_id, looked_for in wanted.items():
            if len(looked_for) == 0:
                continue
            mine = pc.filter(hashes, pc.equal(subs, sub_id))
            hit = pc.filter(mine, pc.is_in(mine, value_set=looked_for))
            seen[sub_id].update(str(h) for h in pc.unique(hit).to_pylist())
    return seen


def _count(conn: sa.Connection, code: str, compared: list[_Subscription], full: _Columns,
           suspects: dict[str, Suspect]) -> None:
    """The share of the file's rows each subscription received, under its chosen columns."""
    file_hashes: dict[str, tuple[pa.Array[Any], pa.Array[Any]]] = {}
    for item in compared:
        if item.chosen is None:  # pragma: no cover - every compared item gets one
            continue
        file_hashes[item.sub.id] = _hashes(full, item, item.chosen.columns)
    wanted = {
        sub_id: pc.unique(pc.filter(hashes, ok))
        for sub_id, (hashes, ok) in file_hashes.items()
    }
    seen = _delivered(conn, code, wanted)
    for item in compared:
        suspect = suspects[item.sub.id]
        if item.chosen is None:  # pragma: no cover
            continue
        hashes, ok = file_hashes[item.sub.id]
        hits = pa.array(sorted(seen[item.sub.id]), pa.string())
        matched = pc.and_(ok, pc.fill_null(pc.is_in(hashes, value_set=hits), False))
        suspect.matched_rows = int(pc.sum(matched).as_py() or 0)
        suspect.matched = round(suspect.matched_rows / suspect.rows, 4) if suspect.rows else 0.0
        if suspect.matched_rows:  # with no row matching, no placement of columns is evidence
            suspect.columns = dict(item.chosen.columns)
            used = set(item.chosen.columns.values())
            suspect.unexplained = [c for c in full.table.column_names if c not in used]


def _ties(subs: Sequence[catalog.Subscription], suspects: dict[str, Suspect]) -> None:
    """Subscriptions that received equal values and both match: a tie no file can break."""
    for group in catalog.indistinguishable(subs):
        matching = [s for s in group if suspects[s].matched_rows > 0]
        if len(matching) < 2:
            continue
        for sub_id in matching:
            others = [s for s in matching if s != sub_id]
            suspect = suspects[sub_id]
            suspect.tie_with = others
            suspect.note = (
                f"tied with {', '.join(others)}: they receive the same fields with the same "
                "masking and nothing keyed, so govex delivered them the same values and no "
                "file can tell them apart (`govex apply` warns about such subscriptions)")
