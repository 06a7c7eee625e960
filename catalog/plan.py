"""The difference between a workspace and the store: what `govex apply` will add, change, remove."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .state import StoredState

if TYPE_CHECKING:  # a run reads plans' helpers (`canonical`) and never loads a workspace
    from .workspace import Workspace

KINDS = ("departments", "connections", "contracts", "resources", "subscriptions")


def canonical(declaration: Any) -> str:
    """Stable JSON text of a declaration, the unit of comparison."""
    return json.dumps(declaration, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(declaration: Any) -> str:
    return hashlib.sha256(canonical(declaration).encode()).hexdigest()


# A connection's template values may carry credentials: a change to them is named, never shown.
HIDDEN = "(hidden)"
# Keys a plan adds to compare connections beyond their declaration (never in a declaration).
WORKSPACE_KEY = "@workspace"
RESOLVED_KEY = "@resolved"


@dataclass(frozen=True)
class FieldChange:
    """One key of a changed declaration: its dotted path, and the values before and after
    (None where absent; HIDDEN for a connection's values)."""

    path: str
    before: Any = None
    after: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class KindPlan:
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    # Per changed key, which fields changed from what to what.
    changes: dict[str, tuple[FieldChange, ...]] = field(default_factory=dict)

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

    def changes_json(self) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """Per kind and changed key, the field-level changes (`FieldChange.to_json`)."""
        return {
            kind: {key: [c.to_json() for c in p.changes.get(key, ())] for key in p.changed}
            for kind, p in self.kinds.items()
        }


def field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """The leaves that differ between two JSON values, by dotted path (lists compared whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += field_changes(before.get(key), after.get(key), sub)
        return out
    if canonical(before) == canonical(after):
        return []
    return [FieldChange(path, before, after)]


def _hide(change: FieldChange) -> FieldChange:
    """A connection change with its values hidden, except where the workspace moved."""
    if change.path == WORKSPACE_KEY:
        return change
    if change.path == RESOLVED_KEY:
        return FieldChange("resolved value", HIDDEN, HIDDEN)
    return FieldChange(
        change.path,
        None if change.before is None else HIDDEN,
        None if change.after is None else HIDDEN,
    )


def _diff(
    desired: dict[str, Any], stored: dict[str, Any], *, removes: bool = True, hide: bool = False
) -> KindPlan:
    added = tuple(sorted(k for k in desired if k not in stored))
    changed = tuple(
        sorted(k for k in desired if k in stored and canonical(desired[k]) != canonical(stored[k]))
    )
    removed = tuple(sorted(k for k in stored if k not in desired)) if removes else ()
    changes = {}
    for k in changed:
        found = field_changes(stored[k], desired[k])
        changes[k] = tuple(_hide(c) for c in found) if hide else tuple(found)
    return KindPlan(added, changed, removed, changes)


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


def make_plan(
    ws: Workspace, stored: StoredState, fingerprints: Mapping[str, str] | None = None
) -> Plan:
    """The plan from the store to `ws`. `fingerprints` are keyed hashes of each connection's
    resolved value now (`apply.fingerprint`): a connection whose `${VAR}`s resolve to another
    value than at the last apply on this store is changed, though its template is not."""
    desired = declarations(ws)
    fingerprints = fingerprints or {}

    def resolved(name: str, now: str | None) -> dict[str, str]:
        # Compared only when both sides have one: a store from before fingerprints, or an
        # apply without the master key, says nothing about the resolved value.
        then = stored.connection_fingerprints.get(name)
        return {RESOLVED_KEY: now} if now and then else {}

    return Plan(
        {
            "departments": _diff(desired["departments"], stored.departments),
            # A connection also changes when its workspace moves: relative paths anchor there.
            "connections": _diff(
                {
                    k: {**v, WORKSPACE_KEY: str(ws.root), **resolved(k, fingerprints.get(k))}
                    for k, v in desired["connections"].items()
                },
                {
                    k: {
                        **v, WORKSPACE_KEY: stored.connection_workspaces.get(k),
                        **resolved(k, stored.connection_fingerprints.get(k)
                                   if fingerprints.get(k) else None),
                    }
                    for k, v in stored.connections.items()
                },
                hide=True,
            ),
            "contracts": _diff(
                desired["contracts"],
                {k: c.schema for k, c in stored.contracts.items()},
                removes=False,
            ),
            "resources": _diff(desired["resources"], stored.resources),
            # A subscription an approval created is the request workflow's, never apply's: it
            # is neither removed nor changed, and a file naming its request is that subscription
            # (the rules checked that the file matches what was approved).
            "subscriptions": _diff(
                {k: v for k, v in desired["subscriptions"].items()
                 if k not in stored.from_requests()},
                {k: s.declaration for k, s in stored.subscriptions.items()
                 if s.origin != "request"},
            ),
        }
    )
