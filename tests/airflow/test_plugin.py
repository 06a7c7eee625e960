"""The API-server plugin mounts the govex web app lazily under /govex."""

from __future__ import annotations

import sys
import types

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from exchange.airflow.plugin import URL_PREFIX, GovexPlugin, LazyApp


def _airflow_like(sub: object) -> TestClient:
    """Mount the plugin's app the way airflow.api_fastapi.app.init_plugins does."""
    root = FastAPI()
    root.mount(URL_PREFIX, sub)  # type: ignore[arg-type]
    return TestClient(root)


def test_plugin_declares_the_mount_and_the_nav_link() -> None:
    (entry,) = GovexPlugin.fastapi_apps
    assert entry["url_prefix"] == "/govex"
    assert isinstance(entry["app"], LazyApp)
    assert GovexPlugin.external_views[0]["href"] == "/govex/"


def test_missing_web_app_answers_503() -> None:
    client = _airflow_like(LazyApp("govex_test_no_such_module:create_app"))
    response = client.get("/govex/healthz")
    assert response.status_code == 503
    assert "not installed" in response.text


def test_builds_the_app_once_on_first_request(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[FastAPI] = []

    def create_app() -> FastAPI:
        app = FastAPI()
        app.get("/healthz")(lambda: {"ok": True})
        built.append(app)
        return app

    module = types.ModuleType("govex_test_web")
    module.create_app = create_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "govex_test_web", module)
    client = _airflow_like(LazyApp("govex_test_web:create_app"))
    assert len(built) == 0  # nothing built at plugin load
    assert client.get("/govex/healthz").json() == {"ok": True}
    assert client.get("/govex/healthz").status_code == 200
    assert len(built) == 1


def test_a_failing_factory_answers_503_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def create_app() -> FastAPI:
        calls.append(1)
        msg = "no settings"
        raise RuntimeError(msg)

    module = types.ModuleType("govex_test_broken")
    module.create_app = create_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "govex_test_broken", module)
    client = _airflow_like(LazyApp("govex_test_broken:create_app"))
    first = client.get("/govex/")
    assert first.status_code == 503
    assert "no settings" in first.text
    client.get("/govex/")
    assert len(calls) == 2


@pytest.mark.parametrize(("lazy", "preloaded"), [("False", True), ("True", False)])
def test_workers_preload_the_engine_only_with_eager_plugins(
    tmp_path: object, lazy: str, preloaded: bool
) -> None:
    """With `lazy_load_plugins = False` an Airflow process imports the run engine when it
    starts (its forked task processes inherit it), never Great Expectations; with lazy
    plugins (the default) nothing is preloaded."""
    import os
    import subprocess

    probe = ("import sys, airflow; print('exchange.run' in sys.modules, "
             "'great_expectations' in sys.modules)")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
           "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": lazy}
    done = subprocess.run([sys.executable, "-c", probe], env=env, check=True,
                          capture_output=True, text=True)
    assert done.stdout.splitlines()[-1].split() == [str(preloaded), "False"]  # logs come first
