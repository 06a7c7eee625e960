"""The one settings object: defaults, every variable, read once per change, checked where used."""

from __future__ import annotations

from pathlib import Path

import pytest

from govex.errors import DeclarationError
from govex.settings import Settings, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.db_url == "sqlite:///.govex/govex.db"
    assert settings.batch_rows == 50_000
    assert settings.dispute_days == 5
    assert settings.staging_root == Path(".govex/staging").resolve()
    assert settings.secret_key is None
    assert not settings.lineage_disabled


def test_every_variable_is_read() -> None:
    settings = load_settings({
        "GOVEX_DB_URL": "postgresql+psycopg://u@h/db", "GOVEX_WORKSPACE": "/ws",
        "GOVEX_KAFKA_BOOTSTRAP": "k:9092", "GOVEX_STAGING_DIR": "/stage",
        "GOVEX_BATCH_ROWS": "100", "GOVEX_DATA_DOCS_DIR": "/docs",
        "GOVEX_SECRET_KEY": "s3cret", "GOVEX_DISPUTE_DAYS": "3",
        "GOVEX_LINEAGE_URL": " http://l ", "GOVEX_LINEAGE_API_KEY": "key",
        "GOVEX_LINEAGE_TIMEOUT": "1.5", "GOVEX_LINEAGE_RETRIES": "0",
        "OPENLINEAGE_DISABLED": "true",
    })
    assert (settings.db_url, settings.workspace, settings.kafka_bootstrap) == (
        "postgresql+psycopg://u@h/db", "/ws", "k:9092")
    assert settings.staging_root == Path("/stage")
    assert (settings.batch_rows, settings.dispute_days) == (100, 3)
    assert settings.data_docs_dir == "/docs"
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)  # secrets never print
    assert settings.lineage_url == "http://l"
    assert (settings.lineage_timeout_text, settings.lineage_retries_text) == ("1.5", "0")
    assert settings.lineage_disabled


@pytest.mark.parametrize(("name", "attribute"), [
    ("GOVEX_BATCH_ROWS", "batch_rows"), ("GOVEX_DISPUTE_DAYS", "dispute_days")])
@pytest.mark.parametrize("raw", ["0", "-3", "many", "1.5"])
def test_a_bad_number_names_the_variable_where_it_is_used(
    name: str, attribute: str, raw: str
) -> None:
    settings = load_settings({name: raw})  # loading never fails: only the use does
    with pytest.raises(DeclarationError, match=name):
        getattr(settings, attribute)


def test_read_once_until_a_variable_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "7")
    first = load_settings()
    assert load_settings() is first
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "8")
    assert load_settings().batch_rows == 8
    monkeypatch.setenv("PATH_UNRELATED_TO_GOVEX", "x")
    assert load_settings() is load_settings()
