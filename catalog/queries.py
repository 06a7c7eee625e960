"""Reading the catalog back: what `govex catalog` and the API show."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import contracts
from govex.errors import DeclarationError

from . import tables
from .connections import ResolvedConnection, resolve_connection
from .declarations import Connection, Resource, Subscription


def list_resources(
    conn: sa.Connection,
    *,
    provider: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """One summary per resource, ordered by code: of one providing department when given,
    `limit` of them from `offset` (a page; `count_resources` gives the total)."""
    t, s = tables.resources, tables.subscriptions
    counts = (
        sa.select(s.c.resource_code, sa.func.count().label("n"))
        .group_by(s.c.resource_code)
        .subquery()
    )
    query = (
        sa.select(t, sa.func.coalesce(counts.c.n, 0).label("subscriptions"))
        .outerjoin(counts, counts.c.resource_code == t.c.code)
        .order_by(t.c.code)
        .offset(offset)
        .limit(limit)
    )
    if provider is not None:
        query = query.where(t.c.provider == provider)
    rows = conn.execute(query).mappings()
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


def count_resources(conn: sa.Connection, *, provider: str | None = None) -> int:
    """How many resources `list_resources` pages through."""
    query = sa.select(sa.func.count()).select_from(tables.resources)
    if provider is not None:
        query = query.where(tables.resources.c.provider == provider)
    return int(conn.execute(query).scalar_one())


def resource_providers(conn: sa.Connection) -> dict[str, str]:
    """Resource code -> providing department, without reading any declaration (two short
    columns per resource: cheap for thousands)."""
    t = tables.resources
    rows = conn.execute(sa.select(t.c.code, t.c.provider).order_by(t.c.code))
    return {code: provider for code, provider in rows}


def show_resource(conn: sa.Connection, code: str) -> dict[str, Any]:
    """The resource's declaration, its contract schema, provider and subscriptions."""
    row = _resource_row(conn, code)
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
    subscriptions = list(subscription_declarations(conn, code).values())
    return {
        **declaration,
        "provider_department": provider,
        "contract_schema": schema,
        "subscriptions": subscriptions,
        "file": row["file"],
        "updated_at": row["updated_at"].isoformat() if row["updated_at"] else None,
    }


def resource_declarations(
    conn: sa.Connection,
    *,
    codes: Collection[str] | None = None,
    providers: Collection[str] | None = None,
    exclude_providers: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """Every resource's declaration by code, in one query (the DAG factory reads this at parse
    time, so it must stay cheap for thousands of resources); only `codes`, only those of
    `providers`, none of `exclude_providers`, when given."""
    t = tables.resources
    query = sa.select(t.c.code, t.c.declaration).order_by(t.c.code)
    if codes is not None:
        query = query.where(t.c.code.in_(list(codes)))
    if providers is not None:
        query = query.where(t.c.provider.in_(list(providers)))
    if exclude_providers:
        query = query.where(t.c.provider.not_in(list(exclude_providers)))
    return {code: dict(declaration) for code, declaration in conn.execute(query)}


def subscription_declarations(
    conn: sa.Connection,
    resource: str | None = None,
    *,
    ids: Collection[str] | None = None,
    providers: Collection[str] | None = None,
    exclude_providers: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """Every subscription's declaration by id, in one query: of one resource, only `ids`, of
    the resources of `providers` and not of `exclude_providers`, when given."""
    s, t = tables.subscriptions, tables.resources
    query = sa.select(s.c.id, s.c.declaration).order_by(s.c.id)
    if resource is not None:
        query = query.where(s.c.resource_code == resource)
    if ids is not None:
        query = query.where(s.c.id.in_(list(ids)))
    if providers is not None or exclude_providers:
        query = query.join(t, t.c.code == s.c.resource_code)
        if providers is not None:
            query = query.where(t.c.provider.in_(list(providers)))
        if exclude_providers:
            query = query.where(t.c.provider.not_in(list(exclude_providers)))
    return {sub_id: dict(declaration) for sub_id, declaration in conn.execute(query)}


def load_contract_version(conn: sa.Connection, ref: str) -> contracts.Contract:
    """A registered contract version by `name@version`."""
    name, version = ref.split("@", 1)
    schema = conn.execute(
        sa.select(tables.contract_versions.c.schema).where(
            tables.contract_versions.c.name == name,
            tables.contract_versions.c.version == version,
        )
    ).scalar_one_or_none()
    if schema is None:
        msg = f"contract {ref} is not registered in the catalog"
        raise DeclarationError(msg, value=ref)
    return contracts.Contract(name=name, version=version, schema=dict(schema))


def load_resource(conn: sa.Connection, code: str) -> Resource:
    return Resource.model_validate(_resource_row(conn, code)["declaration"])


def _resource_row(conn: sa.Connection, code: str) -> sa.RowMapping:
    """The resource's catalog row; an unknown code is a declaration error naming it."""
    row = conn.execute(
        sa.select(tables.resources).where(tables.resources.c.code == code)
    ).mappings().one_or_none()
    if row is None:
        msg = f"unknown resource '{code}' (not in the catalog)"
        raise DeclarationError(msg, value=code)
    return row


def load_subscriptions(conn: sa.Connection, resource: str) -> list[Subscription]:
    return [
        Subscription.model_validate(d)
        for d in subscription_declarations(conn, resource).values()
    ]


def load_connection(
    conn: sa.Connection, name: str, env: Mapping[str, str] | None = None
) -> ResolvedConnection:
    """A stored connection, resolved now (its `${VAR}`s from this process's environment)."""
    row = conn.execute(
        sa.select(tables.connections).where(tables.connections.c.name == name)
    ).mappings().one_or_none()
    if row is None:
        msg = f"unknown connection '{name}' (not in the catalog)"
        raise DeclarationError(msg, value=name)
    declared = Connection.model_validate(row["declaration"])
    return resolve_connection(name, declared, Path(row["workspace"]), env, file=row["file"])
