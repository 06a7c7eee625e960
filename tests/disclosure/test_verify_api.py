"""Disclosure of verifications made through the verification service itself: a consumer asks
`POST /api/v1/verify/{code}`, and the record's disclosure then names the call."""

from __future__ import annotations

from typing import Any

from tests.disclosure.city import id_number
from tests.disclosure.conftest import Delivered


def test_a_verification_through_the_api_is_disclosed(client: Any, delivered: Delivered) -> None:
    person, stranger = id_number(20), id_number(7777)
    asked = client.post("/api/v1/verify/PSB-RES-001",
                        headers=delivered.headers("consumer", "gsc"),
                        json={"records": [
                            {"key": {"id_no": person}, "fields": {"name": "居民20"}},
                            {"key": {"id_no": stranger}, "fields": {"name": "无名"}},
                        ]})
    assert asked.status_code == 200, asked.text
    assert [r.get("found") for r in asked.json()["results"]] == [True, False]
    provider = delivered.headers("provider", "psb")
    found = client.post("/api/v1/disclosure", headers=provider,
                        json={"resource": "PSB-RES-001", "key": person}).json()
    verified = [d for d in found["disclosures"] if d["action"] == "verified"]
    assert [(v["consumer"], v["subscription"], v["fields"], v["found"], v["matched"])
            for v in verified] == [("gsc", "SUB-GSC-VER", ["name"], True, True)]
    # A key nobody holds was asked about all the same: its disclosure says so.
    unknown = client.post("/api/v1/disclosure", headers=provider,
                          json={"resource": "PSB-RES-001", "key": stranger}).json()
    assert [(d["action"], d["found"]) for d in unknown["disclosures"]] == [("verified", False)]
