"""Issue #12 item 7 on the pages and the API: run ids shown long enough to tell runs apart, one
definition of "pass rate over N runs" for a department and a resource, and a time window on
"top failing checks" (`?days=`, default 30 days)."""

from __future__ import annotations

import re
from typing import Any

from exchange.web import queries
from exchange.web.service import Context

from .conftest import City

RUN_LINK = re.compile(r'<a href="/runs/([^"]+)" title="([^"]+)"><code>([^<]+)</code></a>')


def _run_labels(html: str) -> dict[str, str]:
    found = RUN_LINK.findall(html)
    assert found
    for run_id, title, label in found:
        assert title == run_id
        assert run_id.startswith(label)
        assert len(label) >= 8
    return {run_id: label for run_id, _, label in found}


def test_run_ids_that_share_a_prefix_are_shown_apart(client: Any, city: City) -> None:
    """The city's PSB runs share 35 of their 36 characters, as time-ordered ids of runs made
    close together share their first ones: each page shows them long enough to differ, the
    full id in the title."""
    admin = city.headers("admin", "gsc")
    for page in ("/quality/PSB-RES-001", "/runs", "/resources/PSB-RES-001",
                 "/quarantine?resource=PSB-RES-001"):
        labels = _run_labels(client.get(page, headers=admin).text)
        assert len(set(labels.values())) == len(labels), page
    labels = _run_labels(client.get("/quality/PSB-RES-001", headers=admin).text)
    assert set(labels) == set(city.runs["PSB-RES-001"])


def test_short_ids_are_unique_and_at_least_eight_characters() -> None:
    from exchange.web.pages import _short_ids

    ids = ["0190f3a1-7c2e-7d10-8000-000000000001", "0190f3a1-7c2e-7d10-8000-000000000002",
           "0190f3a2-0000-7000-8000-000000000000", "ffffffff-0000-7000-8000-000000000000"]
    shown = _short_ids([*ids, None, ids[0]])
    assert set(shown) == set(ids)
    assert len(set(shown.values())) == len(ids)
    assert shown[ids[3]] == "ffffffff"
    assert shown[ids[2]] == "0190f3a2"
    assert shown[ids[0]] == ids[0]
    assert _short_ids(["0190f3a1-aaaa", "0190f3a1-bbbb"])["0190f3a1-aaaa"] == "0190f3a1-a"


def test_pass_rate_has_one_definition() -> None:
    """Records passed over records read, over the runs that read any: a run that read nothing
    has no rate and is not one of the N runs."""
    runs = [{"read": 1000, "passed": 990}, {"read": 0, "passed": 0},
            {"read": 1000, "passed": 850}]
    assert queries.pass_rate(runs) == (0.92, 2)
    assert queries.pass_rate([]) == (None, 0)
    assert queries.pass_rate([{"read": 0, "passed": 0}]) == (None, 0)


def test_department_and_resource_count_the_same_way(city: City) -> None:
    from exchange.store import Principal

    ctx = Context(city.engine, city.docs_dir)
    admin = Principal(department="gsc", role="admin")
    departments = ctx.dashboard(admin).departments
    assert departments
    for d in departments:
        for r in d["resources"]:
            assert (r["pass_rate"], r["rated_runs"]) == queries.pass_rate(r["runs"])
        assert (d["pass_rate"], d["runs"]) == queries.pass_rate(
            p for r in d["resources"] for p in r["runs"])
    psb = next(d for d in departments if d["department"] == "psb")
    only = [r for r in psb["resources"] if r["runs"]]
    assert [r["resource"] for r in only] == ["PSB-RES-001"]
    assert (psb["pass_rate"], psb["runs"]) == (only[0]["pass_rate"], only[0]["rated_runs"])
    assert psb["runs"] == 6
    assert psb["pass_rate"] == (990 + 985 + 992 + 970 + 850 + 996) / 6000


def test_the_api_reports_the_pass_rate_and_the_window(client: Any, city: City) -> None:
    admin = city.headers("admin", "gsc")
    report = client.get("/api/v1/quality/PSB-RES-001", headers=admin).json()
    assert report["rated_runs"] == 6
    assert report["pass_rate"] == (990 + 985 + 992 + 970 + 850 + 996) / 6000
    assert report["top_failing_window"]["days"] == 30
    assert report["top_failing_window"]["runs"] == 6
    top = {c["check"]: c for c in report["top_failing_checks"]}
    assert top["cn_resident_id"]["runs_failing"] == 6

    # The last day holds only the latest run (an hour ago): 4 failed records, checks split
    # them 2, 1, 1 (see conftest).
    day = client.get("/api/v1/quality/PSB-RES-001?days=1", headers=admin).json()
    assert day["top_failing_window"]["days"] == 1
    assert day["top_failing_window"]["runs"] == 1
    assert [(c["check"], c["failed"], c["runs_failing"]) for c in day["top_failing_checks"]] == [
        ("cn_resident_id", 2, 1), ("id_birth_date_consistency", 1, 1), ("required", 1, 1)]
    assert len(day["runs"]) == 6  # the runs shown are not the window
    amr = client.get("/api/v1/quality/AMR-RES-001?days=1", headers=admin).json()
    assert amr["top_failing_checks"] == []
    assert amr["top_failing_window"]["runs"] == 0
    for bad in ("0", "-1", "x", "100000"):
        answer = client.get(f"/api/v1/quality/PSB-RES-001?days={bad}", headers=admin)
        assert answer.status_code == 422, bad


def test_the_pages_show_the_window(client: Any, city: City) -> None:
    admin = city.headers("admin", "gsc")
    resource = client.get("/quality/PSB-RES-001", headers=admin).text
    assert "last 30 days" in resource
    assert "pass rate over 6 runs" in resource
    narrow = client.get("/quality/AMR-RES-001?days=1", headers=admin).text
    assert "last 1 day" in narrow
    assert "No failing checks in the last 1 day" in narrow
    dashboard = client.get("/quality?days=1", headers=admin).text
    assert "last 1 day" in dashboard
    assert "cn_uscc" not in dashboard  # AMR's failures are two and three days old
    assert "<code>cn_uscc</code>" in client.get("/quality", headers=admin).text
    assert client.get("/quality?days=zero", headers=admin).status_code == 400
    assert client.get("/quality/PSB-RES-001?days=0", headers=admin).status_code == 400
