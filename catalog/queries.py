"""Reading the catalog back: what `govex catalog` and the API show."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from govex.errors import DeclarationError

from . import tables


def list_resources(conn: sa.Connection) -> list[dict[str, Any]]:
    """One summary per resource, ordered by code."""
    t, s = tables.resources, tables.subscriptions
    counts = (
        sa.select(s.c.resource_code, sa.func.count().label("n"))
        .group_by(s.c.resource_code)
        .subquery()
    )
    rows = conn.execute(
        sa.select(t, sa.func.coalesce(counts.c.n, 0).label("subscriptions"))
        .outerjoin(counts, counts.c.resource_code == t.c.code)
        .order_by(t.c.code)
    ).mappings()
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "provider": r["provider"],
            "contract": f"{r['contract_name']}@{r['contract_version']}",
            "sharing": r["sharing"],
            "classification": r["classification"],
            "update_frequency": r["declaration"]["update_frequency"],
            "subscriptions": int(r["subscriptions"]),
        }
        for r in rows
    ]


def show_resource(conn: sa.Connection, code: str) -> dict[str, Any]:
    """The resource's declaration, its contract schema, provider and subscriptions."""
    row = conn.execute(
        sa.select(tables.resources).where(tables.resources.c.code == code)
    ).mappings().first()
    if row is None:
        msg = f"unknown resource '{code}' (not in the catalog)"
        raise DeclarationError(msg, value=code)
    declaration = dict(row["declaration"])
    schema = conn.execute(
        sa.select(tables.contract_versions.c.schema).where(
            tables.contract_versions.c.name == row["contract_name"],
            tables.contract_versions.c.version == row["contract_version"],
        )
    ).scalar_one()
    provider = conn.execute(
        sa.select(tables.departments.c.declaration).where(
            tables.departments.c.code == row["provider"]
        )
    ).scalar_one()
    subscriptions = [
        r["declaration"]
        for r in conn.execute(
            sa.select(tables.subscriptions)
            .where(tables.subscriptions.c.resource_code == code)
            .order_by(tables.subscriptions.c.id)
        ).mappings()
    ]
    return {
        **declaration,
        "provider_department": provider,
        "contract_schema": schema,
        "subscriptions": subscriptions,
        "file": row["file"],
        "updated_at": row["updated_at"].isoformat() if row["updated_at"] else None,
    }
