"""The catalog: what data exists, who is its one authoritative source, who may use which fields.

Public API: load a workspace, apply it to the metadata store, and read the catalog back.

Loading and applying a workspace (YAML, every declaration file, the plan) is `govex apply`'s
business, not a run's: those names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from govex.lazy import lazy_names

from .connections import ResolvedConnection, resolve_connection
from .declarations import (
    CLASSIFICATIONS,
    DELIVERY_MODES,
    MASKING_FUNCTIONS,
    SHARING_TYPES,
    Connection,
    Department,
    Resource,
    Subscription,
)
from .indistinguishable import indistinguishable, twin_warning
from .plan import KINDS, FieldChange, KindPlan, Plan
from .queries import (
    count_resources,
    list_resources,
    load_connection,
    load_contract_version,
    load_resource,
    load_subscriptions,
    resource_declarations,
    resource_providers,
    show_resource,
    subscription_declarations,
)
from .reference import DIVISION_CODES_FILE, StoredReference
from .reference import read_stored as stored_reference
from .tables import metadata

if TYPE_CHECKING:
    from .apply import ApplyResult, apply_workspace
    from .workspace import Declared, Workspace, load_workspace, read_workspace

__all__ = [
    "CLASSIFICATIONS",
    "DELIVERY_MODES",
    "DIVISION_CODES_FILE",
    "KINDS",
    "MASKING_FUNCTIONS",
    "SHARING_TYPES",
    "StoredReference",
    "ApplyResult",
    "Connection",
    "Declared",
    "Department",
    "FieldChange",
    "KindPlan",
    "Plan",
    "ResolvedConnection",
    "Resource",
    "Subscription",
    "Workspace",
    "apply_workspace",
    "count_resources",
    "indistinguishable",
    "list_resources",
    "load_connection",
    "load_contract_version",
    "load_resource",
    "load_subscriptions",
    "load_workspace",
    "metadata",
    "read_workspace",
    "resolve_connection",
    "resource_declarations",
    "resource_providers",
    "show_resource",
    "stored_reference",
    "subscription_declarations",
    "twin_warning",
]

_LAZY = {
    "ApplyResult": "apply",
    "apply_workspace": "apply",
    "Declared": "workspace",
    "Workspace": "workspace",
    "load_workspace": "workspace",
    "read_workspace": "workspace",
}


__getattr__ = lazy_names(__name__, _LAZY)
