"""PostgreSQL source → sink through govex connectors vs a raw COPY TO → COPY FROM pipe.

Run: govex bench connectors [rows]   (GOVEX_TEST_PG_URL as in tests)
Both paths move the same rows between two tables of one fresh database in the same run; the
baseline is the fastest way PostgreSQL itself can copy rows out and back in via a client.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import psycopg
import pyarrow as pa
import sqlalchemy as sa

import connectors
from connectors import LedgerEntry, ReadSpec, TargetColumn, TargetSpec

ADMIN = os.environ.get("GOVEX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main(rows: int) -> None:
    name = f"govex_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN).set(database=name)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE src AS SELECT i AS id, 'name ' || i AS name, "
                "'110105' || lpad(i::text, 12, '0') AS id_no, i * 1.5::float8 AS score, "
                "date '1990-01-01' + (i % 10000) AS birth, "
                "timestamptz '2026-01-01' + i * interval '1 second' AS updated_at "
                f"FROM generate_series(1, {rows}) AS i"
            )
            conn.execute("ALTER TABLE src ADD PRIMARY KEY (id)")
            conn.execute("CREATE TABLE raw_dst (LIKE src INCLUDING ALL)")
            conn.execute("VACUUM ANALYZE src")

        # Baseline: COPY TO STDOUT piped into COPY FROM STDIN on a second connection.
        start = time.perf_counter()
        with psycopg.connect(dsn) as out, psycopg.connect(dsn) as into:
            with out.cursor().copy("COPY (SELECT * FROM src ORDER BY id) TO STDOUT") as cp_out, \
                    into.cursor().copy("COPY raw_dst FROM STDIN") as cp_in:
                for chunk in cp_out:
                    cp_in.write(chunk)
            into.commit()
        raw = time.perf_counter() - start

        spec = TargetSpec("govex_dst", (
            TargetColumn("id", pa.int64(), False),
            TargetColumn("name", pa.string()),
            TargetColumn("id_no", pa.string()),
            TargetColumn("score", pa.float64()),
            TargetColumn("birth", pa.date32()),
            TargetColumn("updated_at", pa.timestamp("us", tz="UTC")),
        ), ("id",))
        target = url.render_as_string(hide_password=False)
        start = time.perf_counter()
        source = connectors.open_source("url", target)
        sink = connectors.open_sink("url", target)
        sink.ensure_table(spec)
        read = ReadSpec("src", None, None, ("id",), "updated_at", batch_rows=100_000)
        moved = 0
        for batch in source.read_batches(read):
            ledger = LedgerEntry("BENCH", "BENCH", "run")
            moved += sink.write(spec, batch, "upsert", ledger)
        sink.close()
        govex = time.perf_counter() - start
        if moved != rows:
            msg = f"moved {moved} of {rows} rows"
            raise SystemExit(msg)

        print(f"rows: {rows:,}")
        print(f"raw COPY TO -> COPY FROM:        {raw:6.2f} s  {rows / raw:12,.0f} rows/s")
        print(f"govex source -> upsert sink:     {govex:6.2f} s  {rows / govex:12,.0f} rows/s")
        print(f"govex / raw time ratio:          {govex / raw:6.2f}x")
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
