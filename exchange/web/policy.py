"""Who may read what. One place, so the API and the pages cannot disagree.

- admin: everything;
- authority (the platform authority, 政务数据主管部门), checklist_owner, auditor: read
  everything, quality and quarantined records included;
- provider: the catalog; runs, quality and quarantined records of its own department's
  resources (nobody else's); the subscriptions to its resources and its department's own;
- consumer: the catalog and its own department's subscriptions;
- lineage_producer: the catalog.

Posting OpenLineage events (`POST /api/v1/lineage`) is for admin and lineage_producer tokens
only: what is posted is shown beside govex's own lineage.

Reading the audit log over the API (`GET /api/v1/audit`) is for admin and auditor tokens only.

Reading the catalog (resource list and resource pages: declaration and contract) is open to
every role: the catalog exists so departments can find what to ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exchange.store import Principal, Role

READ_ALL: frozenset[Role] = frozenset({"admin", "authority", "checklist_owner", "auditor"})
LINEAGE_POSTERS: frozenset[Role] = frozenset({"admin", "lineage_producer"})
AUDIT_READERS: frozenset[Role] = frozenset({"admin", "auditor"})


def reads_everything(principal: Principal) -> bool:
    return principal.role in READ_ALL


def may_read_operations(principal: Principal) -> bool:
    """Whether the role may read runs, quality or quarantine at all (of some resource)."""
    return reads_everything(principal) or principal.role == "provider"


def may_read_resource_operations(principal: Principal, provider: str) -> bool:
    """Runs, quality results, Data Docs and quarantined records of a resource of `provider`."""
    if reads_everything(principal):
        return True
    return principal.role == "provider" and principal.department == provider


def may_read_subscription(
    principal: Principal, subscription: Mapping[str, Any], provider: str | None
) -> bool:
    """A checklist line: everyone with full read; the consumer department itself; the provider
    of the subscribed resource."""
    if reads_everything(principal):
        return True
    if subscription.get("consumer") == principal.department:
        return True
    return principal.role == "provider" and provider == principal.department


def may_post_lineage(principal: Principal) -> bool:
    """Whether the token may report OpenLineage events (never for govex's own runs)."""
    return principal.role in LINEAGE_POSTERS


def may_read_audit(principal: Principal) -> bool:
    """Whether the token may read the audit log (`GET /api/v1/audit`)."""
    return principal.role in AUDIT_READERS
