"""`govex leak identify` on a delivered city: leaked samples read back from the consumers' real
target tables (SQLite), shuffled, renamed, stripped of govex's columns, are attributed to the
subscription they came from; keyed-hash twins are told apart, identical projections tie."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exchange.cli import main
from tests.disclosure.city import City
from tests.leak.conftest import leak_sample, write_csv, write_jsonl


def _identify(capsys: pytest.CaptureFixture[str], path: Path, code: str = "PSB-RES-001"
              ) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["leak", "identify", str(path), "--resource", code, "--json"]) == 0
    ranked: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return ranked


def _by_sub(ranked: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["subscription"]: r for r in ranked}


def _attributed(ranked: list[dict[str, Any]], sub: str) -> None:
    """`sub` first with at least 0.95 of the rows; every other subscription at most 0.05."""
    assert ranked[0]["subscription"] == sub, ranked
    assert ranked[0]["matched"] >= 0.95
    assert all(r["matched"] <= 0.05 for r in ranked[1:]), ranked


def test_a_leaked_sample_is_attributed_to_its_subscription(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = delivered.target_rows("gsc_db", "gsc_residents")
    header, sample = leak_sample(rows, 200, rename={"name": "姓名", "id_no": "证件号码"})
    assert not any(h.startswith("_govex_") for h in header)
    ranked = _identify(capsys, write_csv(tmp_path / "leak.csv", header, sample))
    _attributed(ranked, "SUB-GSC-001")
    top = ranked[0]
    assert (top["consumer"], top["rows"], top["matched_rows"]) == ("gsc", 200, 200)
    assert top["columns"] == {"id_no": "证件号码", "name": "姓名", "birth_date": "birth_date",
                              "score": "score", "updated_at": "updated_at"}
    assert top["unexplained"] == []
    # Verify subscriptions receive no rows: never ranked.
    assert "SUB-GSC-VER" not in _by_sub(ranked)
    assert {r["subscription"] for r in ranked} == {
        "SUB-GSC-001", "SUB-HPF-001", "SUB-CIV-001", "SUB-TAX-001", "SUB-STA-001",
        "SUB-EDU-001"}


def test_every_column_renamed_is_still_placed(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No column keeps a field's name: the bounded search over assignments places them."""
    rows = delivered.target_rows("gsc_db", "gsc_residents")
    rename = {"id_no": "a", "name": "b", "birth_date": "c", "score": "d", "updated_at": "e"}
    header, sample = leak_sample(rows, 200, rename=rename, seed=3)
    ranked = _identify(capsys, write_csv(tmp_path / "renamed.csv", header, sample))
    _attributed(ranked, "SUB-GSC-001")
    assert ranked[0]["columns"] == rename


