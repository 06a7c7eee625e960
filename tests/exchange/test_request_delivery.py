"""An approval is the subscription: the next exchange run delivers to it, exactly the approved
(narrowed) fields with the approved masking; and request ids stay unique and consecutive when
submissions race on PostgreSQL."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import yaml

import catalog
import exchange.requests as sharing
from exchange.run import steps
from exchange.store import Principal, create_store_engine, upgrade

CONSUMER = Principal("gsc", "consumer")
AUTHORITY = Principal("gsc", "authority")  # the authority's department is not what is checked
PROVIDER = Principal("psb", "provider")


def _ask(table: str, **extra: Any) -> sharing.Ask:
    return sharing.Ask.model_validate({
        "resource": "PSB-RES-001", "purpose": "一网通办身份核验", "legal_basis": "政务服务条例",
        "fields": ["id_no", "name", "phone", "score"], "masking": {"name": "mask_name"},
        "target": {"connection": "gsc_lite", "table": table}, "mode": "upsert",
        "valid_from": "2026-01-01", "valid_until": "2030-12-31", **extra,
    })


def _conditional(root: Path) -> None:
    """The scenario's resource shared conditionally, and gsc owning its SQLite database."""
    resource = root / "resources" / "psb.yaml"
    data = yaml.safe_load(resource.read_text())
    data["sharing"] = "conditional"
    resource.write_text(yaml.safe_dump(data, allow_unicode=True))
    connections = root / "connections.yaml"
    data = yaml.safe_load(connections.read_text())
    data["connections"]["gsc_lite"]["owner"] = "gsc"
    connections.write_text(yaml.safe_dump(data))


def test_the_next_run_delivers_to_an_approved_request(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any
) -> None:
    scenario = scenario_factory(pg_url, {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}, [],
                                make_rows(120))
    _conditional(scenario.root)
    store = scenario.store()
    catalog.apply_workspace(store, scenario.root)
    asked = sharing.submit(store, CONSUMER, _ask("gsc_requested"))
    sharing.review(store, AUTHORITY, asked["id"], compliant=True)
    approved = sharing.approve(store, PROVIDER, asked["id"], fields=["id_no", "name", "phone"],
                               masking={"phone": "mask_phone"})
    sub_id = approved["subscription"]

    summary = steps.run_resource(store, "PSB-RES-001")
    assert summary.status == "success", summary.message
    assert [(d.subscription, d.delivered) for d in summary.deliveries] == [(sub_id, 120)]
    rows = scenario.target_rows("gsc_lite", "gsc_requested")
    assert len(rows) == 120
    first = rows[0]
    assert "score" not in first  # removed by the provider
    assert first["phone"] != "13800000000"
    assert "*" in first["phone"]
    assert "*" in first["name"]
    # Applying the workspace again leaves the approval's subscription alone.
    assert catalog.apply_workspace(store, scenario.root, dry_run=True).plan.empty
    store.dispose()


def test_request_ids_are_consecutive_under_concurrent_submits(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any
) -> None:
    scenario = scenario_factory(pg_url, {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}, [],
                                make_rows(5))
    _conditional(scenario.root)
    # The store on PostgreSQL, where submissions really run at once.
    store = create_store_engine(pg_url)
    upgrade(store)
    catalog.apply_workspace(store, scenario.root)
    ids: list[str] = []
    errors: list[BaseException] = []

    def submit(n: int) -> None:
        try:
            ids.append(sharing.submit(store, CONSUMER, _ask(f"t{n}"))["id"])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(re.fullmatch(r"REQ-\d{8}-\d{4}", i) for i in ids)
    numbers = sorted(int(i.rsplit("-", 1)[1]) for i in ids)
    assert numbers == list(range(1, 9))
    store.dispose()
