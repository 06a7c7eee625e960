"""The Arrow schema sinks and generators derive from a contract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from contracts import Contract, arrow_schema
from govex.errors import DeclarationError


def _contract(properties: dict[str, object], required: list[str]) -> Contract:
    schema = {"type": "object", "properties": properties, "required": required}
    return Contract("c", "1.0.0", schema)


def test_types_formats_and_nullability() -> None:
    contract = _contract(
        {
            "id": {"type": "string", "x-govex-pii": "id_number"},
            "born": {"type": "string", "format": "date"},
            "seen": {"type": ["string", "null"], "format": "date-time"},
            "age": {"type": "integer"},
            "score": {"type": "number"},
            "alive": {"type": "boolean"},
            "nothing": {"type": "null"},
        },
        ["id", "age", "seen"],
    )
    schema = arrow_schema(contract)
    assert schema.names == ["id", "born", "seen", "age", "score", "alive", "nothing"]
    assert [f.type for f in schema] == [
        pa.string(),
        pa.date32(),
        pa.timestamp("us", tz="UTC"),
        pa.int64(),
        pa.float64(),
        pa.bool_(),
        pa.null(),
    ]
    nullable = {f.name: f.nullable for f in schema}
    assert nullable == {
        "id": False,
        "born": True,
        "seen": True,
        "age": False,
        "score": True,
        "alive": True,
        "nothing": True,
    }
    assert schema.field("id").metadata == {b"x-govex-pii": b"id_number"}
    assert schema.metadata == {b"govex.contract": b"c@1.0.0"}


@pytest.mark.parametrize("declared", [["string", "integer"], None, "object", "array"])
def test_unmappable_types_are_declaration_errors(declared: object) -> None:
    prop = {} if declared is None else {"type": declared}
    with pytest.raises(DeclarationError, match="does not map to one Arrow column type") as info:
        arrow_schema(_contract({"x": prop}, []))
    assert info.value.field == "x"
    assert info.value.file == "c@1.0.0"
