"""The catalog's tables in the metadata store (the catalog package owns them).

Declarations are kept whole as JSON (what `govex apply` diffs against) beside the columns that
are queried or constrained. `catalog_data_elements.element` is the primary key: the database
itself enforces one data, one source.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)

departments = sa.Table(
    "catalog_departments",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("declaration", sa.JSON, nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

connections = sa.Table(
    "catalog_connections",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("declaration", sa.JSON, nullable=False),
    sa.Column("workspace", sa.String(1000), nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # HMAC-SHA256 (master key) of the value its ${VAR}s resolved to at the last apply: tells
    # a changed environment without ever storing the resolved URL and its password.
    sa.Column("fingerprint", sa.String(64), nullable=True),
)

contract_versions = sa.Table(
    "catalog_contract_versions",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.String(40), primary_key=True),
    sa.Column("major", sa.Integer, nullable=False),
    sa.Column("schema", sa.JSON, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("registered_at", TS, nullable=False),
)

resources = sa.Table(
    "catalog_resources",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("contract_name", sa.String(100), nullable=False),
    sa.Column("contract_version", sa.String(40), nullable=False),
    sa.Column("sharing", sa.String(20), nullable=False),
    sa.Column("classification", sa.String(4), nullable=False),
    sa.Column("declaration", sa.JSON, nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

data_elements = sa.Table(
    "catalog_data_elements",
    metadata,
    sa.Column("element", sa.String(200), primary_key=True),
    sa.Column(
        "resource_code",
        sa.String(64),
        sa.ForeignKey("catalog_resources.code", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("field", sa.String(100), nullable=False),
)

subscriptions = sa.Table(
    "catalog_subscriptions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "resource_code", sa.String(64), sa.ForeignKey("catalog_resources.code"), nullable=False
    ),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("contract_major", sa.Integer, nullable=False),
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_until", sa.Date, nullable=True),
    sa.Column("declaration", sa.JSON, nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    # Where the checklist line comes from: `workspace` (a file, managed by `govex apply`) or
    # `request` (created by an approval; apply never changes or removes it).
    sa.Column("origin", sa.String(20), nullable=False, server_default="workspace"),
    sa.Column("request_id", sa.String(40), nullable=True),
    # `active`, or `revoked` (by its provider or the authority). An expired one stays `active`
    # with its valid_until in the past; `ended_at` is set when either ends delivery.
    sa.Column("state", sa.String(20), nullable=False, server_default="active"),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("ended_by", sa.String(100), nullable=True),
    sa.Column("ended_reason", sa.Text, nullable=True),
    sa.Column("purged_at", TS, nullable=True),
)

# Sharing requests (供需对接): a consumer asks, the authority reviews, the provider answers. The
# request keeps what was asked; `fields`/`masking` are narrowed in place by an approval, and
# each step (with its actor's department and role) is a row of `catalog_request_steps`.
requests = sa.Table(
    "catalog_requests",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),  # REQ-YYYYMMDD-NNNN
    sa.Column("resource_code", sa.String(64), nullable=False),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("masking", sa.JSON, nullable=False),
    sa.Column("delivery", sa.String(10), nullable=False, server_default="bulk"),
    sa.Column("target", sa.JSON, nullable=True),
    sa.Column("mode", sa.String(20), nullable=True),
    sa.Column("schedule", sa.String(100), nullable=True),  # when the consumer wants deliveries
    sa.Column("valid_from", sa.Date, nullable=False),
    sa.Column("valid_until", sa.Date, nullable=True),
    sa.Column("retain_after_end", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("due", TS, nullable=True),  # the deadline of the step now awaited
    sa.Column("subscription_id", sa.String(64), nullable=True),
    sa.Column("submitted_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)
sa.Index("ix_catalog_requests_state", requests.c.state)

request_steps = sa.Table(
    "catalog_request_steps",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(40), sa.ForeignKey("catalog_requests.id"), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("by_department", sa.String(64), nullable=False),
    sa.Column("by_role", sa.String(32), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
)
sa.Index("ix_catalog_request_steps_request", request_steps.c.request_id)

applies = sa.Table(
    "catalog_applies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("workspace", sa.String(1000), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("applied_at", TS, nullable=False),
)

# A workspace's reference lists (catalog.reference): the rows of its reference/*.csv as the last
# apply stored them, one row per list.
reference_lists = sa.Table(
    "catalog_reference_lists",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("rows", sa.JSON, nullable=False),
    sa.Column("file", sa.String(500), nullable=False),
    sa.Column("workspace", sa.String(1000), nullable=False),
    sa.Column("applied_at", TS, nullable=False),
)
