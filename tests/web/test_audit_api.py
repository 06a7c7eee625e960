"""`GET /api/v1/audit`: the audit log for auditors and admins (403 for every other role),
newest first, paged with `limit` and `before`, the same entries `govex audit list` prints."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import records
from exchange import cli
from exchange.store import create_store_engine, tokens, upgrade
from exchange.web import create_app

ROLES = ("admin", "auditor", "checklist_owner", "provider", "consumer", "lineage_producer")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    """A fresh store with one token per role and a dozen audit entries, nothing else: the
    log holds exactly what the test wrote and what the tokens' use adds."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    upgrade(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        # Straight into the table: create_token would need an applied catalog department.
        for role in ROLES:
            conn.execute(sa.insert(tokens.tokens).values(
                id=f"tok-{role}", department="gsc", role=role, created_at=now,
                token_hash=tokens.hash_token(_secret(role)), last_used_at=None,
                revoked=False))
    for i in range(12):
        with engine.begin() as conn:
            records.append_audit(conn, kind="run" if i % 3 else "apply", subject=f"S-{i}",
                                 detail={"i": i})
    yield engine
    engine.dispose()


def _secret(role: str) -> str:
    return tokens.TOKEN_PREFIX + role[:4].ljust(43, "x")


def _headers(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_secret(role)}"}


@pytest.fixture
def client(store: sa.Engine, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store, docs_dir=tmp_path / "docs")) as test_client:
        yield test_client


@pytest.fixture
def govex(store: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[str]], int]:
    monkeypatch.setenv("GOVEX_DB_URL", store.url.render_as_string(hide_password=False))
    return cli.main


@pytest.mark.parametrize("role", ROLES)
def test_only_auditors_and_admins_read_the_audit_log(client: TestClient, role: str) -> None:
    response = client.get("/api/v1/audit", headers=_headers(role))
    if role in ("admin", "auditor"):
        assert response.status_code == 200
        assert len(response.json()) == 13  # the 12 written and this token's use
    else:
        assert response.status_code == 403
        assert response.json()["detail"] == (
            f"role '{role}' may not read the audit log: use an auditor or admin token")


def test_no_token_no_audit_log(client: TestClient) -> None:
    assert client.get("/api/v1/audit").status_code == 401


def _all_pages(client: TestClient, limit: int, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    before: int | None = None
    while True:
        query = {"limit": limit, **params, **({"before": before} if before else {})}
        response = client.get("/api/v1/audit", params=query, headers=_headers("auditor"))
        assert response.status_code == 200, response.text
        page = response.json()
        if not page:
            return pages
        pages.append(page)
        before = page[-1]["seq"]


def test_pages_newest_first_are_the_entries_govex_audit_list_prints(
    client: TestClient, govex: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = client.get("/api/v1/audit", params={"limit": 1}, headers=_headers("auditor"))
    # The token's first use is itself an entry (the next ones within a minute are not).
    assert [(e["kind"], e["subject"]) for e in first.json()] == [("token_use", "tok-auditor")]
    pages = _all_pages(client, limit=5)
    assert [len(p) for p in pages] == [5, 5, 3]
    entries = [e for p in pages for e in p]
    assert [e["seq"] for e in entries] == list(range(13, 0, -1))
    assert govex(["audit", "list", "--json", "--limit", "100"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert entries == printed[::-1]
    assert set(entries[0]) == {"seq", "at", "actor", "kind", "subject", "detail", "prev_hash",
                               "hash"}
    # `--before` pages the command the same way.
    assert govex(["audit", "list", "--json", "--limit", "5", "--before", "9"]) == 0
    assert json.loads(capsys.readouterr().out)[::-1] == pages[1]


def test_kind_narrows_the_pages(client: TestClient) -> None:
    pages = _all_pages(client, limit=2, kind="apply")
    applies = [e for p in pages for e in p]
    assert [e["subject"] for e in applies] == ["S-9", "S-6", "S-3", "S-0"]


@pytest.mark.parametrize(("query", "named"), [
    ({"limit": 0}, "query parameter 'limit'"),
    ({"limit": 1001}, "query parameter 'limit'"),
    ({"before": 0}, "query parameter 'before'"),
    ({"before": "x"}, "query parameter 'before'"),
    ({"kind": "nope"}, "query parameter 'kind'"),
])
def test_bad_paging_is_refused(client: TestClient, query: dict[str, Any], named: str) -> None:
    response = client.get("/api/v1/audit", params=query, headers=_headers("admin"))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(named)
