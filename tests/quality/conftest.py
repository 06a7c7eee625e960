"""Shared fixtures: the demo city's contracts, resources and generated rows (built once)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import yaml

import contracts
from exchange.demo.city import GeneratedResource, generate_resources
from exchange.demo.files import packaged_workspace

CITY = packaged_workspace()


def _resources() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((CITY / "resources").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[data["code"]] = data
    return out


@pytest.fixture(scope="session")
def city_resources() -> dict[str, dict[str, Any]]:
    return _resources()


def contract_of(resource: dict[str, Any]) -> contracts.Contract:
    name, version = resource["contract"].split("@")
    return contracts.load_contract(CITY / "contracts" / name / f"{version}.json")


@pytest.fixture(scope="session")
def demo() -> dict[str, GeneratedResource]:
    return generate_resources(seed=20261127, scale=0.3)


def to_table(rows: list[dict[str, Any]], contract: contracts.Contract) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=contracts.arrow_schema(contract))
