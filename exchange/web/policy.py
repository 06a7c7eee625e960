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

Disclosure (who received or verified a record: `/api/v1/disclosure`, the disclosure page) is
for admin, authority and auditor tokens and the provider of the record's resource; never a
consumer, since it names the other departments that received the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from exchange.store import Principal, Role

READ_ALL: frozenset[Role] = frozenset({"admin", "authority", "checklist_owner", "auditor"})
LINEAGE_POSTERS: frozenset[Role] = frozenset({"admin", "lineage_producer"})
AUDIT_READERS: frozenset[Role] = frozenset({"admin", "auditor"})
DISCLOSURE_READERS: frozenset[Role] = frozenset({"admin", "authority", "auditor"})


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


def operations_scope(
    principal: Principal, provider: sa.ColumnElement[str]
) -> sa.ColumnElement[bool]:
    """`may_read_resource_operations` as a SQL condition on a resource's provider column, for
    lists paged in the database."""
    if reads_everything(principal):
        return sa.true()
    if principal.role == "provider":
        return provider == principal.department
    return sa.false()


def subscription_scope(
    principal: Principal, consumer: sa.ColumnElement[str], provider: sa.ColumnElement[str]
) -> sa.ColumnElement[bool]:
    """`may_read_subscription` as a SQL condition on a subscription's consumer column and its
    resource's provider column, for lists paged in the database."""
    if reads_everything(principal):
        return sa.true()
    own = consumer == principal.department
    if principal.role == "provider":
        return sa.or_(own, provider == principal.department)
    return own


def may_post_lineage(principal: Principal) -> bool:
    """Whether the token may report OpenLineage events (never for govex's own runs)."""
    return principal.role in LINEAGE_POSTERS


def may_read_audit(principal: Principal) -> bool:
    """Whether the token may read the audit log (`GET /api/v1/audit`)."""
    return principal.role in AUDIT_READERS


def may_read_disclosure(principal: Principal, provider: str | None = None) -> bool:
    """Who received or verified the records of a resource of `provider`; without `provider`,
    whether the token may ask about any resource at all (the page's link)."""
    if principal.role in DISCLOSURE_READERS:
        return True
    return principal.role == "provider" and provider in (None, principal.department)
