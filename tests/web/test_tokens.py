"""Tokens: stored hashed, shown once, authenticate to a principal, revocable; bad roles and
departments refused with a clear error and nothing stored; `govex token create` exit codes."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import get_args

import pytest
import sqlalchemy as sa

from exchange import cli
from exchange.store import tokens
from govex.errors import DeclarationError

from .conftest import City


def test_roles_derive_from_the_literal() -> None:
    assert get_args(tokens.Role) == tokens.ROLES
    assert set(tokens.ROLES) == {"admin", "authority", "provider", "consumer", "checklist_owner",
                                 "auditor", "lineage_producer"}


def test_only_the_hash_is_stored(city: City) -> None:
    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "hpf", "consumer")
        stored = [tuple(r) for r in conn.execute(sa.select(tokens.tokens))]
    assert secret.startswith("govex_")
    assert len(secret) >= 40
    assert not any(secret in str(row) for row in stored)
    assert any(row[3] == tokens.hash_token(secret) for row in stored)


def test_authenticate_returns_the_principal_and_records_use(city: City) -> None:
    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "tax", "provider")
    with city.engine.begin() as conn:
        principal = tokens.authenticate(conn, secret)
    assert (principal.department, principal.role) == ("tax", "provider")
    with city.engine.connect() as conn:
        info = next(t for t in tokens.list_tokens(conn) if t.id == principal.token_id)
    assert info.last_used_at is not None
    assert dt.datetime.now(dt.UTC) - info.last_used_at < dt.timedelta(minutes=1)


@pytest.mark.parametrize("bad", ["", "govex_", "govex_unknown", "Bearer x", "admin"])
def test_bad_tokens_do_not_authenticate(city: City, bad: str) -> None:
    with city.engine.begin() as conn, pytest.raises(tokens.InvalidToken):
        tokens.authenticate(conn, bad)


def test_revoked_tokens_do_not_authenticate(city: City) -> None:
    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "tax", "auditor")
        principal = tokens.authenticate(conn, secret)
        tokens.revoke_token(conn, principal.token_id)
    with city.engine.begin() as conn, pytest.raises(tokens.InvalidToken):
        tokens.authenticate(conn, secret)
    with city.engine.begin() as conn, pytest.raises(DeclarationError, match="unknown token id"):
        tokens.revoke_token(conn, "nope")


@pytest.mark.parametrize(("department", "role", "message"), [
    ("psb", "superuser", "unknown role 'superuser'"),
    ("nowhere", "provider", "unknown department 'nowhere'"),
])
def test_create_refuses_unknown_role_or_department(city: City, department: str, role: str,
                                                   message: str) -> None:
    with city.engine.connect() as conn:
        before = len(tokens.list_tokens(conn))
    with city.engine.begin() as conn, pytest.raises(DeclarationError, match=message) as caught:
        tokens.create_token(conn, department, role)
    assert caught.value.exit_code == 2
    with city.engine.connect() as conn:
        assert len(tokens.list_tokens(conn)) == before


# ---- the command -----------------------------------------------------------------------------


@pytest.fixture
def govex(city: City, monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[str]], int]:
    """`govex ...` on the city's store. Until exchange/cli.py registers the token and serve
    commands, they are added to its parser here, so the real error-to-exit-code mapping runs."""
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))
    from exchange.cli import serve, token

    real = cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = real()
        sub = next(a for a in parser._actions
                   if isinstance(a, argparse._SubParsersAction))
        for module, name in ((token, "token"), (serve, "serve")):
            if name not in sub.choices:
                module.register(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    return cli.main


def test_token_create_prints_the_token_once(govex: Callable[[Sequence[str]], int], city: City,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert govex(["token", "create", "--department", "civil", "--role", "consumer"]) == 0
    out = capsys.readouterr().out
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("govex_")
    with city.engine.begin() as conn:
        principal = tokens.authenticate(conn, secret)
    assert (principal.department, principal.role) == ("civil", "consumer")
    assert govex(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert principal.token_id in listing
    assert secret not in listing
    assert govex(["token", "revoke", principal.token_id]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(("argv", "message"), [
    (["--department", "psb", "--role", "root"],
     "unknown role 'root': use one of admin, authority, provider, consumer, checklist_owner, "
     "auditor, lineage_producer"),
    (["--department", "mars", "--role", "consumer"], "unknown department 'mars'"),
])
def test_token_create_bad_input_exits_2(govex: Callable[[Sequence[str]], int],
                                        capsys: pytest.CaptureFixture[str],
                                        argv: list[str], message: str) -> None:
    assert govex(["token", "create", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "govex_" not in captured.out
    assert len(captured.err.strip().splitlines()) == 1


def test_serve_runs_uvicorn_with_the_app(govex: Callable[[Sequence[str]], int],
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn
    from fastapi import FastAPI

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    assert govex(["serve", "--port", "9999"]) == 0
    assert isinstance(seen["app"], FastAPI)
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 9999)
    assert "http://127.0.0.1:9999/" in capsys.readouterr().out
    assert govex(["serve", "--port", "70000"]) == 2


def test_migration_creates_the_tokens_table(tmp_path: Path) -> None:
    from exchange.store import create_store_engine, upgrade

    engine = create_store_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns("exchange_tokens")}
    assert columns == {"id", "department", "role", "token_hash", "created_at", "last_used_at",
                       "revoked", "expires_at"}
    engine.dispose()


def test_tokens_table_matches_its_migration(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from exchange.store import create_store_engine, upgrade

    engine = create_store_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tokens.metadata)
    engine.dispose()
    # The comparison lists every other package's tables as extra; only our drift counts.
    drift = [d for d in diff
             if not (d[0] == "remove_table" and d[1].name != "exchange_tokens")
             and not (d[0] == "remove_index" and d[1].table.name != "exchange_tokens")]
    assert drift == []
