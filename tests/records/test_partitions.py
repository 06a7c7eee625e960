"""Provenance at province scale: monthly partitions on PostgreSQL (migration 0020 of a
populated table, writes into their month, creation under concurrency, sealing and the months
index that bounds a trace, late writes), retention (exactly the expired months dropped, an
audit entry each, the last delivery of every record and subscription kept and answered by
every read), and SQLite, which keeps one table and deletes a month at a time."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic import command

import catalog
import records
from benchmarks.bench_trace import CODE, explain_lookup, holds_rows, workspace
from exchange.cli.main import main
from exchange.store import create_store_engine, upgrade
from exchange.store.engine import _alembic_config
from govex.errors import DeclarationError
from govex.settings import load_settings
from records import partitions
from records.provenance_tables import provenance

UTC = dt.UTC


def at(year: int, month: int, day: int = 10, hour: int = 8) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def h(n: int) -> str:
    return f"{n:016x}"


def write(engine: sa.Engine, when: dt.datetime, keys: list[str], *, sub: str = "S1",
          hashes: list[str] | None = None, run: str = "run", resource: str = "R") -> None:
    with engine.begin() as conn:
        records.record_provenance(
            conn, resource=resource, subscription=sub, run_id=run, delivered_at=when,
            keys=pa.array(keys, pa.string()),
            hashes=pa.array(hashes or [h(i) for i in range(len(keys))], pa.string()))


def where_rows_are(engine: sa.Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT tableoid::regclass::text, record_key FROM lineage_provenance")).all()
    found: dict[str, set[str]] = {}
    for table, key in rows:
        found.setdefault(table, set()).add(key)
    return found


def listed(engine: sa.Engine) -> dict[str, tuple[Any, Any, bool]]:
    with engine.connect() as conn:
        return {r.name: (r.starts, r.ends, r.sealed_at is not None) for r in conn.execute(
            sa.text("SELECT * FROM lineage_provenance_partitions"))}


def history(engine: sa.Engine, key: str) -> list[tuple[str, str, dt.datetime, str, bool]]:
    with engine.connect() as conn:
        return [(d["subscription"], d["run_id"], d["delivered_at"], d["hash"],
                 d["beyond_retention"]) for d in records.deliveries_of(conn, "R", key)]


def unpruned(engine: sa.Engine, key: str) -> list[tuple[str, str, dt.datetime, str, bool]]:
    """The same history by a plain SELECT over every partition (no months index)."""
    p = provenance
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(p.c.subscription, p.c.run_id, p.c.delivered_at, p.c.value_hash)
            .where(p.c.resource == "R", p.c.record_key == key)
            .order_by(p.c.delivered_at.desc(), p.c.id.desc())).all()
    return [(s, r, a, v, False) for s, r, a, v in rows]


def scanned(engine: sa.Engine, key: str) -> set[str]:
    def lookup(k: str) -> object:
        with engine.connect() as conn:
            return records.deliveries_of(conn, "R", k)

    return {t for t in explain_lookup(engine, lookup, key, "lineage_provenance")[1]
            if holds_rows(t)}


@pytest.fixture
def store(pg_url: str) -> Iterator[sa.Engine]:
    engine = create_store_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _now_partitions() -> set[str]:
    """The partitions migration 0020 creates on an empty store: this month's and the next."""
    this = partitions.month_start(dt.datetime.now(UTC))
    nxt = partitions.month_start(this + dt.timedelta(days=32))
    return {partitions.partition_name(this), partitions.partition_name(nxt)}


# ---- migration ------------------------------------------------------------------------------


def _months_before(start: dt.datetime, count: int) -> dt.datetime:
    year, month = divmod(start.year * 12 + start.month - 1 - count, 12)
    return start.replace(year=year, month=month + 1)


