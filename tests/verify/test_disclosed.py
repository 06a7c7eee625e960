"""A verification is disclosed under the record's key as the source spells it.

A call names the record it asked about as it compared it: typed and normalised as the contract
says, so an ID number's check character is upper case there. A source may hold it in lower
case; disclosure by the source key must still name the department that verified the record,
through the API, the page and `govex disclosure`, or a consumer's use would go undisclosed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exchange.cli import main
from tests.verify.conftest import CODE, ask, people

URL = f"/api/v1/verify/{CODE}"


def _who(disclosure: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((d["action"], d["consumer"]) for d in disclosure["disclosures"])


def test_a_verification_is_disclosed_under_the_sources_spelling(
    world_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = people(5)
    key = rows[3]["id_no"] = rows[3]["id_no"].lower()
    assert key.endswith("x")
    world = world_factory(rows)
    world.run()  # the bulk subscription of hpf receives the record as the source spells it
    with world.client() as client:
        asked = client.post(URL, headers=world.headers("gsc"), json={"records": [
            ask(key, name=rows[3]["name"]), ask(key.upper(), name="别人")]})
        assert asked.status_code == 200, asked.text
        psb = world.headers("psb", "provider")
        by_source_key = client.post("/api/v1/disclosure", headers=psb,
                                    json={"resource": CODE, "key": key})
        by_path = client.get(f"/api/v1/disclosure/{CODE}/{key}", headers=psb)
        page = client.post("/disclosure", headers=psb, data={"resource": CODE, "key": key})
    expected = [("delivered", "hpf"), ("verified", "gsc"), ("verified", "gsc")]
    assert _who(by_source_key.json()) == expected, by_source_key.text
    assert _who(by_path.json()) == expected
    assert by_source_key.json()["departments"] == ["gsc", "hpf"]
    assert "verified 核验" in page.text
    assert "SUB-GSC-V01" in page.text
    capsys.readouterr()
    assert main(["disclosure", CODE, key, "--json"]) == 0
    assert _who(json.loads(capsys.readouterr().out)) == expected


def test_a_purpose_cannot_rewrite_the_terminal_that_shows_it(
    world_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A consumer writes its purpose (a sharing request's); shown raw, a carriage return and
    an ANSI erase-line would blank its own row of `govex disclosure` on the auditor's
    terminal. Control characters are printed escaped, visibly."""
    hidden = "办事核验\r\x1b[2K"
    world = world_factory(people(3), [
        {"id": "SUB-GSC-V01", "consumer": "gsc", "delivery": "verify", "fields": ["name"],
         "purpose": hidden},
    ])
    world.run()
    key = people(3)[1]["id_no"]
    with world.client() as client:
        asked = client.post(URL, headers=world.headers("gsc"), json={"records": [ask(key)]})
    assert asked.status_code == 200, asked.text
    capsys.readouterr()
    assert main(["disclosure", CODE, key]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\r" not in out
    row = next(line for line in out.splitlines() if "SUB-GSC-V01" in line)
    assert (row.split()[1], row.split()[2]) == ("verified", "gsc")
    assert "办事核验\\r\\x1b[2K" in row
