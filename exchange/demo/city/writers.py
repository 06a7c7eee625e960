"""Where the generated rows go: read the workspace's resources and contracts to learn each
source's connection, table, key and column types, then (re)create the tables or files.

Reads the workspace YAML/JSON directly (only the few keys it needs) rather than through the
catalog, so the generator also works on a workspace that has not been applied.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
import yaml

from exchange.demo.city.manifest import GeneratedResource
from govex.errors import DeclarationError, FatalError, TransientError

ColumnKind = Literal["string", "date", "datetime", "integer", "number", "boolean"]
#: Rows per INSERT executemany (SQLAlchemy turns each into multi-row VALUES statements).
BATCH_ROWS = 1000


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    max_length: int | None


@dataclass(frozen=True)
class SourcePlan:
    """Where one resource's generated rows are written."""

    code: str
    connection: str
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    file_format: Literal["csv", "jsonl"] | None  # None: a SQL table


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        msg = f"cannot read YAML: {e}"
        raise DeclarationError(msg, file=str(path)) from e


def _column(name: str, prop: Mapping[str, Any], file: Path) -> Column:
    types = prop.get("type")
    names = [types] if isinstance(types, str) else [t for t in (types or []) if t != "null"]
    if len(names) != 1:
        msg = "needs exactly one non-null JSON Schema type"
        raise DeclarationError(msg, file=str(file), field=name, value=types)
    kind: ColumnKind
    if names[0] == "string":
        fmt = prop.get("format")
        kind = "date" if fmt == "date" else "datetime" if fmt == "date-time" else "string"
    elif names[0] == "integer":
        kind = "integer"
    elif names[0] == "number":
        kind = "number"
    elif names[0] == "boolean":
        kind = "boolean"
    else:
        msg = "has a type a table column cannot hold"
        raise DeclarationError(msg, file=str(file), field=name, value=names[0])
    max_length = prop.get("maxLength")
    return Column(name, kind, int(max_length) if max_length is not None else None)


