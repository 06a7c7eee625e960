"""Arrow schema of a contract: the column types sinks create and generators produce."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from contracts.model import Contract, property_types
from govex.errors import DeclarationError

_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}
_STRING_FORMATS: dict[str, pa.DataType] = {
    "date": pa.date32(),
    # Timezone-aware, normalised to UTC: govex never stores naive datetimes.
    "date-time": pa.timestamp("us", tz="UTC"),
}


def arrow_type(name: str, prop: dict[str, Any], *, file: str | None = None) -> pa.DataType:
    """The Arrow type of one property: its single non-null JSON type, refined by `format`."""
    types = property_types(prop) or frozenset()
    concrete = sorted(types - {"null"})
    if types == frozenset({"null"}):
        return pa.null()
    if len(concrete) != 1 or concrete[0] not in _SCALARS:
        msg = (
            f"type {prop.get('type')!r} does not map to one Arrow column type; declare exactly "
            "one of string, integer, number, boolean (optionally with null)"
        )
        raise DeclarationError(
            msg,
            file=file,
            field=name,
            value=prop.get("type"),
        )
    if concrete[0] == "string" and prop.get("format") in _STRING_FORMATS:
        return _STRING_FORMATS[prop["format"]]
    return _SCALARS[concrete[0]]


def arrow_schema(contract: Contract) -> pa.Schema:
    """One field per property in declaration order; nullable unless required.

    A property's `x-govex-pii` category and description travel as field metadata.
    """
    fields = []
    for name in contract.fields:
        prop = contract.property(name)
        metadata = {key: str(prop[key]) for key in ("x-govex-pii", "description") if key in prop}
        types = property_types(prop) or frozenset()
        nullable = name not in contract.required or "null" in types
        fields.append(
            pa.field(
                name,
                arrow_type(name, prop, file=contract.ref),
                nullable=nullable,
                metadata=metadata or None,
            )
        )
    return pa.schema(fields, metadata={"govex.contract": contract.ref})
