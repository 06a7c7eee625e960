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
)

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
