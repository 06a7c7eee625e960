"""The audit log: entries chain by hash; `verify` and `govex audit verify` catch an edited, a
deleted and a reordered entry and name the first bad one; concurrent appenders never fork the
chain (SQLite, PostgreSQL, MariaDB); token use in the web app is audited once a minute."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import records
from exchange import cli
from exchange.cli import audit as audit_command
from exchange.store import create_store_engine, tokens, upgrade
from records.audit import GENESIS_HASH, entry_hash

Entry = tuple[str, str, dict[Any, Any]]  # kind, subject, detail

SAMPLE: list[Entry] = [
    ("apply", "examples/city", {"changed": ["PSB-RES-001"]}),
    ("run", "PSB-RES-001", {"run_id": "r-1", "read": 1000, "passed": 990}),
    ("delivery", "SUB-GSC-001", {"run_id": "r-1", "delivered": 990}),
    ("dispute", "D-1", {"state": "open", "field": "name"}),
    ("token_use", "tok-1", {"path": "/api/v1/resources"}),
]


def migrated(url: str) -> sa.Engine:
    engine = create_store_engine(url)
    upgrade(engine)
    return engine


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = migrated(f"sqlite:///{tmp_path / 'govex.db'}")
    yield engine
    engine.dispose()


def fill(engine: sa.Engine, entries: Sequence[Entry] = SAMPLE,
         actor: str = "cli") -> list[records.AuditEntry]:
    written = []
    for kind, subject, detail in entries:
        with engine.begin() as conn:
            written.append(records.append_audit(conn, kind=kind, subject=subject,  # type: ignore[arg-type]
                                                detail=detail, actor=actor))
    return written


def verify(engine: sa.Engine, **kwargs: Any) -> records.VerifyResult:
    with engine.connect() as conn:
        return records.verify_audit(conn, **kwargs)


@pytest.fixture
def govex(store: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> Callable[[Sequence[str]], int]:
    """`govex ...` in-process on the test store, with the audit commands registered (until
    exchange/cli.py registers them itself)."""
    monkeypatch.setenv("GOVEX_DB_URL", store.url.render_as_string(hide_password=False))
    original = cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "audit" not in sub.choices:
            audit_command.register(sub)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    return cli.main


# --- appending ------------------------------------------------------------------------------


def test_migration_creates_the_audit_tables_with_an_empty_head(store: sa.Engine) -> None:
    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), records.audit_metadata)
        assert [d for d in diff if "audit_" in repr(d)] == []
        assert records.audit_head(conn) == (0, GENESIS_HASH)


def test_create_all_also_creates_the_head_row(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    records.audit_metadata.create_all(engine)
    with engine.connect() as conn:
        assert records.audit_head(conn) == (0, GENESIS_HASH)


def test_entries_chain_from_64_zeros(store: sa.Engine) -> None:
    written = fill(store, actor="psb/admin")
    assert [e.seq for e in written] == [1, 2, 3, 4, 5]
    assert written[0].prev_hash == GENESIS_HASH
    for before, after in zip(written, written[1:], strict=False):
        assert after.prev_hash == before.hash
        assert after.at >= before.at
    assert all(e.at.tzinfo is not None for e in written)
    with store.connect() as conn:
        stored = records.list_audit(conn, limit=None)
        assert records.audit_head(conn) == (5, written[-1].hash)
    assert stored == written  # what append returned is exactly what was stored
    assert verify(store) == records.VerifyResult(ok=True, checked=5)


def test_hash_is_the_documented_formula(store: sa.Engine) -> None:
    (entry,) = fill(store, [("run", "PSB-RES-001", {"b": 1, "a": "张三"})])
    canonical = json.dumps(
        [1, entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"), "cli", "run",
         "PSB-RES-001", {"a": "张三", "b": 1}, "0" * 64],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    assert entry.hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert entry.hash == entry_hash(1, entry.at, "cli", "run", "PSB-RES-001",
                                    {"b": 1, "a": "张三"}, GENESIS_HASH)


def test_detail_is_stored_as_the_json_it_was_hashed_as(store: sa.Engine) -> None:
    when = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)
    (entry,) = fill(store, [("run", "r", {"at": when, 7: (1, 2)})])
    assert entry.detail == {"at": str(when), "7": [1, 2]}
    assert verify(store).ok


def test_append_commits_and_rolls_back_with_the_caller(store: sa.Engine) -> None:
    fill(store, SAMPLE[:2])

    def failing_transaction() -> None:
        with store.begin() as conn:
            records.append_audit(conn, kind="run", subject="PSB-RES-001", detail={})
            msg = "caller failed"
            raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="caller failed"):
        failing_transaction()
    (entry,) = fill(store, SAMPLE[2:3])
    assert entry.seq == 3  # the rolled-back entry left neither a row nor a gap
    assert verify(store) == records.VerifyResult(ok=True, checked=3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "delete_everything", "subject": "x", "detail": {}}, "unknown audit kind"),
    ({"kind": "run", "subject": "", "detail": {}}, "subject must be 1 to 500"),
    ({"kind": "run", "subject": "x" * 501, "detail": {}}, "subject must be 1 to 500"),
    ({"kind": "run", "subject": "x", "detail": {}, "actor": ""}, "actor must be 1 to 200"),
    ({"kind": "run", "subject": "x", "detail": {"rate": float("nan")}}, "JSON-serialisable"),
])
def test_append_refuses_bad_input_and_writes_nothing(store: sa.Engine, kwargs: dict[str, Any],
                                                     message: str) -> None:
    with pytest.raises(ValueError, match=message), store.begin() as conn:
        records.append_audit(conn, **kwargs)
    with store.connect() as conn:
        assert records.audit_head(conn) == (0, GENESIS_HASH)
        assert records.list_audit(conn) == []


def test_a_missing_head_row_is_rebuilt_from_the_last_entry(store: sa.Engine) -> None:
    written = fill(store, SAMPLE[:2])
    with store.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_head"))
    (entry,) = fill(store, SAMPLE[2:3])
    assert (entry.seq, entry.prev_hash) == (3, written[-1].hash)
    assert verify(store).ok


# --- verifying ------------------------------------------------------------------------------


def test_verify_reads_the_log_in_bounded_chunks(store: sa.Engine) -> None:
    fill(store, SAMPLE * 2)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM audit_log" in statement:
            statements.append(statement)

    sa.event.listen(store, "before_cursor_execute", record)
    try:
        assert verify(store, chunk_size=3) == records.VerifyResult(ok=True, checked=10)
    finally:
        sa.event.remove(store, "before_cursor_execute", record)
    assert len(statements) == 5  # 3 + 3 + 3 + 1, then an empty read ends the walk
    assert all("LIMIT" in s for s in statements)


def test_empty_log_is_intact(govex: Callable[[Sequence[str]], int],
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert govex(["audit", "verify"]) == 0
    assert capsys.readouterr().out == "audit log intact: 0 entries\n"


def test_cli_verify_and_list(store: sa.Engine, govex: Callable[[Sequence[str]], int],
                             capsys: pytest.CaptureFixture[str]) -> None:
    written = fill(store)
    assert govex(["audit", "verify"]) == 0
    assert capsys.readouterr().out == "audit log intact: 5 entries\n"
    assert govex(["audit", "verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "checked": 5, "first_bad": None}
    assert govex(["audit", "list", "--json", "--limit", "2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["seq"] for e in listed] == [4, 5]
    assert listed[-1]["hash"] == written[-1].hash
    assert govex(["audit", "list", "--kind", "run"]) == 0
    out = capsys.readouterr().out
    assert "PSB-RES-001" in out
    assert "SUB-GSC-001" not in out


def _sql(*statements: str) -> Callable[[sa.Engine], None]:
    def tamper(engine: sa.Engine) -> None:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    return tamper


def _forge(seq: int) -> Callable[[sa.Engine], None]:
    """Edit an entry and recompute its own hash, as someone who knows the formula would."""
    def tamper(engine: sa.Engine) -> None:
        with engine.begin() as conn:
            entry = next(e for e in records.list_audit(conn, limit=None) if e.seq == seq)
            forged = entry_hash(entry.seq, entry.at, entry.actor, entry.kind, "FORGED",
                                entry.detail, entry.prev_hash)
            conn.execute(sa.text("UPDATE audit_log SET subject = 'FORGED', hash = :h "
                                 "WHERE seq = :s"), {"h": forged, "s": seq})
    return tamper


# (how the log was tampered with, first bad seq, its kind and subject, why, intact before it)
TAMPERING = {
    "edited detail": (
        _sql("UPDATE audit_log SET detail = '{\"delivered\": 5}' WHERE seq = 3"),
        3, "delivery", "SUB-GSC-001", "edited: its contents no longer match its hash", 2),
    "edited actor": (
        _sql("UPDATE audit_log SET actor = 'psb/admin' WHERE seq = 1"),
        1, "apply", "examples/city", "edited", 0),
    "edited time": (
        _sql("UPDATE audit_log SET at = '2020-01-01 00:00:00.000000' WHERE seq = 4"),
        4, "dispute", "D-1", "edited", 3),
    "deleted in the middle": (
        _sql("DELETE FROM audit_log WHERE seq = 3"),
        4, "dispute", "D-1", "seq 3 missing before it: entries were deleted", 2),
    "deleted at the start": (
        _sql("DELETE FROM audit_log WHERE seq IN (1, 2)"),
        3, "delivery", "SUB-GSC-001", "seq 1..2 missing before it", 0),
    "deleted at the end": (
        _sql("DELETE FROM audit_log WHERE seq >= 4"),
        4, None, None, "seq 4..5 missing at the end: the log ends at seq 3", 3),
    "deleted and renumbered": (
        _sql("DELETE FROM audit_log WHERE seq = 2",
             "UPDATE audit_log SET seq = seq - 1 WHERE seq > 2",
             "UPDATE audit_head SET seq = seq - 1"),
        2, "delivery", "SUB-GSC-001", "out of place", 1),
    "reordered (two entries swapped)": (
        _sql("UPDATE audit_log SET seq = 0 - seq WHERE seq IN (2, 3)",
             "UPDATE audit_log SET seq = 3 WHERE seq = -2",
             "UPDATE audit_log SET seq = 2 WHERE seq = -3"),
        2, "delivery", "SUB-GSC-001", "out of place: neither its hash nor its prev_hash fit", 1),
    "forged with a recomputed hash": (
        _forge(2), 3, "delivery", "SUB-GSC-001",
        "chain broken: its prev_hash is not the hash of seq 2", 2),
    "forged last entry": (
        _forge(5), 5, "token_use", "FORGED", "differs from the one the audit head recorded", 4),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampering_is_caught_and_the_first_bad_entry_named(
    case: str, store: sa.Engine, govex: Callable[[Sequence[str]], int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    tamper, seq, kind, subject, why, intact = TAMPERING[case]
    fill(store)
    tamper(store)
    result = verify(store, chunk_size=2)
    assert not result.ok
    assert result.checked == intact
    assert result.first_bad is not None
    assert (result.first_bad.seq, result.first_bad.kind, result.first_bad.subject) == (
        seq, kind, subject)
    assert why in result.first_bad.reason

    assert govex(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"audit log broken at seq {seq}")
    if kind is not None:
        assert f"(kind {kind}, subject {subject})" in out
    assert why in out
    assert govex(["audit", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["first_bad"]["seq"] == seq


# --- token use in the web app ----------------------------------------------------------------


def test_token_use_is_audited_once_a_minute(store: sa.Engine, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    secret = tokens.TOKEN_PREFIX + "x" * 43
    with store.begin() as conn:
        # Straight into the table: create_token would need an applied catalog department.
        conn.execute(sa.insert(tokens.tokens).values(
            id="tok-audit", department="psb", role="admin", token_hash=tokens.hash_token(secret),
            created_at=dt.datetime.now(dt.UTC), last_used_at=None, revoked=False))
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(store, docs_dir=tmp_path / "docs")) as client:
        assert client.get("/api/v1/resources", headers=headers).status_code == 200
        assert client.get("/api/v1/subscriptions", headers=headers).status_code == 200
        assert client.get("/api/v1/resources",
                          headers={"Authorization": "Bearer govex_wrong"}).status_code == 401
        with store.connect() as conn:
            (used,) = records.list_audit(conn, kind="token_use")
        assert (used.actor, used.kind, used.subject) == ("psb/admin", "token_use", "tok-audit")
        assert used.detail == {"method": "GET", "path": "/api/v1/resources"}
        # A minute later the next use is recorded again.
        with store.begin() as conn:
            conn.execute(sa.update(tokens.tokens).values(
                last_used_at=dt.datetime.now(dt.UTC) - tokens.LAST_USED_RESOLUTION))
        assert client.get("/api/v1/subscriptions", headers=headers).status_code == 200
    with store.connect() as conn:
        assert [e.detail["path"] for e in records.list_audit(conn, kind="token_use")] == [
            "/api/v1/resources", "/api/v1/subscriptions"]
    assert verify(store) == records.VerifyResult(ok=True, checked=2)


# --- concurrency and real databases -----------------------------------------------------------


def hammer(engine: sa.Engine, workers: int = 4, per_worker: int = 25) -> None:
    """`workers` threads, each on its own connection (its own database session), append
    `per_worker` entries at once, holding the head a moment to make them queue. Then the log
    must hold every entry exactly once, in one unbroken chain. (Locking only the last entry
    with SELECT … FOR UPDATE fails this on PostgreSQL: two appenders claim the same seq.)"""
    start = threading.Barrier(workers)
    failures: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(per_worker):
                with engine.begin() as conn:
                    records.append_audit(conn, kind="run", subject=f"w{worker}-{i}",
                                         detail={"worker": worker, "i": i})
                    time.sleep(0.001)  # still inside the transaction: the others wait
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
            failures.append(error)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    total = workers * per_worker
    assert verify(engine, chunk_size=7) == records.VerifyResult(ok=True, checked=total)
    with engine.connect() as conn:
        entries = records.list_audit(conn, limit=None)
        assert records.audit_head(conn) == (total, entries[-1].hash)
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert sorted(e.subject for e in entries) == sorted(
        f"w{w}-{i}" for w in range(workers) for i in range(per_worker))


def test_concurrent_appends_on_sqlite_do_not_fork_the_chain(store: sa.Engine) -> None:
    hammer(store, workers=3, per_worker=15)


@pytest.fixture(params=["postgresql", "mariadb"])
def server_store(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    if request.param == "postgresql":
        engine = migrated(request.getfixturevalue("pg_url"))
    else:
        # The metadata store runs on SQLite or PostgreSQL (ARCHITECTURE.md), and the earlier
        # migrations do not all fit MariaDB's index limits: create just the audit tables, to
        # check their types (microsecond DATETIME, JSON as text) and locking there too.
        engine = create_store_engine(request.getfixturevalue("mariadb_url"))
        records.audit_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.integration
def test_append_and_verify_on_a_server_database(server_store: sa.Engine) -> None:
    written = fill(server_store, [*SAMPLE, ("run", "PSB-RES-001", {"note": "数据异议", "n": 1.5})])
    with server_store.connect() as conn:
        assert records.list_audit(conn, limit=None) == written  # microseconds survive the trip
    assert verify(server_store, chunk_size=2) == records.VerifyResult(ok=True, checked=6)
    _sql("UPDATE audit_log SET subject = 'PSB-RES-999' WHERE seq = 2")(server_store)
    result = verify(server_store)
    assert result.first_bad == records.BadEntry(
        2, "run", "PSB-RES-999", "edited: its contents no longer match its hash")
    _sql("DELETE FROM audit_log WHERE seq = 2")(server_store)
    result = verify(server_store)
    assert result.first_bad is not None
    assert (result.first_bad.seq, result.checked) == (3, 1)


@pytest.mark.integration
def test_concurrent_appends_on_a_server_database_do_not_fork_the_chain(
    server_store: sa.Engine,
) -> None:
    hammer(server_store, workers=6, per_worker=30)
