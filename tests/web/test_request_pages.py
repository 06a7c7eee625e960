"""The sharing-request pages through TestClient, signed in as a browser would be (session
cookie, same Origin): the consumer's form and list, the authority's review queue, the
provider's inbox (approve narrowing, reject), revocation, supervision and the dashboard flag.
Every refused step answers 403 or 422 with its sentence on the page and changes nothing."""

from __future__ import annotations

import datetime as dt
import importlib
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

from .conftest import City, build_city

SAME_ORIGIN = {"Origin": "http://testserver"}
GSC, HPF = ("consumer", "gsc"), ("consumer", "hpf")
PSB, AMR = ("provider", "psb"), ("provider", "amr")
DATA, AUDITOR = ("authority", "data"), ("auditor", "gsc")
FORM = {
    "resource": "PSB-RES-001", "purpose": "一网通办身份核验", "legal_basis": "政务服务条例",
    "fields": ["id_no", "name", "birth_date"],
    "masking": ["id_no:none", "name:mask_name", "birth_date:none"],
    "connection": "gsc_db", "table": "psb_page_asked", "mode": "upsert",
    "schedule": "@daily", "valid_from": "2026-01-01", "valid_until": "2028-12-31",
}


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    built = build_city(Path(tmp_path_factory.mktemp("request-pages")))
    with built.engine.begin() as conn:
        for role, department in (DATA, AMR, HPF):
            built.tokens[f"{role}:{department}"] = tokens.create_token(conn, department, role)
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def app(city: City) -> Any:
    return create_app(city.engine, docs_dir=city.docs_dir)


def signed_in(app: Any, city: City, who: tuple[str, str]) -> TestClient:
    browser = TestClient(app, headers=SAME_ORIGIN)
    answer = browser.post("/signin", data={"token": city.token(*who), "next": "/requests"},
                          follow_redirects=False)
    assert answer.status_code == 303
    return browser


def snapshot(engine: sa.Engine) -> list[str]:
    """Requests, steps, the checklist and the request/revoke audit entries."""
    queries = ["SELECT * FROM catalog_requests", "SELECT * FROM catalog_request_steps",
               "SELECT * FROM catalog_subscriptions",
               "SELECT * FROM audit_log WHERE kind IN ('request', 'revoke')"]
    with engine.connect() as conn:
        return sorted(json.dumps(dict(r), sort_keys=True, default=str)
                      for q in queries for r in conn.execute(sa.text(q)).mappings())


def refused(browser: TestClient, city: City, path: str, data: dict[str, Any], status: int,
            sentence: str) -> str:
    before = snapshot(city.engine)
    answer = browser.post(path, data=data, follow_redirects=False)
    assert answer.status_code == status, answer.text
    assert 'class="error"' in answer.text
    assert sentence in answer.text, answer.text
    assert snapshot(city.engine) == before
    return answer.text


