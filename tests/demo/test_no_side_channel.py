"""No field leaves through a side channel: after the demo city has run, nothing govex wrote into
any consumer's database (the target tables with their `_govex_*` columns, the delivery ledger,
any other `_govex_*` table) holds a value the subscription was not approved to receive: a value
of a field outside its fields, or the raw value of a field it receives masked."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
from exchange.cli import main
from exchange.demo.city import DEFAULT_SEED, generate_resources, tax_credit_records
from exchange.demo.files import copy_workspace

SCALE = 0.2
LEDGER = "_govex_delivery_ledger"
# Shorter values (男, A, 2025, a household size) say nothing about a record on their own and
# would match by chance; what must never leak is identifiers and personal data.
MIN_LENGTH = 4
_TOKENS = re.compile(r"[^\s\"',\[\]{}()]+")


def _texts(value: Any) -> set[str]:
    """The spellings a value may take in a database or a JSON text."""
    if value is None:
        return set()
    if isinstance(value, dt.datetime):
        return {value.isoformat(), value.strftime("%Y-%m-%d %H:%M:%S")}
    if isinstance(value, dt.date):
        return {value.isoformat()}
    return {str(value)}


def _cell_texts(cell: Any) -> set[str]:
    """A stored cell, whole and cut into tokens, and every scalar of it if it is JSON (a
    cursor, the ledger's extra), so a value inside a text is found as well as a whole one."""
    out = _texts(cell)
    for text in list(out):
        out |= set(_TOKENS.findall(text))
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        stack = [parsed]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
            else:
                out |= _texts(item)
    return out


def _leaks(rows: Iterable[Iterable[Any]], forbidden: set[str]) -> set[str]:
    found: set[str] = set()
    for row in rows:
        for cell in row:
            found |= _cell_texts(cell) & forbidden
    return found


def _forbidden(sub: dict[str, Any], rows: list[dict[str, Any]]) -> set[str]:
    """Every source value the subscription may not see, minus values it does receive
    openly (a date that is both an approved birth date and an unapproved start date)."""
    fields = set(sub["fields"])
    masked = {f for f, how in (sub.get("masking") or {}).items() if how != "none"}
    hidden: set[str] = set()
    shown: set[str] = set()
    for row in rows:
        for name, value in row.items():
            if name in fields and name not in masked:
                shown |= _texts(value)
            else:
                hidden |= _texts(value)
    return {v for v in hidden - shown if len(v) >= MIN_LENGTH}


def test_the_scan_finds_a_key_in_a_ledger_cursor() -> None:
    """The scanner itself can fail: a raw cursor with an ID number in it is found."""
    cursor = json.dumps({"columns": ["updated_at", "id_no"],
                         "values": ["2026-11-01T08:00:00+00:00", "11010519900307002X"]})
    assert _leaks([("SUB-STATS-001", cursor)], {"11010519900307002X"}) == {"11010519900307002X"}
    assert _leaks([("a,11010519900307002X",)], {"11010519900307002X"})
    assert not _leaks([("110105********002X",)], {"11010519900307002X"})


@pytest.mark.integration  # drives Airflow (dag.test) with its own SQLite database
def test_no_target_of_the_demo_city_holds_an_unapproved_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = copy_workspace(tmp_path / "city")
    monkeypatch.setenv("GOVEX_DB_URL", f"sqlite:///{tmp_path / 'govex.db'}")
    for name in ("PSB", "AMR", "HRSS", "HEALTH", "GSC", "HPF", "TAX", "CIVIL", "HOUSING",
                 "STATS"):
        monkeypatch.delenv(f"GOVEX_DEMO_{name}_URL", raising=False)
    assert main(["demo", "--no-serve", "--workspace", str(workspace), "--scale", str(SCALE)]) == 0
    capsys.readouterr()

    ws = catalog.load_workspace(workspace)
    resources = {code: d.item for code, d in ws.resources.items()}
    # The checklist as the store holds it: declared lines and the approved requests' lines.
    store = sa.create_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    with store.connect() as conn:
        subs = list(catalog.subscription_declarations(conn).values())
    store.dispose()
    source_rows = {code: g.rows for code, g in
                   generate_resources(seed=DEFAULT_SEED, scale=SCALE).items()}
    source_rows["TAX-RES-001"] = tax_credit_records(
        DEFAULT_SEED, max(20, round(1260 * SCALE))
    ).rows
    # The city has a consumer that is not approved for the key: the case this is about.
    assert any(not set(resources[s["resource"]].key) <= set(s["fields"]) for s in subs)

    forbidden = {s["id"]: _forbidden(s, source_rows[s["resource"]]) for s in subs}
    by_connection: dict[str, list[dict[str, Any]]] = {}
    for s in subs:
        by_connection.setdefault(s["target"]["connection"], []).append(s)
    scanned: dict[str, int] = {}
    for connection, targeted in by_connection.items():
        url = catalog.resolve_connection(
            connection, ws.connections[connection].item, ws.root
        ).target
        sources = {r.source.table for r in resources.values()
                   if r.source.connection == connection}
        tables = {s["target"]["table"]: s["id"] for s in targeted}
        engine = sa.create_engine(url)
        try:
            names = set(sa.inspect(engine).get_table_names())
            # govex writes the targets and the ledger; nothing else of its own is left behind
            assert names - sources - set(tables) == {LEDGER}, (connection, names)
            with engine.connect() as conn:
                columns = [c["name"] for c in sa.inspect(engine).get_columns(LEDGER)]
                assert "cursor" not in columns, connection
                for sub_id, *rest in conn.execute(sa.text(f"SELECT * FROM {LEDGER}")):
                    assert sub_id in forbidden, (connection, sub_id)
                    leaked = _leaks([rest], forbidden[sub_id])
                    assert not leaked, (connection, LEDGER, sub_id, sorted(leaked)[:5])
                for table, sub_id in tables.items():
                    rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
                    assert rows, (connection, table)
                    leaked = _leaks(rows, forbidden[sub_id])
                    assert not leaked, (connection, table, sub_id, sorted(leaked)[:5])
                    scanned[sub_id] = len(rows)
        finally:
            engine.dispose()
    assert set(scanned) == {s["id"] for s in subs}
