"""`govex demo --no-serve` runs end to end on a copy of the demo city, so the demo cannot rot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from exchange.cli import main
from exchange.demo.city import tax_credit_records
from exchange.demo.files import copy_workspace


@pytest.mark.integration  # drives Airflow (dag.test) with its own SQLite database
def test_demo_runs_the_city_through_airflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = copy_workspace(tmp_path / "city")
    monkeypatch.setenv("GOVEX_DB_URL", f"sqlite:///{tmp_path / 'govex.db'}")
    for name in ("PSB", "AMR", "HRSS", "HEALTH", "GSC", "HPF", "TAX", "CIVIL", "HOUSING",
                 "STATS"):
        monkeypatch.delenv(f"GOVEX_DEMO_{name}_URL", raising=False)

    assert main(["demo", "--no-serve", "--workspace", str(workspace), "--scale", "0.2"]) == 0
    out = capsys.readouterr().out
    summary = out.split("[5/5] summary", 1)[1]
    rows = {line.split()[0]: line.split() for line in summary.splitlines()[2:] if line.strip()}
    for code in ("PSB-RES-001", "AMR-RES-001", "HRSS-RES-001", "CIVIL-RES-001",
                 "HEALTH-RES-001"):
        assert rows[code][1] == "success", summary
    assert "SUB-GSC-001=" in summary
    # The tax vertical system pushed its records over the embedded broker while the pulls
    # ran; govex ingest landed them (broken ones to the DLQ) and the DAG delivered them.
    tax = rows["TAX-RES-001"]
    assert tax[1] == "success", summary
    delivered = int(tax[5].removeprefix("SUB-HOUSING-001=").rstrip(","))
    assert delivered == int(tax[3]) > 200, summary
    pushed = re.search(r"pushed (\d+): landed (\d+), DLQ (\d+), dup (\d+)", summary)
    assert pushed is not None, summary
    total, landed, dlq, dup = map(int, pushed.groups())
    assert (landed, dup) == (delivered, 1)
    assert total == landed + dlq + dup
    assert dlq >= 3  # at least the three broken messages
    assert "demo city exchanged" in out
    # Every pushed record with a planted defect was refused at ingest and is quarantined under
    # its check's name; no clean record is; the rest of the quarantine is the broken messages.
    capsys.readouterr()
    assert main(["quality", "quarantine", "TAX-RES-001", "--json"]) == 0
    held = {q["key"]: {(c["check"], c["column"]) for c in q["failed_checks"]}
            for q in json.loads(capsys.readouterr().out)}
    planted = tax_credit_records(20261127, 252).defects  # the demo's seed, 1260 x scale 0.2
    for defect in planted:
        assert (defect.check, defect.column) in held[defect.key], (defect, held.get(defect.key))
    broken = set(held) - {d.key for d in planted}
    assert len(broken) == 3
    assert all(k.startswith("message:") for k in broken)
    assert (workspace / "data" / "psb.db").exists()
    assert (workspace / "data" / "files" / "subsistence_allowance.csv").exists()
    manifest = json.loads((workspace / "data" / "defects.json").read_text("utf-8"))
    assert manifest["resources"]["PSB-RES-001"]["defects"]

    assert main(["catalog", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) >= 6
    assert {r["sharing"] for r in listed} == {"unconditional", "conditional", "none"}
    assert {r["classification"] for r in listed} == {"L1", "L2", "L3", "L4"}

    # Running the demo again regenerates the same data and exchanges it again.
    assert main(["demo", "--no-serve", "--workspace", str(workspace), "--scale", "0.2"]) == 0
    again = capsys.readouterr().out
    assert "PSB-RES-001" in again
    # A new broker, the same pushed messages: every valid one is a duplicate, none lands twice.
    assert f"0 landed, {dlq} to the DLQ govex.dlq.TAX-RES-001, {total - dlq} duplicate(s)" \
        in again
