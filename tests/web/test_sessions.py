"""Signing in makes a server-side session: the cookie holds only its id (HttpOnly,
SameSite=Strict, Secure over HTTPS, the app's path), the store only the id's hash; a session
lives at most 12 hours and never past its token; signing out, revoking the token or the token
expiring ends it for good, whatever the browser still holds."""

from __future__ import annotations

import datetime as dt
import re
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exchange import cli
from exchange.store import tokens
from exchange.web import create_app

from .conftest import City

SAME_ORIGIN = {"Origin": "http://testserver"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _browser(city: City, base_url: str = "http://testserver") -> TestClient:
    origin = base_url.rstrip("/")
    return TestClient(create_app(city.engine, docs_dir=city.docs_dir), base_url=base_url,
                      headers={"Origin": origin})


def _issue(city: City, role: str = "checklist_owner", department: str = "gsc",
           days: int = tokens.DEFAULT_DAYS) -> tokens.IssuedToken:
    with city.engine.begin() as conn:
        return tokens.issue_token(conn, department, role, days=days)


def _sign_in(browser: TestClient, secret: str, prefix: str = "") -> SimpleCookie:
    response = browser.post(f"{prefix}/signin", data={"token": secret, "next": "/catalog"},
                            follow_redirects=False)
    assert response.status_code == 303, response.text
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar


def _sessions(city: City, token_id: str | None = None) -> list[sa.RowMapping]:
    query = sa.select(tokens.sessions)
    if token_id is not None:
        query = query.where(tokens.sessions.c.token_id == token_id)
    with city.engine.connect() as conn:
        return list(conn.execute(query).mappings())


def _with_cookie(city: City, session_id: str, path: str = "/catalog") -> int:
    """What a request carrying (only) this cookie gets: a fresh client, as an attacker who
    copied the cookie would send it."""
    fresh = TestClient(create_app(city.engine, docs_dir=city.docs_dir))
    fresh.cookies.set("govex_session", session_id)
    return fresh.get(path).status_code


def test_the_cookie_holds_a_session_id_and_the_store_its_hash(city: City) -> None:
    issued = _issue(city)
    browser = _browser(city)
    before = _now()
    jar = _sign_in(browser, issued.secret)
    morsel = jar["govex_session"]
    session_id = morsel.value
    assert issued.secret not in session_id
    assert not session_id.startswith(tokens.TOKEN_PREFIX)
    assert len(session_id) >= 40  # 32 random bytes
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "strict"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain HTTP here; see the HTTPS test
    assert 12 * 3600 - 60 <= int(morsel["max-age"]) <= 12 * 3600
    (row,) = _sessions(city, issued.info.id)
    assert row["session_hash"] == tokens.hash_token(session_id)
    stored = " ".join(str(v) for r in _sessions(city) for v in r.values())
    assert session_id not in stored
    assert issued.secret not in stored
    expires = row["expires_at"].replace(tzinfo=dt.UTC)
    assert before + dt.timedelta(hours=12) - dt.timedelta(seconds=5) <= expires
    assert expires <= _now() + dt.timedelta(hours=12)
    page = browser.get("/catalog")
    assert page.status_code == 200
    assert "checklist owner" in page.text
    assert browser.get("/api/v1/resources").status_code == 200  # the API takes the cookie too


def test_the_cookie_is_secure_over_https(city: City) -> None:
    browser = _browser(city, "https://testserver")
    jar = _sign_in(browser, _issue(city).secret)
    assert jar["govex_session"]["secure"] is True


def test_the_cookie_follows_the_airflow_mount(city: City) -> None:
    outer = FastAPI()
    outer.mount("/govex", create_app(city.engine, docs_dir=city.docs_dir))
    browser = TestClient(outer, headers=SAME_ORIGIN)
    jar = _sign_in(browser, _issue(city).secret, prefix="/govex")
    assert jar["govex_session"]["path"] == "/govex"
    assert browser.get("/govex/catalog").status_code == 200
    out = browser.post("/govex/signout", follow_redirects=False)
    assert "Path=/govex" in out.headers["set-cookie"]


def test_a_session_never_outlives_its_token(city: City) -> None:
    issued = _issue(city, days=1)
    soon = _now() + dt.timedelta(hours=1)
    with city.engine.begin() as conn:
        conn.execute(sa.update(tokens.tokens).where(tokens.tokens.c.id == issued.info.id)
                     .values(expires_at=soon))
    jar = _sign_in(_browser(city), issued.secret)
    assert int(jar["govex_session"]["max-age"]) <= 3600
    (row,) = _sessions(city, issued.info.id)
    assert row["expires_at"].replace(tzinfo=dt.UTC) == soon


def test_signing_out_ends_the_session_on_the_server(city: City) -> None:
    issued = _issue(city)
    browser = _browser(city)
    session_id = _sign_in(browser, issued.secret)["govex_session"].value
    assert _with_cookie(city, session_id) == 200
    out = browser.post("/signout", follow_redirects=False)
    assert out.status_code == 303
    assert re.search(r"govex_session=\"?\"?;", out.headers["set-cookie"])
    assert _sessions(city, issued.info.id) == []
    # A copy of the cookie taken before sign-out is worthless now.
    assert _with_cookie(city, session_id) == 401
    assert _with_cookie(city, session_id, "/api/v1/resources") == 401


def test_revoking_the_token_ends_its_sessions(city: City,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    issued = _issue(city)
    first = _sign_in(_browser(city), issued.secret)["govex_session"].value
    second = _sign_in(_browser(city), issued.secret)["govex_session"].value
    other = _sign_in(_browser(city), _issue(city).secret)["govex_session"].value
    assert len(_sessions(city, issued.info.id)) == 2
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))
    assert cli.main(["token", "revoke", issued.info.id]) == 0
    assert _sessions(city, issued.info.id) == []
    assert _with_cookie(city, first) == 401
    assert _with_cookie(city, second) == 401
    assert _with_cookie(city, other) == 200  # another token's sign-in goes on


