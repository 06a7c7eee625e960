"""The checks on one micro-batch of a resource: each message's envelope (`envelope.parse`), then,
for upserts, the contract (jsonschema's verdict per record; see `_contract` for how the
vectorised validator spares most records the per-record call) and the resource's quality gate
(`quality.QualityGate`) on an Arrow table of the batch's `data`, row by row. Verdicts and
reasons are those each message would get if judged alone, and nothing a producer sends crashes
the worker: a message that cannot be judged is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

import quality
from exchange.ingest.envelope import EXACT_INT, Accepted, Message, Reject, parse
from exchange.ingest.resource import IngestResource

# What pyarrow raises for a value that does not fit its column.
_ARROW_REFUSALS = (pa.ArrowException, OverflowError, TypeError, ValueError)


@dataclass
class Judged:
    """One judged micro-batch: every message read, what lands and what is rejected, each in
    message order (the gate's rejects after the others)."""

    messages: Sequence[Message]
    accepted: list[Accepted]
    rejects: list[Reject]


def judge(res: IngestResource, messages: Sequence[Message], max_message_bytes: int) -> Judged:
    """Envelope, contract and quality gate on one micro-batch of `res`."""
    parsed = [parse(res, m, max_message_bytes) for m in messages]
    rejects = [p for p in parsed if isinstance(p, Reject)]
    accepted = [p for p in parsed if isinstance(p, Accepted)]
    upserts = [a for a in accepted if a.envelope["op"] == "upsert"]
    refused, table = _contract(res, upserts)
    # In message order, as if each message had been judged alone; the gate's come after.
    rejects = sorted(rejects + refused, key=lambda r: (r.message.partition, r.message.offset))
    rejects += _gate(res, upserts, table)
    passed = {id(a) for a in upserts}
    accepted = [a for a in accepted if a.envelope["op"] == "delete" or id(a) in passed]
    accepted.sort(key=lambda a: (a.message.partition, a.message.offset))
    return Judged(messages, accepted, rejects)


# -- the contract --------------------------------------------------------------------------------


def _contract(res: IngestResource,
              upserts: list[Accepted]) -> tuple[list[Reject], pa.Table | None]:
    """The contract on the batch's upserts; returns (and removes) the ones jsonschema refuses,
    and the Arrow batch of the remaining upserts when it has it already (else None).

    jsonschema per record costs more than everything else a message goes through, so it runs
    only where the answer is not already known: a record that projects back exactly
    (`_projects_back`) and that the vectorised validator passes is valid for jsonschema too.
    Every other record (and every record the vectorised validator flags) is judged by
    jsonschema itself, so verdicts and reasons are exactly those of jsonschema per record."""
    fast, table, suspects = _vectorised(res, upserts)
    rejects: list[Reject] = []
    keep: list[Accepted] = []
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


def _vectorised(res: IngestResource, upserts: Sequence[Accepted],
                ) -> tuple[list[Accepted], pa.Table | None, set[int]]:
    """The vectorised validator on the upserts that project back exactly: those upserts,
    their Arrow table (None when Arrow refused it) and the ids of the upserts jsonschema
    must judge itself."""
    fast = [item for item in upserts if _projects_back(res, item.envelope["data"])]
    suspects: set[int] = {id(item) for item in upserts} - {id(item) for item in fast}
    if not fast:
        return fast, None, suspects
    try:
        table = pa.Table.from_arrays(
            [pa.array([item.envelope["data"].get(f.name) for item in fast], type=f.type)
             for f in res.schema], schema=res.schema)
    except _ARROW_REFUSALS:
        return fast, None, {id(item) for item in upserts}
    valid = res.batch_validator.validate(table).valid
    suspects.update(id(item) for item, ok in zip(fast, valid, strict=True) if not ok)
    return fast, table, suspects


def _contract_reject(res: IngestResource, item: Accepted) -> Reject | None:
    """jsonschema's verdict on one upsert's data: the reject naming its first error, or None."""
    data = item.envelope["data"]
    try:
        errors = sorted(res.validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    except (ArithmeticError, ValueError, TypeError, RecursionError) as error:
        # jsonschema itself fails on some numbers (multipleOf of an infinity, say: JSON text
        # like 1e999 parses to one): a record it cannot judge is not a valid one.
        reason = f"contract {res.contract.ref}: cannot be checked ({error.__class__.__name__}: " \
            f"{error})"
        return Reject.from_accepted(item, reason, [{"check": "contract", "column": ""}])
    if not errors:
        return None
    first = errors[0]
    column = str(first.absolute_path[0]) if first.absolute_path else ""
    where = f" on {column}" if column else ""
    reason = f"contract {res.contract.ref}: {first.validator}{where}: {first.message}"
    return Reject.from_accepted(item, reason, [{"check": str(first.validator), "column": column}])


def _projects_back(res: IngestResource, data: Mapping[str, Any]) -> bool:
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
        elif not (expected is float and kind is int and -EXACT_INT <= value <= EXACT_INT):
            return False
    return True


# -- the quality gate ------------------------------------------------------------------------------


def _gate(res: IngestResource, upserts: list[Accepted],
          table: pa.Table | None = None) -> list[Reject]:
    """The quality gate on the batch's upserts (`table`: their Arrow batch, when known), row
    by row; returns (and removes) failures."""
    batch, rejects = _arrow_batch(res, upserts, table)
    if not upserts:
        return rejects
    result = res.gate.evaluate(batch)
    if not result.num_failed:
        return rejects
    return rejects + _gate_failures(res, upserts, result)


def _arrow_batch(res: IngestResource, upserts: list[Accepted],
                 table: pa.Table | None) -> tuple[pa.Table, list[Reject]]:
    """The upserts as the gate's Arrow batch; removes (and returns rejects for) the ones whose
    values do not fit their Arrow columns."""
    if table is not None:
        return table, []
    rows = [
        {f.name: _arrow_value(f.type, item.envelope["data"].get(f.name)) for f in res.schema}
        for item in upserts
    ]
    try:
        return pa.Table.from_pylist(rows, schema=res.schema), []
    except _ARROW_REFUSALS:
        # Some value passed jsonschema yet does not fit its Arrow column (an integer beyond
        # 64 bits, say): find those rows one by one and reject only them.
        return _fitting_rows(res, upserts, rows)


def _fitting_rows(res: IngestResource, upserts: list[Accepted],
                  rows: list[dict[str, Any]]) -> tuple[pa.Table, list[Reject]]:
    rejects: list[Reject] = []
    fits = []
    for values, item in zip(rows, upserts, strict=True):
        try:
            pa.Table.from_pylist([values], schema=res.schema)
        except _ARROW_REFUSALS as error:
            reason = f"contract {res.contract.ref}: a value does not fit its type ({error})"
            rejects.append(Reject.from_accepted(item, reason, [{"check": "type", "column": ""}]))
        else:
            fits.append((values, item))
    upserts[:] = [item for _, item in fits]
    return pa.Table.from_pylist([values for values, _ in fits], schema=res.schema), rejects


def _arrow_value(kind: pa.DataType, value: Any) -> Any:
    if pa.types.is_integer(kind) and isinstance(value, float) and value.is_integer():
        return int(value)
    if pa.types.is_floating(kind) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _gate_failures(res: IngestResource, upserts: list[Accepted],
                   result: quality.GateResult) -> list[Reject]:
    """The rejects of the rows the gate failed, naming every check each failed; removes them."""
    checks: dict[int, list[dict[str, str]]] = {}
    messages: dict[int, str] = {}
    for failure in result.failures.to_pylist():
        row = int(failure["row"])
        checks.setdefault(row, []).append(
            {"check": str(failure["check"]), "column": str(failure["column"] or ""),
             "detail": str(failure.get("detail") or "")}
        )
        messages.setdefault(row, str(failure["message"] or failure["check"]))
    rejects: list[Reject] = []
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
        rejects.append(Reject.from_accepted(item, reason, checks.get(row, [])))
    upserts[:] = keep
    return rejects
