"""The disclosure page: one record, and "which departments received the records of this ID
number", both posted so neither the key nor the number reaches a URL; for providers (their
own resources), admin, authority and auditors; linked from the navigation for them only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.disclosure.city import id_number
from tests.disclosure.conftest import Delivered

PERSON = id_number(10)
SAME_ORIGIN = {"Origin": "http://testserver"}


def _headers(delivered: Delivered, role: str, department: str) -> dict[str, str]:
    return {**delivered.headers(role, department), **SAME_ORIGIN}


def _badges(html: str, after: str) -> list[str]:
    """The department badges of the first 'Departments' line after `after`."""
    part = html[html.index(after):]
    line = part[part.index("Departments 部门:"):].split("</p>", 1)[0]
    return re.findall(r'<span class="badge">([a-z]+)</span>', line)


def test_the_form_and_the_link(client: Any, delivered: Delivered) -> None:
    page = client.get("/disclosure", headers=delivered.headers("provider", "psb"))
    assert page.status_code == 200
    assert 'href="/disclosure"' in page.text  # the navigation
    options = re.findall(r'<option value="([A-Z-0-9]+)"', page.text)
    assert options == ["PSB-RES-001"]  # a provider asks about its own resources
    everything = client.get("/disclosure", headers=delivered.headers("auditor", "edu"))
    assert re.findall(r'<option value="([A-Z-0-9]+)"', everything.text) == [
        "CIVIL-RES-001", "HRSS-RES-001", "PSB-RES-001"]
    consumer = delivered.headers("consumer", "gsc")
    assert 'href="/disclosure"' not in client.get("/catalog", headers=consumer).text
    refused = client.get("/disclosure", headers=consumer)
    assert refused.status_code == 403
    assert "may not read who received a record" in refused.text


def test_one_record(client: Any, delivered: Delivered) -> None:
    page = client.post("/disclosure", headers=_headers(delivered, "provider", "psb"),
                       data={"resource": "PSB-RES-001", "key": PERSON})
    assert page.status_code == 200
    assert _badges(page.text, "One record") == ["civil", "edu", "gsc", "hpf", "stats", "tax"]
    assert "SUB-GSC-VER" in page.text
    assert "mismatch 不一致" in page.text  # the second verification did not match
    assert "(mask_name)" in page.text
    other = client.post("/disclosure", headers=_headers(delivered, "provider", "hrss"),
                        data={"resource": "PSB-RES-001", "key": PERSON})
    assert other.status_code == 403


@pytest.mark.parametrize("spelling", [PERSON, f"  {PERSON}  "])
def test_one_id_number_across_resources(client: Any, delivered: Delivered,
                                        spelling: str) -> None:
    page = client.post("/disclosure/id-number", headers=_headers(delivered, "auditor", "edu"),
                       data={"id_number": spelling})
    assert page.status_code == 200, page.text
    assert f"<code>{PERSON}</code>" in page.text
    assert _badges(page.text, "ID number 身份证号 <code>") == [
        "civil", "edu", "gsc", "hpf", "stats", "tax"]
    for code, how in (("PSB-RES-001", "the record key"), ("HRSS-RES-001", "searched at the"),
                      ("CIVIL-RES-001", "part of the record key")):
        heading = page.text[page.text.index(f"<code>{code}</code></a>"):][:300]
        assert how in heading
    assert "INS900010" in page.text  # the second insurance record, found at HRSS's source


def test_a_provider_searches_its_own_resources(client: Any, delivered: Delivered) -> None:
    page = client.post("/disclosure/id-number", headers=_headers(delivered, "provider", "hrss"),
                       data={"id_number": PERSON})
    assert page.status_code == 200
    assert "HRSS-RES-001" in page.text
    assert "PSB-RES-001</code></a>" not in page.text
    assert _badges(page.text, "ID number 身份证号 <code>") == ["hpf"]


def test_a_lower_case_check_character(client: Any, delivered: Delivered) -> None:
    with_x = next(id_number(i) for i in range(200) if id_number(i).endswith("X"))
    page = client.post("/disclosure/id-number", headers=_headers(delivered, "admin", "stats"),
                       data={"id_number": with_x.lower()})
    assert page.status_code == 200
    assert f"<code>{with_x}</code>" in page.text
    assert _badges(page.text, "ID number 身份证号 <code>")  # found, delivered


@pytest.mark.parametrize(("value", "says"), [
    ("12345", "is not a resident ID number"),
    (PERSON[:17] + ("1" if PERSON[17] != "1" else "2"), "check character"),
    ("11010519800101007A", "is not a resident ID number"),
])
def test_a_number_that_is_not_an_id(client: Any, delivered: Delivered, value: str,
                                    says: str) -> None:
    page = client.post("/disclosure/id-number", headers=_headers(delivered, "auditor", "edu"),
                       data={"id_number": value})
    assert page.status_code == 422
    assert says in page.text
    assert 'class="error"' in page.text


def test_a_consumer_may_not_search(client: Any, delivered: Delivered) -> None:
    page = client.post("/disclosure/id-number", headers=_headers(delivered, "consumer", "gsc"),
                       data={"id_number": PERSON})
    assert page.status_code == 403
