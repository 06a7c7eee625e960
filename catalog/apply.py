"""`govex apply`: validate everything, plan, then write the whole plan in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from govex.errors import DeclarationError, DeclarationErrors
from govex.workdays import local_date

from . import reference, tables
from .connections import ResolvedConnection, resolve_connection
from .declarations import Subscription
from .indistinguishable import indistinguishable, twin_warning
from .plan import KindPlan, Plan, declarations, digest, make_plan
from .rules import check_workspace, pinned_major
from .state import StoredState, read_state
from .workspace import Workspace, read_workspace


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    applied: bool
    # Sentences worth knowing that refuse nothing (`indistinguishable` subscriptions).
    warnings: tuple[str, ...] = ()


def apply_workspace(
    engine: sa.Engine,
    root: Path,
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
    today: dt.date | None = None,
    on_applied: Callable[[sa.Connection, Plan], None] | None = None,
    secret: bytes | None = None,
) -> ApplyResult:
    """Load and check `root`; unless `dry_run`, make the store match it atomically.

    Raises DeclarationErrors listing every problem (of the files that did not parse and of
    the rules on those that did, in one round), in which case nothing is written.
    `on_applied` runs inside the apply's transaction after the writes (the audit log entry),
    so the catalog change and its record commit together or not at all. With `secret` (the
    master key) each connection's resolved value is fingerprinted, so that a `${VAR}` that
    now resolves otherwise shows the connection as changed.
    """
    ws, errors = read_workspace(root)
    env = os.environ if env is None else env
    today = today or local_date()
    resolved: dict[str, ResolvedConnection] = {}
    for name, declared in ws.connections.items():
        try:
            resolved[name] = resolve_connection(
                name, declared.item, ws.root, env, file=declared.file
            )
        except DeclarationError as error:
            errors.append(error)
    division_codes = None
    try:
        division_codes = reference.read_division_codes(root)
    except DeclarationError as error:
        errors.append(error)
    with engine.begin() as conn:
        stored = read_state(conn)
        errors += check_workspace(ws, stored, today, resolved)
        if errors:
            raise DeclarationErrors(errors)
        prints = {n: fingerprint(secret, r) for n, r in resolved.items()} if secret else {}
        plan = make_plan(ws, stored, prints)
        plan = reference.plan_with_reference(plan, division_codes, reference.read_stored(conn))
        warnings = _twin_warnings(ws, stored)
        if dry_run or plan.empty:
            return ApplyResult(plan, applied=False, warnings=warnings)
        _write(conn, ws, stored, plan, prints)
        reference.write_reference(conn, ws.root, division_codes, plan)
        if on_applied is not None:
            on_applied(conn, plan)
    return ApplyResult(plan, applied=True, warnings=warnings)


def _twin_warnings(ws: Workspace, stored: StoredState) -> tuple[str, ...]:
    """One warning per group of subscriptions leak tracing cannot tell apart, among the
    checklist this apply leaves: the workspace's and those approvals made."""
    subs = {k: d.item for k, d in ws.subscriptions.items()}
    for sub_id, held in stored.from_requests().items():
        try:
            subs.setdefault(sub_id, Subscription.model_validate(held.declaration))
        except ValidationError:  # pragma: no cover - an approval's own declaration; a warning
            continue  # must never refuse an apply
    return tuple(
        twin_warning(subs[group[0]].resource, group)
        for group in indistinguishable(subs.values())
    )


def fingerprint(secret: bytes, connection: ResolvedConnection) -> str:
    """HMAC-SHA256 of a connection's resolved value: comparable across applies, useless to
    anyone reading the store without the master key (the URL may hold a password)."""
    text = f"{connection.kind}\x00{connection.target}\x00{connection.format or ''}"
    return hmac.new(secret, text.encode(), hashlib.sha256).hexdigest()


