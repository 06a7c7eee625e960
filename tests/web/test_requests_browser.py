"""The whole sharing-request flow in headless Chromium, on the real server over a generated demo
city, with four departments' tokens: the consumer (gsc) asks through the form, the authority
(data) finds it compliant, the provider (psb) approves it without one field, a real run
delivers, the consumer sees the delivery on its request page and the target table holds the
rows with only the approved fields; the provider revokes, and the next run delivers nothing
and purges the target.

Screenshots of every step are kept in test-artifacts/requests-*.png (next to the dashboard's,
test_browser.py). Needs `/usr/bin/chromium` and the `playwright` package, like test_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
import exchange.requests as sharing
from exchange.demo.files import copy_workspace
from exchange.demo.grants import grant_requests
from exchange.run import run_resource
from exchange.store import Principal, create_store_engine, tokens, upgrade

from .test_browser import ARTIFACTS, chromium, serving  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

RESOURCE = "PSB-RES-001"
TABLE = "psb_browser_asked"
ASKED = ("id_no", "name", "birth_date")
DROPPED = "birth_date"  # the field the provider unchecks
WHO = {"consumer": ("gsc", "consumer"), "authority": ("data", "authority"),
       "provider": ("psb", "provider"), "other": ("amr", "provider")}


@dataclass
class Exchange:
    engine: sa.Engine
    url: str
    tokens: dict[str, str]
    target: str  # the consumer's database URL (gsc_db)


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """A generated demo city on a fresh store, one token per department, and the web app
    under uvicorn (what `govex serve` runs) on a free port."""

    from exchange.demo import city as democity
    from exchange.web import create_app

    root = tmp_path_factory.mktemp("requests-browser")
    ws = catalog.load_workspace(copy_workspace(root / "city"))
    targets = {
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items() if d.item.kind != "kafka"
    }
    democity.generate_city(ws.root, targets, scale=0.05)
    engine = create_store_engine(f"sqlite:///{root / 'govex.db'}")
    upgrade(engine)
    catalog.apply_workspace(engine, ws.root)
    grant_requests(engine, ws.root)
    with engine.begin() as conn:
        secrets = {role: tokens.create_token(conn, dept, r) for role, (dept, r) in WHO.items()}
    mp = pytest.MonkeyPatch()
    mp.setenv("GOVEX_STAGING_DIR", str(root / "staging"))
    mp.setenv("GOVEX_DATA_DOCS_DIR", str(root / "data_docs"))
    try:
        with serving(create_app(engine, docs_dir=root / "data_docs")) as url:
            yield Exchange(engine, url, secrets, str(targets["gsc_db"]))
    finally:
        mp.undo()
        engine.dispose()


def _signed_in(browser: Any, ex: Exchange, role: str, next_path: str) -> Any:
    """A page in its own browser context (own cookies), signed in as `role`."""
    page = browser.new_context(viewport={"width": 1366, "height": 900},
                               locale="zh-CN").new_page()
    page.goto(f"{ex.url}/signin?next={next_path}")
    page.fill("#token", ex.tokens[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{ex.url}{next_path}")
    return page


def _shot(page: Any, step: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"requests-{step}.png"), full_page=True)


def _target_rows(ex: Exchange) -> tuple[list[str], int]:
    """The consumer's target table: its columns and row count (no table: none, 0)."""
    engine = sa.create_engine(ex.target)
    try:
        if not sa.inspect(engine).has_table(TABLE):
            return [], 0
        columns = [c["name"] for c in sa.inspect(engine).get_columns(TABLE)]
        with engine.connect() as conn:
            count = conn.execute(sa.text(f'SELECT COUNT(*) FROM "{TABLE}"')).scalar_one()  # noqa: S608
        return columns, int(count)
    finally:
        engine.dispose()