def plan_sources(
    workspace: Path, targets: Mapping[str, str], known: Sequence[str]
) -> list[SourcePlan]:
    """One plan per table- or file-sourced resource in `workspace` whose code is in `known`."""
    connections = (_load_yaml(workspace / "connections.yaml") or {}).get("connections") or {}
    plans: list[SourcePlan] = []
    for path in sorted((workspace / "resources").glob("*.yaml")):
        res = _load_yaml(path) or {}
        code, source = str(res.get("code")), res.get("source") or {}
        if code not in known or "table" not in source:
            continue  # Kafka-fed, query-sourced or not the demo's: nothing to generate
        conn_name = str(source.get("connection"))
        name, _, version = str(res.get("contract", "")).partition("@")
        contract_file = workspace / "contracts" / name / f"{version}.json"
        try:
            contract = json.loads(contract_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            msg = f"cannot read contract: {e}"
            raise DeclarationError(msg, file=str(contract_file)) from e
        columns = tuple(_column(k, v, contract_file) for k, v in contract["properties"].items())
        conn = connections.get(conn_name) or {}
        fmt = conn.get("format", "csv") if "path" in conn else None
        if fmt not in (None, "csv", "jsonl"):
            msg = "format must be csv or jsonl"
            raise DeclarationError(msg, file="connections.yaml", field=conn_name, value=fmt)
        plans.append(
            SourcePlan(
                code=code,
                connection=conn_name,
                table=source["table"],
                key=tuple(res.get("key") or ()),
                columns=columns,
                file_format=fmt,
            )
        )
    missing = sorted({p.connection for p in plans} - set(targets))
    if missing:
        msg = (
            f"no target given for connection(s) {', '.join(missing)}; pass one per source "
            "connection (a SQLAlchemy URL, or a directory for a file connection)"
        )
        raise DeclarationError(
            msg,
            field="targets",
        )
    return plans


def write_sources(
    plans: Sequence[SourcePlan],
    generated: Mapping[str, GeneratedResource],
    targets: Mapping[str, str],
) -> None:
    for plan in plans:
        names = [c.name for c in plan.columns]
        rows = generated[plan.code].rows
        if rows and list(rows[0]) != names:
            msg = f"contract columns {names} do not match the generator's {list(rows[0])}"
            raise DeclarationError(
                msg,
                field=plan.code,
            )
    by_connection: dict[str, list[SourcePlan]] = {}
    for plan in plans:
        by_connection.setdefault(plan.connection, []).append(plan)
    for conn_name, conn_plans in by_connection.items():
        target = targets[conn_name]
        if conn_plans[0].file_format is not None:
            for plan in conn_plans:
                _write_file(Path(target), plan, generated[plan.code].rows)
        else:
            _write_sql(conn_name, target, [(p, generated[p.code].rows) for p in conn_plans])


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    if isinstance(value, dt.date):  # also datetime, whose isoformat keeps the UTC offset
        return value.isoformat()
    return value


def _write_file(directory: Path, plan: SourcePlan, rows: Sequence[Mapping[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{plan.table}.{plan.file_format}"
    names = [c.name for c in plan.columns]
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        if plan.file_format == "csv":
            # A null is an empty cell; the CSV has a header row and RFC 4180 quoting.
            writer = csv.writer(f)
            writer.writerow(names)
            writer.writerows([["" if r[n] is None else _text(r[n]) for n in names] for r in rows])
        else:
            for r in rows:
                record = {n: _text(r[n]) for n in names}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)  # readers never see a half-written file


# ---------------------------------------------------------------------------------------------
# SQL databases
# ---------------------------------------------------------------------------------------------


def _sa_type(col: Column) -> sa.types.TypeEngine[Any]:
    if col.kind == "string":
        # Source systems are looser than the contract (a phone column wide enough for
        # "139-1234-5678"): the quality gate, not the DDL, must catch an over-long value.
        return sa.String(max(2 * col.max_length, 32) if col.max_length else 255)
    if col.kind == "date":
        return sa.Date()
    if col.kind == "datetime":
        return sa.DateTime(timezone=True)
    if col.kind == "integer":
        return sa.BigInteger()
    if col.kind == "number":
        return sa.Double()
    return sa.Boolean()


def _table(metadata: sa.MetaData, plan: SourcePlan) -> sa.Table:
    # Only key columns are NOT NULL: a source system is where nulls in required fields come
    # from, and the quality gate (not the DDL) must be the one to catch them.
    return sa.Table(
        plan.table,
        metadata,
        *(
            sa.Column(
                c.name, _sa_type(c), primary_key=c.name in plan.key, nullable=c.name not in plan.key
            )
            for c in plan.columns
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_unicode_ci",
        mysql_engine="InnoDB",
    )


def _ensure_database(url: sa.URL) -> None:
    """Create the database a PostgreSQL/MariaDB URL names, or a SQLite file's directory."""
    backend, name = url.get_backend_name(), url.database
    if backend == "sqlite":
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return
    if not name or backend not in ("postgresql", "mysql", "mariadb"):
        return
    # URL.set() treats None as "leave unchanged"; URL is a NamedTuple, so _replace clears it.
    admin_url = url._replace(database="postgres" if backend == "postgresql" else None)
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            if backend == "postgresql":
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if exists is None:
                    conn.execute(sa.text(f"CREATE DATABASE {quoted} ENCODING 'UTF8'"))
            else:
                conn.execute(
                    sa.text(
                        f"CREATE DATABASE IF NOT EXISTS {quoted} "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                )
    finally:
        engine.dispose()


def _batches(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[Sequence[Mapping[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _write_sql(
    conn_name: str, target: str, tables: Iterable[tuple[SourcePlan, Sequence[Mapping[str, Any]]]]
) -> None:
    try:
        url = sa.make_url(target)
    except sa.exc.ArgumentError as e:
        msg = "is not a SQLAlchemy URL"
        raise DeclarationError(msg, field=conn_name, value=target) from e
    shown = url.render_as_string(hide_password=True)
    try:
        _ensure_database(url)
        engine = sa.create_engine(url)
        try:
            metadata = sa.MetaData()
            with engine.begin() as conn:
                for plan, rows in tables:
                    table = _table(metadata, plan)
                    table.drop(conn, checkfirst=True)
                    table.create(conn)
                    for batch in _batches(rows, BATCH_ROWS):
                        conn.execute(table.insert(), list(batch))
        finally:
            engine.dispose()
    except sa.exc.OperationalError as e:
        msg = f"connection {conn_name}: cannot write the demo data to {shown}: {e.orig}"
        raise TransientError(msg) from e
    except sa.exc.SQLAlchemyError as e:
        msg = f"connection {conn_name}: writing the demo data to {shown} failed: {e}"
        raise FatalError(msg) from e
