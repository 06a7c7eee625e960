"""Disclosure on a delivered city: every department that received or verified a record, from
real deliveries (provenance) and recorded verifications, joined with the checklist; and the
records of one ID number across the three resources that hold ID numbers (as the key, as part
of the key, and as a plain field read from the source)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import records
from exchange.cli import main
from govex.errors import DeclarationError
from tests.disclosure.city import id_number
from tests.disclosure.conftest import VERIFIED_AT, Delivered

PSB_CONSUMERS = ["civil", "edu", "gsc", "hpf", "stats", "tax"]
PERSON = id_number(10)  # in all three resources; verified twice by gsc


def test_every_delivery_and_verification_of_one_record(delivered: Delivered) -> None:
    found = records.disclosure(delivered.engine, "PSB-RES-001", PERSON)
    assert (found["resource"], found["key"], found["provider"]) == (
        "PSB-RES-001", PERSON, "psb")
    assert found["departments"] == PSB_CONSUMERS
    items = found["disclosures"]
    delivered_to = {i["subscription"]: i for i in items if i["action"] == "delivered"}
    assert set(delivered_to) == {"SUB-GSC-001", "SUB-HPF-001", "SUB-CIV-001", "SUB-TAX-001",
                                 "SUB-STA-001", "SUB-EDU-001"}
    gsc = delivered_to["SUB-GSC-001"]
    assert gsc | {"at": None, "run_id": None} == {
        "action": "delivered", "at": None, "consumer": "gsc", "subscription": "SUB-GSC-001",
        "delivery": "bulk", "fields": ["id_no", "name", "birth_date", "score", "updated_at"],
        "masking": {"name": "mask_name"}, "purpose": "gsc 办事核对",
        "subscription_state": "active", "declared_in": "catalog", "run_id": None,
        "call_id": None, "found": None, "matched": None, "beyond_retention": False}
    assert gsc["run_id"]
    assert gsc["at"]
    assert "key" not in gsc  # one record: the key is the answer's
    verified = [i for i in items if i["action"] == "verified"]
    # Newest first; the fields are those asked, not the subscription's.
    assert [(v["fields"], v["matched"], v["at"]) for v in verified] == [
        (["name"], False, "2026-11-20T10:30:00+00:00"),
        (["name", "birth_date"], True, VERIFIED_AT.isoformat()),
    ]
    assert {(v["consumer"], v["subscription"], v["delivery"], v["purpose"], v["found"])
            for v in verified} == {("gsc", "SUB-GSC-VER", "verify", "gsc 身份核验", True)}
    assert all(v["masking"] is None and v["run_id"] is None and v["call_id"] for v in verified)
    moments = [i["at"] for i in items]
    assert moments == sorted(moments, reverse=True)


def test_a_record_nobody_received_and_bad_questions(delivered: Delivered) -> None:
    """A well-formed key nobody received: an empty list (the record may or may not exist);
    an unknown resource or a key of the wrong shape: a DeclarationError naming it."""
    nobody = records.disclosure(delivered.engine, "PSB-RES-001", id_number(5000))
    assert (nobody["departments"], nobody["disclosures"]) == ([], [])
    with pytest.raises(DeclarationError, match="unknown resource 'NOPE-001'"):
        records.disclosure(delivered.engine, "NOPE-001", PERSON)
    with pytest.raises(DeclarationError, match=r"give 2 value\(s\) joined by ','"):
        records.disclosure(delivered.engine, "CIVIL-RES-001", PERSON)


def _search(delivered: Delivered, value: str, resources: list[str] | None = None
            ) -> dict[str, dict[str, Any]]:
    with delivered.engine.connect() as conn:
        found = records.search_pii(conn, "id_number", [value], resources=resources)
    return {item["resource"]: item for item in found}


def test_one_person_across_resources(delivered: Delivered) -> None:
    """The ID number is PSB's key, part of CIVIL's key, and a plain field of HRSS (read from
    HRSS's source): the departments listed are exactly those that got this person's
    records."""
    found = _search(delivered, PERSON)
    assert set(found) == {"PSB-RES-001", "HRSS-RES-001", "CIVIL-RES-001"}
    psb, hrss, civil = found["PSB-RES-001"], found["HRSS-RES-001"], found["CIVIL-RES-001"]
    assert (psb["searched"], psb["keys"], psb["departments"]) == ("key", [PERSON], PSB_CONSUMERS)
    assert (hrss["searched"], hrss["field"], hrss["error"]) == ("source", "id_no", None)
    assert hrss["keys"] == ["INS000010", "INS900010"]
    assert hrss["departments"] == ["hpf"]
    assert {(d["key"], d["subscription"]) for d in hrss["disclosures"]} == {
        ("INS000010", "SUB-HPF-002"), ("INS900010", "SUB-HPF-002")}
    assert civil["searched"] == "key part"
    assert civil["keys"] == [f"2024,{PERSON}", f"2025,{PERSON}"]
    assert civil["departments"] == ["gsc"]
    everyone = sorted({d for item in found.values() for d in item["departments"]})
    assert everyone == PSB_CONSUMERS


def test_a_person_not_everywhere(delivered: Delivered) -> None:
    """Resident 150 has no insurance and no allowance; resident 11 has insurance only."""
    far = _search(delivered, id_number(150))
    assert far["PSB-RES-001"]["departments"] == PSB_CONSUMERS
    assert (far["HRSS-RES-001"]["keys"], far["CIVIL-RES-001"]["keys"]) == ([], [])
    eleven = _search(delivered, id_number(11), ["HRSS-RES-001", "CIVIL-RES-001"])
    assert set(eleven) == {"HRSS-RES-001", "CIVIL-RES-001"}
    assert (eleven["HRSS-RES-001"]["keys"], eleven["CIVIL-RES-001"]["keys"]) == (
        ["INS000011"], [])


def test_an_unreadable_source_is_named_not_hidden(delivered: Delivered, tmp_path: Any) -> None:
    """HRSS's source gone: the other resources still answer; HRSS says why it could not."""
    source = delivered.city.urls["hrss_db"].removeprefix("sqlite:///")
    moved = tmp_path / "hrss.db"
    import shutil

    shutil.move(source, moved)
    try:
        found = _search(delivered, PERSON)
    finally:
        shutil.move(moved, source)
    assert found["PSB-RES-001"]["departments"] == PSB_CONSUMERS
    hrss = found["HRSS-RES-001"]
    assert hrss["error"].startswith("the source of HRSS-RES-001 cannot be read")
    assert (hrss["keys"], hrss["disclosures"]) == ([], [])


def test_the_command_line(delivered: Delivered, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["disclosure", "PSB-RES-001", PERSON, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == records.disclosure(
        delivered.engine, "PSB-RES-001", PERSON)
    assert main(["disclosure", "PSB-RES-001", PERSON]) == 0
    out = capsys.readouterr().out
    assert f"PSB-RES-001 record {PERSON} (provider psb)" in out
    assert "departments: civil, edu, gsc, hpf, stats, tax" in out
    assert "name(mask_name)" in out
    assert "verified" in out
    assert "SUB-GSC-VER" in out
    assert main(["disclosure", "PSB-RES-001", id_number(5000)]) == 0
    assert "no department received or verified this record" in capsys.readouterr().out
    assert main(["disclosure", "NOPE-001", PERSON]) == 2
    assert "unknown resource 'NOPE-001'" in capsys.readouterr().err