def submitted(app: Any, city: City, form: dict[str, Any] | None = None) -> str:
    answer = signed_in(app, city, GSC).post("/requests", data=form or FORM,
                                            follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/requests/(REQ-\d{8}-\d{4})", answer.headers["location"])
    assert found
    return found.group(1)


def test_the_form_offers_the_contract_fields_and_own_connections(app: Any, city: City) -> None:
    page = signed_in(app, city, GSC).get("/requests/new", params={"resource": "PSB-RES-001"})
    assert page.status_code == 200
    html = page.text
    for field in ("id_no", "name", "birth_date"):
        assert f'name="fields" value="{field}"' in html
        assert f'value="{field}:mask_name"' in html
    assert '<option value="gsc_db"' in html
    assert "hpf_db" not in html  # another department's connection is never offered
    assert "<script" not in html
    assert 'href="/requests"' in html
    assert 'href="/supervision"' not in html


BULK_ONLY = ('name="connection"', 'name="table"', 'name="mode"', 'name="masking"',
             'name="retain_after_end"')
VERIFY_FORM = {k: v for k, v in FORM.items()
               if k not in ("masking", "connection", "table", "mode")} | {"delivery": "verify"}


def test_the_form_offers_bulk_or_verify_delivery(app: Any, city: City) -> None:
    consumer = signed_in(app, city, GSC)
    bulk = consumer.get("/requests/new", params={"resource": "PSB-RES-001"}).text
    assert 'name="delivery" value="bulk" checked' in bulk
    assert 'name="delivery" value="verify">' in bulk
    assert '<input type="hidden" name="delivery" value="bulk">' in bulk
    for name in BULK_ONLY:
        assert name in bulk, name
    page = consumer.get("/requests/new",
                        params={"resource": "PSB-RES-001", "delivery": "verify"})
    assert page.status_code == 200
    verify = page.text
    assert 'name="delivery" value="verify" checked' in verify
    assert '<input type="hidden" name="delivery" value="verify">' in verify
    for name in BULK_ONLY:  # nothing of a copy to send
        assert name not in verify, name
    said = verify.split('id="verify-only">', 1)[1].split("</dd>", 1)[0]
    assert "<code>POST /api/v1/verify/PSB-RES-001</code>" in said
    assert "match" in said
    assert "核验" in said
    for field in ("id_no", "name", "birth_date"):
        assert f'name="fields" value="{field}"' in verify


def test_a_verify_request_from_the_form_asks_for_no_copy(app: Any, city: City) -> None:
    rid = submitted(app, city, VERIFY_FORM)
    done = sharing.get_request(city.engine, Principal("gsc", "consumer"), rid)
    assert done["delivery"] == "verify"
    assert (done["target"], done["mode"], done["masking"], done["retain_after_end"]) == (
        None, None, {}, False)
    assert done["fields"] == ["id_no", "name", "birth_date"]
    page = signed_in(app, city, GSC).get(f"/requests/{rid}").text
    assert "verification only, no copy" in page
    # Posted anyway, what shapes a copy is refused as the API refuses it; nothing changes.
    consumer = signed_in(app, city, GSC)
    for extra, named in (({"connection": "gsc_db", "table": "t"}, "target"),
                         ({"mode": "snapshot"}, "mode"),
                         ({"masking": ["name:mask_name"]}, "masking"),
                         ({"retain_after_end": "true"}, "retain_after_end")):
        html = refused(consumer, city, "/requests", {**VERIFY_FORM, **extra}, 422,
                       f"so it cannot ask for {named}")
        assert 'name="delivery" value="verify" checked' in html
    refused(consumer, city, "/requests", {**VERIFY_FORM, "delivery": "pigeon"}, 422,
            "delivery")


def test_every_refused_submission_shows_its_sentence_and_changes_nothing(
    app: Any, city: City
) -> None:
    consumer = signed_in(app, city, GSC)
    refused(consumer, city, "/requests", {**FORM, "connection": "hpf_db"}, 422,
            "belongs to department &#39;hpf&#39;")
    refused(consumer, city, "/requests", {**FORM, "fields": ["id_no", "salary"],
                                          "masking": []}, 422, "is not in contract")
    refused(consumer, city, "/requests", {**FORM, "purpose": " "}, 422, "purpose")
    refused(consumer, city, "/requests", {**FORM, "resource": "HEALTH-RES-002",
                                          "fields": ["patient_id"], "masking": []}, 422,
            "HEALTH-RES-002")
    html = refused(signed_in(app, city, PSB), city, "/requests", FORM, 403, "consumer token")
    assert 'value="一网通办身份核验"' in html  # the form comes back as it was filled in


def test_the_lifecycle_through_the_pages(app: Any, city: City) -> None:
    rid = submitted(app, city)
    consumer, authority = signed_in(app, city, GSC), signed_in(app, city, DATA)
    provider, other = signed_in(app, city, PSB), signed_in(app, city, AMR)
    mine = consumer.get("/requests").text
    assert rid in mine
    assert "My requests 我的申请" in mine
    assert "submitted" in mine
    queue = authority.get("/requests").text
    assert "Review queue 待审核" in queue
    assert rid in queue
    assert 'id="review"' in authority.get(f"/requests/{rid}").text
    assert 'id="review"' not in provider.get(f"/requests/{rid}").text

    refused(provider, city, f"/requests/{rid}/review", {"decision": "compliant"}, 403,
            "only the platform authority")
    refused(authority, city, f"/requests/{rid}/review", {"decision": "return"}, 422,
            "needs a reason")
    refused(provider, city, f"/requests/{rid}/approve", {"fields": ["id_no"]}, 422,
            "submitted")
    answer = authority.post(f"/requests/{rid}/review", data={"decision": "compliant"},
                            follow_redirects=False)
    assert answer.status_code == 303
    inbox = provider.get("/requests").text
    assert "Inbox 待答复" in inbox
    assert rid in inbox
    page = provider.get(f"/requests/{rid}").text
    assert 'id="approve"' in page
    assert 'id="reject"' in page

    refused(other, city, f"/requests/{rid}/approve", {"fields": ["id_no"]}, 403,
            "only the provider")
    refused(consumer, city, f"/requests/{rid}/approve", {"fields": ["id_no"]}, 403,
            "only the provider")
    refused(provider, city, f"/requests/{rid}/reject", {"reason": ""}, 422,
            "a rejection needs a reason")
    refused(provider, city, f"/requests/{rid}/approve", {"fields": []}, 422,
            "at least one field")
    refused(provider, city, f"/requests/{rid}/approve",
            {"fields": ["id_no", "name", "phone"]}, 422, "never add")
    refused(provider, city, f"/requests/{rid}/approve",
            {"fields": ["id_no", "name"], "masking": ["name:hash"]}, 422,
            "never remove or change")
    refused(provider, city, f"/requests/{rid}/frobnicate", {}, 404, "no step")

    # Approve narrowed: birth_date unchecked, id_no hashed, name keeps its masking.
    answer = provider.post(f"/requests/{rid}/approve", follow_redirects=False, data={
        "fields": ["id_no", "name"],
        "masking": ["id_no:hash", "name:mask_name", "birth_date:none"]})
    assert answer.status_code == 303, answer.text
    done = sharing.get_request(city.engine, Principal("gsc", "consumer"), rid)
    assert done["state"] == "approved"
    assert done["fields"] == ["id_no", "name"]
    assert done["masking"] == {"id_no": "hash", "name": "mask_name"}
    sub = done["subscription"]
    page = consumer.get(f"/requests/{rid}").text
    assert sub in page
    assert "No run has delivered yet" in page
    assert 'id="revoke"' not in page  # the consumer may not revoke
    assert 'id="revoke"' in provider.get(f"/requests/{rid}").text

    # Revocation: only the provider or the authority, and never without a reason.
    refused(consumer, city, f"/subscriptions/{sub}/revoke", {"reason": "no longer"}, 403,
            "may revoke")
    refused(other, city, f"/subscriptions/{sub}/revoke", {"reason": "x", "back": rid}, 403,
            "may revoke")
    refused(provider, city, f"/subscriptions/{sub}/revoke", {"reason": " ", "back": rid}, 422,
            "needs a reason")
    checklist = provider.get("/subscriptions").text
    assert f'action="/subscriptions/{sub}/revoke"' in checklist
    answer = provider.post(f"/subscriptions/{sub}/revoke", follow_redirects=False,
                           data={"reason": "法定职责调整", "back": rid})
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/requests/{rid}"
    page = consumer.get(f"/requests/{rid}").text
    assert "revoked" in page
    assert "法定职责调整" in page
    refused(provider, city, f"/subscriptions/{sub}/revoke", {"reason": "again"}, 409,
            "already revoked")


def test_withdraw_and_reject_from_the_pages(app: Any, city: City) -> None:
    first = submitted(app, city, {**FORM, "table": "psb_page_withdrawn"})
    refused(signed_in(app, city, HPF), city, f"/requests/{first}/withdraw", {}, 403,
            "only its requester")
    consumer = signed_in(app, city, GSC)
    assert consumer.post(f"/requests/{first}/withdraw",
                         follow_redirects=False).status_code == 303
    second = submitted(app, city, {**FORM, "table": "psb_page_rejected"})
    authority, provider = signed_in(app, city, DATA), signed_in(app, city, PSB)
    authority.post(f"/requests/{second}/review", data={"decision": "compliant"})
    assert provider.post(f"/requests/{second}/reject", data={"reason": "字段涉及敏感信息"},
                         follow_redirects=False).status_code == 303
    third = submitted(app, city, {**FORM, "table": "psb_page_returned"})
    assert authority.post(f"/requests/{third}/review", follow_redirects=False, data={
        "decision": "return", "reason": "法律依据不充分"}).status_code == 303
    states = {r["id"]: r["state"] for r in sharing.list_requests(
        city.engine, Principal("gsc", "consumer"))}
    assert (states[first], states[second], states[third]) == (
        "withdrawn", "rejected", "returned")


def test_supervision_page_and_api(app: Any, city: City) -> None:
    # A request submitted long ago, never reviewed: overdue (the authority's step).
    ask = sharing.Ask.model_validate({
        **{k: v for k, v in FORM.items() if k not in ("masking", "connection", "table")},
        "masking": {}, "target": {"connection": "gsc_db", "table": "psb_page_old"}})
    old = sharing.submit(city.engine, Principal("gsc", "consumer"), ask,
                         now=dt.datetime(2026, 9, 28, 9, 0, tzinfo=dt.UTC))["id"]
    refused_page = signed_in(app, city, GSC).get("/supervision")
    assert refused_page.status_code == 403
    assert "only the platform authority" in refused_page.text
    page = signed_in(app, city, DATA).get("/supervision")
    assert page.status_code == 200
    html = page.text
    assert 'id="departments"' in html
    assert "(psb)" in html
    assert old in html.split('id="overdue-requests"', 1)[1]
    assert "字段涉及敏感信息" in html
    assert "法律依据不充分" in html
    assert 'href="/supervision"' in html

    for who, status in ((DATA, 200), (AUDITOR, 200), (("admin", "gsc"), 200), (GSC, 403),
                        (PSB, 403)):
        answer = TestClient(app).get("/api/v1/supervision", headers=city.headers(*who))
        assert answer.status_code == status, answer.text
    body = TestClient(app).get("/api/v1/supervision", headers=city.headers(*DATA)).json()
    psb = next(d for d in body["departments"] if d["department"] == "psb")
    assert psb["answered"] >= 2  # the approval and the rejection above, and the demo's
    assert psb["median_answer_days"] is not None
    assert psb["awaiting_review"] >= 1
    assert {r["state"] for r in psb["refusals"]} >= {"rejected", "returned"}
    assert any(r["id"] == old and r["awaiting"] == "authority" for r in body["overdue"])

    # The dashboard flags it for the authority, and for the psb provider... once reviewed.
    dashboard = signed_in(app, city, DATA).get("/quality").text
    assert "Overdue sharing requests" in dashboard
    assert old in dashboard


def test_a_year_the_calendar_does_not_cover_says_weekdays_only(
    app: Any, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The package re-exports the function under the module's name: patch the module.
    module = importlib.import_module("exchange.requests.supervision")
    monkeypatch.setattr(module, "covers", lambda year: False)
    html = signed_in(app, city, DATA).get("/supervision").text
    assert 'id="weekdays-only"' in html
    assert "weekdays only (Monday–Friday)" in html
    body = TestClient(app).get("/api/v1/supervision", headers=city.headers(*DATA)).json()
    assert body["calendar"] == "weekdays-only"
    assert body["weekdays_only_years"]