def _write(
    conn: sa.Connection,
    ws: Workspace,
    stored: StoredState,
    plan: Plan,
    prints: dict[str, str] | None = None,
) -> None:
    now = dt.datetime.now(dt.UTC)
    desired = declarations(ws)
    kinds = plan.kinds
    t = tables
    # Removals first, children before parents; then parents before children.
    _delete(conn, t.subscriptions.c.id, kinds["subscriptions"].removed)
    _delete(
        conn,
        t.data_elements.c.resource_code,
        kinds["resources"].removed + kinds["resources"].changed,
    )
    _delete(conn, t.resources.c.code, kinds["resources"].removed)
    _delete(conn, t.connections.c.name, kinds["connections"].removed)
    _delete(conn, t.departments.c.code, kinds["departments"].removed)

    def department(k: str) -> dict[str, Any]:
        d = ws.departments[k]
        return {"code": k, "name": d.item.name, "declaration": desired["departments"][k],
                "file": d.file, "updated_at": now}

    def connection(k: str) -> dict[str, Any]:
        d = ws.connections[k]
        return {"name": k, "kind": d.item.kind, "declaration": desired["connections"][k],
                "workspace": str(ws.root), "file": d.file, "updated_at": now,
                "fingerprint": (prints or {}).get(k)}

    def contract(k: str) -> dict[str, Any]:
        c = ws.contracts[k].item
        return {"name": c.name, "version": c.version, "major": c.semver[0], "schema": c.schema,
                "digest": digest(c.schema), "file": ws.contracts[k].file, "registered_at": now}

    def resource(k: str) -> dict[str, Any]:
        r = ws.resources[k].item
        return {"code": k, "name": r.name, "provider": r.provider,
                "contract_name": r.contract_name, "contract_version": r.contract_version,
                "sharing": r.sharing, "classification": r.classification,
                "declaration": desired["resources"][k], "file": ws.resources[k].file,
                "updated_at": now}

    def subscription(k: str) -> dict[str, Any]:
        s = ws.subscriptions[k].item
        return {"id": k, "resource_code": s.resource, "consumer": s.consumer,
                "contract_major": pinned_major(ws, stored, s), "valid_from": s.valid_from,
                "valid_until": s.valid_until, "declaration": desired["subscriptions"][k],
                "file": ws.subscriptions[k].file, "updated_at": now}

    _save(conn, t.departments, ["code"], kinds["departments"], department)
    _save(conn, t.connections, ["name"], kinds["connections"], connection)
    # Connections applied before fingerprints existed get theirs, so the next apply compares.
    for name, value in (prints or {}).items():
        if name in stored.connections and stored.connection_fingerprints.get(name) is None:
            conn.execute(sa.update(t.connections).where(t.connections.c.name == name)
                         .values(fingerprint=value))
    _save(conn, t.contract_versions, ["name", "version"], kinds["contracts"], contract)
    _save(conn, t.resources, ["code"], kinds["resources"], resource)
    _insert(conn, t.data_elements, [
        {"element": e, "resource_code": k, "field": f}
        for k in kinds["resources"].added + kinds["resources"].changed
        for f, e in ws.resources[k].item.elements.items()
    ])
    _save(conn, t.subscriptions, ["id"], kinds["subscriptions"], subscription)
    conn.execute(
        sa.insert(t.applies),
        {"workspace": str(ws.root), "plan": plan.to_json(), "applied_at": now},
    )


def _delete(conn: sa.Connection, column: sa.Column[Any], keys: tuple[str, ...]) -> None:
    if keys:
        conn.execute(sa.delete(column.table).where(column.in_(keys)))


def _save(
    conn: sa.Connection,
    table: sa.Table,
    key_columns: list[str],
    kind: KindPlan,
    row: Callable[[str], dict[str, Any]],
) -> None:
    """Insert the added rows and update the changed ones in place (keeps foreign keys valid)."""
    _insert(conn, table, [row(k) for k in kind.added])
    for k in kind.changed:
        values = row(k)
        where = [table.c[c] == values[c] for c in key_columns]
        conn.execute(sa.update(table).where(*where).values(values))


def _insert(conn: sa.Connection, table: sa.Table, values: list[dict[str, Any]]) -> None:
    if values:
        conn.execute(sa.insert(table), values)
