"""Data Docs render in a process that never ran a gate with Great Expectations (the web app
renders them now): govex's national-check expectations must be known to GE's registry there
too. Run in a subprocess, because in this test process earlier tests have registered them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import pyarrow as pa, yaml
    import contracts, quality
    from exchange.demo.city import generate_resources
    from exchange.demo.files import packaged_workspace

    ws = packaged_workspace()
    resource = yaml.safe_load((ws / "resources" / "psb-residents.yaml").read_text("utf-8"))
    name, version = resource["contract"].split("@")
    contract = contracts.load_contract(ws / "contracts" / name / f"{version}.json")
    rows = [dict(r) for r in generate_resources(seed=7, scale=0.01)["PSB-RES-001"].rows[:40]]
    rows[3]["id_no"] = "110105199003070021"  # a bad check digit: a failed national check
    gate = quality.QualityGate(contract, resource.get("quality"), key=resource["key"])
    assert "great_expectations" not in sys.modules  # the run's path never loaded GE
    result = gate.evaluate(pa.Table.from_pylist(rows, schema=contracts.arrow_schema(contract)))
    quality.build_data_docs(result, Path(sys.argv[1]), run_id="fresh")
""")


def test_data_docs_render_where_no_gate_loaded_great_expectations(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", SCRIPT, str(tmp_path / "docs")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "docs" / "index.html").exists()
