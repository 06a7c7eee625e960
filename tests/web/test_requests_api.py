"""Sharing requests through the REST API, with the tokens of four departments: gsc (the
consumer), psb (the provider), data (the platform authority) and hpf/amr (another consumer and
another provider). Every forbidden step answers 403 or 422 and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import exchange.requests as sharing
from exchange.store import Principal, tokens
from exchange.web import create_app
from govex.workdays import SHANGHAI

from .conftest import City, build_city

ASK = {
    "resource": "PSB-RES-001", "purpose": "一网通办身份核验", "legal_basis": "政务服务条例",
    "fields": ["id_no", "name", "birth_date"], "masking": {"name": "mask_name"},
    "target": {"connection": "gsc_db", "table": "psb_requested"}, "mode": "upsert",
    "valid_from": "2026-01-01", "valid_until": "2028-12-31",
}
ROLES = [("consumer", "gsc"), ("provider", "psb"), ("authority", "data"), ("consumer", "hpf"),
         ("provider", "amr"), ("auditor", "gsc"), ("provider", "civil")]


@pytest.fixture(scope="module")
def asked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, TestClient]]:
    city = build_city(Path(tmp_path_factory.mktemp("requests")))
    with city.engine.begin() as conn:
        for role, department in ROLES:
            city.tokens[f"{role}:{department}"] = tokens.create_token(conn, department, role)
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as client:
        yield city, client
    city.engine.dispose()


def _snapshot(engine: sa.Engine) -> dict[str, list[str]]:
    """The request tables, the checklist and the request audit entries (token use is audited
    too, once a minute per token, and is not a change the step made)."""
    queries = {
        "requests": "SELECT * FROM catalog_requests",
        "steps": "SELECT * FROM catalog_request_steps",
        "subscriptions": "SELECT * FROM catalog_subscriptions",
        "audit": "SELECT * FROM audit_log WHERE kind = 'request'",
    }
    with engine.connect() as conn:
        return {name: sorted(json.dumps(dict(r), sort_keys=True, default=str)
                             for r in conn.execute(sa.text(q)).mappings())
                for name, q in queries.items()}


class Api:
    def __init__(self, city: City, client: TestClient) -> None:
        self.city, self.client = city, client

    def post(self, who: tuple[str, str], path: str, body: Any = None) -> Any:
        return self.client.post(f"/api/v1/requests{path}", json=body,
                                headers=self.city.headers(*who))

    def get(self, who: tuple[str, str], path: str = "") -> Any:
        return self.client.get(f"/api/v1/requests{path}", headers=self.city.headers(*who))

    def refused(self, status: int, who: tuple[str, str], path: str, body: Any = None,
                fragment: str = "") -> str:
        """Take a step that must be refused with `status`; nothing may change."""
        before = _snapshot(self.city.engine)
        answer = self.post(who, path, body)
        assert answer.status_code == status, answer.text
        detail = str(answer.json()["detail"])
        assert fragment in detail, detail
        assert _snapshot(self.city.engine) == before
        return detail


GSC, PSB, DATA, HPF, AMR = ROLES[0], ROLES[1], ROLES[2], ROLES[3], ROLES[4]
AUDITOR, CIVIL = ROLES[5], ROLES[6]


def test_the_whole_lifecycle_and_every_forbidden_step(asked: Any) -> None:
    api = Api(*asked)
    # Submission: only a consumer, only shareable data, only its own connection.
    api.refused(403, PSB, "", ASK, "consumer token")
    api.refused(422, GSC, "", {**ASK, "resource": "HEALTH-RES-002", "fields": ["patient_id"],
                                "masking": {}}, "HEALTH-RES-002")
    api.refused(422, GSC, "", {**ASK, "fields": ["id_no", "salary"], "masking": {}},
                "'salary' is not in contract")
    api.refused(422, GSC, "", {**ASK, "masking": {"name": "scramble"}}, "scramble")
    api.refused(422, GSC, "", {**ASK, "target": {"connection": "hpf_db", "table": "x"}},
                "belongs to department 'hpf'")
    api.refused(422, GSC, "", {k: v for k, v in ASK.items() if k != "legal_basis"},
                "legal_basis")
    api.refused(422, GSC, "", {**ASK, "purpose": "  "}, "purpose")
    api.refused(422, GSC, "", {**ASK, "valid_until": "2025-12-31"}, "before valid_from")

    answer = api.post(GSC, "", ASK)
    assert answer.status_code == 201, answer.text
    req = answer.json()
    rid = req["id"]
    today = dt.datetime.now(SHANGHAI).strftime("%Y%m%d")
    assert re.fullmatch(rf"REQ-{today}-\d{{4}}", rid)
    assert req["state"] == "submitted"
    assert req["due"]
    assert req["overdue"] is False
    assert req["calendar"] in ("chinese", "weekdays-only")
    assert req["history"][0]["by"] == "gsc/consumer"

    # Nobody but the authority reviews; nobody answers before the review.
    api.refused(403, PSB, f"/{rid}/review", {"compliant": True}, "authority")
    api.refused(403, GSC, f"/{rid}/review", {"compliant": True}, "authority")
    api.refused(422, PSB, f"/{rid}/approve", None, "submitted")
    api.refused(422, DATA, f"/{rid}/review", {"compliant": False}, "reason")
    reviewed = api.post(DATA, f"/{rid}/review", {"compliant": True})
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["state"] == "reviewed"
    assert reviewed.json()["due"] != req["due"]  # now the provider's answer is due

    # Only the resource's provider answers, and never more than was asked.
    api.refused(403, GSC, f"/{rid}/approve", None, "only the provider")
    api.refused(403, AMR, f"/{rid}/approve", None, "only the provider")
    api.refused(403, AMR, f"/{rid}/reject", {"reason": "no"}, "only the provider")
    api.refused(422, PSB, f"/{rid}/approve", {"fields": ["id_no", "name", "phone"]},
                "never add")
    api.refused(422, PSB, f"/{rid}/approve", {"masking": {"name": "none"}},
                "never remove or change")
    api.refused(422, PSB, f"/{rid}/approve", {"masking": {"name": "hash"}},
                "never remove or change")
    api.refused(422, PSB, f"/{rid}/reject", {}, "reason")
    api.refused(422, PSB, f"/{rid}/reject", {"reason": " "}, "reason")
    api.refused(403, HPF, f"/{rid}/withdraw", None, "requester")

    approved = api.post(PSB, f"/{rid}/approve",
                        {"fields": ["id_no", "name"], "masking": {"id_no": "hash"}})
    assert approved.status_code == 200, approved.text
    done = approved.json()
    assert done["state"] == "approved"
    assert done["fields"] == ["id_no", "name"]
    assert done["masking"] == {"name": "mask_name", "id_no": "hash"}
    sub_id = done["subscription"]
    assert sub_id == f"SUB-GSC-{rid.removeprefix('REQ-')}"
    assert [s["state"] for s in done["history"]] == ["submitted", "reviewed", "approved"]
    assert [s["by"] for s in done["history"]] == ["gsc/consumer", "data/authority",
                                                 "psb/provider"]
    with api.city.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT origin, request_id, state, declaration FROM catalog_subscriptions "
            "WHERE id = :id"), {"id": sub_id}).mappings().one()
        audit = conn.execute(sa.text(
            "SELECT actor, detail FROM audit_log WHERE kind = 'request' AND subject = :id "
            "ORDER BY seq"), {"id": rid}).all()
    assert (row["origin"], row["request_id"], row["state"]) == ("request", rid, "active")
    declaration = row["declaration"]
    if isinstance(declaration, str):
        declaration = json.loads(declaration)
    assert declaration["fields"] == ["id_no", "name"]
    assert declaration["request"] == rid
    assert [a for a, _ in audit] == ["gsc/consumer", "data/authority", "psb/provider"]

    # After the answer: no withdrawal, no second answer.
    api.refused(422, GSC, f"/{rid}/withdraw", None, "approved")
    api.refused(422, PSB, f"/{rid}/reject", {"reason": "changed my mind"}, "approved")

    # Reading: requester, its provider, the authority and auditors; not another provider.
    assert api.get(GSC, f"/{rid}").status_code == 200
    assert api.get(PSB, f"/{rid}").status_code == 200
    assert api.get(DATA, f"/{rid}").status_code == 200
    assert api.get(AUDITOR, f"/{rid}").status_code == 200
    assert api.get(AMR, f"/{rid}").status_code == 403
    assert api.get(HPF, f"/{rid}").status_code == 403
    assert api.get(GSC, "/REQ-20200101-0001").status_code == 404
    assert rid not in [r["id"] for r in api.get(HPF).json()]
    assert rid not in [r["id"] for r in api.get(AMR).json()]
    assert rid in [r["id"] for r in api.get(PSB, "?state=approved").json()]


def test_reject_return_withdraw_and_unconditional(asked: Any) -> None:
    api = Api(*asked)
    hpf_ask = {**ASK, "target": {"connection": "hpf_db", "table": "psb_hpf_req"}}
    rejected = api.post(HPF, "", hpf_ask).json()["id"]
    assert api.post(DATA, f"/{rejected}/review", {"compliant": True}).status_code == 200
    answer = api.post(PSB, f"/{rejected}/reject", {"reason": "用途与申请字段不相称"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "rejected"
    assert answer.json()["history"][-1]["reason"] == "用途与申请字段不相称"
    assert answer.json()["subscription"] is None

    returned = api.post(GSC, "", ASK).json()["id"]
    answer = api.post(DATA, f"/{returned}/review", {"compliant": False,
                                                    "reason": "缺少法律依据原文"})
    assert answer.json()["state"] == "returned"
    api.refused(422, DATA, f"/{returned}/review", {"compliant": True}, "returned")

    withdrawn = api.post(GSC, "", ASK).json()["id"]
    api.refused(403, DATA, f"/{withdrawn}/withdraw", None, "requester")
    assert api.post(GSC, f"/{withdrawn}/withdraw").json()["state"] == "withdrawn"

    # An unconditional resource is approved at review, by the authority.
    amr = api.post(GSC, "", {**ASK, "resource": "AMR-RES-001", "fields": ["uscc", "status"],
                             "masking": {}, "target": {"connection": "gsc_db",
                                                       "table": "amr_req"}}).json()["id"]
    done = api.post(DATA, f"/{amr}/review", {"compliant": True}).json()
    assert done["state"] == "approved"
    assert done["subscription"]
    assert [s["state"] for s in done["history"]] == ["submitted", "reviewed", "approved"]
    assert done["history"][-1]["by"] == "data/authority"


def test_deadlines_count_chinese_working_days(asked: Any) -> None:
    city, _ = asked
    gsc, data = Principal("gsc", "consumer"), Principal("data", "authority")
    # Submitted on the eve of National Day 2026 (1–7 October off): due two working days later.
    submitted = dt.datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI)
    req = sharing.submit(city.engine, gsc, sharing.Ask.model_validate(ASK), now=submitted)
    assert req["due"] == dt.datetime(2026, 10, 9, 2, 0, tzinfo=dt.UTC).isoformat()
    assert req["id"].startswith("REQ-20260930-")
    assert req["calendar"] == "chinese"
    assert sharing.get_request(city.engine, gsc, req["id"],
                               now=submitted + dt.timedelta(days=8))["overdue"] is False
    assert sharing.get_request(city.engine, gsc, req["id"],
                               now=submitted + dt.timedelta(days=10))["overdue"] is True
    # Reviewed on 9 October: five working days, Saturday 10 October (调休) among them.
    reviewed = sharing.review(city.engine, data, req["id"], compliant=True,
                              now=dt.datetime(2026, 10, 9, 10, 0, tzinfo=SHANGHAI))
    assert reviewed["due"] == dt.datetime(2026, 10, 15, 2, 0, tzinfo=dt.UTC).isoformat()
    # A year the holiday data does not cover: Monday–Friday, and the view says so.
    later = sharing.submit(
        city.engine, gsc,
        sharing.Ask.model_validate({**ASK, "valid_until": "2099-12-31"}),
        now=dt.datetime(2098, 3, 2, 9, 0, tzinfo=SHANGHAI))
    assert later["calendar"] == "weekdays-only"


def test_the_cli_spells_the_request_states_of_the_service() -> None:
    import exchange.requests as sharing
    from exchange.cli import request as cli_request

    assert set(cli_request.STATES) == set(sharing.STATES)
