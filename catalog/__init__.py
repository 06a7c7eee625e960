"""The catalog: what data exists, who is its one authoritative source, who may use which fields.

Public API: load a workspace, apply it to the metadata store, and read the catalog back.
"""

from .apply import ApplyResult, apply_workspace
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
from .plan import KINDS, KindPlan, Plan
from .queries import (
    list_resources,
    load_connection,
    load_contract_version,
    load_resource,
    load_subscriptions,
    resource_declarations,
    show_resource,
    subscription_declarations,
)
from .tables import metadata
from .workspace import Declared, Workspace, load_workspace

__all__ = [
    "CLASSIFICATIONS",
    "DELIVERY_MODES",
    "KINDS",
    "MASKING_FUNCTIONS",
    "SHARING_TYPES",
    "ApplyResult",
    "Connection",
    "Declared",
    "Department",
    "KindPlan",
    "Plan",
    "ResolvedConnection",
    "Resource",
    "Subscription",
    "Workspace",
    "apply_workspace",
    "list_resources",
    "load_connection",
    "load_contract_version",
    "load_resource",
    "load_subscriptions",
    "load_workspace",
    "metadata",
    "resolve_connection",
    "resource_declarations",
    "show_resource",
    "subscription_declarations",
]
