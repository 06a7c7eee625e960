"""`govex run CODE --dry-run`: read and gate, print what each subscription would receive, and
change nothing a real run depends on (runs, quarantine, deliveries, watermarks, progress,
provenance, lineage, audit, staging, the targets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from exchange.cli import main
from tests.exchange.conftest import SCENARIO_BAD_EVERY, SCENARIO_ROWS

pytestmark = pytest.mark.integration

N = SCENARIO_ROWS
BAD = N // SCENARIO_BAD_EVERY


def _store_rows(url: str) -> dict[str, list[str]]:
    """Every row of every table but the catalog's, as text: the state a run depends on."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = [t for t in sa.inspect(conn).get_table_names()
                     if not t.startswith("catalog_") and t != "alembic_version"]
            return {t: sorted(str(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {t}")))
                    for t in names}
    finally:
        engine.dispose()


def _dry(capsys: Any, *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["run", "PSB-RES-001", "--dry-run", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_dry_run_forecasts_each_subscription_and_changes_nothing(
    scenario: Any, capsys: Any, tmp_path: Path
) -> None:
    before = _store_rows(scenario.store_url)
    code, forecast = _dry(capsys)
    assert code == 0, forecast
    assert forecast["dry_run"] is True
    assert (forecast["read"], forecast["passed"], forecast["quarantined"]) == (N, N - BAD, BAD)
    subs = {s["subscription"]: s for s in forecast["subscriptions"]}
    assert {k: s["records"] for k, s in subs.items()} == {
        "SUB-GSC-001": N - BAD, "SUB-HPF-001": N - BAD, "SUB-GSC-002": N - BAD}
    assert subs["SUB-HPF-001"]["masking"] == {"id_no": "none", "phone": "mask_phone"}
    assert subs["SUB-HPF-001"]["target"] == {"connection": "hpf_maria", "table": "hpf_residents"}
    assert subs["SUB-HPF-001"]["mode"] == "append"
    assert subs["SUB-GSC-001"]["fields"] == ["id_no", "name", "birth_date", "score"]
    assert "://" not in json.dumps(forecast)  # target connections by name, never by URL

    assert _store_rows(scenario.store_url) == before
    for connection, table in (("gsc_pg", "gsc_residents"), ("hpf_maria", "hpf_residents")):
        engine = sa.create_engine(scenario.targets[connection])
        try:
            assert not sa.inspect(engine).has_table(table)
        finally:
            engine.dispose()
    assert not (tmp_path / "staging").exists() or not any((tmp_path / "staging").iterdir())

    # The real run that follows is exactly what it would have been without the dry run.
    capsys.readouterr()
    assert main(["run", "PSB-RES-001", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {d["subscription"]: (d["delivered"], d.get("backfill", False))
            for d in summary["deliveries"]} == {
        k: (s["records"], s["backfill"]) for k, s in subs.items()}

    # After it: only the change is forecast, and as an increment.
    scenario.source_execute(
        "UPDATE residents SET score = 99, updated_at = updated_at + interval '30 days' "
        "WHERE id_no = '110105199001010001'")
    code, forecast = _dry(capsys)
    assert code == 0
    assert forecast["read"] == 1
    assert {s["subscription"]: (s["records"], s["backfill"])
            for s in forecast["subscriptions"]} == {
        "SUB-GSC-001": (1, False), "SUB-HPF-001": (1, False), "SUB-GSC-002": (1, False)}


def test_dry_run_of_a_blocked_run_says_so_and_exits_1(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any, capsys: Any
) -> None:
    targets = {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    subs = [{"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name"],
             "mode": "upsert", "target": {"connection": "gsc_lite", "table": "gsc_residents"}}]
    scenario = scenario_factory(pg_url, targets, subs, make_rows(100, bad_every=5))
    before = _store_rows(scenario.store_url)
    code, forecast = _dry(capsys)
    assert code == 1
    assert forecast["status"] == "blocked"
    assert "block" in forecast["message"]
    assert forecast["subscriptions"][0]["records"] == 0
    assert _store_rows(scenario.store_url) == before

    capsys.readouterr()
    assert main(["run", "PSB-RES-001", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "dry run of PSB-RES-001: blocked" in out
    assert "SUB-GSC-001" in out
