"""`govex apply` warns about subscriptions no leaked file can tell apart (and refuses
nothing): same resource, same fields in any order, same masking, nothing keyed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import catalog
from exchange.cli import main
from tests.disclosure.city import City, build_city, subscriptions


def _sub(sub_id: str, fields: list[str], masking: dict[str, str] | None = None,
         **extra: Any) -> catalog.Subscription:
    body: dict[str, Any] = {
        "id": sub_id, "resource": "PSB-RES-001", "consumer": "gsc", "purpose": "p",
        "fields": fields, "masking": masking or {}, "valid_from": "2026-01-01",
        "target": {"connection": "c", "table": sub_id.lower().replace("-", "_")}, **extra}
    return catalog.Subscription.model_validate(body)


def test_which_subscriptions_are_indistinguishable() -> None:
    subs = [
        _sub("SUB-A", ["name", "phone"]),
        _sub("SUB-B", ["phone", "name"], {"phone": "none"}),  # order and `none` do not matter
        _sub("SUB-C", ["name", "phone"], {"name": "mask_name"}),  # masked otherwise
        _sub("SUB-D", ["name", "phone"], {"name": "mask_name"}),
        _sub("SUB-E", ["name", "phone"], {"name": "hash"}),  # keyed per subscription
        _sub("SUB-F", ["name", "phone"], {"name": "hash"}),
        _sub("SUB-G", ["name"]),  # a subset is not a twin
        _sub("SUB-H", ["name", "phone"], resource="HRSS-RES-001"),  # another resource
    ]
    verify = catalog.Subscription.model_validate({
        "id": "SUB-V", "resource": "PSB-RES-001", "consumer": "gsc", "purpose": "p",
        "fields": ["name", "phone"], "delivery": "verify", "valid_from": "2026-01-01"})
    assert catalog.indistinguishable([*subs, verify]) == [("SUB-A", "SUB-B"), ("SUB-C", "SUB-D")]


def test_apply_warns_and_applies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    city: City = build_city(tmp_path, people=5)
    assert city.apply().warnings == (catalog.twin_warning(
        "PSB-RES-001", ("SUB-EDU-001", "SUB-STA-001")),)
    monkeypatch.setenv("GOVEX_DB_URL", city.store_url)
    # A change to apply, so the warning comes with a real apply, not only "no changes".
    city.write([*subscriptions(), {
        "id": "SUB-EDU-002", "resource": "PSB-RES-001", "consumer": "edu", "purpose": "p",
        "fields": ["phone", "name"], "target": {"connection": "edu_db", "table": "edu2"}}])
    capsys.readouterr()
    assert main(["apply", str(city.root), "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["applied"] is True
    assert result["warnings"] == [catalog.twin_warning(
        "PSB-RES-001", ("SUB-EDU-001", "SUB-EDU-002", "SUB-STA-001"))]
    warned = [line for line in err.splitlines() if "cannot be told from" in line]
    assert warned == [f"warning: {result['warnings'][0]}"]
    assert "SUB-EDU-001, SUB-EDU-002 and SUB-STA-001" in warned[0]
    # civil and tax receive the same fields too, but `hash` is keyed per subscription.
    assert "SUB-CIV-001" not in err