def test_swapped_headers_do_not_mislead(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two text columns carry each other's names: the names-ignored assignment wins."""
    rows = delivered.target_rows("stats_db", "stats_residents")
    header, sample = leak_sample(rows, 200, rename={"name": "phone", "phone": "name"})
    ranked = _identify(capsys, write_csv(tmp_path / "swapped.csv", header, sample))
    top = _by_sub(ranked)["SUB-STA-001"]
    assert top["matched"] >= 0.95
    assert top["columns"] == {"name": "phone", "phone": "name"}


def test_keyed_hash_twins_are_told_apart(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """civil and tax receive the same fields with the same `hash` masking: keyed per
    subscription, the hashes differ, and so does the verdict."""
    for consumer, sub in (("civil", "SUB-CIV-001"), ("tax", "SUB-TAX-001")):
        rows = delivered.target_rows(f"{consumer}_db", f"{consumer}_residents")
        header, sample = leak_sample(rows, 200, rename={"name": "name_hash"})
        ranked = _identify(capsys, write_csv(tmp_path / f"{consumer}.csv", header, sample))
        _attributed(ranked, sub)
        assert ranked[0]["tie_with"] == []


def test_identical_projections_tie(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """stats and edu receive the same fields, unmasked: no file can tell them apart, and the
    answer says so instead of picking one."""
    rows = delivered.target_rows("edu_db", "edu_residents")
    header, sample = leak_sample(rows, 200)
    ranked = _identify(capsys, write_csv(tmp_path / "edu.csv", header, sample))
    by_sub = _by_sub(ranked)
    assert {r["subscription"] for r in ranked[:2]} == {"SUB-STA-001", "SUB-EDU-001"}
    assert by_sub["SUB-EDU-001"]["matched"] == by_sub["SUB-STA-001"]["matched"] == 1.0
    assert by_sub["SUB-EDU-001"]["tie_with"] == ["SUB-STA-001"]
    assert by_sub["SUB-STA-001"]["tie_with"] == ["SUB-EDU-001"]
    assert "no file can tell them apart" in by_sub["SUB-EDU-001"]["note"]
    assert all(r["matched"] <= 0.05 for r in ranked[2:])


def test_json_lines_and_a_partial_file(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON Lines, 37 rows of hpf's copy, half of the file made-up rows: the share says so."""
    rows = delivered.target_rows("hpf_db", "hpf_residents")
    header, sample = leak_sample(rows, 37, rename={"phone": "mobile"})
    made_up = [[f"11010519991231{i:04d}" if h == "id_no" else "139****0000" for h in header]
               for i in range(37)]
    ranked = _identify(capsys, write_jsonl(tmp_path / "hpf.jsonl", header, sample + made_up))
    top = ranked[0]
    assert (top["subscription"], top["rows"], top["matched_rows"]) == ("SUB-HPF-001", 74, 37)
    assert top["matched"] == 0.5
    assert all(r["matched"] == 0 for r in ranked[1:])


def test_an_extra_column_is_unexplained_and_a_missing_field_named(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column the subscription never received is listed; a subscription whose field the
    file lacks is not ranked up, with a note saying which field."""
    rows = delivered.target_rows("civil_db", "civil_residents")
    header, sample = leak_sample(rows, 50)
    header.append("备注")
    for i, row in enumerate(sample):
        row.append("已核实" if i % 2 else "待核实")
    ranked = _identify(capsys, write_csv(tmp_path / "extra.csv", header, sample))
    top = ranked[0]
    assert (top["subscription"], top["matched"]) == ("SUB-CIV-001", 1.0)
    assert top["unexplained"] == ["备注"]
    gsc = _by_sub(ranked)["SUB-GSC-001"]
    assert gsc["matched"] == 0
    assert "score" in gsc["note"] or "updated_at" in gsc["note"]


def test_another_resource(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Numbers spelt another way (1.50 for 1.5) are the same delivered value."""
    rows = delivered.target_rows("hpf_db", "hpf_insurance")
    header, sample = leak_sample(rows, 60)
    at = header.index("monthly_base")
    for row in sample:
        row[at] = f"{float(row[at]):.2f}"
    ranked = _identify(capsys, write_csv(tmp_path / "ins.csv", header, sample), "HRSS-RES-001")
    assert [(r["subscription"], r["matched"]) for r in ranked] == [("SUB-HPF-002", 1.0)]


def test_the_text_answer(
    delivered: City, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = delivered.target_rows("stats_db", "stats_residents")
    header, sample = leak_sample(rows, 20)
    path = write_csv(tmp_path / "stats.csv", header, sample)
    capsys.readouterr()
    assert main(["leak", "identify", str(path), "--resource", "PSB-RES-001"]) == 0
    out = capsys.readouterr().out
    assert "20 csv rows" in out
    lines = [line.split() for line in out.splitlines()]
    ranked = [line[0] for line in lines if line and line[0].startswith("SUB-")]
    assert set(ranked[:2]) == {"SUB-STA-001", "SUB-EDU-001"}
    assert any("SUB-EDU-001: tied with SUB-STA-001" in line for line in out.splitlines())
