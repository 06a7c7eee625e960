"""Stored XSS through Great Expectations Data Docs, in a real browser: a provider's source values
are HTML that fetches /api/v1/disputes with the reader's session. The quality gate fails them,
Data Docs are built from its report, and a checklist owner opens them through the app in
headless Chromium: nothing runs, nothing is fetched, the tables still read. Data Docs written
before the values were escaped stay inert under the Data Docs CSP alone; the same page served
without it does run the payload (the control that shows the checks can fail).

Needs `/usr/bin/chromium` and the `playwright` package, like test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pytest
import yaml

import contracts
import quality
from exchange.demo.city import generate_resources
from exchange.demo.files import packaged_workspace
from exchange.web.app import DATA_DOCS_CSP
from quality.docs import mask_value

from .conftest import City, build_city
from .test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _unavailable, serving

pytestmark = pytest.mark.integration

IMG = ("<img src=x onerror=\"fetch('/api/v1/disputes').then(r=>r.text())"
       ".then(t=>document.title='PWNED:'+t.length)\">")
SCRIPT = ("<script>fetch('/api/v1/disputes').then(r=>r.text())"
          ".then(t=>{document.title='PWNED:'+t.length;alert(t.length)})</script>")
GE_TITLE = "Data documentation compiled by Great Expectations"
OLD_TITLE = "Data Docs written before the fix"
# Data Docs as GE wrote them before govex escaped anything: the payloads raw, GE's CDN
# scripts and stylesheets, and a request to the API that needs no script at all.
OLD_DOCS = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{OLD_TITLE}</title>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
</head><body><table><thead><tr><th>Sampled Unexpected Values</th></tr></thead><tbody>
<tr><td>{IMG}</td></tr><tr><td>{SCRIPT}</td></tr>
<tr><td><img src="/api/v1/disputes" alt="no-script request"></td></tr>
</tbody></table></body></html>"""


@dataclass
class Hostile:
    city: City
    url: str
    gated: str  # run whose Data Docs were built from the gate's report on the hostile rows
    old: str  # run whose Data Docs are OLD_DOCS
    failed: list[str] = field(default_factory=list)  # checks the payloads failed
    served: list[str] = field(default_factory=list)  # every path the server was asked for


