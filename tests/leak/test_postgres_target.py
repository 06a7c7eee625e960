"""Leak tracing from a PostgreSQL target: its client spells timestamps with an offset and
dates as dates; a sample read back from it is attributed all the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.cli import main
from tests.disclosure.city import build_city
from tests.leak.conftest import leak_sample, write_csv

pytestmark = pytest.mark.integration


def test_a_sample_of_a_postgresql_target(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    city = build_city(tmp_path, targets={"gsc_db": pg_url})
    monkeypatch.setenv("GOVEX_DB_URL", city.store_url)
    city.run("PSB-RES-001")
    rows = city.target_rows("gsc_db", "gsc_residents")
    assert str(rows[0]["updated_at"]).endswith("+00:00")  # psycopg: an aware datetime
    header, sample = leak_sample(rows, 200, rename={"name": "xm", "birth_date": "csrq"})
    path = write_csv(tmp_path / "leak.csv", header, sample)
    capsys.readouterr()
    assert main(["leak", "identify", str(path), "--resource", "PSB-RES-001", "--json"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked[0]["subscription"] == "SUB-GSC-001"
    assert ranked[0]["matched"] >= 0.95
    assert all(r["matched"] <= 0.05 for r in ranked[1:])
