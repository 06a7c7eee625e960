"""govex's own OpenLineage facets: `govex_resource`, `govex_subscription`, `govex_runCounts`
(`lineage.events` builds them).

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

__all__ = [
    "FACET_VERSION",
    "SCHEMA_BASE_URL",
    "SCHEMA_DIR",
    "GOVEX_FACETS",
    "schema_url",
]

FACET_VERSION = "1-0-0"
SCHEMA_BASE_URL = "https://github.com/govex/govex/blob/main/lineage/schemas"
SCHEMA_DIR = Path(__file__).with_name("schemas")
#: govex's run facets: the key an event carries each under, and the schema that defines it.
GOVEX_FACETS = {
    "govex_resource": "GovexResourceRunFacet",  # the catalog entry the run moves
    "govex_subscription": "GovexSubscriptionRunFacet",  # the checklist line a delivery serves
    "govex_runCounts": "GovexRunCountsRunFacet",  # records read, passed, quarantined, delivered
}


def schema_url(facet_class: str, version: str = FACET_VERSION) -> str:
    """The `_schemaURL` of a govex facet: `<base>/<version>/<Class>.json#/$defs/<Class>`."""
    return f"{SCHEMA_BASE_URL}/{version}/{facet_class}.json#/$defs/{facet_class}"