@pytest.mark.integration
def test_migration_partitions_a_populated_table_keeping_every_row_and_id(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "0019_dispute_flags")
        this = partitions.month_start(dt.datetime.now(UTC))
        old = [_months_before(this, n) + dt.timedelta(days=3) for n in (3, 2, 1)]
        with engine.begin() as conn:  # the plain table of revision 0019
            for i, when in enumerate(old):
                conn.execute(sa.insert(provenance), [
                    {"resource": "R", "record_key": f"k{j}", "subscription": f"S{j % 2}",
                     "run_id": f"run{i}", "value_hash": h(10 * i + j), "delivered_at": when}
                    for j in range(5)])
        columns = "id, resource, record_key, subscription, run_id, value_hash, delivered_at"
        with engine.connect() as conn:
            before = conn.execute(sa.text(f"SELECT {columns} FROM lineage_provenance "
                                          "ORDER BY id")).all()
        upgrade(engine)
        with engine.connect() as conn:
            after = conn.execute(sa.text(f"SELECT {columns} FROM lineage_provenance "
                                         "ORDER BY id")).all()
            kind = conn.execute(sa.text(
                "SELECT relkind FROM pg_class WHERE relname = 'lineage_provenance'")).scalar()
            bounds = dict(conn.execute(sa.text(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'lineage_provenance'::regclass")).all())
        assert after == before
        assert len(after) == 15
        assert kind == "p"
        assert bounds["lineage_provenance_legacy"] == (
            f"FOR VALUES FROM (MINVALUE) TO ('{this:%Y-%m-%d} 00:00:00+00')")
        assert set(bounds) == {"lineage_provenance_legacy"} | _now_partitions()
        assert listed(engine)["lineage_provenance_legacy"] == (None, this, False)

        # New deliveries go into their month's partition, ids continuing the sequence.
        write(engine, dt.datetime.now(UTC), ["k0"], sub="S0", hashes=[h(99)], run="new")
        assert where_rows_are(engine)[partitions.partition_name(this)] == {"k0"}
        with engine.connect() as conn:
            newest = conn.execute(sa.text("SELECT max(id) FROM lineage_provenance")).scalar()
        assert newest == max(r.id for r in before) + 1
        expected = [("S0", "new", None, h(99), False)] + [
            ("S0", f"run{i}", old[i], h(10 * i), False) for i in (2, 1, 0)]
        got = history(engine, "k0")
        assert [(s, r, v) for s, r, _, v, _ in got] == [(s, r, v) for s, r, _, v, _ in expected]
        assert [a for _, _, a, _, _ in got[1:]] == [old[2], old[1], old[0]]

        # Sealing the legacy partition indexes its records by their real months.
        records.maintain_provenance(engine, retention=None)
        with engine.connect() as conn:
            months = set(conn.execute(sa.text(
                "SELECT month FROM lineage_provenance_months WHERE record_key = 'k1'")).scalars())
        assert months == {when.date().replace(day=1) for when in old}
        assert got == history(engine, "k0")

        # Downgrade gives the plain table back, rows and ids intact; upgrade works again.
        with engine.begin() as conn:
            command.downgrade(_alembic_config(conn), "0019_dispute_flags")
        with engine.connect() as conn:
            back = conn.execute(sa.text(f"SELECT {columns} FROM lineage_provenance "
                                        "ORDER BY id")).all()
            kind = conn.execute(sa.text(
                "SELECT relkind FROM pg_class WHERE relname = 'lineage_provenance'")).scalar()
        assert kind == "r"
        assert back[:15] == before
        assert len(back) == 16
        upgrade(engine)
        assert len(history(engine, "k0")) == 4
    finally:
        engine.dispose()


@pytest.mark.integration
def test_migration_of_an_empty_table_leaves_only_the_monthly_partitions(
    store: sa.Engine,
) -> None:
    assert set(listed(store)) == _now_partitions()
    assert where_rows_are(store) == {}


# ---- writes ---------------------------------------------------------------------------------


@pytest.mark.integration
def test_each_delivery_lands_in_its_months_partition(store: sa.Engine) -> None:
    write(store, at(2025, 1, 15), ["jan"])
    write(store, dt.datetime(2025, 1, 31, 23, 59, 59, 999999, tzinfo=UTC), ["jan-last"])
    write(store, dt.datetime(2025, 2, 1, tzinfo=UTC), ["feb-first"])
    # 07:00 in Beijing on 1 March is still February in UTC, which partitions go by.
    write(store, dt.datetime(2025, 3, 1, 7, tzinfo=dt.timezone(dt.timedelta(hours=8))),
          ["feb-beijing"])
    write(store, dt.datetime.now(UTC), ["now"])
    this = partitions.partition_name(dt.datetime.now(UTC))
    assert where_rows_are(store) == {
        "lineage_provenance_p202501": {"jan", "jan-last"},
        "lineage_provenance_p202502": {"feb-first", "feb-beijing"},
        this: {"now"},
    }
    parts = listed(store)
    assert parts["lineage_provenance_p202501"] == (at(2025, 1, 1, 0), at(2025, 2, 1, 0), False)
    assert parts["lineage_provenance_p202502"] == (at(2025, 2, 1, 0), at(2025, 3, 1, 0), False)
    assert len(parts) == 4  # and no partition for March: nothing was delivered then


@pytest.mark.integration
def test_two_deliveries_needing_the_same_new_month_create_it_once(store: sa.Engine) -> None:
    first = store.connect()
    transaction = first.begin()
    records.record_provenance(first, resource="R", subscription="S1", run_id="a",
                              delivered_at=at(2025, 5, 10), keys=pa.array(["a"]),
                              hashes=pa.array([h(1)]))
    errors: list[BaseException] = []

    def second() -> None:
        try:
            write(store, at(2025, 5, 20), ["b"], sub="S2")
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # waiting for the first to finish creating May
    transaction.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert where_rows_are(store)["lineage_provenance_p202505"] == {"a", "b"}
    assert sum(name == "lineage_provenance_p202505" for name in listed(store)) == 1


# ---- sealing and what a trace reads ---------------------------------------------------------


@pytest.mark.integration
def test_a_trace_reads_only_the_partitions_holding_its_record(store: sa.Engine) -> None:
    for month in range(1, 7):
        keys = ["everywhere"] + (["a"] if month in (2, 5) else [])
        write(store, at(2025, month), keys, hashes=[h(month), h(100 + month)][:len(keys)],
              run=f"run{month}")
    done = records.maintain_provenance(store, retention=None, now=at(2025, 7, 10))
    assert done.created == ("lineage_provenance_p202507", "lineage_provenance_p202508")
    assert [name for name, _ in done.sealed] == [f"lineage_provenance_p20250{m}"
                                                  for m in range(1, 7)]
    assert dict(done.sealed)["lineage_provenance_p202502"] == 2  # two records indexed

    unsealed = {"lineage_provenance_p202507", "lineage_provenance_p202508"} | _now_partitions()
    assert scanned(store, "a") == {"lineage_provenance_p202502",
                                   "lineage_provenance_p202505"} | unsealed
    assert scanned(store, "never") == unsealed
    assert len(scanned(store, "everywhere")) == 6 + len(unsealed)
    for key in ("a", "everywhere", "never"):
        assert history(store, key) == unpruned(store, key)
    assert [r for _, r, _, _, _ in history(store, "a")] == ["run5", "run2"]


@pytest.mark.integration
def test_a_delivery_into_a_sealed_month_is_still_found(store: sa.Engine) -> None:
    write(store, at(2025, 3, 10), ["a"])
    records.maintain_provenance(store, retention=None, now=at(2025, 4, 5))
    assert listed(store)["lineage_provenance_p202503"][2]  # sealed
    # A run that started before March ended still delivers into March.
    write(store, at(2025, 3, 31, 23), ["late"], run="late-run")
    assert "lineage_provenance_p202503" in scanned(store, "late")
    assert history(store, "late") == unpruned(store, "late") != []


@pytest.mark.integration
def test_sealing_waits_for_a_delivery_in_flight(store: sa.Engine) -> None:
    write(store, at(2025, 3, 10), ["a"])
    writer = store.connect()
    transaction = writer.begin()
    records.record_provenance(writer, resource="R", subscription="S1", run_id="slow",
                              delivered_at=at(2025, 3, 20), keys=pa.array(["in-flight"]),
                              hashes=pa.array([h(7)]))
    thread = threading.Thread(target=lambda: records.maintain_provenance(
        store, retention=None, now=at(2025, 4, 5)))
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive()  # sealing March waits for the delivery writing into it
    transaction.commit()
    writer.close()
    thread.join(30)
    assert listed(store)["lineage_provenance_p202503"][2]
    assert "lineage_provenance_p202503" in scanned(store, "in-flight")
    assert history(store, "in-flight") == unpruned(store, "in-flight") != []


# ---- retention ------------------------------------------------------------------------------


def _retention_history(engine: sa.Engine) -> None:
    """Jan–Jun 2025: `old` only in Jan–Feb, `both` in Feb and May, `gone` delivered in Jan and
    deleted in Feb, `new` in May; one row in each other month."""
    write(engine, at(2025, 1), ["old", "gone"], sub="S1", hashes=[h(1), h(2)], run="r1")
    write(engine, at(2025, 1), ["old"], sub="S2", hashes=[h(3)], run="r1")
    write(engine, at(2025, 2), ["old", "both"], sub="S1", hashes=[h(4), h(5)], run="r2")
    write(engine, at(2025, 2, 20), ["gone"], sub="S1", hashes=[records.DELETED], run="r2b")
    write(engine, at(2025, 3), ["march"], run="r3")
    write(engine, at(2025, 4), ["april"], run="r4")
    write(engine, at(2025, 5), ["both", "new"], sub="S1", hashes=[h(6), h(7)], run="r5")
    write(engine, at(2025, 6), ["june"], run="r6")


def _check_retention(engine: sa.Engine, done: Any, partitioned: bool) -> None:
    assert [(d.name, d.rows) for d in done.dropped] == [
        ("lineage_provenance_p202501", 3), ("lineage_provenance_p202502", 3),
        ("lineage_provenance_p202503", 1)]
    assert [d.kept for d in done.dropped] == [3, 3, 1]
    assert done.partitioned is partitioned
    assert done.horizon == dt.datetime(2025, 4, 15, 12, tzinfo=UTC)
    with engine.connect() as conn:
        entries = [e for e in records.list_audit(conn, kind="retention", limit=None)
                   if e.subject != "verify_records"]  # verifications: test_verify_retention
        assert records.verify_audit(conn).ok
        left = conn.execute(sa.select(provenance.c.record_key)).scalars().all()
        live = sorted(k for part in records.live_keys(conn, "R", "S1") for k in part)
        sent = sorted(k for part in records.delivered_keys(conn, "R", "S1", batch=2) for k in part)
        hashes = sorted(v for _, part in records.delivered_hashes(conn, "R", ["S1", "S2"])
                        for v in part.to_pylist())
        latest = records.latest_deliveries(conn, "R", ["old", "both", "gone", "nope"])
    assert [(e.subject, e.detail["rows"], e.detail["retention"]) for e in entries] == [
        ("lineage_provenance_p202501", 3, "P3M"), ("lineage_provenance_p202502", 3, "P3M"),
        ("lineage_provenance_p202503", 1, "P3M")]
    assert entries[0].detail["from"] == "2025-01-01T00:00:00+00:00"
    assert sorted(left) == ["april", "both", "june", "new"]
    # The kept last deliveries answer for the dropped months.
    assert history(engine, "old") == [
        ("S1", "r2", at(2025, 2), h(4), True), ("S2", "r1", at(2025, 1), h(3), True)]
    assert history(engine, "both") == [
        ("S1", "r5", at(2025, 5), h(6), False), ("S1", "r2", at(2025, 2), h(5), True)]
    assert history(engine, "march")[0][4] is True
    assert set(latest) == {"old", "both", "gone"}
    assert latest["old"]["S2"]["hash"] == h(3)
    assert latest["old"]["S2"]["beyond_retention"]
    assert latest["both"]["S1"]["hash"] == h(6)
    assert not latest["both"]["S1"]["beyond_retention"]
    assert latest["gone"]["S1"]["hash"] == records.DELETED
    assert live == ["april", "both", "june", "march", "new", "old"]  # not `gone`: deleted
    assert sent == ["april", "both", "gone", "june", "march", "new", "old"]
    # Live rows, and the kept ones; never a delete's.
    assert hashes == sorted([h(0)] * 3 + [h(3), h(4), h(5), h(6), h(7)])


@pytest.mark.integration
def test_retention_drops_exactly_the_expired_partitions(store: sa.Engine) -> None:
    _retention_history(store)
    now = dt.datetime(2025, 7, 15, 12, tzinfo=UTC)  # P3M: everything before 15 April noon
    dry = records.maintain_provenance(store, retention="P3M", now=now, dry_run=True)
    assert [d.name for d in dry.dropped] == ["lineage_provenance_p202501",
                                             "lineage_provenance_p202502",
                                             "lineage_provenance_p202503"]
    assert "lineage_provenance_p202501" in listed(store)  # a dry run changes nothing
    done = records.maintain_provenance(store, retention="P3M", now=now)
    _check_retention(store, done, partitioned=True)
    with store.connect() as conn:
        gone = conn.execute(sa.text(
            "SELECT count(*) FROM pg_class WHERE relname IN ('lineage_provenance_p202501', "
            "'lineage_provenance_p202502', 'lineage_provenance_p202503')")).scalar()
        indexed = conn.execute(sa.text(
            "SELECT count(*) FROM lineage_provenance_months WHERE month < '2025-04-01'")
        ).scalar()
    assert gone == 0
    assert indexed == 0
    assert "lineage_provenance_p202504" in listed(store)
    # Nothing more to drop until the horizon passes April; then April's rows go, and a later
    # delivery kept for the same record and subscription replaces an older one.
    assert records.maintain_provenance(store, retention="P3M", now=now).dropped == ()
    later = records.maintain_provenance(store, retention="P3M", now=at(2025, 9, 15))
    assert [d.name for d in later.dropped] == ["lineage_provenance_p202504",
                                               "lineage_provenance_p202505"]
    assert history(store, "both") == [("S1", "r5", at(2025, 5), h(6), True)]


@pytest.mark.integration
def test_trace_and_disputes_answer_from_what_retention_kept(store: sa.Engine) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        workspace(root, str(store.url.set(drivername="postgresql")))
        catalog.apply_workspace(store, root)
    key = "110105000000000001"
    write(store, at(2025, 1), [key], sub="SUB-BENCH-0", hashes=[h(1)], run="jan",
          resource=CODE)
    write(store, at(2025, 6), [key], sub="SUB-BENCH-1", hashes=[h(2)], run="jun",
          resource=CODE)
    records.maintain_provenance(store, retention="P6M", now=at(2025, 8, 15))
    found = records.trace(store, CODE, key, read_source=False)
    assert [(d["subscription"], d["consumer"], d["hash"], d.get("beyond_retention", False))
            for d in found["deliveries"]] == [
        ("SUB-BENCH-1", "c1", h(2), False), ("SUB-BENCH-0", "c0", h(1), True)]
    assert "beyond_retention" not in found["deliveries"][0]  # the usual shape otherwise
    with store.begin() as conn:
        opened = records.open_dispute(conn, resource=CODE, key=key, field="name",
                                      claim="wrong name", opened_by="c0")
        assert opened["state"] == "open"
        with pytest.raises(DeclarationError, match="never delivered"):
            records.open_dispute(conn, resource=CODE, key=key, field="name",
                                 claim="wrong name", opened_by="c2")


# ---- SQLite ---------------------------------------------------------------------------------


def test_sqlite_keeps_one_table_and_deletes_whole_months(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    upgrade(engine)
    _retention_history(engine)
    now = dt.datetime(2025, 7, 15, 12, tzinfo=UTC)
    dry = records.maintain_provenance(engine, retention="P3M", now=now, dry_run=True)
    assert [d.name for d in dry.dropped] == ["lineage_provenance_p202501",
                                             "lineage_provenance_p202502",
                                             "lineage_provenance_p202503"]
    assert dry.created == ()
    assert dry.sealed == ()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(provenance)).scalar() == 11
    done = records.maintain_provenance(engine, retention="P3M", now=now)
    _check_retention(engine, done, partitioned=False)
    assert records.maintain_provenance(engine, retention="P3M", now=now).dropped == ()
    assert records.maintain_provenance(engine, retention=None, now=now).dropped == ()


# ---- the setting and the command ------------------------------------------------------------


def test_the_retention_setting_and_its_horizon() -> None:
    assert load_settings({}).provenance_retention is None
    assert load_settings({"GOVEX_PROVENANCE_RETENTION": " P3Y "}).provenance_retention == "P3Y"
    for bad in ("3 years", "P", "P0D", "p3y", "-P1Y", "P1.5Y"):
        with pytest.raises(DeclarationError, match="GOVEX_PROVENANCE_RETENTION"):
            _ = load_settings({"GOVEX_PROVENANCE_RETENTION": bad}).provenance_retention
    end_of_march = dt.datetime(2025, 3, 31, 10, tzinfo=UTC)
    assert partitions.horizon("P1M", end_of_march) == dt.datetime(2025, 2, 28, 10, tzinfo=UTC)
    assert partitions.horizon("P3Y", dt.datetime(2028, 2, 29, tzinfo=UTC)) == dt.datetime(
        2025, 2, 28, tzinfo=UTC)
    assert partitions.horizon("P1Y2M10DT2H", end_of_march) == dt.datetime(
        2024, 1, 21, 8, tzinfo=UTC)


def test_govex_provenance_maintain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    url = f"sqlite:///{tmp_path / 'govex.db'}"
    monkeypatch.setenv("GOVEX_DB_URL", url)
    monkeypatch.delenv("GOVEX_PROVENANCE_RETENTION", raising=False)
    engine = create_store_engine(url)
    upgrade(engine)
    write(engine, at(2001, 1), ["ancient"])
    write(engine, dt.datetime.now(UTC), ["recent"])
    assert main(["provenance", "maintain", "--retention", "P3Y", "--dry-run", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in shown["dropped"]] == ["lineage_provenance_p200101"]
    assert shown["dry_run"] is True
    assert shown["partitioned"] is False
    assert main(["provenance", "maintain"]) == 0  # no retention: nothing dropped
    assert "dropped: none" in capsys.readouterr().out
    monkeypatch.setenv("GOVEX_PROVENANCE_RETENTION", "P3Y")
    assert main(["provenance", "maintain"]) == 0
    assert "lineage_provenance_p200101" in capsys.readouterr().out
    assert history(engine, "ancient")[0][4] is True
    assert history(engine, "recent")[0][4] is False
    monkeypatch.setenv("GOVEX_PROVENANCE_RETENTION", "three years")
    assert main(["provenance", "maintain"]) == 2
    assert "GOVEX_PROVENANCE_RETENTION" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["provenance", "maintain", "--retention", "soon"])
    assert exit_.value.code == 2
    engine.dispose()
