"""The seeded generator: deterministic, valid except exactly the planted defects, as documented."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator, FormatChecker

from exchange.demo.city import (
    DEFECT_PLAN,
    GENERATED_RESOURCES,
    REFERENCE_DATE,
    DefectManifest,
    GeneratedResource,
    generate_city,
    generate_resources,
    rows_for,
    tax_credit_messages,
    tax_credit_records,
)
from govex.errors import DeclarationError
from quality.standards import (
    birth_date_from_resident_id,
    gender_from_resident_id,
    is_valid_cn_mobile_phone,
    is_valid_resident_id,
    is_valid_uscc,
)

SOURCE_CONNECTIONS = ("psb_db", "amr_db", "hrss_db", "health_db", "civil_files")


def _planted(g: GeneratedResource, check: str, column: str) -> set[str]:
    return {d.key for d in g.defects if d.check == check and d.column == column}


def _failing(g: GeneratedResource, column: str, ok: Any) -> set[str]:
    return {g.key_of(r) for r in g.rows if r[column] is not None and not ok(r[column])}


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    a = generate_resources(seed=7, scale=0.05)
    b = generate_resources(seed=7, scale=0.05)
    c = generate_resources(seed=8, scale=0.05)
    for code in GENERATED_RESOURCES:
        assert a[code].rows == b[code].rows, code
        assert a[code].defects == b[code].defects, code
        assert a[code].rows != c[code].rows, code


def test_scale_multiplies_rows(city: dict[str, GeneratedResource]) -> None:
    small = generate_resources(scale=0.1, codes=["PSB-RES-001", "AMR-RES-001"])
    assert set(small) == {"PSB-RES-001", "AMR-RES-001"}
    assert len(small["PSB-RES-001"].rows) == 300
    assert len(city["PSB-RES-001"].rows) == 3000
    for code, g in city.items():
        assert len(g.rows) == rows_for(code, 1.0), code
        assert 200 <= len(g.rows) <= 5000, code
    tiny = generate_resources(scale=0.001)
    assert {len(g.rows) for g in tiny.values()} == {20}  # MIN_ROWS
    with pytest.raises(ValueError, match="no data for"):
        generate_resources(codes=["NOPE-001"])
    with pytest.raises(ValueError, match="positive"):
        generate_resources(scale=0)


def test_keys_are_unique(city: dict[str, GeneratedResource]) -> None:
    for code, g in city.items():
        keys = [g.key_of(r) for r in g.rows]
        assert len(keys) == len(set(keys)), code


def test_resident_ids_valid_except_exactly_the_planted_ones(
    city: dict[str, GeneratedResource], contracts: dict[str, dict[str, Any]]
) -> None:
    checked = 0
    for code, g in city.items():
        for column, prop in contracts[code]["properties"].items():
            if "cn_resident_id" in prop.get("x-govex-checks", []):
                # The demo's "today", so the test does not depend on the machine's clock.
                valid = functools.partial(is_valid_resident_id, today=REFERENCE_DATE)
                bad = _failing(g, column, valid)
                assert bad == _planted(g, "cn_resident_id", column), (code, column)
                checked += 1
    assert checked >= 6


def test_usccs_valid_except_exactly_the_planted_ones(
    city: dict[str, GeneratedResource], contracts: dict[str, dict[str, Any]]
) -> None:
    for code, g in city.items():
        for column, prop in contracts[code]["properties"].items():
            if "cn_uscc" in prop.get("x-govex-checks", []):
                bad = _failing(g, column, is_valid_uscc)
                assert bad == _planted(g, "cn_uscc", column), (code, column)
    amr = city["AMR-RES-001"]
    # The org-code defects pass the MOD 31 check and are caught only by the GB 11714 one.
    org_only = {
        amr.key_of(r)
        for r in amr.rows
        if is_valid_uscc(r["uscc"], check_org_code=False) and not is_valid_uscc(r["uscc"])
    }
    assert len(org_only) == round(len(amr.rows) * 0.005)


def test_cross_field_and_phone_defects_are_exactly_the_planted_ones(
    city: dict[str, GeneratedResource],
) -> None:
    psb = city["PSB-RES-001"]
    wrong_birth = {
        psb.key_of(r)
        for r in psb.rows
        if birth_date_from_resident_id(r["id_no"]) != r["birth_date"]
    }
    assert wrong_birth == _planted(psb, "id_birth_date_consistency", "birth_date")
    wrong_gender = {
        psb.key_of(r)
        for r in psb.rows
        if {"M": "男", "F": "女"}[gender_from_resident_id(r["id_no"]) or "M"] != r["gender"]
    }
    assert wrong_gender == _planted(psb, "id_gender_consistency", "gender")
    for code in ("PSB-RES-001", "HRSS-RES-001"):
        g = city[code]
        assert _failing(g, "phone", is_valid_cn_mobile_phone) == _planted(
            g, "cn_mobile_phone", "phone"
        )


def test_manifest_counts_match_the_documented_fractions(
    city: dict[str, GeneratedResource],
    ws_resources: dict[str, dict[str, Any]],
    workspace: Path,
) -> None:
    readme = (workspace / "README.md").read_text(encoding="utf-8")
    for code, g in city.items():
        summary = g.summary()
        plan = DEFECT_PLAN[code]
        assert summary.clean_rows == len(g.rows) - len(g.defects)
        # one defect per defective row
        assert len({d.key for d in g.defects}) == len(g.defects), code
        for spec in plan:
            n = sum(1 for d in g.defects if (d.check, d.column) == (spec.check, spec.column))
            same = [s for s in plan if (s.check, s.column) == (spec.check, spec.column)]
            assert n == sum(round(len(g.rows) * s.fraction) for s in same), (code, spec)
            pct = f"{spec.fraction * 100:g}%"
            line = f"| {code} | `{spec.column}` | `{spec.check}` | {pct} |"
            assert line in readme, f"README.md lacks the row {line!r}"
        rate = sum(s.fraction for s in plan)
        assert summary.defect_rate == pytest.approx(rate, abs=0.001), code
        # Planted rate at most 60% of the gate's threshold, so no demo batch is blocked by chance.
        assert rate <= 0.6 * ws_resources[code]["quality"]["max_error_rate"], code


def test_rows_validate_against_contracts_except_schema_visible_defects(
    city: dict[str, GeneratedResource], contracts: dict[str, dict[str, Any]]
) -> None:
    for code, g in city.items():
        validator = Draft202012Validator(contracts[code], format_checker=FormatChecker())
        failing = {g.key_of(r) for r in g.rows if not validator.is_valid(_json_ready(r))}
        visible = {d.key for d in g.defects if d.schema_visible}
        assert failing == visible, code


def test_tax_credit_messages_are_envelopes(contracts: dict[str, dict[str, Any]]) -> None:
    messages = tax_credit_messages(n=300)
    assert messages == tax_credit_messages(n=300)
    assert len(messages) == 300
    assert len({m["message_id"] for m in messages}) == 300
    validator = Draft202012Validator(contracts["TAX-RES-001"], format_checker=FormatChecker())
    records = tax_credit_records(n=300)
    visible = {d.key for d in records.defects if d.schema_visible}
    bad_uscc = {d.key for d in records.defects if d.check == "cn_uscc"}
    for m in messages:
        assert set(m) == {
            "message_id",
            "resource",
            "contract_version",
            "op",
            "key",
            "data",
            "source_system",
            "event_time",
        }
        assert m["resource"] == "TAX-RES-001"
        assert m["op"] == "upsert"
        assert m["key"] == {"uscc": m["data"]["uscc"]}
        assert re.fullmatch(r"2026-11-27T\d\d:\d\d:\d\dZ", m["event_time"])
        json.dumps(m)
        assert validator.is_valid(m["data"]) == (m["data"]["uscc"] not in visible)
        assert is_valid_uscc(m["data"]["uscc"]) == (m["data"]["uscc"] not in bad_uscc)
    assert len(bad_uscc) == 3
    assert len(visible) == 2


def _sqlite_targets(root: Path) -> dict[str, str]:
    targets = {name: f"sqlite:///{root / name}.db" for name in SOURCE_CONNECTIONS}
    targets["civil_files"] = str(root / "files")
    return targets


def test_generate_city_writes_tables_files_and_manifest(workspace: Path, tmp_path: Path) -> None:
    targets = _sqlite_targets(tmp_path)
    targets["bus"] = "127.0.0.1:9092"  # extra connections are ignored
    scratch = tmp_path / "ws"
    _copy_workspace(workspace, scratch)
    manifest = generate_city(scratch, targets, seed=11, scale=0.05)
    again = generate_city(scratch, targets, seed=11, scale=0.05)  # drop + create: rerunnable
    assert manifest == again
    assert DefectManifest.load(scratch / "data" / "defects.json") == manifest
    expected = generate_resources(seed=11, scale=0.05)
    assert {r.resource for r in manifest.resources} == set(GENERATED_RESOURCES)
    tables = {
        "PSB-RES-001": ("psb_db", "residents"),
        "AMR-RES-001": ("amr_db", "market_entities"),
        "HRSS-RES-001": ("hrss_db", "social_insurance"),
        "HEALTH-RES-001": ("health_db", "birth_certificates"),
        "HEALTH-RES-002": ("health_db", "severe_mental_disorder_patients"),
    }
    for code, (conn, table) in tables.items():
        engine = sa.create_engine(targets[conn])
        with engine.connect() as c:
            rows = c.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
        engine.dispose()
        assert len(rows) == manifest.resource(code).rows == len(expected[code].rows)
        assert {expected[code].key_of(dict(r)) for r in rows} == {
            expected[code].key_of(r) for r in expected[code].rows
        }
    with (tmp_path / "files" / "subsistence_allowance.csv").open(encoding="utf-8") as f:
        csv_rows = list(csv.DictReader(f))
    civil = expected["CIVIL-RES-001"]
    assert [r["case_no"] for r in csv_rows] == [r["case_no"] for r in civil.rows]
    assert csv_rows[0]["name"] == civil.rows[0]["name"]


def test_generate_city_names_a_missing_target(workspace: Path, tmp_path: Path) -> None:
    targets = _sqlite_targets(tmp_path)
    del targets["amr_db"]
    with pytest.raises(DeclarationError, match="amr_db"):
        generate_city(workspace, targets, scale=0.01)


def _copy_workspace(src: Path, dst: Path) -> None:
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if rel.parts[0] == "data" or path.is_dir():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(path.read_bytes())


@pytest.mark.integration
def test_generate_into_postgresql_and_mariadb(
    workspace: Path, tmp_path: Path, pg_url: str, mariadb_url: str
) -> None:
    # Databases that do not exist yet: the generator creates them.
    pg_new = sa.make_url(pg_url).set(database=f"{sa.make_url(pg_url).database}_psb")
    my_new = sa.make_url(mariadb_url).set(database=f"{sa.make_url(mariadb_url).database}_amr")
    targets = _sqlite_targets(tmp_path)
    targets["psb_db"] = pg_new.render_as_string(hide_password=False)
    targets["amr_db"] = my_new.render_as_string(hide_password=False)
    targets["hrss_db"] = mariadb_url
    targets["health_db"] = pg_url
    scratch = tmp_path / "ws"
    _copy_workspace(workspace, scratch)
    try:
        manifest = generate_city(scratch, targets, scale=0.05)
        expected = generate_resources(scale=0.05)
        for conn, table, code in (
            ("psb_db", "residents", "PSB-RES-001"),
            ("amr_db", "market_entities", "AMR-RES-001"),
            ("hrss_db", "social_insurance", "HRSS-RES-001"),
            ("health_db", "birth_certificates", "HEALTH-RES-001"),
        ):
            engine = sa.create_engine(targets[conn])
            with engine.connect() as c:
                rows = c.execute(sa.text(f"SELECT * FROM {table}")).mappings().all()
            engine.dispose()
            g = expected[code]
            assert len(rows) == manifest.resource(code).rows == len(g.rows)
            by_key = {g.key_of(dict(r)): r for r in rows}
            for want in g.rows[:50]:  # values round-trip, Chinese text and dates included
                got = by_key[g.key_of(want)]
                for col, value in want.items():
                    if isinstance(value, dt.datetime):
                        stored = got[col]
                        stored = stored if stored.tzinfo else stored.replace(tzinfo=dt.UTC)
                        assert stored == value, (code, col)
                    elif isinstance(value, float):
                        assert got[col] == pytest.approx(value), (code, col)
                    else:
                        assert got[col] == value, (code, col)
    finally:
        for url, admin in ((pg_new, "postgres"), (my_new, None)):
            engine = sa.create_engine(url._replace(database=admin), isolation_level="AUTOCOMMIT")
            with engine.connect() as c:
                q = c.dialect.identifier_preparer.quote(str(url.database))
                force = " WITH (FORCE)" if url.get_backend_name() == "postgresql" else ""
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {q}{force}"))
            engine.dispose()
