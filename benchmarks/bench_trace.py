"""`govex trace` latency on a large, partitioned provenance table: a PostgreSQL store with N
provenance rows across P monthly partitions (generated server-side with generate_series),
trace p50/p95 over random keys, beside the same lookup on one unpartitioned table of the same
rows, measured in the same run.

    govex bench trace --rows 30000000 --partitions 12     (or: python -m benchmarks.bench_trace)

The rows are 4 subscriptions × 3 deliveries × rows/12 record keys: each record is delivered to
all 4 subscriptions in one run, in 3 of the P months (spread evenly), so every partition holds
rows/P rows. The P months end with the current one; `govex provenance maintain` then seals the
P-1 that have ended (its time is part of the load time), leaving the current month, and the
next, empty, one, unsealed, as in a store kept daily.

Figures: the baseline (`SELECT … WHERE resource = ? AND record_key = ?` on an unpartitioned
copy of the rows, with the same index); the same SELECT on the partitioned table, which probes
every partition; `records.deliveries_of`, which reads the record's months from the months
index and probes only those partitions and the unsealed ones; the whole `records.trace`
without the source re-read (catalog, provenance, quality, disputes) and with it (the PostgreSQL
source connector, which opens its own connection per read). For the three provenance reads
also the shared buffers touched and the partitions scanned per lookup (EXPLAIN ANALYZE over
the first 50 keys): with a cold cache each buffer may be a disk read. Target: p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
import yaml

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CODE = "BENCH-TRACE"
SUBSCRIPTIONS = 4
DELIVERIES = 3  # months each record is delivered in
EXPLAINED = 50  # lookups explained per figure

CONTRACT = {
    "type": "object",
    "required": ["id_no", "name", "updated_at"],
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
        "name": {"type": "string", "maxLength": 50},
        "score": {"type": "integer", "minimum": 0},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


def _key(i: int) -> str:
    return f"{110105000000000000 + i:018d}"


def _run_id(month: int) -> str:
    return f"00000000-0000-7000-8000-{month:012d}"


def workspace(root: Path, url: str) -> None:
    """A workspace with resource BENCH-TRACE (table `residents` at `url`) and 4 consumers
    c0…c3 subscribed as SUB-BENCH-0…3 (tests use it too)."""
    sa_url = url.replace("postgresql://", "postgresql+psycopg://")
    (root / "contracts" / "bench").mkdir(parents=True)
    (root / "contracts" / "bench" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    depts = [{"code": "psb", "name": "provider"}] + [
        {"code": f"c{i}", "name": f"consumer {i}"} for i in range(SUBSCRIPTIONS)]
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": depts}))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "src": {"url": sa_url}, "dst": {"url": f"sqlite:///{root / 'dst.db'}"}}}))
    (root / "resources").mkdir()
    (root / "resources" / "r.yaml").write_text(yaml.safe_dump({
        "code": CODE, "name": "bench", "provider": "psb", "contract": "bench@1.0.0",
        "key": ["id_no"], "source": {"connection": "src", "table": "residents"},
        "sharing": "unconditional", "classification": "L2", "update_frequency": "P1D"}))
    (root / "subscriptions").mkdir()
    for i in range(SUBSCRIPTIONS):
        (root / "subscriptions" / f"s{i}.yaml").write_text(yaml.safe_dump({
            "id": f"SUB-BENCH-{i}", "resource": CODE, "consumer": f"c{i}", "purpose": "bench",
            "fields": ["id_no", "name", "score"], "mode": "upsert",
            "target": {"connection": "dst", "table": f"t{i}"}, "valid_from": "2026-01-01"}))


def months_of(key: int, partitions: int) -> list[int]:
    """The month indexes (0 … partitions-1, oldest first) record `key` is delivered in."""
    deliveries = min(DELIVERIES, partitions)
    return sorted({(key + j * partitions // deliveries) % partitions for j in range(deliveries)})


def _fill(engine: sa.Engine, url: str, keys: int, months: list[dt.datetime]) -> dict[str, float]:
    """Load the rows; returns the seconds of each step."""
    import records
    from records import partitions

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with engine.begin() as conn:  # every month's partition, as deliveries would create them
        for start in months:
            partitions.partition_for(conn, start)
    p, deliveries = len(months), min(DELIVERIES, len(months))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")  # month arithmetic below on UTC's calendar
        conn.execute(
            "CREATE TABLE residents (id_no text PRIMARY KEY, name text NOT NULL, score integer,"
            " updated_at timestamptz NOT NULL)")
        conn.execute(
            "INSERT INTO residents SELECT lpad((110105000000000000 + g)::text, 18, '0'), "
            "'居民' || g, g %% 100, timestamptz '2026-01-01 00:00:00+00' "
            "FROM generate_series(0, %s - 1) AS g", (keys,))
        # Bulk load without indexes, then build them once: how a backfill would be done.
        conn.execute("DROP INDEX ix_lineage_provenance_record")
        conn.execute("ALTER TABLE lineage_provenance DROP CONSTRAINT lineage_provenance_pkey")
        conn.execute(
            "INSERT INTO lineage_provenance "
            "(resource, record_key, subscription, run_id, value_hash, delivered_at) "
            "SELECT %(code)s, lpad((110105000000000000 + k)::text, 18, '0'), 'SUB-BENCH-' || s, "
            "'00000000-0000-7000-8000-' || lpad(m::text, 12, '0'), "
            "substr(md5(k::text || ':' || s::text || ':' || m::text), 1, 16), "
            "%(first)s::timestamptz + m * interval '1 month' + (k * 7 %% 27) * interval '1 day'"
            " + s * interval '1 minute' "
            "FROM generate_series(0, %(keys)s - 1) AS k, generate_series(0, %(d)s - 1) AS j, "
            "generate_series(0, %(subs)s - 1) AS s, "
            "LATERAL (SELECT (k + j * %(p)s / %(d)s) %% %(p)s AS m) AS month",
            {"code": CODE, "first": months[0], "keys": keys, "d": deliveries, "p": p,
             "subs": SUBSCRIPTIONS})
        seconds["rows"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("ALTER TABLE lineage_provenance "
                     "ADD CONSTRAINT lineage_provenance_pkey PRIMARY KEY (id, delivered_at)")
        conn.execute("CREATE INDEX ix_lineage_provenance_record "
                     "ON lineage_provenance (resource, record_key)")
        for m, start in enumerate(months):
            conn.execute(
                "INSERT INTO exchange_runs (run_id, resource, status, subscriptions, \"full\","
                " read, passed, quarantined, started_at) VALUES (%s, %s, 'success', '[]', "
                "false, 0, 0, 0, %s)", (_run_id(m), CODE, start))
        conn.execute("ANALYZE lineage_provenance")
        conn.execute("ANALYZE residents")
        seconds["indexes"] = time.perf_counter() - started
    started = time.perf_counter()
    done = records.maintain_provenance(engine, retention=None)
    assert len(done.sealed) == len(months) - 1, done  # noqa: S101 - every ended month
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE lineage_provenance_months")
    seconds["sealing"] = time.perf_counter() - started
    return seconds


def _plain_copy(url: str) -> float:
    """The baseline table: the same rows, unpartitioned, with the same record index."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_plain AS SELECT * FROM lineage_provenance")
        conn.execute("CREATE INDEX bench_plain_record ON bench_plain (resource, record_key)")
        conn.execute("ANALYZE bench_plain")
    return time.perf_counter() - started


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _measure(fn: Callable[[str], object], keys: list[str]) -> tuple[float, float]:
    for key in keys[:20]:  # warm the pool, caches and imports
        fn(key)
    samples = []
    for key in keys:
        started = time.perf_counter()
        fn(key)
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


