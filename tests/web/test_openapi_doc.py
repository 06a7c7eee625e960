"""docs/openapi.json is the app's OpenAPI document, regenerated: a route or model change that
was not exported fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exchange.cli import main
from exchange.cli.openapi import openapi_document, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
FIX = "the REST API changed: run `govex openapi --output docs/openapi.json` and commit the result"


def test_docs_openapi_matches_the_app() -> None:
    assert DOC.exists(), f"docs/openapi.json is missing; {FIX}"
    committed = DOC.read_text(encoding="utf-8")
    assert committed == render(openapi_document()), FIX


def test_the_document_lists_the_api_routes() -> None:
    paths = json.loads(DOC.read_text(encoding="utf-8"))["paths"]
    assert "/healthz" in paths
    assert "post" in paths["/api/v1/lineage"]
    assert "get" in paths["/api/v1/trace/{code}/{key}"]
    # Pages are not API: they stay out of the document.
    assert "/catalog" not in paths


def test_a_changed_route_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison sees route changes: an app with one more route renders differently."""
    from exchange.web import api

    extra = api.APIRouter()

    @extra.get("/api/v1/not-documented")
    def _undocumented() -> dict[str, str]:
        return {}

    import exchange.web.app as web_app

    original = web_app.create_app

    def with_extra(*args: object, **kwargs: object) -> object:
        app = original(*args, **kwargs)  # type: ignore[arg-type]
        app.include_router(extra)
        return app

    monkeypatch.setattr("exchange.web.create_app", with_extra)
    assert render(openapi_document()) != DOC.read_text(encoding="utf-8")


def test_cli_writes_the_same_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "openapi.json"
    assert main(["openapi", "--output", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out == DOC.read_text(encoding="utf-8")