def test_consumer_asks_authority_reviews_provider_approves_run_delivers_then_revoked(
    exchange: Exchange, chromium: Any  # noqa: F811 - the fixture imported above
) -> None:
    ex = exchange
    # 1. The consumer asks through the form.
    consumer = _signed_in(chromium, ex, "consumer", "/requests/new")
    consumer.select_option("#resource", RESOURCE)
    consumer.click("form[method=get] button[type=submit]")
    consumer.wait_for_selector("#ask")
    for field in ASKED:
        consumer.check(f"#field-{field}")
    consumer.select_option("#mask-name", "name:mask_name")
    consumer.fill("#purpose", "一网通办身份核验")
    consumer.fill("#legal_basis", "《政务信息资源共享管理暂行办法》第十条")
    consumer.select_option("#connection", "gsc_db")
    consumer.fill("#table", TABLE)
    consumer.select_option("#mode", "upsert")
    consumer.fill("#schedule", "@daily")
    _shot(consumer, "1-consumer-form")
    consumer.click("#ask button[type=submit]")
    consumer.wait_for_url(f"{ex.url}/requests/REQ-*")
    rid = consumer.url.rsplit("/", 1)[1]
    assert consumer.inner_text("#state") == "submitted"
    _shot(consumer, "2-consumer-submitted")

    # 2. The authority finds it in its review queue, compliant.
    authority = _signed_in(chromium, ex, "authority", "/requests")
    assert rid in authority.inner_text("main")
    _shot(authority, "3-authority-queue")
    authority.click(f'a[href="/requests/{rid}"]')
    authority.click("#review button[value=compliant]")
    authority.wait_for_url(f"{ex.url}/requests/{rid}")
    assert authority.inner_text("#state") == "reviewed"

    # 3. The provider: a rejection without a reason is refused on the page; then it
    # approves without birth_date.
    provider = _signed_in(chromium, ex, "provider", "/requests")
    assert rid in provider.inner_text("main")
    provider.goto(f"{ex.url}/requests/{rid}")
    with provider.expect_navigation() as refused:
        provider.click("#reject button[type=submit]")
    assert refused.value.status == 422
    assert "a rejection needs a reason" in provider.inner_text(".error")
    _shot(provider, "4-provider-reject-needs-reason")
    provider.uncheck(f"#approve-{DROPPED}")
    _shot(provider, "5-provider-approves-narrowed")
    provider.click("#approve button[type=submit]")
    provider.wait_for_url(f"{ex.url}/requests/{rid}")
    assert provider.inner_text("#state") == "approved"
    assert DROPPED not in provider.inner_text("#fields")
    approved = sharing.get_request(ex.engine, Principal("psb", "provider"), rid)
    assert approved["fields"] == ["id_no", "name"]
    assert approved["masking"] == {"name": "mask_name"}  # id_no left unmasked, as asked

    # 4. A run delivers; the consumer sees it arrive, and the target has only what was
    # approved.
    first = run_resource(ex.engine, RESOURCE)
    consumer.goto(f"{ex.url}/requests/{rid}")
    shown = consumer.inner_text("#deliveries")
    assert first.run_id in shown
    assert "success" in shown
    assert consumer.inner_text("#subscription-state") == "active"
    _shot(consumer, "6-consumer-data-arrived")
    columns, rows = _target_rows(ex)
    assert rows > 0
    assert {"id_no", "name"} <= set(columns)
    assert DROPPED not in columns

    # 5. The provider revokes (a reason is required).
    provider.goto(f"{ex.url}/requests/{rid}")
    provider.fill("#revoke input[name=reason]", "法定职责调整，停止共享")
    provider.click("#revoke button[type=submit]")
    provider.wait_for_url(f"{ex.url}/requests/{rid}")
    assert provider.inner_text("#state") == "revoked"
    _shot(provider, "7-provider-revoked")

    # 6. The next run delivers nothing and purges the target; the consumer is told why.
    second = run_resource(ex.engine, RESOURCE)
    ours = next(d for d in second.deliveries
                if d.subscription == f"SUB-GSC-{rid.removeprefix('REQ-')}")
    assert ours.status == "skipped"
    assert ours.delivered == 0
    assert _target_rows(ex)[1] == 0
    consumer.goto(f"{ex.url}/requests/{rid}")
    assert consumer.inner_text("#subscription-state") == "revoked"
    ended = consumer.inner_text("#ended")
    assert "法定职责调整" in ended
    assert "purged" in ended
    assert "skipped" in consumer.inner_text("#deliveries")
    _shot(consumer, "8-consumer-sees-revocation")

    # The authority's supervision page counts psb's answer.
    authority.goto(f"{ex.url}/supervision")
    assert "(psb)" in authority.inner_text("#departments")
    _shot(authority, "9-authority-supervision")
