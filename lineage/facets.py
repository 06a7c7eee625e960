"""govex's own OpenLineage facets: `govex_resource`, `govex_subscription`, `govex_runCounts`.

Custom facets follow the OpenLineage rules for them: the facet key carries the producer's
prefix (`govex_`), every facet has `_producer` and a `_schemaURL` that points at a published,
versioned JSON Schema whose definition extends the spec's `RunFacet`. The schemas live in
`lineage/schemas/<version>/<FacetClass>.json` and their `$id` is the URL the `_schemaURL`
starts with, so a consumer (or our tests) can resolve one from the other.

Changing a facet's shape means a new schema version directory and a new `FACET_VERSION`;
published versions are never edited.
"""

from __future__ import annotations

from pathlib import Path

import attr
from openlineage.client.facet_v2 import RunFacet

__all__ = [
    "FACET_VERSION",
    "SCHEMA_BASE_URL",
    "SCHEMA_DIR",
    "GovexResourceRunFacet",
    "GovexRunCountsRunFacet",
    "GovexSubscriptionRunFacet",
    "schema_url",
]

FACET_VERSION = "1-0-0"
SCHEMA_BASE_URL = "https://github.com/govex/govex/blob/main/lineage/schemas"
SCHEMA_DIR = Path(__file__).with_name("schemas")


def schema_url(facet_class: str, version: str = FACET_VERSION) -> str:
    """The `_schemaURL` of a govex facet: `<base>/<version>/<Class>.json#/$defs/<Class>`."""
    return f"{SCHEMA_BASE_URL}/{version}/{facet_class}.json#/$defs/{facet_class}"


@attr.define
class GovexResourceRunFacet(RunFacet):
    """`govex_resource`: the catalog entry the run moves."""

    code: str
    provider: str
    contract: str
    sharing: str
    classification: str
    name: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("GovexResourceRunFacet")


@attr.define
class GovexSubscriptionRunFacet(RunFacet):
    """`govex_subscription`: the checklist line a delivery serves."""

    id: str
    resource: str
    consumer: str
    purpose: str
    mode: str
    fields: list[str]
    masking: dict[str, str]

    @staticmethod
    def _get_schema() -> str:
        return schema_url("GovexSubscriptionRunFacet")


@attr.define
class GovexRunCountsRunFacet(RunFacet):
    """`govex_runCounts`: records read, passed, quarantined and delivered."""

    read: int
    passed: int
    quarantined: int
    delivered: int
    status: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("GovexRunCountsRunFacet")