@contextmanager
def _statements(engine: sa.Engine, table: str) -> Iterator[list[tuple[str, Any]]]:
    """The statements `engine` sends that read `table`, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if f"FROM {table}" in statement and not statement.lstrip().startswith("EXPLAIN"):
            seen.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _scans(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "Relation Name" in plan:
        yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def explain_lookup(
    engine: sa.Engine, lookup: Callable[[str], object], key: str, table: str
) -> tuple[int, list[str]]:
    """Run `lookup(key)`, then EXPLAIN ANALYZE each statement it sent that reads `table`:
    the shared buffers they touched and the relations they scanned (a partition pruned at
    planning or at execution start is not scanned)."""
    with _statements(engine, table) as seen:
        lookup(key)
    buffers, scanned = 0, []
    with engine.connect() as conn:
        cursor: Any = conn.connection.cursor()
        try:
            for statement, parameters in seen:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
                document = cursor.fetchone()[0]
                plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
                buffers += int(plan.get("Shared Hit Blocks", 0)) + int(
                    plan.get("Shared Read Blocks", 0))
                scanned += [s["Relation Name"] for s in _scans(plan)
                            if s.get("Actual Loops", 0) > 0]
        finally:
            cursor.close()
    return buffers, scanned


def holds_rows(relation: str) -> bool:
    """A table holding provenance rows: a partition, or the baseline's plain copy (not the
    registry, the months index or the kept table, whose reads count in the buffers)."""
    return re.fullmatch(r"bench_plain|lineage_provenance_(p\d{6}|legacy)", relation) is not None


def _explained(
    engine: sa.Engine, lookup: Callable[[str], object], keys: list[str], table: str
) -> tuple[float, float]:
    """Mean buffers and mean tables of provenance rows scanned per lookup over `keys`."""
    found = [explain_lookup(engine, lookup, key, table) for key in keys]
    return (statistics.mean(b for b, _ in found),
            statistics.mean(sum(map(holds_rows, s)) for _, s in found))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000_000, help="provenance rows")
    parser.add_argument("--partitions", type=int, default=12,
                        help="monthly partitions the rows are spread over (ending this month)")
    parser.add_argument("--samples", type=int, default=500, help="traces to time")
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN))
    args = parser.parse_args()
    if args.partitions < 1 or args.rows < 1 or args.samples < 1:
        parser.error("--rows, --partitions and --samples must be at least 1")

    import catalog
    import records
    from exchange.store import create_store_engine, upgrade
    from records import partitions

    name = f"govex_bench_trace_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    engine = create_store_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        upgrade(engine)
        this_month = partitions.month_start(dt.datetime.now(dt.UTC))
        months = [_months_before(this_month, args.partitions - 1 - i)
                  for i in range(args.partitions)]
        keys_count = max(1, args.rows // (SUBSCRIPTIONS * min(DELIVERIES, args.partitions)))
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "ws"
            workspace(root, url)
            catalog.apply_workspace(engine, root)
            load = _fill(engine, url, keys_count, months)
            plain_seconds = _plain_copy(url)
            with engine.connect() as store:
                total = store.execute(sa.text("SELECT count(*) FROM lineage_provenance")
                                      ).scalar_one()
                listed = store.execute(sa.text(
                    "SELECT count(*) FROM lineage_provenance_partitions")).scalar_one()
            rng = random.Random(7)
            keys = [_key(rng.randrange(keys_count)) for _ in range(args.samples)]
            probe = records.trace(engine, CODE, keys[0])
            expected = SUBSCRIPTIONS * min(DELIVERIES, args.partitions)
            assert len(probe["deliveries"]) == expected, probe  # noqa: S101
            assert probe["source"]["current_hash"], probe  # noqa: S101

            def select(table: str) -> Callable[[str], object]:
                def lookup(key: str) -> object:
                    with engine.connect() as conn:
                        return conn.execute(sa.text(
                            "SELECT subscription, run_id, delivered_at, value_hash "
                            f"FROM {table} WHERE resource = :r AND record_key = :k "
                            "ORDER BY delivered_at DESC, id DESC"), {"r": CODE, "k": key}).all()
                return lookup

            def pruned(key: str) -> object:
                with engine.connect() as conn:
                    return records.deliveries_of(conn, CODE, key)

            base, every = select("bench_plain"), select("lineage_provenance")
            figures = {
                "baseline": (_measure(base, keys),
                             _explained(engine, base, keys[:EXPLAINED], "bench_plain")),
                "every": (_measure(every, keys),
                          _explained(engine, every, keys[:EXPLAINED], "lineage_provenance")),
                "pruned": (_measure(pruned, keys),
                           _explained(engine, pruned, keys[:EXPLAINED], "lineage_provenance")),
            }
            store_only = _measure(lambda k: records.trace(engine, CODE, k, read_source=False),
                                  keys)
            full = _measure(lambda k: records.trace(engine, CODE, k), keys)
        loaded = sum(load.values())
        print(f"provenance rows           {total:>14,}  in {args.partitions} monthly partitions "
              f"({listed} listed: one more, empty, ahead)")
        print(f"loaded in                 {loaded:>10.1f} s  (rows {load['rows']:.1f} s, "
              f"indexes {load['indexes']:.1f} s, sealing {load['sealing']:.1f} s); "
              f"unpartitioned copy for the baseline {plain_seconds:.1f} s")
        print(f"traces timed              {args.samples:>14,}")
        labels = {
            "baseline": "baseline: SELECT, one unpartitioned table",
            "every": "SELECT on the partitions, no time bound",
            "pruned": "provenance read (deliveries_of), pruned",
        }
        for name_, ((p50, p95), (buffers, scanned)) in figures.items():
            print(f"{labels[name_]:<44} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms   "
                  f"{buffers:6.1f} buffers, {scanned:4.1f} tables of rows read per lookup")
        print(f"{'trace, store only':<44} p50 {store_only[0]:7.2f} ms   "
              f"p95 {store_only[1]:7.2f} ms")
        print(f"{'trace, with source read':<44} p50 {full[0]:7.2f} ms   p95 {full[1]:7.2f} ms")
        print(f"target p95 < 50 ms        {'met' if full[1] < 50 else 'NOT met'}")
    finally:
        engine.dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


def _months_before(start: dt.datetime, count: int) -> dt.datetime:
    year, month = divmod(start.year * 12 + start.month - 1 - count, 12)
    return start.replace(year=year, month=month + 1)


if __name__ == "__main__":
    sys.exit(main())
