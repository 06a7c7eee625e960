"""`govex contract infer`: a draft contract from live PostgreSQL and MariaDB tables."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import contracts
from exchange.cli import main

pytestmark = pytest.mark.integration

IDS = ["110105199001010002", "11010519491231002X", "440524188001010014"]
USCCS = ["91110105MA4CL12T25", "91110105MABJ1XG60U", "91110105MADD272H4C"]


def _people_table(url: str) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "ren_kou", meta,
        sa.Column("sfzh", sa.String(18), primary_key=True),  # resident IDs, named in pinyin
        sa.Column("xm", sa.String(50), nullable=False),
        sa.Column("mobile", sa.String(11)),
        sa.Column("code_col", sa.String(18)),  # credit codes under a name that says nothing
        sa.Column("jzdz", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("income", sa.Numeric(12, 2)),
        sa.Column("birth", sa.Date),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [
            {"sfzh": IDS[i], "xm": f"张{i}", "mobile": f"1380013800{i}", "code_col": USCCS[i],
             "jzdz": "北京市东城区", "note": None, "age": 30 + i, "income": 1000,
             "birth": None, "updated_at": dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)}
            for i in range(3)
        ])
    engine.dispose()


def _valid_ids() -> None:
    from quality.standards import is_valid_resident_id, is_valid_uscc

    assert all(is_valid_resident_id(i) for i in IDS)
    assert all(is_valid_uscc(u) for u in USCCS)


@pytest.mark.parametrize("database", ["postgresql", "mariadb"])
def test_infer_drafts_types_nullability_lengths_and_suggestions(
    database: str, request: pytest.FixtureRequest, capsys: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _valid_ids()
    url: str = request.getfixturevalue("pg_url" if database == "postgresql" else "mariadb_url")
    _people_table(url)
    # By connection name, from the workspace's connections.yaml (here via ${VAR}).
    (tmp_path / "connections.yaml").write_text(yaml.safe_dump(
        {"connections": {"psb_db": {"url": "${INFER_TEST_URL}"}}}))
    monkeypatch.setenv("INFER_TEST_URL", url)
    capsys.readouterr()
    code = main(["contract", "infer", "psb_db", "ren_kou", "--workspace", str(tmp_path),
                 "--name", "resident_census"])
    out = capsys.readouterr().out
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "resident_census"
    contracts.check_contract_schema(schema, file="inferred")  # loads as a govex contract
    props = schema["properties"]
    assert set(schema["required"]) == {"sfzh", "xm", "age", "updated_at"}
    assert props["sfzh"] == {"type": "string", "maxLength": 18, "x-govex-pii": "id_number",
                             "x-govex-checks": ["cn_resident_id"]}
    assert props["xm"]["x-govex-pii"] == "name"
    assert props["xm"]["maxLength"] == 50
    assert props["mobile"]["type"] == ["string", "null"]
    assert props["mobile"]["x-govex-pii"] == "phone"
    assert props["mobile"]["x-govex-checks"] == ["cn_mobile_phone"]
    assert props["code_col"]["x-govex-checks"] == ["cn_uscc"]
    assert props["jzdz"]["x-govex-pii"] == "address"
    assert "x-govex-pii" not in props["note"]
    assert "x-govex-checks" not in props["note"]
    assert props["age"]["type"] == "integer"
    assert props["income"]["type"] == ["number", "null"]
    assert props["birth"] == {"type": ["string", "null"], "format": "date"}
    assert props["updated_at"] == {"type": "string", "format": "date-time"}

    # A URL works as well, and the sample is bounded: one row is enough to run.
    capsys.readouterr()
    assert main(["contract", "infer", url, "ren_kou", "--sample", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ren_kou"


def test_infer_refuses_an_unknown_table_or_connection_with_one_sentence(
    pg_url: str, capsys: Any, tmp_path: Path
) -> None:
    capsys.readouterr()
    assert main(["contract", "infer", pg_url, "no_such_table"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no_such_table" in err
    assert "://" not in err
    (tmp_path / "connections.yaml").write_text("connections: {}\n")
    assert main(["contract", "infer", "nope", "t", "--workspace", str(tmp_path)]) == 2
    assert "unknown connection 'nope'" in capsys.readouterr().err
