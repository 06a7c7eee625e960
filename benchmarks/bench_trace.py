"""`govex trace` latency on a large provenance table: PostgreSQL store with 10 million
provenance rows (generated server-side with generate_series), trace p50/p95 over random keys.

    govex bench trace --rows 10000000     (or: python -m benchmarks.bench_trace --rows N)

The provenance rows are 4 subscriptions × rows/4 record keys, spread over 10 runs. Two figures:
the whole `records.trace` (catalog, provenance, quality, disputes and the source re-read by key
through the PostgreSQL source connector, which opens its own connection per read), and the
store part alone (`read_source=False`). Baseline from the same run: one indexed
`SELECT … WHERE resource = ? AND record_key = ?` on the same table. Target: p95 < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import yaml

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CODE = "BENCH-TRACE"
SUBSCRIPTIONS = 4
RUNS = 10

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


def _workspace(root: Path, url: str) -> None:
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


def _fill(url: str, rows: int) -> float:
    keys = max(1, rows // SUBSCRIPTIONS)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE residents (id_no text PRIMARY KEY, name text NOT NULL, score integer,"
            " updated_at timestamptz NOT NULL)")
        conn.execute(
            "INSERT INTO residents SELECT lpad((110105000000000000 + g)::text, 18, '0'), "
            "'居民' || g, g %% 100, timestamptz '2026-01-01 00:00:00+00' "
            "FROM generate_series(0, %s - 1) AS g", (keys,))
        # Bulk load without the index, then build it once: how a backfill would be done.
        conn.execute("DROP INDEX ix_lineage_provenance_record")
        conn.execute(
            "INSERT INTO lineage_provenance "
            "(resource, record_key, subscription, run_id, value_hash, delivered_at) "
            "SELECT %s, lpad((110105000000000000 + k)::text, 18, '0'), 'SUB-BENCH-' || s, "
            "'00000000-0000-7000-8000-' || lpad(((k + s) %% %s)::text, 12, '0'), "
            "substr(md5(k::text || ':' || s::text), 1, 16), "
            "timestamptz '2026-11-01 00:00:00+00' + ((k + s) %% %s) * interval '1 day' "
            "FROM generate_series(0, %s - 1) AS k, generate_series(0, %s - 1) AS s",
            (CODE, RUNS, RUNS, keys, SUBSCRIPTIONS))
        conn.execute("CREATE INDEX ix_lineage_provenance_record "
                     "ON lineage_provenance (resource, record_key)")
        for r in range(RUNS):
            conn.execute(
                "INSERT INTO exchange_runs (run_id, resource, status, subscriptions, \"full\","
                " read, passed, quarantined, started_at) VALUES (%s, %s, 'success', '[]', "
                "false, 0, 0, 0, timestamptz '2026-11-01 00:00:00+00' + %s * interval '1 day')",
                (f"00000000-0000-7000-8000-{r:012d}", CODE, r))
        conn.execute("ANALYZE lineage_provenance")
        conn.execute("ANALYZE residents")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="provenance rows")
    parser.add_argument("--samples", type=int, default=500, help="traces to time")
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN))
    args = parser.parse_args()

    import sqlalchemy as sa

    import catalog
    import records
    from exchange.store import create_store_engine, upgrade

    name = f"govex_bench_trace_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    engine = create_store_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        upgrade(engine)
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "ws"
            _workspace(root, url)
            catalog.apply_workspace(engine, root)
            load_seconds = _fill(url, args.rows)
            with engine.connect() as store:
                total = store.execute(sa.text("SELECT count(*) FROM lineage_provenance")
                                      ).scalar_one()
            keys_count = max(1, args.rows // SUBSCRIPTIONS)
            rng = random.Random(7)
            keys = [_key(rng.randrange(keys_count)) for _ in range(args.samples)]
            probe = records.trace(engine, CODE, keys[0])
            assert len(probe["deliveries"]) == SUBSCRIPTIONS, probe  # noqa: S101
            assert probe["source"]["current_hash"], probe  # noqa: S101

            def baseline(key: str) -> object:
                with engine.connect() as conn:
                    return conn.execute(sa.text(
                        "SELECT subscription, run_id, delivered_at, value_hash "
                        "FROM lineage_provenance WHERE resource = :r AND record_key = :k "
                        "ORDER BY delivered_at DESC"), {"r": CODE, "k": key}).all()

            base = _measure(baseline, keys)
            store_only = _measure(lambda k: records.trace(engine, CODE, k, read_source=False),
                                  keys)
            full = _measure(lambda k: records.trace(engine, CODE, k), keys)
        print(f"provenance rows           {total:>14,}  (loaded in {load_seconds:.1f} s)")
        print(f"traces timed              {args.samples:>14,}")
        print(f"baseline indexed SELECT   p50 {base[0]:7.2f} ms   p95 {base[1]:7.2f} ms")
        print(f"trace, store only         p50 {store_only[0]:7.2f} ms   "
              f"p95 {store_only[1]:7.2f} ms")
        print(f"trace, with source read   p50 {full[0]:7.2f} ms   p95 {full[1]:7.2f} ms")
        print(f"target p95 < 50 ms        {'met' if full[1] < 50 else 'NOT met'}")
    finally:
        engine.dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