def test_an_expired_token_ends_its_sessions(city: City) -> None:
    issued = _issue(city)
    session_id = _sign_in(_browser(city), issued.secret)["govex_session"].value
    with city.engine.begin() as conn:
        conn.execute(sa.update(tokens.tokens).where(tokens.tokens.c.id == issued.info.id)
                     .values(expires_at=_now() - dt.timedelta(seconds=1)))
    fresh = TestClient(create_app(city.engine, docs_dir=city.docs_dir))
    fresh.cookies.set("govex_session", session_id)
    page = fresh.get("/catalog")
    assert page.status_code == 401
    assert "sign in again" in page.text
    api = fresh.get("/api/v1/resources")
    assert api.status_code == 401
    assert api.json()["detail"].startswith("invalid session (the token expired on ")
    assert api.json()["detail"].endswith("): sign in again with a current token")


def test_an_expired_session_is_refused(city: City) -> None:
    issued = _issue(city)
    session_id = _sign_in(_browser(city), issued.secret)["govex_session"].value
    with city.engine.begin() as conn:
        conn.execute(sa.update(tokens.sessions)
                     .where(tokens.sessions.c.session_hash == tokens.hash_token(session_id))
                     .values(expires_at=_now() - dt.timedelta(seconds=1)))
    fresh = TestClient(create_app(city.engine, docs_dir=city.docs_dir))
    fresh.cookies.set("govex_session", session_id)
    api = fresh.get("/api/v1/resources")
    assert api.status_code == 401
    assert api.json()["detail"].startswith("invalid session (the sign-in session expired on ")
    assert fresh.get("/catalog").status_code == 401
    # Signing in again sweeps expired sessions away.
    _sign_in(_browser(city), _issue(city).secret)
    assert all(r["session_hash"] != tokens.hash_token(session_id) for r in _sessions(city))


@pytest.mark.parametrize("name", ["govex_session", "govex_token"])
def test_a_raw_token_in_a_cookie_signs_nobody_in(city: City, name: str) -> None:
    """The cookie of old (the token itself) and a token where a session id belongs: refused."""
    fresh = TestClient(create_app(city.engine, docs_dir=city.docs_dir))
    fresh.cookies.set(name, _issue(city).secret)
    assert fresh.get("/catalog").status_code == 401
    assert fresh.get("/api/v1/resources").status_code == 401


def test_signing_in_drops_the_old_token_cookie(city: City) -> None:
    browser = _browser(city)
    browser.cookies.set("govex_token", "govex_old")
    response = browser.post("/signin", data={"token": _issue(city).secret},
                            follow_redirects=False)
    cookies = response.headers.get_list("set-cookie")
    assert cookies[0].startswith("govex_session=")
    assert any(c.startswith("govex_token=") and "Max-Age=0" in c for c in cookies)


def test_a_bearer_header_wins_over_the_cookie(city: City) -> None:
    """A request with both is judged by its Authorization header alone, as before."""
    browser = _browser(city)
    _sign_in(browser, _issue(city).secret)
    assert browser.get("/catalog", headers={"Authorization": "Bearer govex_wrong"}
                       ).status_code == 401
