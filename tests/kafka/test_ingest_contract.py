"""The worker's batch contract check gives jsonschema's verdict and reason on every record.

`exchange.ingest.checks._contract` skips per-record jsonschema for records that round-trip exactly
through Arrow and pass the vectorised validator; everything else goes to jsonschema. Fed
records built to sit on every edge of that shortcut (nulls, absent and undeclared fields, bool
versus int, int in a number column, non-finite and huge numbers, enums on nullable fields),
the batch verdicts must be exactly those of jsonschema judging each record alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import catalog
import contracts
from exchange.ingest import checks
from exchange.ingest.envelope import Accepted, Message, _Bad, _decode
from exchange.ingest.resource import IngestResource

CONTRACT: dict[str, Any] = {
    "type": "object",
    "required": ["code", "count"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "count": {"type": "integer", "minimum": 0, "maximum": 1000},
        "ratio": {"type": "number", "minimum": 0, "multipleOf": 0.5},
        "flag": {"type": ["boolean", "null"]},
        "kind": {"type": ["string", "null"], "enum": ["a", "b"]},
        "day": {"type": "string", "format": "date"},
        "note": {"type": ["string", "null"], "maxLength": 3},
    },
}
GOOD: dict[str, Any] = {"code": "ABC", "count": 5}
EDGES: list[dict[str, Any]] = [
    GOOD,
    {**GOOD, "ratio": 1.5, "flag": True, "kind": "a", "day": "2024-02-29", "note": "xy"},
    {**GOOD, "ratio": 2},  # int in a number column
    {**GOOD, "ratio": 2**60},  # beyond float64's exact integers
    {**GOOD, "ratio": 1.25},  # multipleOf
    {**GOOD, "ratio": -1.0},
    {**GOOD, "ratio": float("nan")},
    {**GOOD, "ratio": float("inf")},
    {**GOOD, "count": 5.0},  # an integer-valued float is an integer to jsonschema
    {**GOOD, "count": 5.5},
    {**GOOD, "count": True},  # bool is not an integer
    {**GOOD, "count": 2**70},
    {**GOOD, "count": -1},
    {**GOOD, "count": "5"},
    {**GOOD, "count": None},  # null where null is not allowed
    {"code": "ABC"},  # required missing
    {"count": 1},
    {**GOOD, "code": None},
    {**GOOD, "code": "abc"},
    {**GOOD, "code": 123},
    {**GOOD, "code": ["ABC"]},
    {**GOOD, "flag": None},  # null allowed
    {**GOOD, "flag": 1},
    {**GOOD, "kind": None},  # null allowed by type, refused by enum
    {**GOOD, "kind": "c"},
    {**GOOD, "day": "2023-02-29"},
    {**GOOD, "day": "2023-1-2"},
    {**GOOD, "note": "toolong"},
    {**GOOD, "note": None},
    {**GOOD, "extra": 1},  # undeclared field
    {**GOOD, "extra": None},
    {**GOOD, "note": "\ud800"},  # a lone surrogate: valid JSON text, not valid UTF-8
]


@pytest.fixture(scope="module")
def resource() -> Any:
    contract = contracts.Contract("edge", "1.0.0", CONTRACT)
    declared = catalog.Resource.model_validate({
        "code": "EDGE-001", "name": "edge", "provider": "tax", "contract": "edge@1.0.0",
        "key": ["code"], "source": {"connection": "bus", "kafka": {}},
        "sharing": "conditional", "classification": "L2", "update_frequency": "PT1M",
        "quality": {"max_error_rate": 0.5},
    })
    return IngestResource(declared, contract)


def accepted(index: int, data: dict[str, Any]) -> Any:
    message = Message(0, index, b"k", json.dumps(data).encode())
    envelope = {"message_id": f"m{index}", "op": "upsert", "data": data, "key": {}}
    return Accepted(message, envelope, f"k{index}")


@pytest.mark.parametrize("repeat", [1, 3])
def test_batch_contract_verdicts_are_jsonschemas(resource: Any, repeat: int) -> None:
    items = [accepted(i, data) for i, data in enumerate(EDGES * repeat)]
    expected = {item.envelope["message_id"]: checks._contract_reject(resource, item)
                for item in items}
    upserts = list(items)
    rejects, table = checks._contract(resource, upserts)
    got = {r.message_id: (r.reason, r.checks) for r in rejects}
    assert got == {m: (r.reason, r.checks) for m, r in expected.items() if r is not None}
    assert [u.envelope["message_id"] for u in upserts] == [
        m for m, r in expected.items() if r is None]
    # The edges hold records jsonschema accepts that Arrow cannot carry exactly: no shortcut.
    assert table is None


def test_all_fast_batch_hands_its_arrow_table_to_the_gate(resource: Any) -> None:
    good = [{**GOOD, "count": i, "ratio": 0.5 * i} for i in range(10)]
    bad = {**GOOD, "count": 5000}
    items = [accepted(i, data) for i, data in enumerate([*good[:5], bad, *good[5:]])]
    upserts = list(items)
    rejects, table = checks._contract(resource, upserts)
    assert [r.message_id for r in rejects] == ["m5"]
    assert rejects[0].reason.startswith("contract edge@1.0.0: maximum on count:")
    assert table is not None
    assert table.column("count").to_pylist() == list(range(10))
    assert len(upserts) == 10


@pytest.mark.parametrize(("value", "reason"), [
    (b'{"a": NaN}', "NaN is not a JSON value"),
    (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_what_python_json_allows_beyond_json_is_refused(value: bytes, reason: str) -> None:
    with pytest.raises(_Bad, match=reason):
        _decode(value, len(value))
