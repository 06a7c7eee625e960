"""`govex demo --no-serve` runs end to end on a copy of the demo city, so the demo cannot rot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from exchange.cli import main
from exchange.commands.demo import DEMO_WORKSPACE


def test_demo_applies_the_city_and_lists_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = tmp_path / "city"
    shutil.copytree(DEMO_WORKSPACE, workspace, ignore=shutil.ignore_patterns("data"))
    monkeypatch.setenv("GOVEX_DB_URL", f"sqlite:///{tmp_path / 'govex.db'}")
    for name in ("PSB", "AMR", "HRSS", "HEALTH", "GSC", "HPF", "TAX", "CIVIL", "HOUSING"):
        monkeypatch.delenv(f"GOVEX_DEMO_{name}_URL", raising=False)

    assert main(["demo", "--no-serve", "--workspace", str(workspace), "--scale", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "PSB-RES-001" in out
    assert "demo city ready" in out
    assert (workspace / "data" / "psb.db").exists()
    assert (workspace / "data" / "files" / "subsistence_allowance.csv").exists()
    manifest = json.loads((workspace / "data" / "defects.json").read_text("utf-8"))
    assert manifest["resources"]["PSB-RES-001"]["defects"]

    assert main(["catalog", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) >= 6
    assert {r["sharing"] for r in listed} == {"unconditional", "conditional", "none"}
    assert {r["classification"] for r in listed} == {"L1", "L2", "L3", "L4"}

    # Running the demo again regenerates the same data and finds the catalog unchanged.
    assert main(["demo", "--no-serve", "--workspace", str(workspace), "--scale", "0.2"]) == 0
    assert "No changes" not in capsys.readouterr().err
