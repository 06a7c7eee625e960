"""The demo city's conditional subscriptions, through the sharing-request workflow: each file of
the workspace's `requests/` is submitted by its consumer department (the owner of its target
connection), reviewed by the platform authority (`data`, 市数据局) and approved by the
resource's provider, with the same service the API and `govex request` call. No YAML file
claims an approval: the approvals are recorded acts of the providers, in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import catalog
import exchange.requests as sharing
from catalog import yamlio
from exchange.store import Principal

AUTHORITY = Principal(department="data", role="authority")
REQUESTS = "requests"


@dataclass(frozen=True)
class Grant:
    """One request the demo took through the workflow, and the subscription it became."""

    request: str
    resource: str
    consumer: str
    provider: str
    subscription: str


def grant_requests(engine: sa.Engine, workspace: Path) -> list[Grant]:
    """Submit, review and approve every request file of `workspace/requests/` whose wished-for
    subscription is not in the store yet (so a second demo on the same store asks nothing
    twice); the grants made, in file order."""
    granted: list[Grant] = []
    folder = workspace / REQUESTS
    connections = catalog.read_workspace(workspace)[0].connections
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        ask = sharing.Ask.model_validate(yamlio.read_yaml(path))
        with engine.connect() as conn:
            if ask.subscription and ask.subscription in catalog.subscription_declarations(conn):
                continue
            resource = catalog.load_resource(conn, ask.resource)
        target = connections.get(ask.target.connection) if ask.target else None
        consumer = Principal(department=(target.item.owner if target else None) or "",
                             role="consumer")
        provider = Principal(department=resource.provider, role="provider")
        asked = sharing.submit(engine, consumer, ask)
        sharing.review(engine, AUTHORITY, asked["id"], compliant=True)
        done = sharing.approve(engine, provider, asked["id"])
        granted.append(Grant(done["id"], done["resource"], done["consumer"], done["provider"],
                             str(done["subscription"])))
    return granted
