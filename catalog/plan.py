"""The difference between a workspace and the store: what `govex apply` will add, change, remove."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .state import StoredState
from .workspace import Workspace

KINDS = ("departments", "connections", "contracts", "resources", "subscriptions")


def canonical(declaration: Any) -> str:
    """Stable JSON text of a declaration, the unit of comparison."""
    return json.dumps(declaration, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(declaration: Any) -> str:
    return hashlib.sha256(canonical(declaration).encode()).hexdigest()


@dataclass(frozen=True)
class KindPlan:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.removed)


@dataclass(frozen=True)
class Plan:
    """Per kind, the keys added, changed and removed. Contract versions are never removed:
    the store keeps their history so later versions can be checked against it."""

    kinds: dict[str, KindPlan] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return all(k.empty for k in self.kinds.values())

    def to_json(self) -> dict[str, dict[str, list[str]]]:
        return {
            kind: {"added": list(p.added), "changed": list(p.changed), "removed": list(p.removed)}
            for kind, p in self.kinds.items()
        }


def _diff(desired: dict[str, Any], stored: dict[str, Any], *, removes: bool = True) -> KindPlan:
    added = tuple(sorted(k for k in desired if k not in stored))
    changed = tuple(
        sorted(k for k in desired if k in stored and canonical(desired[k]) != canonical(stored[k]))
    )
    removed = tuple(sorted(k for k in stored if k not in desired)) if removes else ()
    return KindPlan(added, changed, removed)


def declarations(ws: Workspace) -> dict[str, dict[str, Any]]:
    """The workspace as plain JSON declarations per kind (what the store keeps)."""
    return {
        "departments": {k: d.item.model_dump(mode="json") for k, d in ws.departments.items()},
        "connections": {
            k: d.item.model_dump(mode="json", exclude_none=True) for k, d in ws.connections.items()
        },
        "contracts": {k: d.item.schema for k, d in ws.contracts.items()},
        "resources": {
            k: d.item.model_dump(mode="json", exclude_none=True) for k, d in ws.resources.items()
        },
        "subscriptions": {
            k: d.item.model_dump(mode="json", exclude_none=True)
            for k, d in ws.subscriptions.items()
        },
    }


def make_plan(ws: Workspace, stored: StoredState) -> Plan:
    desired = declarations(ws)
    return Plan(
        {
            "departments": _diff(desired["departments"], stored.departments),
            # A connection also changes when its workspace moves: relative paths anchor there.
            "connections": _diff(
                {k: {**v, "@workspace": str(ws.root)} for k, v in desired["connections"].items()},
                {
                    k: {**v, "@workspace": stored.connection_workspaces.get(k)}
                    for k, v in stored.connections.items()
                },
            ),
            "contracts": _diff(
                desired["contracts"],
                {k: c.schema for k, c in stored.contracts.items()},
                removes=False,
            ),
            "resources": _diff(desired["resources"], stored.resources),
            "subscriptions": _diff(
                desired["subscriptions"],
                {k: s.declaration for k, s in stored.subscriptions.items()},
            ),
        }
    )
