"""Every answer under /data-docs carries the sandboxing Content-Security-Policy and govex's
security headers: HTML and any other file type, the 403/404 pages, a refused method, under a
mount prefix too; govex's own pages keep their own policy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exchange.web import create_app, pages
from exchange.web.app import DATA_DOCS_CSP

from .conftest import City

SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _assert_headers(response: Any, csp: str = DATA_DOCS_CSP) -> None:
    assert response.headers["content-security-policy"] == csp, response.request.url
    for name, value in SECURITY.items():
        assert response.headers[name] == value, (response.request.url, name)


def test_the_policy_sandboxes_and_allows_no_script_and_no_other_origin() -> None:
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in DATA_DOCS_CSP.split(";")}
    assert directives["sandbox"] == "sandbox"  # no allow-scripts, allow-same-origin, allow-forms
    assert directives["default-src"] == "default-src 'none'"
    assert "script-src" not in directives  # default-src 'none' governs scripts
    assert directives["style-src"] == "style-src 'unsafe-inline'"
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives["form-action"] == "form-action 'none'"
    assert "http" not in DATA_DOCS_CSP
    assert "*" not in DATA_DOCS_CSP


@pytest.mark.parametrize(("path", "status"), [
    ("index.html", 200),  # HTML
    ("", 200),  # the folder: its index.html
    ("static/style.css", 200),  # any other file type
    ("missing.html", 404),
    ("..%2Fsecret.txt", 404),
    ("%2e%2e/secret.txt", 404),
])
def test_every_data_docs_answer_is_sandboxed(client: Any, city: City, path: str,
                                             status: int) -> None:
    client.cookies.clear()
    run = city.runs["PSB-RES-001"][-1]
    response = client.get(f"/data-docs/{run}/{path}",
                          headers=city.headers("checklist_owner", "gsc"))
    assert response.status_code == status
    _assert_headers(response)


def test_refusals_under_data_docs_are_sandboxed_too(client: Any, city: City) -> None:
    client.cookies.clear()
    owner = city.headers("checklist_owner", "gsc")
    no_docs = city.runs["PSB-RES-001"][0]  # the run exists, no Data Docs were rendered
    _assert_headers(client.get(f"/data-docs/{no_docs}/index.html", headers=owner))
    other = city.runs["PSB-RES-001"][-1]  # AMR's provider may not read PSB's run
    denied = client.get(f"/data-docs/{other}/index.html", headers=city.headers("provider", "amr"))
    assert denied.status_code in {403, 404}
    _assert_headers(denied)
    for path in ["/data-docs", "/data-docs/", "/data-docs/no-such-run"]:  # no route: 404
        response = client.get(path, headers=owner)
        assert response.status_code == 404, path
        _assert_headers(response)
    head = client.head(f"/data-docs/{other}/index.html", headers=owner)
    _assert_headers(head)
    refused = client.post(f"/data-docs/{other}/index.html", headers=owner)
    assert refused.status_code == 405
    _assert_headers(refused)


def test_the_signin_form_under_data_docs_can_still_post(client: Any, city: City) -> None:
    """The 401 sign-in page is govex's template with govex's own no-script policy: a sandboxed
    page could not send its form."""
    client.cookies.clear()
    run = city.runs["PSB-RES-001"][-1]
    response = client.get(f"/data-docs/{run}/index.html")
    assert response.status_code == 401
    assert '<form method="post" action="/signin"' in response.text
    _assert_headers(response, csp=pages.CSP)
    assert "script-src" not in pages.CSP
    assert "default-src 'none'" in pages.CSP


def test_govex_pages_keep_their_own_policy(client: Any, city: City) -> None:
    client.cookies.clear()
    owner = city.headers("checklist_owner", "gsc")
    _assert_headers(client.get("/quality", headers=owner), csp=pages.CSP)
    # A path that only starts like the prefix is not under it.
    assert "sandbox" not in client.get("/data-docsx", headers=owner).headers.get(
        "content-security-policy", "")


def test_data_docs_are_sandboxed_under_a_mount_prefix(city: City) -> None:
    outer = FastAPI()
    outer.mount("/govex", create_app(city.engine, docs_dir=city.docs_dir))
    browser = TestClient(outer)
    run = city.runs["PSB-RES-001"][-1]
    owner = city.headers("checklist_owner", "gsc")
    for path, status in [("index.html", 200), ("static/style.css", 200), ("nope.html", 404)]:
        response = browser.get(f"/govex/data-docs/{run}/{path}", headers=owner)
        assert response.status_code == status
        _assert_headers(response)
    _assert_headers(browser.get("/govex/quality", headers=owner), csp=pages.CSP)
