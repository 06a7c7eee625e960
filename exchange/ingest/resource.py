"""One Kafka-fed resource as the ingest worker needs it: the topic it is read from, its pinned
contract with the validators and quality gate that judge its messages, and its landing table."""

from __future__ import annotations

import pyarrow as pa

import catalog
import contracts
import quality
from exchange.ingest.tables import landing_table

_PYTHON_TYPES: dict[pa.DataType, type] = {
    pa.string(): str, pa.int64(): int, pa.float64(): float, pa.bool_(): bool,
}


def ingest_topic(resource: catalog.Resource) -> str:
    """The topic a Kafka-fed resource is read from."""
    kafka = resource.source.kafka
    return (kafka.topic if kafka is not None and kafka.topic else None) or (
        f"govex.ingest.{resource.code}"
    )


class IngestResource:
    """One Kafka-fed resource as the worker needs it: declaration, contract, gate, tables."""

    def __init__(self, resource: catalog.Resource, contract: contracts.Contract) -> None:
        self.resource = resource
        self.code = resource.code
        self.key = list(resource.key)
        self.contract = contract
        self.topic = ingest_topic(resource)
        self.landing = landing_table(resource.code, contract)
        self.validator = contracts.reference_validator(contract)
        self.gate = quality.resource_gate(contract, resource, keyed=False)
        self.schema = json_arrow_schema(contract)
        self.batch_validator = contracts.BatchValidator(contract)
        self.required = contract.required
        self.field_set = frozenset(contract.fields)
        self.nullable = frozenset(
            name for name in contract.fields if contracts.allows_null(contract.property(name))
        )
        # The one Python type a value of each column must have to round-trip exactly.
        self.exact_types: dict[str, type | None] = {
            f.name: _PYTHON_TYPES.get(f.type) for f in self.schema
        }


def json_arrow_schema(contract: contracts.Contract) -> pa.Schema:
    """`contracts.arrow_schema` as the JSON arrives: dates and date-times stay strings (the
    contract gate judges text dates with jsonschema's semantics), other types as declared."""
    typed = contracts.arrow_schema(contract)
    fields = []
    for f in typed:
        kind = f.type
        if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind, nullable=True))
    return pa.schema(fields)
