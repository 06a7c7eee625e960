"""MariaDB ↔ PostgreSQL through the full govex run, each direction beside the two databases'
own bulk tools piped together, measured in the same run.

    govex bench mariadb --rows 1000000      (or: python -m benchmarks.bench_mariadb --rows N)

The baselines are what a DBA would type, with no checks at all:

- MariaDB → PostgreSQL: `mariadb --batch -e "SELECT …"` (tab-separated, streamed) piped into
  `psql -c "COPY … FROM STDIN"`;
- PostgreSQL → MariaDB: `psql -c "COPY … TO STDOUT"` into a file, then the `mariadb` client's
  `LOAD DATA LOCAL INFILE` of it (MariaDB's bulk path; it reads a file, not a pipe).

The govex run does the same work as `govex bench exchange` (contract, gate, two masked fields,
upsert, provenance) on the same 10-column table. Needs the `mariadb` and `psql` clients on PATH
and MariaDB at `--mariadb` (default root@127.0.0.1:3306, the test machine's).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import sqlalchemy as sa

from benchmarks.bench_exchange import (
    ADMIN,
    FILL,
    SOURCE_DDL,
    _database,
    _drop,
    _workspace,
    govex_run,
)

MARIADB = "mysql+pymysql://root@127.0.0.1:3306/"
COLUMNS = "id, id_no, name, phone, birth_date, district, score, income, updated_at"
MARIADB_DDL = """
CREATE TABLE residents (
  id BIGINT PRIMARY KEY, id_no VARCHAR(18) NOT NULL, name VARCHAR(50) NOT NULL,
  phone VARCHAR(20), birth_date DATE, district VARCHAR(10), score INT, income DOUBLE,
  updated_at DATETIME(6) NOT NULL) DEFAULT CHARSET=utf8mb4
"""
# The sequence engine's seq_1_to_N table: rows made inside the server, as generate_series.
# MOD, not %: the driver reads % as a parameter marker.
MARIADB_FILL = """
INSERT INTO residents
SELECT seq, LPAD(110105000000000000 + seq, 18, '0'), CONCAT('居民', seq),
       CONCAT('138', LPAD(MOD(seq, 100000000), 8, '0')),
       DATE '1950-01-01' + INTERVAL MOD(seq, 20000) DAY,
       ELT(1 + MOD(seq, 4), '东城区', '西城区', '朝阳区', '海淀区'), MOD(seq, 101),
       MOD(seq, 10000) * 1.5,
       TIMESTAMP '2026-01-01 00:00:00'
FROM seq_1_to_{rows}
"""
def _mariadb_database(admin: str, name: str) -> str:
    with sa.create_engine(admin).begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4")
    return admin.rstrip("/") + "/" + name + "?charset=utf8mb4"


def _mariadb_drop(admin: str, name: str) -> None:
    with sa.create_engine(admin).begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")


def _client_args(url: str) -> list[str]:
    """The `mariadb` client's connection options for a SQLAlchemy MariaDB URL."""
    parsed = sa.make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-P", str(parsed.port or 3306),
            "-u", parsed.username or "root", "--default-character-set=utf8mb4"]
    if parsed.password:
        args.append(f"-p{parsed.password}")
    return [*args, parsed.database or ""]


def pipe_mariadb_to_pg(mariadb: str, pg: str) -> float:
    """`mariadb --batch` streamed into `COPY FROM STDIN`: seconds."""
    psql = ["psql", pg, "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*psql, "-c", SOURCE_DDL.replace("residents", "pipe_baseline")], check=True)
    started = time.perf_counter()
    reader = subprocess.Popen(
        ["mariadb", *_client_args(mariadb), "--batch", "--skip-column-names", "--quick",
         "-e", f"SELECT {COLUMNS} FROM residents"], stdout=subprocess.PIPE)
    # `mariadb --batch` writes NULL as the word NULL; COPY is told so.
    subprocess.run([*psql, "-c", f"COPY pipe_baseline ({COLUMNS}) FROM STDIN (NULL 'NULL')"],
                   stdin=reader.stdout, check=True)
    if reader.wait() != 0:
        msg = "the mariadb client failed"
        raise SystemExit(msg)
    return time.perf_counter() - started


def pipe_pg_to_mariadb(pg: str, mariadb: str, workdir: Path) -> float:
    """`COPY TO STDOUT` into a file, then `LOAD DATA LOCAL INFILE`: seconds."""
    client = ["mariadb", *_client_args(mariadb), "--local-infile=1"]
    subprocess.run([*client, "-e", MARIADB_DDL.replace("residents", "pipe_baseline")],
                   check=True)
    dump = workdir / "residents.tsv"
    started = time.perf_counter()
    with dump.open("wb") as out:
        subprocess.run(["psql", pg, "-q", "-c", f"COPY residents ({COLUMNS}) TO STDOUT"],
                       stdout=out, check=True)
    # PostgreSQL writes timestamptz with its offset (+00); MariaDB's DATETIME takes the rest.
    load = (f"LOAD DATA LOCAL INFILE '{dump}' INTO TABLE pipe_baseline "
            "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' "
            "(id, id_no, name, phone, birth_date, district, score, income, @updated_at) "
            "SET updated_at = LEFT(@updated_at, 26)")
    subprocess.run([*client, "-e", load], check=True)
    return time.perf_counter() - started


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())
    finally:
        engine.dispose()


