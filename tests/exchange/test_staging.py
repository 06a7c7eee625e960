"""Staged batches are raw source data: private to govex's user (0700/0600 whatever the umask)
and gone when their run has ended — by `finish`, or, for a run killed before it, when the
next run of its resource marks it abandoned. Never a run still running elsewhere."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.run import (
    bookkeeping,
    deliver,
    extract,
    finish,
    gate,
    run_resource,
    start_run,
    subscriptions_of,
)
from exchange.run.staging import Stage, staged_runs
from exchange.store import create_store_engine, upgrade
from tests.exchange.conftest import create_source, make_rows, write_workspace
from tests.exchange.test_leases import expire

CODE = "PSB-RES-001"
OTHER = "PSB-RES-002"


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(Path(path).stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Any]:
    before = os.umask(0o022)
    os.umask(before)

    def set_umask(mask: int) -> None:
        os.umask(mask)

    yield set_umask
    os.umask(before)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277], ids=["000", "022", "277"])
def test_staging_is_private_whatever_the_umask(tmp_path: Path, umask: Any, mask: int) -> None:
    umask(mask)
    root = tmp_path / "deep" / "staging"
    stage = Stage.for_run("run-1", root)
    path = Path(stage.write("raw", 0, pa.table({"id": [1, 2]})))
    stage.write("raw", 1, pa.table({"id": [3]}))
    assert _mode(root) == 0o700
    assert _mode(stage.directory) == 0o700
    assert _mode(path.parent) == 0o700
    assert {_mode(p) for p in path.parent.iterdir()} == {0o600}
    assert [t.num_rows for t in stage.batches("raw")] == [2, 1]


def test_a_staging_root_the_operator_made_is_left_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    root.mkdir(mode=0o750)
    os.chmod(root, 0o750)  # noqa: S103 - an operator's choice, on purpose
    stage = Stage.for_run("run-1", root)
    stage.write("raw", 0, pa.table({"id": [1]}))
    assert _mode(root) == 0o750
    assert _mode(stage.directory) == 0o700


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x"])
def test_a_stage_is_only_ever_a_run_directory(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="is not a run id"):
        Stage.for_run(bad, tmp_path)


# ---- whole runs: SQLite source, store and targets --------------------------------------------


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """The scenario of tests.exchange.conftest on SQLite only, with a second resource."""
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    source = f"sqlite:///{tmp_path / 'psb.db'}"
    create_source(source, make_rows(300, bad_every=100))
    root = tmp_path / "ws"
    subscriptions = [
        {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name"], "masking": {},
         "mode": "upsert", "target": {"connection": "gsc_lite", "table": "gsc_residents"}},
    ]
    write_workspace(root, source, {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"},
                    subscriptions)
    resource = yaml.safe_load((root / "resources" / "psb.yaml").read_text())
    (root / "resources" / "other.yaml").write_text(
        yaml.safe_dump({**resource, "code": OTHER, "elements": {}}, allow_unicode=True))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    monkeypatch.setenv("GOVEX_DB_URL", store_url)
    yield engine
    engine.dispose()


def _root(tmp_path: Path) -> Path:
    return tmp_path / "staging"


def _status(store: sa.Engine, run_id: str) -> str:
    with store.connect() as conn:
        return bookkeeping.run_status(conn, run_id)


def test_a_killed_runs_staging_goes_when_the_next_run_abandons_it(
    store: sa.Engine, tmp_path: Path
) -> None:
    killed = start_run(store, CODE)
    assert extract(store, killed) == 300
    assert any((_root(tmp_path) / killed / "raw").iterdir())
    elsewhere = start_run(store, OTHER)  # another resource's run, still running
    extract(store, elsewhere)
    stranger = _root(tmp_path) / "not-a-run-of-this-store"
    stranger.mkdir()
    # The process running `killed` dies here (kill -9): it stays marked running, and its
    # lease is no longer renewed.
    expire(store)

    after = start_run(store, CODE)
    assert _status(store, killed) == "failed"
    assert not (_root(tmp_path) / killed).exists()
    assert _status(store, elsewhere) == "running"
    assert any((_root(tmp_path) / elsewhere / "raw").iterdir())
    assert stranger.is_dir()  # unknown to this store: not ours to judge
    assert staged_runs(_root(tmp_path)) == sorted([elsewhere, stranger.name])
    assert _status(store, after) == "running"


def test_leftovers_of_ended_runs_go_with_the_next_run(store: sa.Engine, tmp_path: Path) -> None:
    """A run abandoned before govex swept (or killed inside `finish`) left its batches."""
    ended = run_resource(store, CODE)
    assert ended.status == "success"
    Stage.for_run(ended.run_id).write("raw", 0, pa.table({"id_no": ["x"]}))
    start_run(store, CODE)
    assert not (_root(tmp_path) / ended.run_id).exists()


def test_a_successful_run_removes_its_staging(store: sa.Engine, tmp_path: Path) -> None:
    run_id = start_run(store, CODE)
    extract(store, run_id)
    gate(store, run_id)
    assert (_root(tmp_path) / run_id / "passed").is_dir()
    for sub in subscriptions_of(store, run_id):
        deliver(store, run_id, sub)
    assert finish(store, run_id).status == "success"
    assert not (_root(tmp_path) / run_id).exists()


def test_a_failed_run_removes_its_staging(store: sa.Engine, tmp_path: Path) -> None:
    (tmp_path / "gsc.db").mkdir()  # the target cannot be opened: every delivery fails
    summary = run_resource(store, CODE)
    assert summary.status == "failed"
    assert summary.passed == 297
    assert staged_runs(_root(tmp_path)) == []


def test_a_blocked_run_removes_its_staging(store: sa.Engine, tmp_path: Path) -> None:
    # Every record fails `minimum` on score: far above max_error_rate.
    source = sa.create_engine(f"sqlite:///{tmp_path / 'psb.db'}")
    with source.begin() as conn:
        conn.execute(sa.text("UPDATE residents SET score = -1"))
    source.dispose()
    summary = run_resource(store, CODE)
    assert summary.status == "blocked"
    assert staged_runs(_root(tmp_path)) == []
