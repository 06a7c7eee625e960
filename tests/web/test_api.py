"""The REST API: authentication (401), authorisation per role (403), unknown codes (404), JSON
shapes, and the provider-isolation rule."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import City

ROLES = [("admin", "gsc"), ("checklist_owner", "gsc"), ("auditor", "gsc"), ("provider", "psb"),
         ("provider", "amr"), ("consumer", "gsc")]
FULL = {"admin", "checklist_owner", "auditor"}
RUN_KEYS = {"run_id", "resource", "status", "read", "passed", "quarantined", "deliveries",
            "started_at", "ended_at", "message"}


def expected(route: str, role: str, department: str) -> int:
    """What INTERFACES.md and the brief promise for a PSB-owned object."""
    if route in {"resources", "resource", "subscriptions"}:
        return 200
    if role in FULL:
        return 200
    if role == "consumer":
        return 403
    if route == "runs":  # a provider gets its own runs listed
        return 200
    return 200 if department == "psb" else 403


def routes(city: City) -> dict[str, str]:
    psb_run = city.runs["PSB-RES-001"][-1]
    return {
        "resources": "/api/v1/resources",
        "resource": "/api/v1/resources/PSB-RES-001",
        "subscriptions": "/api/v1/subscriptions",
        "runs": "/api/v1/runs",
        "run": f"/api/v1/runs/{psb_run}",
        "runs_of_resource": "/api/v1/runs?resource=PSB-RES-001",
        "quality": "/api/v1/quality/PSB-RES-001",
        "quarantine": "/api/v1/quality/PSB-RES-001/quarantine",
    }


@pytest.mark.parametrize("route", ["resources", "resource", "subscriptions", "runs", "run",
                                   "runs_of_resource", "quality", "quarantine"])
def test_every_route_needs_a_valid_token(client: Any, city: City, route: str) -> None:
    path = routes(city)[route]
    missing = client.get(path)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "govex token create" in missing.json()["detail"]
    for header in ("Bearer govex_not-a-real-token", "Bearer nonsense", "Basic dXNlcjpwYXNz"):
        bad = client.get(path, headers={"Authorization": header})
        assert bad.status_code == 401, header


@pytest.mark.parametrize(("role", "department"), ROLES)
@pytest.mark.parametrize("route", ["resources", "resource", "subscriptions", "runs", "run",
                                   "runs_of_resource", "quality", "quarantine"])
def test_authorisation_per_role(client: Any, city: City, route: str, role: str,
                                department: str) -> None:
    response = client.get(routes(city)[route], headers=city.headers(role, department))
    assert response.status_code == expected(route, role, department), response.text
    if response.status_code == 403:
        assert response.json()["detail"]


def test_healthz_needs_no_token(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/api/v1/resources/NOPE-RES-404", "/api/v1/quality/NOPE-404",
                                  "/api/v1/quality/NOPE-404/quarantine",
                                  "/api/v1/runs/no-such-run", "/api/v1/runs?resource=NOPE"])
def test_unknown_codes_are_404(client: Any, city: City, path: str) -> None:
    response = client.get(path, headers=city.headers("admin", "gsc"))
    assert response.status_code == 404
    assert "unknown" in response.json()["detail"]


def test_revoked_token_is_refused(client: Any, city: City) -> None:
    import sqlalchemy as sa

    from exchange.store import tokens

    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "psb", "provider")
        token_id = conn.execute(
            sa.select(tokens.tokens.c.id).where(
                tokens.tokens.c.token_hash == tokens.hash_token(secret))
        ).scalar_one()
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/resources", headers=headers).status_code == 200
    with city.engine.begin() as conn:
        tokens.revoke_token(conn, token_id)
    assert client.get("/api/v1/resources", headers=headers).status_code == 401


# ---- shapes --------------------------------------------------------------------------------


def test_resources_list_shape(client: Any, city: City) -> None:
    body = client.get("/api/v1/resources", headers=city.headers("consumer", "gsc")).json()
    assert [r["code"] for r in body] == sorted(r["code"] for r in body)
    psb = next(r for r in body if r["code"] == "PSB-RES-001")
    assert psb == {
        "code": "PSB-RES-001", "name": "居民身份基础信息", "provider": "psb",
        "contract": "resident_identity@1.0.0", "sharing": "conditional",
        "classification": "L3", "update_frequency": "P1D", "subscriptions": 3,
    }


def test_resource_shape(client: Any, city: City) -> None:
    body = client.get("/api/v1/resources/PSB-RES-001",
                      headers=city.headers("admin", "gsc")).json()
    assert body["code"] == "PSB-RES-001"
    assert body["provider_department"]["name"] == "市公安局"
    assert "id_no" in body["contract_schema"]["properties"]
    assert [s["id"] for s in body["subscriptions"]] == ["SUB-GSC-001", "SUB-HPF-001",
                                                        "SUB-STATS-001"]


def test_runs_shape_is_govex_run_json(client: Any, city: City) -> None:
    body = client.get("/api/v1/runs", headers=city.headers("auditor", "gsc")).json()
    assert len(body) == 8
    for run in body:
        assert set(run) == RUN_KEYS
    started = [r["started_at"] for r in body]
    assert started == sorted(started, reverse=True)  # newest first
    one = client.get(f"/api/v1/runs/{city.runs['PSB-RES-001'][0]}",
                     headers=city.headers("auditor", "gsc")).json()
    assert set(one) == RUN_KEYS
    assert one["deliveries"] == [
        {"subscription": "SUB-GSC-001", "delivered": 990, "status": "success"},
        {"subscription": "SUB-HPF-001", "delivered": 990, "status": "success"},
    ]
    limited = client.get("/api/v1/runs?limit=3", headers=city.headers("admin", "gsc")).json()
    assert len(limited) == 3


def test_quality_report_shape(client: Any, city: City) -> None:
    body = client.get("/api/v1/quality/PSB-RES-001",
                      headers=city.headers("checklist_owner", "gsc")).json()
    assert body["resource"] == "PSB-RES-001"
    assert body["provider"] == "psb"
    assert body["max_error_rate"] == pytest.approx(0.1)
    assert [p["run_id"] for p in body["runs"]] == city.runs["PSB-RES-001"]  # oldest first
    first = body["runs"][0]
    assert first["pass_rate"] == pytest.approx(0.99)
    assert {c["check"] for c in first["checks"]} == {
        "cn_resident_id", "required", "id_birth_date_consistency"}
    cn = next(c for c in first["checks"] if c["check"] == "cn_resident_id")
    assert cn == {"check": "cn_resident_id", "column": "id_no", "evaluated": 1000, "failed": 5,
                  "failure_rate": pytest.approx(0.005)}
    assert body["runs"][4]["status"] == "blocked"
    assert body["runs"][-1]["data_docs"] == f"/data-docs/{city.runs['PSB-RES-001'][-1]}/index.html"
    assert body["runs"][0]["data_docs"] is None
    top = body["top_failing_checks"]
    assert [t["check"] for t in top] == ["cn_resident_id", "required",
                                         "id_birth_date_consistency"]
    assert top[0]["failed"] == sum((1000 - p) // 2 for p in (990, 985, 992, 970, 850, 996))
    assert top[0]["runs_failing"] == 6
    assert body["quarantine"]["records"] == 2
    assert body["quarantine"]["age_seconds"] >= 5 * 86400 - 60
    assert body["timeliness"]["state"] == "on_time"
    assert body["timeliness"]["update_frequency"] == "P1D"


def test_timeliness_late_when_the_promise_is_missed(client: Any, city: City) -> None:
    body = client.get("/api/v1/quality/AMR-RES-001",
                      headers=city.headers("admin", "gsc")).json()
    assert body["timeliness"]["state"] == "late"  # hourly promise, last success 2 days ago
    never = client.get("/api/v1/quality/TAX-RES-001",
                       headers=city.headers("admin", "gsc")).json()
    assert never["timeliness"]["state"] == "never"
    assert never["runs"] == []
    assert never["quarantine"] == {"records": 0, "oldest_first_seen": None, "age_seconds": None}


def test_quarantine_shape(client: Any, city: City) -> None:
    body = client.get("/api/v1/quality/PSB-RES-001/quarantine",
                      headers=city.headers("provider", "psb")).json()
    assert [r["key"] for r in body] == ["11010519900101123X", "110105199001011111"]  # oldest first
    first = body[0]
    assert {"key", "failed_checks", "run_id", "first_seen"} <= set(first)
    assert first["failed_checks"] == [{"check": "cn_resident_id", "column": "id_no",
                                       "detail": None, "value": None}]
    assert first["resource"] == "PSB-RES-001"


def test_openapi_documents_the_api(client: Any, city: City) -> None:
    assert client.get("/openapi.json").status_code == 401
    spec = client.get("/openapi.json", headers=city.headers("consumer", "hpf")).json()
    for path in ["/api/v1/resources", "/api/v1/resources/{code}", "/api/v1/subscriptions",
                 "/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/quality/{code}", "/healthz"]:
        assert "get" in spec["paths"][path], path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/catalog" not in spec["paths"]  # pages are not API


# ---- provider isolation --------------------------------------------------------------------


def test_provider_lists_only_its_own_runs(client: Any, city: City) -> None:
    psb = client.get("/api/v1/runs", headers=city.headers("provider", "psb")).json()
    assert {r["resource"] for r in psb} == {"PSB-RES-001"}
    amr = client.get("/api/v1/runs", headers=city.headers("provider", "amr")).json()
    assert {r["resource"] for r in amr} == {"AMR-RES-001"}
    other = client.get("/api/v1/runs?resource=PSB-RES-001",
                       headers=city.headers("provider", "amr"))
    assert other.status_code == 403


def test_provider_never_sees_another_departments_quarantine(client: Any, city: City) -> None:
    own = client.get("/api/v1/quality/AMR-RES-001/quarantine",
                     headers=city.headers("provider", "amr"))
    assert [r["key"] for r in own.json()] == ["91110000BADUSCC0001"]
    theirs = client.get("/api/v1/quality/PSB-RES-001/quarantine",
                        headers=city.headers("provider", "amr"))
    assert theirs.status_code == 403
    assert "11010519900101123X" not in theirs.text


def test_subscriptions_are_filtered_by_role(client: Any, city: City) -> None:
    def ids(role: str, department: str, query: str = "") -> list[str]:
        response = client.get(f"/api/v1/subscriptions{query}",
                              headers=city.headers(role, department))
        assert response.status_code == 200
        return [s["id"] for s in response.json()]

    assert len(ids("checklist_owner", "gsc")) == 10
    assert ids("consumer", "gsc") == ["SUB-GSC-001", "SUB-GSC-002", "SUB-GSC-003"]
    assert ids("consumer", "hpf") == ["SUB-HPF-001", "SUB-HPF-002"]
    # psb provides PSB-RES-001 (to gsc, hpf and stats) and itself consumes birth certificates
    assert ids("provider", "psb") == ["SUB-GSC-001", "SUB-HPF-001", "SUB-PSB-001",
                                      "SUB-STATS-001"]
    assert ids("consumer", "gsc", "?resource=PSB-RES-001") == ["SUB-GSC-001"]
    resource = client.get("/api/v1/resources/PSB-RES-001",
                          headers=city.headers("consumer", "hpf")).json()
    assert [s["id"] for s in resource["subscriptions"]] == ["SUB-HPF-001"]
