"""Tokens expire (90 days unless `--days N`), an expired token is refused with one clear
sentence, `govex token list` shows expiry and state, and the migration gives tokens issued
before expiry existed a deadline instead of locking everyone out."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from exchange import cli
from exchange.store import tokens
from govex.errors import DeclarationError

from .conftest import City

Govex = Callable[[Sequence[str]], int]
DAY = dt.timedelta(days=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _set_expiry(city: City, token_id: str, when: dt.datetime) -> None:
    with city.engine.begin() as conn:
        conn.execute(sa.update(tokens.tokens).where(tokens.tokens.c.id == token_id)
                     .values(expires_at=when))


def _info(city: City, token_id: str) -> tokens.TokenInfo:
    with city.engine.connect() as conn:
        return next(t for t in tokens.list_tokens(conn) if t.id == token_id)


@pytest.fixture
def govex(city: City, monkeypatch: pytest.MonkeyPatch) -> Govex:
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))
    return cli.main


def test_a_token_expires_after_90_days_by_default(city: City) -> None:
    before = _now()
    with city.engine.begin() as conn:
        issued = tokens.issue_token(conn, "psb", "consumer")
    info = _info(city, issued.info.id)
    assert info == issued.info
    assert info.expires_at - info.created_at == dt.timedelta(days=tokens.DEFAULT_DAYS) == 90 * DAY
    assert before <= info.created_at <= _now()
    assert info.state() == "active"


@pytest.mark.parametrize("days", [0, -1, tokens.MAX_DAYS + 1])
def test_a_lifetime_out_of_range_is_refused(city: City, days: int) -> None:
    with city.engine.connect() as conn:
        before = len(tokens.list_tokens(conn))
    with city.engine.begin() as conn, pytest.raises(DeclarationError, match="1 to 3650 days"):
        tokens.create_token(conn, "psb", "consumer", days=days)
    with city.engine.connect() as conn:
        assert len(tokens.list_tokens(conn)) == before


def test_an_expired_token_is_refused_with_one_clear_message(client: TestClient,
                                                            city: City) -> None:
    with city.engine.begin() as conn:
        issued = tokens.issue_token(conn, "gsc", "auditor", days=1)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert client.get("/api/v1/resources", headers=headers).status_code == 200
    _set_expiry(city, issued.info.id, dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC))
    with city.engine.begin() as conn, pytest.raises(tokens.InvalidToken) as caught:
        tokens.authenticate(conn, issued.secret)
    assert str(caught.value) == "the token expired on 2026-03-01 08:00 UTC"
    refused = client.get("/api/v1/resources", headers=headers)
    assert refused.status_code == 401
    detail = refused.json()["detail"]
    assert detail == ("invalid token (the token expired on 2026-03-01 08:00 UTC): issue a new "
                      "one with `govex token create`")
    page = client.get("/catalog", headers=headers)
    assert page.status_code == 401
    assert "the token expired on 2026-03-01 08:00 UTC" in page.text
    assert _info(city, issued.info.id).state() == "expired"


def test_token_create_days_sets_the_expiry(govex: Govex, city: City,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert govex(["token", "create", "--department", "hpf", "--role", "consumer",
                  "--days", "7"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    secret = lines[-1]
    with city.engine.begin() as conn:
        principal = tokens.authenticate(conn, secret)
    info = _info(city, principal.token_id)
    assert info.expires_at - info.created_at == 7 * DAY
    assert f"token {info.id} " in lines[0]
    assert f"expires {info.expires_at.isoformat(timespec='seconds')}" in lines[0]


@pytest.mark.parametrize("days", ["0", "-3", "seven", "3651"])
def test_token_create_bad_days_exits_2(govex: Govex, city: City, days: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    with city.engine.connect() as conn:
        before = len(tokens.list_tokens(conn))
    with pytest.raises(SystemExit) as exited:
        govex(["token", "create", "--department", "hpf", "--role", "consumer",
               "--days", days])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --days: must be a whole number of days from 1 to 3650, got '{days}'" in err
    with city.engine.connect() as conn:
        assert len(tokens.list_tokens(conn)) == before


def test_token_list_shows_expiry_and_state(govex: Govex, city: City,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with city.engine.begin() as conn:
        active = tokens.issue_token(conn, "tax", "consumer").info
        expired = tokens.issue_token(conn, "tax", "consumer").info
        revoked = tokens.issue_token(conn, "tax", "consumer").info
        tokens.revoke_token(conn, revoked.id)
    _set_expiry(city, expired.id, _now() - DAY)
    assert govex(["token", "list"]) == 0
    out = capsys.readouterr().out
    assert "EXPIRES" in out.splitlines()[0]
    assert "STATE" in out.splitlines()[0]
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows[active.id].rstrip().endswith("active")
    assert active.expires_at.isoformat(timespec="seconds") in rows[active.id]
    assert rows[expired.id].rstrip().endswith("expired")
    assert rows[revoked.id].rstrip().endswith("revoked")
    assert govex(["token", "list", "--json"]) == 0
    listed = {t["id"]: t for t in json.loads(capsys.readouterr().out)}
    assert {listed[i]["state"] for i in (active.id, expired.id, revoked.id)} == {
        "active", "expired", "revoked"}
    assert listed[active.id]["expires_at"] == active.expires_at.isoformat()
    assert set(listed[active.id]) == {"id", "department", "role", "created_at", "expires_at",
                                      "last_used_at", "state"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def old_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The metadata store runs on SQLite or PostgreSQL (exchange.store)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_the_migration_gives_older_tokens_ninety_days(old_store_url: str) -> None:
    """A store from before expiry: its tokens keep working, for 90 days from the upgrade, and
    sign-in sessions work there (created, found, ended with the token's revocation)."""
    from alembic import command

    from exchange.store import create_store_engine, upgrade
    from exchange.store.engine import _alembic_config

    engine = create_store_engine(old_store_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0008_ingest")
            secret = tokens.TOKEN_PREFIX + "o" * 43
            conn.execute(sa.text(
                "INSERT INTO exchange_tokens (id, department, role, token_hash, created_at, "
                "last_used_at, revoked) VALUES ('old', 'psb', 'admin', :h, :c, NULL, :r)"),
                {"h": tokens.hash_token(secret), "c": _now() - 400 * DAY, "r": False})
        upgraded_at = _now().replace(microsecond=0)
        upgrade(engine)
        with engine.begin() as conn:
            (info,) = tokens.list_tokens(conn)
            assert tokens.authenticate(conn, secret).token_id == "old"
            session = tokens.start_session(conn, secret)
        assert upgraded_at + 90 * DAY <= info.expires_at <= _now() + 90 * DAY
        with engine.begin() as conn:
            assert tokens.session_principal(conn, session.id).token_id == "old"
            tokens.revoke_token(conn, "old")
        with engine.begin() as conn, pytest.raises(tokens.InvalidToken, match="has ended"):
            tokens.session_principal(conn, session.id)
    finally:
        engine.dispose()