def _hostile_report() -> Any:
    """The PSB resource's real quality gate on demo rows, two of whose ID numbers are the
    payloads."""
    workspace = packaged_workspace()
    resource = next(
        data for path in sorted((workspace / "resources").glob("*.yaml"))
        if (data := yaml.safe_load(path.read_text(encoding="utf-8")))["code"] == "PSB-RES-001"
    )
    name, version = resource["contract"].split("@")
    contract = contracts.load_contract(workspace / "contracts" / name / f"{version}.json")
    rows = [dict(r) for r in generate_resources(seed=7, scale=0.01)["PSB-RES-001"].rows[:40]]
    rows[3]["id_no"] = IMG
    rows[17]["id_no"] = SCRIPT
    gate = quality.QualityGate(contract, resource.get("quality"), key=resource["key"])
    return gate.evaluate(pa.Table.from_pylist(rows, schema=contracts.arrow_schema(contract)))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """A city of its own (the shared one's Data Docs stay as other tests expect them) under
    uvicorn on a free port."""

    from exchange.web import create_app

    root = tmp_path_factory.mktemp("web-hostile-docs")
    city = build_city(root)
    psb = city.runs["PSB-RES-001"]
    gated, old = psb[4], psb[3]  # the run the gate blocked; an earlier one
    result = _hostile_report()
    quality.build_data_docs(result, city.docs_dir / gated, run_id=gated)
    (city.docs_dir / old).mkdir(parents=True)
    (city.docs_dir / old / "index.html").write_text(OLD_DOCS, encoding="utf-8")

    served: list[str] = []
    app = create_app(city.engine, docs_dir=city.docs_dir)

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            served.append(scope["path"])
        await app(scope, receive, send)

    failed = [c.check for c in result.report.failed_checks]
    with serving(recording) as url:
        yield Hostile(city=city, url=url, gated=gated, old=old, failed=failed, served=served)
    city.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable("Chromium is not installed at /usr/bin/chromium "
                     "(apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A signed-in checklist owner's tab and everything it did."""

    page: Any
    requests: list[str] = field(default_factory=list)  # every request the page made
    refused: list[tuple[str, str]] = field(default_factory=list)  # (url, why) never sent
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.requests.clear()
        self.refused.clear()
        self.dialogs.clear()
        self.console.clear()


def _signed_in(browser: Any, hostile: Hostile, start: str) -> Watched:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    watched = Watched(page)
    page.on("request", lambda r: watched.requests.append(r.url))
    page.on("requestfailed", lambda r: watched.refused.append((r.url, str(r.failure))))
    page.on("console", lambda m: watched.console.append(m.text))

    def dialog(d: Any) -> None:
        watched.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    assert page.goto(f"{hostile.url}{start}").status == 401  # the sign-in form
    page.fill("#token", hostile.city.token("checklist_owner", "gsc"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{hostile.url}{start}")
    return watched


def _assert_nothing_ran(watched: Watched, hostile: Hostile, title: str, docs: str) -> None:
    """No script ran (title, dialogs) and the page reached nothing: the document is the only
    request that left the browser, the rest were refused by the CSP before being sent, and
    the server never saw an API path."""
    page = watched.page
    page.wait_for_timeout(750)  # time for a fetch().then() to finish, had it started
    assert page.title() == title
    assert "PWNED" not in page.title()
    assert watched.dialogs == []
    sent = [u for u in watched.requests if u not in {r for r, _ in watched.refused}]
    assert sent == [f"{hostile.url}{docs}"], (sent, watched.refused)
    assert all(why == "csp" for _, why in watched.refused), watched.refused
    assert not [p for p in hostile.served if p.startswith("/api/")], hostile.served
    for message in watched.console:  # CSP or sandbox refusals, nothing else
        assert "Content Security Policy" in message or "sandboxed" in message, message


def test_a_payload_in_source_data_does_not_run_in_data_docs(browser: Any,
                                                           hostile: Hostile) -> None:
    assert "cn_resident_id" in hostile.failed  # the payloads reached the report as failures
    run_page = f"/runs/{hostile.gated}"
    docs = f"/data-docs/{hostile.gated}/index.html"
    watched = _signed_in(browser, hostile, run_page)
    page = watched.page
    watched.clear()
    hostile.served.clear()
    with page.expect_response(f"{hostile.url}{docs}") as opened:
        page.click(f'a[href="{docs}"]')  # the run page's Data Docs link
    page.wait_for_load_state("load")
    assert opened.value.status == 200
    assert opened.value.headers["content-security-policy"] == DATA_DOCS_CSP
    _assert_nothing_ran(watched, hostile, GE_TITLE, docs)
    assert watched.refused == []  # the escaped page does not even try to load anything

    # Still a page that reads: govex's summary and GE's tables with the masked samples.
    text = page.inner_text("body")
    assert "cn_resident_id" in text
    assert "Sampled Unexpected Values" in text
    assert "Failing values are masked by shape" in text
    for payload in (IMG, SCRIPT):
        assert payload not in text
        shape = mask_value(payload)
        assert shape is not None
        assert shape in text  # shown as text, escaped exactly once
    assert page.locator("table").count() >= 5
    assert page.locator("td:has-text('aaaaa')").count() >= 2
    assert page.locator("script, img, iframe, link").count() == 0
    # The table of contents still jumps within the page (a fragment: no request).
    watched.clear()
    page.click("a[href='#section-1']")
    assert watched.requests == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "data-docs-hostile.png"), full_page=True)
    page.close()


def test_data_docs_written_before_escaping_stay_inert(browser: Any, hostile: Hostile) -> None:
    docs = f"/data-docs/{hostile.old}/index.html"
    watched = _signed_in(browser, hostile, docs)  # the sign-in form, then back here
    page = watched.page
    watched.clear()
    hostile.served.clear()
    response = page.reload()
    assert response.headers["content-security-policy"] == DATA_DOCS_CSP
    _assert_nothing_ran(watched, hostile, OLD_TITLE, docs)
    refused = {url.removeprefix(hostile.url) for url, _ in watched.refused}
    assert {"/api/v1/disputes", f"/data-docs/{hostile.old}/x"} <= refused  # <img>s
    assert "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css" in refused
    assert any("sandboxed" in m for m in watched.console)  # the scripts, refused
    assert "Sampled Unexpected Values" in page.inner_text("body")
    page.close()


def test_the_same_old_page_without_the_policy_does_run(browser: Any, hostile: Hostile) -> None:
    """The control: served from govex's origin without DATA_DOCS_CSP, OLD_DOCS reads the
    disputes with the session. Without this, the two tests above could pass for a payload
    that never worked."""
    watched = _signed_in(browser, hostile, "/quality")
    page = watched.page
    unprotected = f"{hostile.url}/unprotected-copy.html"
    page.route(unprotected, lambda route: route.fulfill(
        status=200, content_type="text/html", body=OLD_DOCS))
    watched.clear()
    hostile.served.clear()
    page.goto(unprotected)
    page.wait_for_function("document.title.startsWith('PWNED:')", timeout=10_000)
    assert f"{hostile.url}/api/v1/disputes" in watched.requests
    assert "/api/v1/disputes" in hostile.served
    assert watched.dialogs  # the <script> variant's alert
    page.close()
