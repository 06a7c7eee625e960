"""Searching by ID number where it is not the key reads the authoritative source: a CSV file
source is scanned, a Kafka resource's landing table searched (the latest landed row of each key
decides: a record deleted or changed since is not found)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

import catalog
import records
from exchange.ingest.tables import landing_table
from exchange.store import create_store_engine, upgrade
from tests.disclosure.city import id_number

CONTRACT: dict[str, Any] = {
    "type": "object",
    "required": ["case_no", "id_no"],
    "properties": {
        "case_no": {"type": "string"},
        "id_no": {"type": "string", "x-govex-pii": "id_number"},
        "note": {"type": "string"},
    },
}
PERSON, OTHER = id_number(1), id_number(2)


def _store(tmp: Path) -> sa.Engine:
    """Two resources holding an ID number outside their key: one from a CSV file, one pushed
    over Kafka; no subscription (the search finds records, delivered or not)."""
    root = tmp / "ws"
    (root / "contracts" / "case").mkdir(parents=True)
    (root / "resources").mkdir()
    (root / "files").mkdir()
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "civil", "name": "民政"}, {"code": "court", "name": "法院"}]}))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "civil_files": {"path": str(root / "files"), "format": "csv"},
        "bus": {"kafka": "127.0.0.1:9"}}}))
    (root / "contracts" / "case" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    common = {"contract": "case@1.0.0", "key": ["case_no"], "sharing": "unconditional",
              "classification": "L2", "update_frequency": "P1D"}
    (root / "resources" / "civil.yaml").write_text(yaml.safe_dump({
        "code": "CIVIL-RES-009", "name": "救助个案", "provider": "civil",
        "source": {"connection": "civil_files", "table": "cases"}, **common}))
    (root / "resources" / "court.yaml").write_text(yaml.safe_dump({
        "code": "COURT-RES-009", "name": "执行案件", "provider": "court",
        "source": {"connection": "bus", "kafka": {}}, **common}))
    (root / "files" / "cases.csv").write_text(
        f"case_no,id_no,note\nC1,{PERSON},a\nC2,{OTHER},b\nC3,{PERSON},c\n", encoding="utf-8")
    engine = create_store_engine(f"sqlite:///{tmp / 'store.db'}")
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    with engine.begin() as conn:
        contract = catalog.load_contract_version(conn, "case@1.0.0")
        landed = landing_table("COURT-RES-009", contract)
        landed.create(conn)
        at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        rows = [
            ("K1", "upsert", PERSON),  # K1 still holds the person
            ("K2", "upsert", PERSON), ("K2", "upsert", OTHER),  # K2 changed to another person
            ("K3", "upsert", PERSON), ("K3", "delete", None),  # K3 deleted since
            ("K4", "upsert", OTHER),
        ]
        conn.execute(sa.insert(landed), [
            {"case_no": key, "id_no": id_no, "note": None, "_govex_key": key, "_govex_op": op,
             "_govex_message_id": f"m{i}", "_govex_source_system": "court",
             "_govex_event_time": at.isoformat(), "_govex_partition": 0, "_govex_offset": i,
             "_govex_landed_at": at}
            for i, (key, op, id_no) in enumerate(rows)])
    return engine


def test_a_file_source_and_a_landing_table(tmp_path: Path) -> None:
    engine = _store(tmp_path)
    try:
        with engine.connect() as conn:
            found = {i["resource"]: i for i in records.search_pii(conn, "id_number", [PERSON])}
    finally:
        engine.dispose()
    assert {code: (i["searched"], i["keys"], i["error"]) for code, i in found.items()} == {
        "CIVIL-RES-009": ("source", ["C1", "C3"], None),
        "COURT-RES-009": ("source", ["K1"], None),
    }
    assert all(i["departments"] == [] and i["disclosures"] == [] for i in found.values())
