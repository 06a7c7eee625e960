"""Connection URLs: `${VAR}`s are encoded for their place in the URL, and a bad URL is one
sentence (exit 2), never a traceback, never a repeat of the password.

Hardening issue items 3 (a password with `@` or `/` became part of the host, and from there
went into run messages, lineage and the audit log) and 12 (a non-numeric port was a 25-line
traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import sqlalchemy as sa

import catalog
import lineage
from govex.errors import DeclarationError

RESERVED = ["@", "/", ":", "?", "#", "%", "[", "]", " ", "+", "&", "=", "\\"]
MARKER = "Zq"  # begins every secret below, so "does it leak" is one substring test


def _resolve(url: str, env: dict[str, str], workspace: Path = Path("/ws")) -> str:
    return catalog.resolve_connection("psb_db", catalog.Connection(url=url), workspace, env).target


def _secret(char: str) -> str:
    # `40` after the character: a `%` in the value must not decode `%40` into `@`.
    return f"{MARKER}{char}40Xw"


@pytest.mark.parametrize("char", RESERVED)
def test_a_password_with_a_reserved_character_stays_the_password(char: str) -> None:
    password = _secret(char)
    resolved = catalog.ResolvedConnection(
        "psb_db", "url",
        _resolve("postgresql+psycopg://user:${PW}@127.0.0.1:5432/db", {"PW": password}),
    )
    url = sa.make_url(resolved.target)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "user", password, "127.0.0.1", 5432, "db"
    )
    # A proper RFC 3986 URL: a stricter parser than SQLAlchemy's (one that ends the authority
    # at the first `/`, `?` or `#`) reads the same, so no tool downstream sees another host.
    parts = urlsplit(resolved.target)
    assert (parts.hostname, parts.port, unquote(parts.password or "")) == (
        "127.0.0.1", 5432, password
    )
    # Nothing govex derives for display holds any part of it.
    shown = [
        url.render_as_string(hide_password=True),
        *vars(lineage.connection_dataset(resolved, "residents")).values(),
        *vars(lineage.sql_dataset(resolved.target, "residents")).values(),
    ]
    assert all(MARKER not in text for text in shown), shown
    assert lineage.connection_dataset(resolved, "residents") == lineage.DatasetName(
        "postgres://127.0.0.1:5432", "db.public.residents"
    )


@pytest.mark.parametrize("char", RESERVED)
def test_user_database_and_query_values_are_encoded_for_their_place(char: str) -> None:
    value = _secret(char)
    env = {"U": value, "DB": value, "APP": value, "PW": "pw"}
    target = _resolve(
        "postgresql+psycopg://${U}:${PW}@db.example:6543/${DB}?application_name=${APP}&x=1", env
    )
    url = sa.make_url(target)
    assert (url.username, url.password, url.host, url.port, url.database) == (
        value, "pw", "db.example", 6543, value
    )
    assert dict(url.query) == {"application_name": value, "x": "1"}
    parts = urlsplit(target)
    assert (unquote(parts.username or ""), parts.hostname, parts.port) == (
        value, "db.example", 6543
    )


def test_host_port_and_defaults_are_substituted_where_they_stand() -> None:
    url = sa.make_url(_resolve(
        "postgresql+psycopg://${PGUSER:-govex}:${PGPASSWORD:-p@ss}@${PGHOST:-db.example}:"
        "${PGPORT:-5433}/${PGDATABASE:-psb}",
        {"PGHOST": "10.0.0.7"},
    ))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "govex", "p@ss", "10.0.0.7", 5433, "psb"
    )
    url = sa.make_url(_resolve("postgresql+psycopg://u@[${V6}]:5432/db", {"V6": "::1"}))
    assert (url.host, url.port) == ("::1", 5432)


def test_a_sqlite_path_from_a_variable_keeps_its_slashes_and_spaces(tmp_path: Path) -> None:
    directory = tmp_path / "data dir#1"
    target = _resolve("sqlite:///${DIR}/psb.db", {"DIR": str(directory)})
    assert sa.make_url(target).database == str(directory / "psb.db")
    relative = _resolve("sqlite:///${DIR}/psb.db", {"DIR": "data"}, tmp_path)
    assert sa.make_url(relative).database == str(tmp_path / "data" / "psb.db")


def test_text_written_in_the_template_is_left_as_written() -> None:
    """A password percent-encoded by hand in connections.yaml keeps working as before."""
    assert _resolve("postgresql+psycopg://u:p%40ss%2F1@h:5432/db", {}) == (
        "postgresql+psycopg://u:p%40ss%2F1@h:5432/db"
    )
    assert sa.make_url(_resolve("postgresql+psycopg://u:p%40ss@h/${DB}", {"DB": "x"})).password \
        == "p@ss"
    # A whole URL in one variable is URL text already: substituted as is.
    whole = "postgresql+psycopg://u:p%40ss@h:5432/db?sslmode=require"
    assert _resolve("${PSB_URL}", {"PSB_URL": whole}) == whole


@pytest.mark.parametrize(
    ("url", "env", "fragment"),
    [
        ("postgresql+psycopg://u:pw@${H}/db", {"H": "evil/other"}, "${H} goes into the host"),
        ("postgresql+psycopg://u:pw@${H}/db", {"H": "a@b"}, "${H} goes into the host"),
        ("postgresql+psycopg://u:pw@${H}/db", {"H": "h?sslmode=disable"}, "into the host"),
        ("postgresql+psycopg://u:pw@h:${P}/db", {"P": "54x"}, "${P} goes into the port"),
        ("${S}://u:pw@h/db", {"S": "postgresql://x@y"}, "${S} goes into the scheme"),
        ("postgresql+psycopg://u:pw@h:abc/db", {}, "port of the URL is not a number"),
        ("postgresql+psycopg://u:pw@h:70000/db", {}, "port of the URL is not a number"),
        ("postgresql+psycopg://u:pw@h:" + "1" * 5000 + "/db", {}, "port of the URL is not"),
        ("oracle://u:pw@h/db", {}, "no connector for database 'oracle'"),
        ("nosuch+driver://u:pw@h/db", {}, "no connector for database 'nosuch'"),
        ("garbage", {}, "is not a database URL"),
        ("${PSB_URL}", {"PSB_URL": "postgresql://u:secretpw@h:port/db"}, "port of the URL"),
        ("postgresql://u@h/db\nx", {}, "control character"),
        ("postgresql://u@h/db?password=${PW}", {"PW": "secretpw"}, "option 'password'"),
    ],
)
def test_a_bad_url_is_one_sentence_naming_the_connection(
    url: str, env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(DeclarationError) as raised:
        _resolve(url, env)
    message = raised.value.render()
    assert message.startswith("connections.yaml: field 'connections.psb_db.url': ")
    assert fragment in message
    assert "\n" not in message
    for value in env.values():  # a resolved value may be a secret: never repeated
        assert value not in message
        assert value not in str(raised.value.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql+psycopg://u:pw@h:abc/db", "port of the URL is not a number"),
        ("mssql+pyodbc://u:pw@h/db", "no connector for database 'mssql'"),
        ("not a url at all", "is not a database URL"),
        ("postgresql+psycopg://u:${GOVEX_TEST_PW}@${GOVEX_TEST_HOST}/db",
         "${GOVEX_TEST_HOST} goes into the host"),
    ],
)
def test_apply_refuses_a_bad_url_with_exit_2_and_no_traceback(
    url: str, fragment: str, workspace: Any, govex: Any, store_snapshot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOVEX_TEST_PW", "Zq@40/x")
    monkeypatch.setenv("GOVEX_TEST_HOST", "h/Zq")
    assert govex("apply", str(workspace.root))[0] == 0
    before = store_snapshot()
    workspace.edit("connections.yaml", lambda c: c["connections"].update(psb_db={"url": url}))

    code, out, err = govex("apply", str(workspace.root))

    assert code == 2, out + err
    assert "Traceback" not in err
    assert err.startswith("error: connections.yaml: field 'connections.psb_db.url': ")
    assert fragment in err
    assert err.strip().count("\n") == 0
    assert MARKER not in out + err
    assert store_snapshot() == before


def test_apply_with_a_reserved_password_stores_only_the_template(
    workspace: Any, govex: Any, store_snapshot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metadata store keeps `${VAR}`, never the value; the apply output neither."""
    monkeypatch.setenv("GOVEX_TEST_PW", "Zq@/:?#%[]")
    workspace.edit("connections.yaml", lambda c: c["connections"].update(
        amr_db={"url": "postgresql+psycopg://amr:${GOVEX_TEST_PW}@127.0.0.1:5432/amr"}
    ))
    code, out, err = govex("apply", str(workspace.root))
    assert code == 0, err
    assert MARKER not in out + err
    assert MARKER not in repr(store_snapshot())
