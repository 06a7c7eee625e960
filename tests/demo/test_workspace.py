"""The demo city workspace: complete coverage of the vocabulary, and consistent with itself."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

TODAY = dt.date(2026, 11, 27)
SQL_RESOURCES_WITH_WATERMARK = ("PSB-RES-001", "AMR-RES-001", "HRSS-RES-001", "HEALTH-RES-001")


def test_contracts_are_valid_draft_2020_12(contracts: dict[str, dict[str, Any]]) -> None:
    assert len(contracts) >= 6
    for code, schema in contracts.items():
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema", code
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"]), code


def test_contracts_carry_pii_and_national_checks(contracts: dict[str, dict[str, Any]]) -> None:
    for code, schema in contracts.items():
        for name, prop in schema["properties"].items():
            checks = prop.get("x-govex-checks", [])
            assert isinstance(checks, list), (code, name)
            assert all(isinstance(c, str) for c in checks), (code, name)
            if name.endswith("id_no"):
                assert "cn_resident_id" in checks, (code, name)
                assert prop["x-govex-pii"] == "id_number", (code, name)
            if "uscc" in name:
                assert "cn_uscc" in checks, (code, name)
    pii = {p.get("x-govex-pii") for s in contracts.values() for p in s["properties"].values()}
    assert {"name", "id_number", "phone", "address"} <= pii


def test_resources_cover_every_sharing_level_and_source_kind(
    ws_resources: dict[str, dict[str, Any]], ws_connections: dict[str, dict[str, Any]]
) -> None:
    assert len(ws_resources) >= 6
    assert {r["sharing"] for r in ws_resources.values()} == {"unconditional", "conditional", "none"}
    assert {r["classification"] for r in ws_resources.values()} == {"L1", "L2", "L3", "L4"}
    kinds = set()
    for code, r in ws_resources.items():
        assert re.fullmatch(r"[A-Z0-9-]+", code)
        assert re.fullmatch(r"P(T?\d+[YMWDHS])+", r["update_frequency"]), code
        assert 0 < r["quality"]["max_error_rate"] <= 0.1
        source = r["source"]
        conn = ws_connections[source["connection"]]
        if "kafka" in source:
            assert source["kafka"] == {"topic": f"govex.ingest.{code}"}
            assert "kafka" in conn
            kinds.add("kafka")
        elif "path" in conn:
            assert conn["format"] in ("csv", "jsonl")
            kinds.add("file")
        else:
            kinds.add(conn["url"].split("${")[1].split(":-")[0])
    assert kinds == {
        "kafka",
        "file",
        "GOVEX_DEMO_PSB_URL",
        "GOVEX_DEMO_AMR_URL",
        "GOVEX_DEMO_HRSS_URL",
        "GOVEX_DEMO_HEALTH_URL",
    }
    for code in SQL_RESOURCES_WITH_WATERMARK:
        assert ws_resources[code]["source"]["watermark"] == "updated_at"


def test_connections_have_one_of_three_shapes(ws_connections: dict[str, dict[str, Any]]) -> None:
    shapes = {frozenset(c) - {"owner"} for c in ws_connections.values()}
    assert shapes <= {frozenset({"url"}), frozenset({"kafka"}), frozenset({"path", "format"})}
    for name, c in ws_connections.items():
        if "url" in c:  # embedded default: a SQLite file under data/, overridable per connection
            assert re.fullmatch(r"\$\{GOVEX_DEMO_[A-Z]+_URL:-sqlite:///data/\w+\.db\}", c["url"]), (
                name
            )
    assert ws_connections["bus"] == {"kafka": "${GOVEX_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"}
    assert ws_connections["civil_files"] == {"path": "data/files", "format": "csv",
                                             "owner": "civil"}


def test_one_data_one_source(ws_resources: dict[str, dict[str, Any]]) -> None:
    owner: dict[str, str] = {}
    for r in ws_resources.values():
        for element in r["elements"].values():
            assert owner.setdefault(element, r["provider"]) == r["provider"], element


def test_subscriptions_are_allowed_and_cover_the_vocabulary(
    ws_resources: dict[str, dict[str, Any]],
    ws_subscriptions: list[dict[str, Any]],
    ws_requests: list[dict[str, Any]],
    ws_departments: list[dict[str, Any]],
    ws_connections: dict[str, dict[str, Any]],
    contracts: dict[str, dict[str, Any]],
) -> None:
    departments = {d["code"] for d in ws_departments}
    assert len(departments) >= 6
    assert {r["provider"] for r in ws_resources.values()} <= departments
    # The checklist: declared lines (unconditional data) and approved requests (conditional).
    checklist = ws_subscriptions + [{**q, "id": q["subscription"]} for q in ws_requests]
    assert len(checklist) >= 8
    masks, modes, subscribed = set(), set(), set()
    for s in checklist:
        r = ws_resources[s["resource"]]
        subscribed.add(s["resource"])
        assert r["sharing"] != "none", s["id"]
        assert r["classification"] != "L4", s["id"]
        assert s["consumer"] in departments, s["id"]
        assert s["consumer"] != r["provider"], s["id"]
        assert "approved_by" not in s, s["id"]
        assert (s in ws_subscriptions) == (r["sharing"] == "unconditional"), s["id"]
        if "legal_basis" in s:
            assert ws_connections[s["target"]["connection"]]["owner"] == s["consumer"]
        props = contracts[s["resource"]]["properties"]
        assert set(s["fields"]) <= set(props), s["id"]
        assert set(s.get("masking", {})) <= set(s["fields"]), s["id"]
        assert s["target"]["connection"] in ws_connections
        assert "url" in ws_connections[s["target"]["connection"]]
        assert s["valid_until"] > TODAY
        assert s["valid_from"] <= TODAY
        masks |= set(s.get("masking", {}).values())
        modes.add(s["mode"])
    assert masks == {"mask_name", "mask_id_number", "mask_phone", "mask_address", "hash", "none"}
    assert modes == {"upsert", "append", "snapshot"}
    unsubscribed = set(ws_resources) - subscribed
    assert unsubscribed == {
        code
        for code, r in ws_resources.items()
        if r["sharing"] == "none" or r["classification"] == "L4"
    }


def test_workspace_passes_govex_apply_dry_run(workspace: Path, tmp_path: Path) -> None:
    sa = pytest.importorskip("sqlalchemy")
    from catalog import apply_workspace, metadata

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    metadata.create_all(engine)
    result = apply_workspace(engine, workspace, dry_run=True, env={}, today=TODAY)
    assert not result.applied
    assert len(result.plan.kinds["resources"].added) == 7
    # Only the unconditional lines are declared; the conditional ones come from approvals.
    assert len(result.plan.kinds["subscriptions"].added) == 3
    engine.dispose()


def test_demo_requests_become_the_conditional_subscriptions(tmp_path: Path) -> None:
    import catalog
    from exchange.demo.files import copy_workspace
    from exchange.demo.grants import grant_requests
    from exchange.store import create_store_engine, upgrade

    ws = copy_workspace(tmp_path / "city")
    engine = create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    upgrade(engine)
    catalog.apply_workspace(engine, ws)
    granted = grant_requests(engine, ws)
    assert len(granted) == 7
    assert grant_requests(engine, ws) == []  # asked once: a second demo asks nothing again
    with engine.connect() as conn:
        subs = catalog.subscription_declarations(conn)
    assert len(subs) == 10
    for grant in granted:
        assert subs[grant.subscription]["request"] == grant.request
    # The next apply neither removes nor changes what the approvals created.
    assert catalog.apply_workspace(engine, ws, dry_run=True).plan.empty
    engine.dispose()
