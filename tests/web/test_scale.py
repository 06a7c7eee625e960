"""Issue #15 item 7: everything users open is paged and filtered by department, so it does not
grow with the catalog. On generated catalogs (`benchmarks.large_catalog`): paging and the
department filter on the pages and in the API, per role; the API's bare lists with their
`X-Total-Count` and `Link` headers; the quality dashboard's size at 5,000 resources; and the
number of store queries behind every list, the same at 60 resources as at 5,000. Wall-clock
time is `govex bench catalog`'s business, not a test's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
from benchmarks import large_catalog
from exchange.store import Principal, tokens
from exchange.web import policy

SMALL, BIG = 60, 5000
ROLES = [("admin", "d000"), ("checklist_owner", "d000"), ("auditor", "d000"),
         ("provider", "d001"), ("consumer", "d002")]


@dataclass
class Catalog:
    engine: sa.Engine
    client: Any
    tokens: dict[tuple[str, str], str]
    resources: int
    queries: list[str]

    def headers(self, role: str, department: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role, department]}"}

    def get(self, path: str, role: str = "admin", department: str = "d000") -> Any:
        return self.client.get(path, headers=self.headers(role, department))


def _catalog(root: Path, resources: int, departments: int) -> Iterator[Catalog]:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    engine = large_catalog.build_store(f"sqlite:///{root / 'govex.db'}", resources,
                                       departments=departments)
    with engine.begin() as conn:
        issued = {(role, dept): tokens.create_token(conn, dept, role) for role, dept in ROLES}
    executed: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: executed.append(statement))
    with TestClient(create_app(engine, docs_dir=root / "docs")) as client:
        yield Catalog(engine, client, issued, resources, executed)
    engine.dispose()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """60 resources over 3 departments: 20 each, two pages of the whole catalog."""
    yield from _catalog(tmp_path_factory.mktemp("small-catalog"), SMALL, 3)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """5,000 resources over 200 departments, 5 runs each."""
    yield from _catalog(tmp_path_factory.mktemp("big-catalog"), BIG,
                        large_catalog.DEPARTMENTS)


def _codes(body: list[dict[str, Any]]) -> list[str]:
    return [r["code"] for r in body]


def _all_pages(catalog: Catalog, path: str, role: str, department: str) -> list[Any]:
    """Every item of a paged API list, following its `Link: rel="next"` header."""
    items: list[Any] = []
    url: str | None = path
    while url:
        response = catalog.get(url, role, department)
        assert response.status_code == 200, response.text
        items += response.json()
        found = re.search(r'<([^>]+)>; rel="next"', response.headers["link"])
        url = found.group(1).removeprefix("http://testserver") if found else None
    assert len(items) == int(response.headers["x-total-count"])
    return items


# ---- the API ---------------------------------------------------------------------------------


def test_resources_are_paged_with_headers_and_a_bare_list(small: Catalog) -> None:
    whole = small.get("/api/v1/resources")
    assert whole.status_code == 200
    assert len(whole.json()) == SMALL  # the API's default page holds a city's whole catalog
    assert 'rel="next"' not in whole.headers["link"]
    first = small.get("/api/v1/resources?per_page=50")
    body = first.json()
    assert isinstance(body, list)
    assert len(body) == 50
    assert first.headers["x-total-count"] == str(SMALL)
    link = first.headers["link"]
    assert '<http://testserver/api/v1/resources?page=2&per_page=50>; rel="next"' in link
    assert 'rel="last"' in link
    assert 'rel="prev"' not in link
    second = small.get("/api/v1/resources?page=2&per_page=50")
    assert len(second.json()) == SMALL - 50
    assert 'rel="next"' not in second.headers["link"]
    everything = _codes(body) + _codes(second.json())
    assert everything == sorted(large_catalog.resource_code(i) for i in range(SMALL))
    assert everything == _codes(whole.json())
    assert small.get("/api/v1/resources?page=3&per_page=50").json() == []  # past the end
    assert set(body[0]) == {"code", "name", "provider", "contract", "sharing",
                            "classification", "update_frequency", "subscriptions"}


def test_resources_filter_by_department(small: Catalog) -> None:
    response = small.get("/api/v1/resources?department=d001&per_page=7&page=2",
                         "consumer", "d002")
    assert response.status_code == 200
    assert response.headers["x-total-count"] == "20"
    assert [r["provider"] for r in response.json()] == ["d001"] * 7
    link = response.headers["link"]
    assert "department=d001" in link
    assert "per_page=7" in link
    every = _all_pages(small, "/api/v1/resources?department=d001&per_page=7", "consumer",
                       "d002")
    assert _codes(every) == [large_catalog.resource_code(i) for i in range(SMALL)
                             if large_catalog.provider_of(i, 3) == "d001"]


@pytest.mark.parametrize(("query", "status", "words"), [
    ("department=nope", 404, "unknown department 'nope'"),
    ("per_page=0", 422, "per_page"),
    ("per_page=501", 422, "per_page"),
    ("page=0", 422, "page"),
    ("page=x", 422, "page"),
])
def test_bad_paging_or_department_is_one_sentence(small: Catalog, query: str, status: int,
                                                  words: str) -> None:
    for path in ("/api/v1/resources", "/api/v1/subscriptions"):
        response = small.get(f"{path}?{query}")
        assert response.status_code == status, (path, response.text)
        assert words in response.json()["detail"]


@pytest.mark.parametrize(("role", "department"), ROLES)
def test_subscription_pages_hold_what_the_role_may_read(small: Catalog, role: str,
                                                        department: str) -> None:
    """The database-side scope (`policy.subscription_scope`) and the Python rule
    (`policy.may_read_subscription`) agree, page after page."""
    paged = _all_pages(small, "/api/v1/subscriptions?per_page=13", role, department)
    principal = Principal(department=department, role=role)
    with small.engine.connect() as conn:
        provider_of = catalog.resource_providers(conn)
        every = catalog.subscription_declarations(conn)
    expected = sorted(sub_id for sub_id, d in every.items()
                      if policy.may_read_subscription(principal, d,
                                                      provider_of[str(d["resource"])]))
    assert [s["id"] for s in paged] == expected
    assert expected  # every role here reads some lines
    assert all(s["state"] == "active" for s in paged)


def test_subscriptions_filter_by_a_department_on_either_side(small: Catalog) -> None:
    lines = _all_pages(small, "/api/v1/subscriptions?department=d001", "admin", "d000")
    with small.engine.connect() as conn:
        provider_of = catalog.resource_providers(conn)
    assert lines
    for line in lines:
        assert "d001" in (line["consumer"], provider_of[line["resource"]])
    consumers = {line["consumer"] for line in lines}
    assert consumers == {"d001", "d002"}  # its own lines, and d002's to d001's resources


def test_runs_are_paged_and_filtered_by_department(small: Catalog) -> None:
    response = small.get("/api/v1/runs?department=d002&limit=30")
    assert response.headers["x-total-count"] == str(20 * large_catalog.RUNS_PER_RESOURCE)
    assert 'limit=30' in response.headers["link"]
    runs = _all_pages(small, "/api/v1/runs?department=d002&limit=30", "admin", "d000")
    with small.engine.connect() as conn:
        provider_of = catalog.resource_providers(conn)
    assert {provider_of[r["resource"]] for r in runs} == {"d002"}
    started = [r["started_at"] for r in runs]
    assert started == sorted(started, reverse=True)
    # A provider reads its own department's runs only, whatever it filters on.
    own = small.get("/api/v1/runs?limit=1000", "provider", "d001").json()
    assert {provider_of[r["resource"]] for r in own} == {"d001"}
    assert small.get("/api/v1/runs?department=d002", "provider", "d001").json() == []
    assert small.get("/api/v1/runs", "consumer", "d002").status_code == 403


# ---- the pages -------------------------------------------------------------------------------


def _listed(html: str, prefix: str) -> list[str]:
    return list(dict.fromkeys(re.findall(rf'href="{prefix}(GEN-RES-\d+)"', html)))


def test_catalog_page_is_paged_and_filtered(small: Catalog) -> None:
    first = small.get("/catalog", "consumer", "d002").text
    assert len(_listed(first, "/resources/")) == 50
    assert "1–50 of 60" in first
    assert 'href="?page=2" rel="next"' in first
    second = small.get("/catalog?page=2", "consumer", "d002").text
    assert len(_listed(second, "/resources/")) == 10
    assert set(_listed(first, "/resources/")).isdisjoint(_listed(second, "/resources/"))
    only = small.get("/catalog?department=d002", "consumer", "d002").text
    shown = _listed(only, "/resources/")
    assert len(shown) == 20
    assert all(large_catalog.provider_of(int(code[-5:]), 3) == "d002" for code in shown)
    assert '<option value="d002" selected>' in only
    assert small.get("/catalog?page=0", "consumer", "d002").status_code == 400
    assert small.get("/catalog?department=nope", "consumer", "d002").status_code == 404


def test_dashboard_pages_keep_the_window_and_the_filter(small: Catalog) -> None:
    first = small.get("/quality?days=7").text
    assert len(_listed(first, "/quality/")) == 50
    assert 'href="?days=7&amp;page=2" rel="next"' in first
    second = small.get("/quality?days=7&page=2").text
    assert len(_listed(second, "/quality/")) == 10
    assert "last 7 days" in second
    # The overview still counts every resource of every department, whatever the page.
    for html in (first, second):
        assert html.count('<td class="num">20</td>') == 3
    one = small.get("/quality?department=d001&per_page=5").text
    assert len(_listed(one, "/quality/")) == 5
    assert 'href="?department=d001&amp;per_page=5&amp;page=2" rel="next"' in one
    mine = small.get("/quality", "provider", "d001").text
    assert len(_listed(mine, "/quality/")) == 20
    assert {large_catalog.provider_of(int(c[-5:]), 3) for c in _listed(mine, "/quality/")} == {
        "d001"}
    assert small.get("/quality?page=-1").status_code == 400


def test_checklist_and_runs_pages_filter_by_department(small: Catalog) -> None:
    checklist = small.get("/subscriptions?department=d000&per_page=10", "auditor", "d000").text
    ids = re.findall(r"<td><code>(SUB-GEN-\d+)</code></td>", checklist)
    assert len(ids) == 10
    assert "1–10 of 40" in checklist  # d000's 20 resources' lines and its own 20
    runs = small.get("/runs?department=d001&per_page=10").text
    assert "1–10 of 100" in runs
    assert small.get("/runs?department=nope").status_code == 404


# ---- at 5,000 resources ----------------------------------------------------------------------


def test_dashboard_at_5000_resources_weighs_under_500_kb(big: Catalog) -> None:
    response = big.get("/quality")
    assert response.status_code == 200
    assert len(response.content) < 500 * 1024, len(response.content)
    html = response.text
    assert len(_listed(html, "/quality/")) == 50
    assert "1–50 of 5000" in html
    # Every department in the overview, each with its 25 resources counted.
    assert html.count('<td class="num">25</td>') == large_catalog.DEPARTMENTS
    catalog_page = big.get("/catalog")
    assert len(catalog_page.content) < 100 * 1024
    assert "1–50 of 5000" in catalog_page.text


def test_request_form_lists_one_department_in_a_long_catalog(small: Catalog,
                                                             big: Catalog) -> None:
    short = small.get("/requests/new", "consumer", "d002").text
    assert short.count('<option value="GEN-RES-') == SMALL
    assert 'name="department"' not in short
    long = big.get("/requests/new", "consumer", "d002")
    assert long.text.count('<option value="GEN-RES-') == 0
    assert "Choose the providing department first" in long.text
    assert len(long.content) < 100 * 1024
    one = big.get("/requests/new?department=d007", "consumer", "d002").text
    assert one.count('<option value="GEN-RES-') == 25
    chosen = big.get("/requests/new?resource=GEN-RES-00007", "consumer", "d002").text
    assert chosen.count('<option value="GEN-RES-') == 25  # its provider's, d007
    assert '<option value="GEN-RES-00007" selected>' in chosen
    assert 'name="fields" value="name"' in chosen


LISTS = ["/quality", "/quality?department=d001", "/quality?page=2", "/catalog",
         "/catalog?department=d001", "/subscriptions", "/subscriptions?department=d001",
         "/runs", "/runs?department=d001", "/api/v1/resources",
         "/api/v1/resources?department=d001", "/api/v1/subscriptions",
         "/api/v1/subscriptions?department=d001", "/api/v1/runs",
         "/api/v1/runs?department=d001"]


def _queries(catalog: Catalog, path: str, role: str, department: str) -> int:
    catalog.get(path, role, department)  # once first: token bookkeeping of a first use
    catalog.queries.clear()
    response = catalog.get(path, role, department)
    assert response.status_code == 200, (path, response.text)
    return len(catalog.queries)


@pytest.mark.parametrize(("role", "department"), [("admin", "d000"), ("provider", "d001")])
def test_lists_take_the_same_queries_at_60_and_5000_resources(
    small: Catalog, big: Catalog, role: str, department: str
) -> None:
    counts = {path: (_queries(small, path, role, department),
                     _queries(big, path, role, department)) for path in LISTS}
    assert {p: c for p, c in counts.items() if c[0] != c[1]} == {}
    assert max(c[1] for c in counts.values()) < 40


def test_generated_rows_are_what_apply_writes(tmp_path: Path) -> None:
    """The scale tests and the benchmark write the catalog's rows directly (`insert_catalog`);
    they are the rows `govex apply` writes for the same declarations."""
    wanted = {
        "catalog_departments": "code, name, declaration",
        "catalog_connections": "name, kind, declaration",
        "catalog_resources": "code, name, provider, contract_name, contract_version, sharing, "
                             "classification, declaration",
        "catalog_data_elements": "element, resource_code, field",
        "catalog_subscriptions": "id, resource_code, consumer, contract_major, valid_from, "
                                 "valid_until, declaration, origin, state",
    }
    applied = large_catalog.build_store(f"sqlite:///{tmp_path / 'applied.db'}", 12,
                                        departments=4, runs_per_resource=0,
                                        apply_from=tmp_path / "ws")
    written = large_catalog.build_store(f"sqlite:///{tmp_path / 'written.db'}", 12,
                                        departments=4, runs_per_resource=0)
    try:
        for table, columns in wanted.items():
            query = sa.text(f"SELECT {columns} FROM {table} ORDER BY 1")  # noqa: S608
            with applied.connect() as one, written.connect() as other:
                rows = one.execute(query).all()
                assert rows == other.execute(query).all(), table
                assert rows, table
    finally:
        applied.dispose()
        written.dispose()


@pytest.mark.integration
def test_bench_catalog_prints_each_figure_beside_its_baseline(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A small `govex bench catalog` (web pages only: the DAG figures take minutes) runs end
    to end through uvicorn, so the benchmark cannot rot unnoticed."""
    from exchange.cli import main

    assert main(["bench", "catalog", "--resources", "120", "--baseline", "30",
                 "--repeat", "1", "--skip-dags"]) == 0
    out = capfd.readouterr().out
    for line in ("120 resources", "30 resources (baseline)", "/quality", "/catalog",
                 "/api/v1/resources", "static body of /quality size",
                 "target /quality < 1 s and < 500 KB at 120: met"):
        assert line in out, out
