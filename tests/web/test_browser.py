"""A real browser on the real server: headless Debian Chromium driven by Playwright signs in as
a checklist owner, opens the quality dashboard and finds the failing checks; the screenshot is
kept in test-artifacts/ for people to look at.

Needs `/usr/bin/chromium` (apt-get install chromium) and the `playwright` Python package; no
browser is ever downloaded. Skips with the reason when either is absent, fails under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import AMR_CHECKS, PSB_CHECKS, City

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing browser is a failure, not a skip")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """`app` under uvicorn (what `govex serve` runs) on a free port, in a thread, once its
    /healthz answers; yields its base URL and stops it afterwards."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                assert response.status == 200
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(city: City) -> Iterator[str]:
    """The web app of the shared city, served for the browser."""
    from exchange.web import create_app

    with serving(create_app(city.engine, docs_dir=city.docs_dir)) as url:
        yield url


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        _unavailable("Chromium is not installed at /usr/bin/chromium "
                     "(apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    headless=True)
        yield browser
        browser.close()


def test_checklist_owner_reads_the_quality_dashboard(server: str, chromium: object,
                                                     city: City) -> None:
    page = chromium.new_page(viewport={"width": 1366, "height": 900},  # type: ignore[attr-defined]
                             locale="zh-CN")
    response = page.goto(f"{server}/quality")
    assert response.status == 401  # not signed in: the sign-in form
    page.fill("#token", city.token("checklist_owner", "gsc"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/quality")
    assert page.title() == "Quality dashboard · govex"
    text = page.inner_text("main")
    for check, _column in PSB_CHECKS + AMR_CHECKS:
        assert check in text
    assert "市公安局" in text
    assert "late 逾期" in text
    assert page.locator("svg.spark").count() >= 2
    cookies = {c["name"]: c for c in page.context.cookies()}
    # The cookie holds a session id, not the token (tokens.start_session).
    assert cookies["govex_session"]["httpOnly"] is True
    assert cookies["govex_session"]["sameSite"] == "Strict"
    assert city.token("checklist_owner", "gsc") not in {c["value"] for c in cookies.values()}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    page.click('a[href="/quality/PSB-RES-001"]')
    page.wait_for_url(f"{server}/quality/PSB-RES-001")
    assert page.locator("svg.chart circle").count() == len(city.runs["PSB-RES-001"])
    assert "cn_resident_id" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "quality-PSB-RES-001.png"), full_page=True)

    page.click(f'a[href="/data-docs/{city.runs["PSB-RES-001"][-1]}/index.html"]')
    assert "Data Docs for PSB-RES-001" in page.inner_text("body")


def test_provider_sees_only_its_own_quarantine_in_the_browser(server: str, chromium: object,
                                                              city: City) -> None:
    page = chromium.new_page()  # type: ignore[attr-defined]
    page.goto(f"{server}/signin?next=/quarantine")
    page.fill("#token", city.token("provider", "amr"))
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/quarantine")
    text = page.inner_text("main")
    assert "91110000BADUSCC0001" in text
    assert "cn_uscc" in text
    assert "11010519900101123X" not in text
    page.screenshot(path=str(ARTIFACTS / "quarantine-provider.png"), full_page=True)
