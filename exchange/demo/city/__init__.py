"""The demo city: a seeded generator of realistic source data with documented planted defects.

`generate_city(workspace, targets)` fills the source systems of the demo workspace (see
`exchange.demo.files`, or any workspace using the same resources) and returns the
`DefectManifest`; `generate_resources` gives the same rows in memory; `tax_credit_messages`
gives the Kafka envelopes of the pushed TAX-RES-001.
"""

from __future__ import annotations

from exchange.demo.city import vertical
from exchange.demo.city.generate import (
    BASE_ROWS,
    DEFAULT_SEED,
    DEFECT_PLAN,
    GENERATED_RESOURCES,
    REFERENCE_DATE,
    DefectSpec,
    GeneratedResource,
    generate_city,
    generate_resources,
    rows_for,
    tax_credit_messages,
    tax_credit_records,
)
from exchange.demo.city.manifest import DefectManifest, PlantedDefect, ResourceDefects

__all__ = [
    "BASE_ROWS",
    "DEFAULT_SEED",
    "DEFECT_PLAN",
    "GENERATED_RESOURCES",
    "REFERENCE_DATE",
    "DefectManifest",
    "DefectSpec",
    "GeneratedResource",
    "PlantedDefect",
    "ResourceDefects",
    "generate_city",
    "generate_resources",
    "rows_for",
    "tax_credit_messages",
    "vertical",
    "tax_credit_records",
]
