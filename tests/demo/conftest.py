"""Fixtures for the demo-city tests: the workspace's declarations and one cached generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from exchange.demo.city import GeneratedResource, generate_resources
from exchange.demo.files import packaged_workspace

WORKSPACE = packaged_workspace()


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def workspace() -> Path:
    return WORKSPACE


@pytest.fixture(scope="session")
def ws_resources() -> dict[str, dict[str, Any]]:
    """resources/*.yaml by code."""
    out = {}
    for p in sorted((WORKSPACE / "resources").glob("*.yaml")):
        r = _yaml(p)
        out[r["code"]] = r
    return out


@pytest.fixture(scope="session")
def ws_subscriptions() -> list[dict[str, Any]]:
    return [_yaml(p) for p in sorted((WORKSPACE / "subscriptions").glob("*.yaml"))]


@pytest.fixture(scope="session")
def ws_requests() -> list[dict[str, Any]]:
    """The demo's sharing requests (the conditional subscriptions, asked for and approved by
    `govex demo`), each with the consumer that asks: the owner of its target connection."""
    owners = {name: c.get("owner") for name, c in
              _yaml(WORKSPACE / "connections.yaml")["connections"].items()}
    return [{**r, "consumer": owners[r["target"]["connection"]]}
            for r in (_yaml(p) for p in sorted((WORKSPACE / "requests").glob("*.yaml")))]


@pytest.fixture(scope="session")
def ws_departments() -> list[dict[str, Any]]:
    return list(_yaml(WORKSPACE / "departments.yaml")["departments"])


@pytest.fixture(scope="session")
def ws_connections() -> dict[str, dict[str, Any]]:
    return dict(_yaml(WORKSPACE / "connections.yaml")["connections"])


@pytest.fixture(scope="session")
def contracts(ws_resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each resource's contract (JSON Schema) by resource code."""
    out = {}
    for code, r in ws_resources.items():
        name, _, version = r["contract"].partition("@")
        path = WORKSPACE / "contracts" / name / f"{version}.json"
        out[code] = json.loads(path.read_text(encoding="utf-8"))
    return out


@pytest.fixture(scope="session")
def city() -> dict[str, GeneratedResource]:
    """The default-seed city at scale 1.0, generated once per session (well under a second)."""
    return generate_resources()
