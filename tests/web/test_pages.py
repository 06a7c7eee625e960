"""Server-rendered pages: sign-in with an HttpOnly cookie, authorisation per role, the content
each page promises (catalog, resource, checklist, runs, quality dashboard, quarantine, Data
Docs), and links that keep working when the app is mounted under a prefix (Airflow)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exchange.web import create_app

from .conftest import City

ROLES = [("admin", "gsc"), ("checklist_owner", "gsc"), ("auditor", "gsc"), ("provider", "psb"),
         ("provider", "amr"), ("consumer", "gsc")]
FULL = {"admin", "checklist_owner", "auditor"}


def pages(city: City) -> dict[str, str]:
    run = city.runs["PSB-RES-001"][-1]
    return {
        "catalog": "/catalog",
        "resource": "/resources/PSB-RES-001",
        "subscriptions": "/subscriptions",
        "runs": "/runs",
        "run": f"/runs/{run}",
        "dashboard": "/quality",
        "quality": "/quality/PSB-RES-001",
        "quarantine": "/quarantine",
        "quarantine_psb": "/quarantine?resource=PSB-RES-001",
        "data_docs": f"/data-docs/{run}/index.html",
    }


def expected(page: str, role: str, department: str) -> int:
    if page in {"catalog", "resource", "subscriptions"} or role in FULL:
        return 200
    if role == "consumer":
        return 403
    if page in {"runs", "dashboard", "quarantine"}:  # lists filtered to the provider's own
        return 200
    return 200 if department == "psb" else 403


#: What a browser sends with every POST from the app's own pages (TestClient's host).
SAME_ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def browser(city: City) -> TestClient:
    """A fresh client (own cookie jar) per test, sending the Origin a browser would."""
    return TestClient(create_app(city.engine, docs_dir=city.docs_dir), headers=SAME_ORIGIN)


def sign_in(browser: TestClient, city: City, role: str, department: str) -> None:
    response = browser.post("/signin", data={"token": city.token(role, department),
                                             "next": "/quality"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/quality"


@pytest.mark.parametrize("page", ["catalog", "resource", "subscriptions", "runs", "run",
                                  "dashboard", "quality", "quarantine", "quarantine_psb",
                                  "data_docs"])
def test_pages_without_a_token_answer_401_with_the_signin_form(client: Any, city: City,
                                                               page: str) -> None:
    path = pages(city)[page]
    response = client.get(path)
    assert response.status_code == 401
    assert '<form method="post" action="/signin"' in response.text
    assert f'name="next" value="{path}"'.replace("&", "&amp;") in response.text
    bad = client.get(path, headers={"Authorization": "Bearer govex_wrong"})
    assert bad.status_code == 401
    assert "not valid" in bad.text


@pytest.mark.parametrize(("role", "department"), ROLES)
@pytest.mark.parametrize("page", ["catalog", "resource", "subscriptions", "runs", "run",
                                  "dashboard", "quality", "quarantine", "quarantine_psb",
                                  "data_docs"])
def test_page_authorisation_per_role(client: Any, city: City, page: str, role: str,
                                     department: str) -> None:
    response = client.get(pages(city)[page], headers=city.headers(role, department))
    assert response.status_code == expected(page, role, department), response.text[:500]
    if response.status_code == 403:
        assert "Not allowed" in response.text


def test_signin_sets_an_httponly_cookie_and_pages_work_with_it(browser: TestClient,
                                                               city: City) -> None:
    response = browser.post("/signin", data={"token": city.token("checklist_owner", "gsc"),
                                             "next": "/quality"}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    # A session id, not the token: the token never reaches the browser's cookie jar.
    assert cookie.startswith("govex_session=")
    assert city.token("checklist_owner", "gsc") not in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = browser.get("/quality")
    assert page.status_code == 200
    assert "checklist owner" in page.text
    assert browser.get("/api/v1/resources").status_code == 200  # the cookie works for the API
    out = browser.post("/signout", follow_redirects=False)
    assert out.status_code == 303
    assert 'govex_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers[
        "set-cookie"]
    browser.cookies.clear()
    assert browser.get("/quality").status_code == 401


def test_signin_with_a_bad_token_is_refused(browser: TestClient) -> None:
    response = browser.post("/signin", data={"token": "govex_nope"}, follow_redirects=False)
    assert response.status_code == 401
    assert "not valid" in response.text
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "quality",
                                    "/\\evil.example"])
def test_signin_never_redirects_off_site(browser: TestClient, city: City, target: str) -> None:
    response = browser.post("/signin", data={"token": city.token("auditor", "gsc"),
                                             "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/catalog"


def test_root_redirects_to_the_catalog(client: Any, city: City) -> None:
    response = client.get("/", headers=city.headers("consumer", "gsc"), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/catalog"


def test_pages_are_not_cached_and_run_no_scripts(client: Any, city: City) -> None:
    response = client.get("/quality", headers=city.headers("admin", "gsc"))
    assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "<script" not in response.text


# ---- content ---------------------------------------------------------------------------------


def test_catalog_lists_every_resource(client: Any, city: City) -> None:
    html = client.get("/catalog", headers=city.headers("consumer", "gsc")).text
    for code in ["AMR-RES-001", "CIVIL-RES-001", "HEALTH-RES-001", "HEALTH-RES-002",
                 "HRSS-RES-001", "PSB-RES-001", "TAX-RES-001"]:
        assert f'href="/resources/{code}"' in html
    assert "居民身份基础信息" in html
    assert "市公安局" in html


def test_resource_page_shows_contract_subscriptions_and_runs(client: Any, city: City) -> None:
    html = client.get("/resources/PSB-RES-001", headers=city.headers("checklist_owner",
                                                                     "gsc")).text
    assert "resident_identity@1.0.0" in html
    assert "<code>id_no</code>" in html
    assert "person.id_no" in html
    assert "SUB-GSC-001" in html
    assert "SUB-HPF-001" in html
    assert "Recent runs" in html
    assert city.runs["PSB-RES-001"][-1][:8] in html


def test_consumer_resource_page_hides_runs_and_other_subscriptions(client: Any,
                                                                    city: City) -> None:
    html = client.get("/resources/PSB-RES-001", headers=city.headers("consumer", "hpf")).text
    assert "SUB-HPF-001" in html
    assert "SUB-GSC-001" not in html
    assert "Recent runs" not in html
    assert 'href="/quality' not in html  # no navigation to what it may not read


def test_dashboard_shows_quality_per_department_and_resource(client: Any, city: City) -> None:
    html = client.get("/quality", headers=city.headers("checklist_owner", "gsc")).text
    assert "市公安局" in html
    assert "市市场监督管理局" in html
    for check in ["cn_resident_id", "required", "id_birth_date_consistency", "cn_uscc"]:
        assert f"<code>{check}</code>" in html
    assert '<svg class="spark"' in html
    assert "on time 按时" in html  # PSB: daily promise, last success an hour ago
    assert "late 逾期" in html  # AMR: hourly promise, last success two days ago
    assert "no successful run" in html  # the other resources have never run
    assert f'href="/data-docs/{city.runs["PSB-RES-001"][-1]}/index.html"' in html
    assert 'href="/quarantine?resource=PSB-RES-001">2</a>' in html
    assert "5 d" in html  # age of the oldest PSB quarantined record


def test_dashboard_filters_by_department(client: Any, city: City) -> None:
    html = client.get("/quality?department=amr",
                      headers=city.headers("checklist_owner", "gsc")).text
    assert "AMR-RES-001" in html
    assert "PSB-RES-001" not in html


def test_provider_dashboard_shows_only_its_department(client: Any, city: City) -> None:
    html = client.get("/quality", headers=city.headers("provider", "psb")).text
    assert "PSB-RES-001" in html
    assert "AMR-RES-001" not in html
    assert "cn_uscc" not in html


def test_resource_quality_page_has_the_chart(client: Any, city: City) -> None:
    html = client.get("/quality/PSB-RES-001", headers=city.headers("auditor", "gsc")).text
    assert '<svg class="chart"' in html
    assert html.count("<circle") == 6  # one dot per run
    assert "gate threshold 90.0%" in html
    assert "blocked" in html
    assert "Top failing checks" in html


def test_provider_quarantine_page_lists_only_its_own_records(client: Any, city: City) -> None:
    psb = client.get("/quarantine", headers=city.headers("provider", "psb")).text
    assert "11010519900101123X" in psb
    assert "110105199001011111" in psb
    assert "<code>cn_resident_id</code> on id_no" in psb
    assert "<code>id_birth_date_consistency</code> on birth_date" in psb
    assert "张三" in psb
    assert "91110000BADUSCC0001" not in psb
    amr = client.get("/quarantine", headers=city.headers("provider", "amr")).text
    assert "91110000BADUSCC0001" in amr
    assert "11010519900101123X" not in amr
    assert "张三" not in amr
    denied = client.get("/quarantine?resource=PSB-RES-001",
                        headers=city.headers("provider", "amr"))
    assert denied.status_code == 403
    assert "张三" not in denied.text


def test_run_page(client: Any, city: City) -> None:
    run = city.runs["PSB-RES-001"][4]
    html = client.get(f"/runs/{run}", headers=city.headers("admin", "gsc")).text
    assert run in html
    assert "blocked" in html
    assert "<code>cn_resident_id</code>" in html


def test_unknown_things_are_404_pages(client: Any, city: City) -> None:
    headers = city.headers("admin", "gsc")
    for path in ["/resources/NOPE", "/quality/NOPE", "/runs/nope", "/quarantine?resource=NOPE",
                 "/data-docs/nope/index.html"]:
        response = client.get(path, headers=headers)
        assert response.status_code == 404, path
        assert "Not found" in response.text


def test_data_docs_are_served_inside_their_run_folder_only(client: Any, city: City) -> None:
    run = city.runs["PSB-RES-001"][-1]
    headers = city.headers("checklist_owner", "gsc")
    assert "Data Docs for PSB-RES-001" in client.get(f"/data-docs/{run}/index.html",
                                                     headers=headers).text
    assert client.get(f"/data-docs/{run}/", headers=headers).status_code == 200
    assert client.get(f"/data-docs/{run}/static/style.css", headers=headers).status_code == 200
    for escape in [f"/data-docs/{run}/..%2Fsecret.txt", f"/data-docs/{run}/%2e%2e/secret.txt",
                   f"/data-docs/{run}/missing.html"]:
        assert client.get(escape, headers=headers).status_code == 404, escape
    other_run = city.runs["PSB-RES-001"][0]  # exists, but no Data Docs were rendered
    assert client.get(f"/data-docs/{other_run}/index.html", headers=headers).status_code == 404


def test_links_follow_the_mount_prefix(city: City) -> None:
    """Inside Airflow's API server the app lives under /govex: links and cookies follow."""
    outer = FastAPI()
    outer.mount("/govex", create_app(city.engine, docs_dir=city.docs_dir))
    browser = TestClient(outer, headers=SAME_ORIGIN)
    assert browser.get("/govex/healthz").json() == {"status": "ok"}
    unauthorised = browser.get("/govex/quality")
    assert unauthorised.status_code == 401
    assert 'action="/govex/signin"' in unauthorised.text
    assert 'name="next" value="/quality"' in unauthorised.text
    signed = browser.post("/govex/signin", data={"token": city.token("admin", "gsc"),
                                                 "next": "/quality"}, follow_redirects=False)
    assert signed.headers["location"] == "/govex/quality"
    assert "Path=/govex" in signed.headers["set-cookie"]
    html = browser.get("/govex/quality").text
    assert 'href="/govex/quality/PSB-RES-001"' in html
    catalog = browser.get("/govex/catalog").text
    assert 'href="/govex/resources/PSB-RES-001"' in catalog
    api = browser.get("/govex/api/v1/resources",
                      headers=city.headers("consumer", "gsc"))
    assert api.status_code == 200
    spec = browser.get("/govex/openapi.json", headers=city.headers("consumer", "gsc")).json()
    assert spec["servers"] == [{"url": "/govex"}]


def test_create_app_opens_the_configured_store(city: City,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """What `govex serve` and the Airflow plugin do: no engine given, GOVEX_DB_URL names it."""
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))
    browser = TestClient(create_app())
    assert browser.get("/healthz").status_code == 200
    response = browser.get("/api/v1/resources", headers=city.headers("consumer", "gsc"))
    assert response.status_code == 200
    assert len(response.json()) == 7
