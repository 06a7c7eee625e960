"""What the metadata store currently holds, read in one go for planning and checking."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from . import tables


@dataclass(frozen=True)
class StoredContract:
    name: str
    version: str
    major: int
    schema: dict[str, Any]
    digest: str
    file: str


@dataclass(frozen=True)
class StoredSubscription:
    declaration: dict[str, Any]
    contract_major: int
    file: str
    # `workspace` (a file, managed by apply) or `request` (an approval's; apply never touches it)
    origin: str = "workspace"
    request_id: str | None = None


@dataclass(frozen=True)
class StoredRequest:
    """A sharing request as far as apply needs it: what was approved, and its subscription."""

    id: str
    state: str
    resource: str
    consumer: str
    fields: tuple[str, ...]
    masking: dict[str, str]
    target: dict[str, Any] | None
    mode: str | None
    subscription_id: str | None
    delivery: str = "bulk"


@dataclass
class StoredState:
    """Declarations as last applied, keyed like the workspace."""

    departments: dict[str, dict[str, Any]] = field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    contracts: dict[str, StoredContract] = field(default_factory=dict)  # by "name@version"
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_files: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, StoredSubscription] = field(default_factory=dict)
    connection_workspaces: dict[str, str] = field(default_factory=dict)
    # Keyed hash of each connection's resolved value at its last apply (None: not known).
    connection_fingerprints: dict[str, str | None] = field(default_factory=dict)
    requests: dict[str, StoredRequest] = field(default_factory=dict)

    def from_requests(self) -> dict[str, StoredSubscription]:
        """The subscriptions an approval created (origin `request`), by id."""
        return {k: s for k, s in self.subscriptions.items() if s.origin == "request"}


def read_state(conn: sa.Connection) -> StoredState:
    """Load every catalog declaration from the store."""
    state = StoredState()
    for row in conn.execute(sa.select(tables.departments)).mappings():
        state.departments[row["code"]] = row["declaration"]
    for row in conn.execute(sa.select(tables.connections)).mappings():
        state.connections[row["name"]] = row["declaration"]
        state.connection_workspaces[row["name"]] = row["workspace"]
        state.connection_fingerprints[row["name"]] = row.get("fingerprint")
    for row in conn.execute(sa.select(tables.contract_versions)).mappings():
        stored = StoredContract(
            row["name"], row["version"], row["major"], row["schema"], row["digest"], row["file"]
        )
        state.contracts[f"{stored.name}@{stored.version}"] = stored
    for row in conn.execute(sa.select(tables.resources)).mappings():
        state.resources[row["code"]] = row["declaration"]
        state.resource_files[row["code"]] = row["file"]
    for row in conn.execute(sa.select(tables.subscriptions)).mappings():
        state.subscriptions[row["id"]] = StoredSubscription(
            row["declaration"], row["contract_major"], row["file"],
            row["origin"] or "workspace", row["request_id"],
        )
    for row in conn.execute(sa.select(tables.requests)).mappings():
        state.requests[row["id"]] = StoredRequest(
            row["id"], row["state"], row["resource_code"], row["consumer"],
            tuple(row["fields"]), dict(row["masking"] or {}), row["target"], row["mode"],
            row["subscription_id"], row["delivery"] or "bulk",
        )
    return state
