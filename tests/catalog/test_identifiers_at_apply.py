"""`govex apply` refuses the table, column and watermark names every run would refuse, by the
run's own rule (`govex.identifiers`) and the limit of the system behind each connection.

Hardening issue item 12: apply used to accept such names, and every run then failed.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

import connectors
from connectors.registry import DIALECTS
from govex.errors import DeclarationError
from govex.identifiers import FILE_IDENTIFIER_LENGTH, SQL_IDENTIFIER_LENGTH

Mutation = Callable[[Any], None]


def _with_dashed_field(ws: Any) -> None:
    """The contract gains a property whose name no database column may have."""
    schema = ws.contract_v1()
    schema["properties"]["home-address"] = {"type": "string"}
    ws.contract("resident_identity", "1.0.0", schema)


def _source(**changes: Any) -> Mutation:
    return lambda ws: ws.edit("resources/psb-residents.yaml", lambda r: r["source"].update(changes))


def _target(**changes: Any) -> Mutation:
    return lambda ws: ws.edit("subscriptions/gsc-residents.yaml",
                              lambda s: s["target"].update(changes))


def _key_with_dash(ws: Any) -> None:
    _with_dashed_field(ws)
    ws.edit("resources/psb-residents.yaml", lambda r: r.update(key=["id_no", "home-address"]))


def _field_with_dash(ws: Any) -> None:
    _with_dashed_field(ws)
    ws.edit("subscriptions/gsc-residents.yaml", lambda s: s["fields"].append("home-address"))


def _field_with_dash_into_files(ws: Any) -> None:
    _field_with_dash(ws)
    _target(connection="files", table="psb_residents")(ws)


CASES: list[tuple[str, Mutation, str, str]] = [
    ("source table with SQL in it", _source(table="residents; drop table x"),
     "resources/psb-residents.yaml: field 'source.table'", "is not allowed"),
    ("source table with two dots", _source(table="a.b.c"),
     "field 'source.table'", "has more than one '.'"),
    ("source table too long for SQLite", _source(table="t" * 129),
     "field 'source.table'", "129 characters long; this system allows at most 128"),
    ("watermark with a dash", _source(watermark="updated-at"),
     "field 'source.watermark'", "column name 'updated-at' is not allowed"),
    ("watermark of a query source", _source(table=None, query="select 1", watermark="a b"),
     "field 'source.watermark'", "column name 'a b' is not allowed"),
    ("key column with a dash", _key_with_dash,
     "field 'key'", "column name 'home-address' is not allowed"),
    ("file dataset with a dot", _source(connection="files", table="residents.csv"),
     "field 'source.table'", "dataset name 'residents.csv' is not allowed"),
    ("target table with a space", _target(table="psb residents"),
     "subscriptions/gsc-residents.yaml: field 'target.table'", "is not allowed"),
    ("target table in a schema too long", _target(table="hr." + "t" * 129),
     "field 'target.table'", "at most 128"),
    ("delivered field with a dash", _field_with_dash,
     "field 'fields'", "column name 'home-address' is not allowed"),
    ("delivered field into a file", _field_with_dash_into_files,
     "field 'fields'", "column name 'home-address' is not allowed"),
    ("target file with a dot", _target(connection="files", table="a.b"),
     "field 'target.table'", "dataset name 'a.b' is not allowed"),
]


@pytest.mark.parametrize(("case", "mutate", "where", "what"), CASES, ids=[c[0] for c in CASES])
def test_apply_refuses_names_the_run_would_refuse(
    case: str, mutate: Mutation, where: str, what: str, workspace: Any, govex: Any,
    store_snapshot: Any,
) -> None:
    assert govex("apply", str(workspace.root))[0] == 0
    before = store_snapshot()
    mutate(workspace)

    code, out, err = govex("apply", str(workspace.root))

    assert code == 2, f"{case}: {out}{err}"
    assert "Traceback" not in err
    assert where in err, err
    assert what in err, err
    assert store_snapshot() == before


def test_names_the_run_accepts_still_apply(workspace: Any, govex: Any) -> None:
    _source(table="main.residents_2024", watermark="Updated_At")(workspace)
    _target(table="t" * 128)(workspace)
    code, _, err = govex("apply", str(workspace.root))
    assert code == 0, err


@pytest.mark.parametrize(
    "name", ["psb_residents", "hr.staff", "a.b.c", "x-y", "名字", "t" * 128, "t" * 129, ""]
)
def test_apply_and_the_sql_sink_agree_on_a_target_table(
    name: str, workspace: Any, govex: Any, tmp_path: Path
) -> None:
    """One rule: apply refuses a target table exactly when the run's SQLite sink would."""
    sink: Any = connectors.open_sink("url", f"sqlite:///{tmp_path / 'gsc.db'}")
    try:
        sink.dialect.quote_table(name)
        run_accepts = True
    except DeclarationError:
        run_accepts = False
    _target(table=name)(workspace)
    code, _, err = govex("apply", str(workspace.root))
    assert (code == 0) is run_accepts, err


def test_one_limit_per_system_for_apply_and_connectors(tmp_path: Path) -> None:
    """The limits apply checks by are the ones the connectors' capabilities carry."""
    assert set(SQL_IDENTIFIER_LENGTH) == set(DIALECTS)
    for backend, (module, name) in DIALECTS.items():
        dialect = getattr(import_module(module), name)
        assert dialect.capabilities.max_identifier_length == SQL_IDENTIFIER_LENGTH[backend]
    for fmt in ("csv", "jsonl"):
        files = connectors.open_sink("path", str(tmp_path), fmt)
        assert files.capabilities.max_identifier_length == FILE_IDENTIFIER_LENGTH
