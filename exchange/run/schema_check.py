"""Whether the tables a resource reads and writes still fit its contract.

Schema drift is not a quality problem: a source table that lost a column the contract requires
would otherwise be read, every record quarantined under `required`, and the provider told that
all its data is bad. So the run asks first (`require_fit`, before extract reads a row) and fails
at once with a `SchemaError` naming the table, the column and the contract version: nothing
judged, quarantined or delivered. `govex check` asks the same of a whole catalog and lists
every finding; `govex apply` asks it as a warning (or, with `--strict`, as a refusal).

- source: the table (file, query) exists and returns every column the contract requires, the
  key and the watermark; an optional contract column it lacks is read as null (info);
- target: an existing table can take the subscription's columns (the sink's own check,
  `SinkConnector.table_problems`: missing column, a type that cannot hold the values, NOT NULL,
  primary key); a table that does not exist yet is fine, govex creates it (info);
- a Kafka-fed source is skipped (note): each message is checked against the contract as it
  lands;
- a SQLite or file connection while staging is not local (warning): such a connection lives
  on one machine's disk, so with Airflow workers on several machines (the reason for staging
  on object storage) a step on another machine would read or write a different file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import sqlalchemy as sa

import catalog
import connectors
import contracts
from connectors.base import ReadSpec
from exchange.run.targets import target_spec
from govex.errors import GovexError, SchemaError
from govex.settings import load_settings
from govex.storage import is_local

__all__ = ["Finding", "Scope", "check", "check_resource", "require_fit", "scope_of_store",
           "scope_of_workspace", "single_machine"]

Level = Literal["problem", "warning", "info", "note"]


@dataclass(frozen=True)
class Finding:
    """One line of `govex check`: a `problem` fails a run (and the check); a `warning` does
    not, but names a setup that will go wrong; `info` and `note` say what govex will do or did
    not look at."""

    level: Level
    resource: str
    contract: str  # name@version
    side: Literal["source", "target"]
    connection: str
    table: str
    message: str  # one sentence naming the table, the column and the contract version
    column: str | None = None
    subscription: str | None = None

    def line(self) -> str:
        return f"{self.level}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scope:
    """What to check: resources with their contracts and subscriptions, and how a connection
    name resolves (from a workspace, or from the catalog in the store)."""

    resources: Sequence[catalog.Resource]
    contracts: Mapping[str, contracts.Contract]  # by name@version
    subscriptions: Mapping[str, Sequence[catalog.Subscription]]  # by resource code
    connection: Callable[[str], catalog.ResolvedConnection]


def _text_fields(contract: contracts.Contract) -> dict[str, pa.DataType]:
    """Contract text fields read as text from untyped files (as extract reads them)."""
    out: dict[str, pa.DataType] = {}
    for name in contract.fields:
        declared = contract.property(name).get("type", [])
        if "string" in ([declared] if isinstance(declared, str) else declared):
            out[name] = pa.string()
    return out


def check_source(
    resource: catalog.Resource, contract: contracts.Contract,
    resolved: catalog.ResolvedConnection,
) -> list[Finding]:
    """The resource's source against its contract (see the module docstring)."""
    decl = resource.source
    table = decl.table or "(query)"

    def finding(level: Level, message: str, column: str | None = None) -> Finding:
        return Finding(level, resource.code, contract.ref, "source", resolved.name, table,
                       message, column)

    if decl.kafka is not None:
        topic = decl.kafka.topic or f"govex.ingest.{resource.code}"
        return [finding("note", f"source of {resource.code} is Kafka topic '{topic}': "
                        f"skipped, each message is checked against contract {contract.ref} "
                        "as it lands")]
    spec = ReadSpec(table=decl.table, query=decl.query, columns=None, key=tuple(resource.key),
                    watermark=decl.watermark, types=_text_fields(contract))
    source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
    try:
        columns = source.describe(spec)
    except NotImplementedError:
        return [finding("note", f"source of {resource.code} in connection '{resolved.name}' "
                        "cannot be described without reading it: skipped")]
    finally:
        source.close()
    what = f"source table '{decl.table}'" if decl.table else f"the source query of {resource.code}"
    if columns is None:
        return [finding("problem", f"{what} does not exist in connection '{resolved.name}' "
                        f"(resource {resource.code}, contract {contract.ref})")]
    found: list[Finding] = []
    needed = {*contract.required, *resource.key,
              *(c for c in (decl.watermark, decl.deleted) if c)}
    for name in contract.fields:
        if name in columns:
            continue
        if name in needed:
            found.append(finding(
                "problem", f"{what} in connection '{resolved.name}' has no column '{name}', "
                f"which contract {contract.ref} requires (resource {resource.code})", name))
        else:
            found.append(finding(
                "info", f"{what} in connection '{resolved.name}' has no column '{name}' of "
                f"contract {contract.ref}; it is optional and read as empty", name))
    for name in sorted(needed - set(contract.fields) - set(columns)):  # a watermark outside it
        found.append(finding(
            "problem", f"{what} in connection '{resolved.name}' has no column '{name}', which "
            f"resource {resource.code} reads by (contract {contract.ref})", name))
    return found