def _govex(source: str, target: str, rows: int) -> tuple[float, float]:
    """One govex run of the benchmark resource from `source` into `target`: (s, peak MiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _workspace(workdir / "ws", source, target)
        env = {**os.environ, "GOVEX_DB_URL": f"sqlite:///{workdir / 'store.db'}",
               "GOVEX_STAGING_DIR": str(workdir / "staging")}
        seconds, summary, peak = govex_run(workdir, env)
    delivered = summary["deliveries"][0]["delivered"]  # type: ignore[index]
    assert delivered == rows, summary  # noqa: S101 - a benchmark that lost rows is void
    return seconds, peak


def _line(label: str, rows: int, seconds: float) -> None:
    print(f"{label:<34} {seconds:>8.2f} s  {rows / seconds:>10,.0f} rows/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN))
    parser.add_argument("--mariadb", default=os.environ.get("GOVEX_BENCH_MARIADB", MARIADB))
    args = parser.parse_args()
    rows = int(args.rows)
    tag = uuid.uuid4().hex[:8]
    my_src, my_dst = f"govex_bench_mysrc_{tag}", f"govex_bench_mydst_{tag}"
    pg_src, pg_dst = f"govex_bench_pgsrc_{tag}", f"govex_bench_pgdst_{tag}"
    try:
        mariadb_source = _mariadb_database(args.mariadb, my_src)
        mariadb_target = _mariadb_database(args.mariadb, my_dst)
        pg_source = _database(args.admin_url, pg_src)
        pg_target = _database(args.admin_url, pg_dst)
        with sa.create_engine(mariadb_source).begin() as conn:
            conn.exec_driver_sql(MARIADB_DDL)
            conn.exec_driver_sql(MARIADB_FILL.format(rows=rows))
        with psycopg.connect(pg_source) as conn:
            conn.execute(SOURCE_DDL)
            conn.execute(FILL.format(rows=rows))
            conn.execute("ANALYZE residents")

        pipe_in = pipe_mariadb_to_pg(mariadb_source, pg_target)
        govex_in, peak_in = _govex(mariadb_source, pg_target, rows)
        with tempfile.TemporaryDirectory() as tmp:
            pipe_out = pipe_pg_to_mariadb(pg_source, mariadb_target, Path(tmp))
        govex_out, peak_out = _govex(pg_source, mariadb_target, rows)
        for url, table in ((pg_target, "pipe_baseline"), (mariadb_target, "pipe_baseline")):
            counted = _count(url.replace("postgresql://", "postgresql+psycopg://"), table)
            assert counted == rows, (table, counted)  # noqa: S101 - void if rows were lost

        print(f"rows                               {rows:>12,}")
        print("MariaDB → PostgreSQL")
        _line("  mariadb --batch | COPY FROM", rows, pipe_in)
        _line("  govex run (full path)", rows, govex_in)
        print(f"  ratio govex / pipe               {pipe_in / govex_in:>10.2f}  "
              f"(peak {peak_in:.0f} MiB)")
        print("PostgreSQL → MariaDB")
        _line("  COPY TO | LOAD DATA LOCAL INFILE", rows, pipe_out)
        _line("  govex run (full path)", rows, govex_out)
        print(f"  ratio govex / pipe               {pipe_out / govex_out:>10.2f}  "
              f"(peak {peak_out:.0f} MiB)")
    finally:
        _mariadb_drop(args.mariadb, my_src)
        _mariadb_drop(args.mariadb, my_dst)
        _drop(args.admin_url, pg_src)
        _drop(args.admin_url, pg_dst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
