"""A generated catalog at scale, for `govex bench catalog` and the scale tests: N resources
spread over about 200 departments, one subscription each, and a short history of runs with
quality results and some quarantined records.

Two ways in, the same store either way. `write_workspace` writes the declarations as a
workspace (departments, a source and a target connection per department, one contract, a file
per resource and per subscription) for `govex apply`. `insert_catalog` validates the same
declarations with the workspace's own models and writes the rows `govex apply` would write,
without reading 2 × N YAML files back: at 5,000 resources that reading alone takes apply
about a minute (pure-Python YAML), which is apply's cost, not what the benchmark measures. The
run history goes straight into the run and quality tables, as finished runs leave them.
Deterministic: the same arguments give the same store.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

DEPARTMENTS = 200
RUNS_PER_RESOURCE = 5
CONTRACT_NAME, CONTRACT_VERSION = "scale_record", "1.0.0"
CONTRACT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "generated record",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "updated_at"],
    "properties": {
        "id": {"type": "string", "maxLength": 20},
        "name": {"type": "string", "maxLength": 50},
        "amount": {"type": ["number", "null"], "minimum": 0},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
FREQUENCIES = ("P1D", "PT6H", "P1M", "P7D")
SCHEDULES = ("@daily", "@hourly", "0 */6 * * *", None)
CHECKS = (("required", "name"), ("maxLength", "name"), ("minimum", "amount"))
# Fixed, so the generated history (and the page sizes measured on it) is the same every run.
NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def department(n: int) -> str:
    return f"d{n:03d}"


def resource_code(i: int) -> str:
    return f"GEN-RES-{i:05d}"


def provider_of(i: int, departments: int = DEPARTMENTS) -> str:
    """Resources go round the departments: resource i is provided by department i mod D."""
    return department(i % departments)


@dataclass(frozen=True)
class Declarations:
    """The generated workspace, as the plain mappings its files hold."""

    departments: list[dict[str, Any]]
    connections: dict[str, dict[str, Any]]
    resources: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]


def declarations(resources: int, departments: int = DEPARTMENTS) -> Declarations:
    """`resources` resources over `departments` departments, each resource with one
    subscription by the next department; every tenth resource is fed over Kafka."""
    depts = [{"code": department(n), "name": f"生成部门 {n:03d}"} for n in range(departments)]
    connections: dict[str, dict[str, Any]] = {"bus": {"kafka": "127.0.0.1:9092"}}
    for n in range(departments):
        code = department(n)
        connections[f"{code}_src"] = {"url": f"sqlite:///data/{code}_src.db", "owner": code}
        connections[f"{code}_dst"] = {"url": f"sqlite:///data/{code}_dst.db", "owner": code}
    declared, subscribed = [], []
    for i in range(resources):
        code, provider = resource_code(i), provider_of(i, departments)
        consumer = department((i + 1) % departments)
        declared.append({
            "code": code,
            "name": f"生成资源 {i:05d}",
            "description": "generated for the catalog scale benchmark",
            "provider": provider,
            "contract": f"{CONTRACT_NAME}@{CONTRACT_VERSION}",
            "key": ["id"],
            "elements": {"id": f"gen{i}.id", "name": f"gen{i}.name"},
            "source": {"connection": "bus", "kafka": {"topic": f"govex.ingest.{code}"}}
            if i % 10 == 0 else {"connection": f"{provider}_src", "table": f"gen_{i:05d}",
                                 "watermark": "updated_at"},
            "sharing": "unconditional",
            "classification": "L2",
            "update_frequency": FREQUENCIES[i % len(FREQUENCIES)],
            "quality": {"max_error_rate": 0.05},
        })
        subscription: dict[str, Any] = {
            "id": f"SUB-GEN-{i:05d}",
            "resource": code,
            "consumer": consumer,
            "purpose": "catalog scale benchmark",
            "fields": ["id", "name"],
            "target": {"connection": f"{consumer}_dst", "table": f"gen_{i:05d}"},
            "mode": "upsert",
            "valid_from": "2026-01-01",
            "valid_until": "2028-12-31",
        }
        if SCHEDULES[i % len(SCHEDULES)]:
            subscription["schedule"] = SCHEDULES[i % len(SCHEDULES)]
        subscribed.append(subscription)
    return Declarations(depts, connections, declared, subscribed)


def _dump(path: Path, value: Any) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when built with it
    path.write_text(yaml.dump(value, Dumper=dumper, allow_unicode=True), encoding="utf-8")


def write_workspace(root: Path, resources: int, departments: int = DEPARTMENTS) -> Path:
    """The generated declarations as a workspace at `root`, for `govex apply`."""
    generated = declarations(resources, departments)
    folder = root / "contracts" / CONTRACT_NAME
    folder.mkdir(parents=True)
    (folder / f"{CONTRACT_VERSION}.json").write_text(json.dumps(CONTRACT), encoding="utf-8")
    _dump(root / "departments.yaml", {"departments": generated.departments})
    _dump(root / "connections.yaml", {"connections": generated.connections})
    (root / "resources").mkdir()
    (root / "subscriptions").mkdir()
    for resource in generated.resources:
        _dump(root / "resources" / f"{resource['code']}.yaml", resource)
    for subscription in generated.subscriptions:
        _dump(root / "subscriptions" / f"{subscription['id']}.yaml", subscription)
    return root


def insert_catalog(engine: sa.Engine, resources: int, departments: int = DEPARTMENTS) -> None:
    """The generated declarations, validated by the workspace's models, written as the catalog
    rows `govex apply` writes for them (into an empty catalog, in one transaction)."""
    import catalog
    from catalog import tables

    generated = declarations(resources, departments)
    now = dt.datetime.now(dt.UTC)
    workspace, file = "generated", "generated.yaml"
    depts = [catalog.Department.model_validate(d) for d in generated.departments]
    conns = {k: catalog.Connection.model_validate(v) for k, v in generated.connections.items()}
    declared = [catalog.Resource.model_validate(r) for r in generated.resources]
    subscribed = [catalog.Subscription.model_validate(s) for s in generated.subscriptions]
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.departments), [
            {"code": d.code, "name": d.name, "declaration": d.model_dump(mode="json"),
             "file": "departments.yaml", "updated_at": now} for d in depts])
        conn.execute(sa.insert(tables.connections), [
            {"name": name, "kind": c.kind,
             "declaration": c.model_dump(mode="json", exclude_none=True),
             "workspace": workspace, "file": "connections.yaml", "updated_at": now}
            for name, c in conns.items()])
        conn.execute(sa.insert(tables.contract_versions), [{
            "name": CONTRACT_NAME, "version": CONTRACT_VERSION, "major": 1, "schema": CONTRACT,
            "digest": "generated", "file": file, "registered_at": now}])
        conn.execute(sa.insert(tables.resources), [
            {"code": r.code, "name": r.name, "provider": r.provider,
             "contract_name": r.contract_name, "contract_version": r.contract_version,
             "sharing": r.sharing, "classification": r.classification,
             "declaration": r.model_dump(mode="json", exclude_none=True),
             "file": f"resources/{r.code}.yaml", "updated_at": now} for r in declared])
        conn.execute(sa.insert(tables.data_elements), [
            {"element": element, "resource_code": r.code, "field": field}
            for r in declared for field, element in r.elements.items()])
        conn.execute(sa.insert(tables.subscriptions), [
            {"id": s.id, "resource_code": s.resource, "consumer": s.consumer,
             "contract_major": 1, "valid_from": s.valid_from, "valid_until": s.valid_until,
             "declaration": s.model_dump(mode="json", exclude_none=True),
             "file": f"subscriptions/{s.id}.yaml", "updated_at": now} for s in subscribed])


def write_history(engine: sa.Engine, resources: int, runs_per_resource: int = RUNS_PER_RESOURCE,
                  now: dt.datetime = NOW) -> int:
    """`runs_per_resource` finished runs per resource (daily, the last an hour before `now`;
    every seventh run blocked), their deliveries and per-check results, and two quarantined
    records for every tenth resource. Returns the number of runs written."""
    from exchange.run.bookkeeping import deliveries, runs
    from exchange.web.queries import check_results, quarantine

    run_rows, delivery_rows, result_rows, quarantined = [], [], [], []
    for i in range(resources):
        code = resource_code(i)
        for r in range(runs_per_resource):
            n = i * runs_per_resource + r
            run_id = f"00000000-0000-7000-8000-{n:012d}"
            started = now - dt.timedelta(days=runs_per_resource - 1 - r, hours=1)
            read = 100 + n % 900
            failed = (n * 7) % 11
            status = "blocked" if n % 7 == 3 else "success"
            run_rows.append({
                "run_id": run_id, "resource": code, "status": status, "subscription": None,
                "subscriptions": [f"SUB-GEN-{i:05d}"], "full": False, "parent": None,
                "cursor_start": None, "cursor_end": None, "read": read,
                "passed": read - failed, "quarantined": failed, "started_at": started,
                "ended_at": started + dt.timedelta(minutes=2), "message": "",
                "backfills": None,
            })
            if status == "success":
                delivery_rows.append({
                    "run_id": run_id, "subscription": f"SUB-GEN-{i:05d}", "status": "success",
                    "delivered": read - failed, "started_at": started,
                    "ended_at": started + dt.timedelta(minutes=1), "message": None,
                    "backfill": False,
                })
            for c, (check, column) in enumerate(CHECKS):
                bad = failed // (c + 1)
                result_rows.append({
                    "run_id": run_id, "resource": code, "check": check, "column": column,
                    "evaluated": read, "failed": bad, "failure_rate": bad / read,
                    "recorded_at": started,
                })
        if i % 10 == 0 and runs_per_resource:
            for k in range(2):
                quarantined.append({
                    "resource": code, "record_key": f"{i:05d}-{k}",
                    "run_id": f"00000000-0000-7000-8000-{i * runs_per_resource:012d}",
                    "failed_checks": [{"check": "required", "column": "name"}],
                    "record": {"id": f"{i:05d}-{k}", "name": None},
                    "first_seen": now - dt.timedelta(days=3 - k),
                    "last_seen": now - dt.timedelta(hours=1),
                })
    with engine.begin() as conn:
        for table, rows in ((runs, run_rows), (deliveries, delivery_rows),
                            (check_results, result_rows), (quarantine, quarantined)):
            for start in range(0, len(rows), 5000):
                conn.execute(sa.insert(table), rows[start:start + 5000])
    return len(run_rows)


def build_store(
    url: str, resources: int, *, departments: int = DEPARTMENTS,
    runs_per_resource: int = RUNS_PER_RESOURCE, apply_from: Path | None = None,
) -> sa.Engine:
    """A fresh store at `url` (migrated) holding the generated catalog and its run history;
    through `govex apply` of a workspace written at `apply_from` when given, else
    `insert_catalog`. The caller disposes of the engine."""
    import catalog
    from exchange.store import create_store_engine, upgrade

    engine = create_store_engine(url)
    upgrade(engine)
    if apply_from is not None:
        catalog.apply_workspace(engine, write_workspace(apply_from, resources, departments))
    else:
        insert_catalog(engine, resources, departments)
    write_history(engine, resources, runs_per_resource)
    if engine.dialect.name == "postgresql":
        # A bulk load has no planner statistics until autovacuum gets to it; a store that has
        # grown to this size has them.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
    return engine