def check_target(
    resource: catalog.Resource, contract: contracts.Contract, sub: catalog.Subscription,
    resolved: catalog.ResolvedConnection,
) -> list[Finding]:
    """One subscription's target table against what its deliveries write."""
    spec = target_spec(resource, contract, sub)
    table = sub.sink.table

    def finding(level: Level, message: str, column: str | None = None) -> Finding:
        return Finding(level, resource.code, contract.ref, "target", resolved.name,
                       table, message, column, sub.id)

    sink = connectors.open_sink(resolved.kind, resolved.target, resolved.format)
    try:
        problems = sink.table_problems(spec)
        added = sink.columns_to_add(spec) if problems is not None else []
    except NotImplementedError:
        return [finding("note", f"target table '{table}' of {sub.id} cannot be "
                        "inspected: skipped")]
    finally:
        sink.close()
    if problems is None:
        return [finding("info", f"target table '{table}' of {sub.id} does not exist "
                        f"in connection '{resolved.name}' yet; govex creates it on the first "
                        "delivery")]
    return [finding("problem", f"{message} (subscription {sub.id}, contract {contract.ref})",
                    column)
            for column, message in problems] + [
        finding("info", f"target table '{table}' of {sub.id} in connection "
                f"'{resolved.name}' has no column '{name}' yet; the next delivery adds it "
                "(existing rows take its default)", name)
        for name in added]


def check_resource(
    resource: catalog.Resource, contract: contracts.Contract,
    subscriptions: Iterable[catalog.Subscription],
    connection: Callable[[str], catalog.ResolvedConnection],
    *,
    unreachable_is_a_problem: bool = True,
) -> list[Finding]:
    """The source and every subscription target of one resource. A table that cannot be
    reached at all is a problem too (the message names the connection), unless
    `unreachable_is_a_problem` is False: a run lets such an error through as it is, so that a
    database that is briefly down stays a transient error, retried."""
    source = resource.source
    Job = Callable[[catalog.ResolvedConnection], list[Finding]]
    jobs: list[tuple[Literal["source", "target"], str, str, str | None, Job]] = [
        ("source", source.connection, source.table or "(query)", None,
         partial(check_source, resource, contract)),
    ]
    for sub in subscriptions:
        if sub.target is not None:  # a verify subscription has no table to check
            jobs.append(("target", sub.target.connection, sub.target.table, sub.id,
                         partial(check_target, resource, contract, sub)))
    found: list[Finding] = []
    for side, name, table, sub_id, job in jobs:
        try:
            found += job(connection(name))
        except GovexError as error:
            if not unreachable_is_a_problem:
                raise
            found.append(Finding(
                "problem", resource.code, contract.ref, side, name, table,
                f"cannot check the {side} table '{table}' of {sub_id or resource.code} in "
                f"connection '{name}': {error}", None, sub_id))
    return found


def check(scope: Scope) -> list[Finding]:
    """Every resource of `scope`, in code order."""
    found: list[Finding] = []
    staging = load_settings().staging_url
    for resource in sorted(scope.resources, key=lambda r: r.code):
        subscriptions = scope.subscriptions.get(resource.code, ())
        found += check_resource(resource, scope.contracts[resource.contract], subscriptions,
                                scope.connection)
        if not is_local(staging):
            found += single_machine(resource, subscriptions, scope.connection, staging)
    return found


def single_machine(
    resource: catalog.Resource, subscriptions: Iterable[catalog.Subscription],
    connection: Callable[[str], catalog.ResolvedConnection], staging: str,
) -> list[Finding]:
    """A warning per SQLite or file connection of `resource`: staging at `staging` (not local)
    says the run's steps may work on different machines, and such a connection is a file on
    one machine's disk. One that cannot be resolved is left to `check_resource`."""
    sides: list[tuple[Literal["source", "target"], str, str, str | None]] = [
        ("source", resource.source.connection, resource.source.table or "(query)", None)]
    sides += [("target", s.target.connection, s.target.table, s.id)
              for s in subscriptions if s.target is not None]
    found: list[Finding] = []
    for side, name, table, sub_id in sides:
        try:
            resolved = connection(name)
        except GovexError:
            continue
        what = ("a file connection" if resolved.kind == "path"
                else "a SQLite database" if resolved.target.startswith("sqlite") else None)
        if what is not None:
            found.append(Finding(
                "warning", resource.code, resource.contract, side, name, table,
                f"connection '{name}' ({side} of {sub_id or resource.code}) is {what}, on "
                f"one machine's disk, while staging is at {staging}: run every step of "
                f"{resource.code} on that machine, or move the data to a database server",
                None, sub_id))
    return found


def require_fit(findings: Iterable[Finding]) -> None:
    """Raise SchemaError naming every problem (`schema: …`), when there is any."""
    problems = [f.message for f in findings if f.level == "problem"]
    if problems:
        raise SchemaError("schema: " + "; ".join(problems))


def scope_of_workspace(root: Path) -> Scope:
    """A workspace as `govex apply` would apply it (DeclarationError when it is invalid)."""
    ws = catalog.load_workspace(root)
    subs: dict[str, list[catalog.Subscription]] = {}
    for declared in ws.subscriptions.values():
        subs.setdefault(declared.item.resource, []).append(declared.item)

    def connection(name: str) -> catalog.ResolvedConnection:
        declared = ws.connections[name]
        return catalog.resolve_connection(name, declared.item, ws.root, file=declared.file)

    return Scope(
        resources=[d.item for d in ws.resources.values()],
        contracts={ref: d.item for ref, d in ws.contracts.items()},
        subscriptions=subs,
        connection=connection,
    )


def scope_of_store(store: sa.Engine) -> Scope:
    """The catalog applied to the metadata store."""
    with store.connect() as conn:
        resources = [catalog.load_resource(conn, r["code"])
                     for r in catalog.list_resources(conn)]
        refs = {r.contract for r in resources}
        found = {ref: catalog.load_contract_version(conn, ref) for ref in refs}
        subs = {r.code: catalog.load_subscriptions(conn, r.code) for r in resources}

    def connection(name: str) -> catalog.ResolvedConnection:
        with store.connect() as conn:
            return catalog.load_connection(conn, name)

    return Scope(resources=resources, contracts=found, subscriptions=subs,
                 connection=connection)
