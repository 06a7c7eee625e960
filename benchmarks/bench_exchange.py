"""Exchange throughput: PostgreSQL → PostgreSQL through the full govex run, against a raw
`COPY TO` → `COPY FROM` pipe of the same rows and against dlt (`benchmarks.dlt_baseline`),
both measured in the same run.

    govex bench exchange --rows 1000000      (or: python -m benchmarks.bench_exchange --rows N)
    govex bench exchange --staging s3        (also: the same run staged on S3, beside local)

The source table is what real department tables often are: no index on the watermark column,
and every row with the same `updated_at` (a bulk import), so a run cannot lean on either.

The govex run (contract check, gate, masking of two fields, upsert load, provenance, run
bookkeeping) runs in a child process so its peak resident memory is its own; the figure to
watch is that it does not grow with N (batches are bounded by GOVEX_BATCH_ROWS).

With `--staging s3` the govex run is made twice in the same benchmark, staged on local disk
and then on S3 (GOVEX_STAGING_URL=s3://…), each into a fresh target database, so the cost of
object storage reads beside local staging. The S3 endpoint is AWS_ENDPOINT_URL with the
standard AWS credentials when set (the bucket must exist: `--bucket`); else a local S3-API
server (moto, from govex's dev extra) is started on 127.0.0.1 for the benchmark, and labelled
so: it measures govex's S3 path, not a network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import yaml

from benchmarks import small_increment

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

CONTRACT = {
    "type": "object",
    "required": ["id", "id_no", "name", "updated_at"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
        "name": {"type": "string", "maxLength": 50},
        "phone": {"type": "string", "pattern": "^1[3-9][0-9]{9}$"},
        "birth_date": {"type": "string", "format": "date"},
        "district": {"type": "string", "enum": ["东城区", "西城区", "朝阳区", "海淀区"]},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "income": {"type": "number", "minimum": 0},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

SOURCE_DDL = """
CREATE TABLE residents (
  id bigint PRIMARY KEY, id_no text NOT NULL, name text NOT NULL, phone text,
  birth_date date, district text, score integer, income double precision,
  updated_at timestamptz NOT NULL)
"""
FILL = """
INSERT INTO residents
SELECT g, lpad((110105000000000000 + g)::text, 18, '0'), '居民' || g,
       '138' || lpad((g % 100000000)::text, 8, '0'), date '1950-01-01' + (g % 20000),
       (ARRAY['东城区','西城区','朝阳区','海淀区'])[1 + g % 4], g % 101, (g % 10000) * 1.5,
       timestamptz '2026-01-01 00:00:00+00'
FROM generate_series(1, {rows}) AS g
"""
COLUMNS = "id, id_no, name, phone, birth_date, district, score, income, updated_at"


def _database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + "/" + name


def _drop(admin: str, name: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settle(admin: str) -> None:
    """A CHECKPOINT before each timed section: the WAL the previous section wrote (a million
    rows is about 200 MB) would otherwise force one in the middle of the next, whichever that
    is. Skipped, with a note, for a role that may not (PostgreSQL 15+: pg_checkpoint)."""
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        print("(no CHECKPOINT between sections: the admin role may not)", file=sys.stderr)


def baseline(source: str, target: str) -> float:
    """COPY TO from the source streamed straight into COPY FROM on the target."""
    with psycopg.connect(target) as dst:
        dst.execute(SOURCE_DDL.replace("residents", "copy_baseline"))
        dst.commit()
    started = time.perf_counter()
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        with src.cursor().copy(f"COPY (SELECT {COLUMNS} FROM residents) TO STDOUT") as out, \
                dst.cursor().copy(f"COPY copy_baseline ({COLUMNS}) FROM STDIN") as into:
            for chunk in out:
                into.write(chunk)
        dst.commit()
    return time.perf_counter() - started


def dlt_run(source: str, target: str, rows: int) -> float:
    """dlt's copy of the source table into `target`, as a whole process: seconds."""
    # dlt's PostgreSQL credentials insist on a password; a trust-auth server ignores it.
    with_password = target.replace("postgresql://postgres@", "postgresql://postgres:unused@")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.dlt_baseline", "--source", source,
         "--target", with_password, "--table", "residents", "--key", "id"],
        check=False, capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        msg = f"the dlt baseline failed:\n{done.stdout}\n{done.stderr}"
        raise SystemExit(msg)
    loaded = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    assert loaded == rows, loaded  # noqa: S101 - a baseline that lost rows is void
    return elapsed


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


def _workspace(root: Path, source: str, target: str) -> None:
    (root / "contracts" / "bench").mkdir(parents=True)
    (root / "contracts" / "bench" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "src", "name": "source"}, {"code": "dst", "name": "consumer"}]}))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "src_db": {"url": sqlalchemy_url(source)}, "dst_db": {"url": sqlalchemy_url(target)}}}))
    (root / "resources").mkdir()
    (root / "resources" / "bench.yaml").write_text(yaml.safe_dump({
        "code": "BENCH-001", "name": "bench", "provider": "src", "contract": "bench@1.0.0",
        "key": ["id"], "source": {"connection": "src_db", "table": "residents",
                                  "watermark": "updated_at"},
        "sharing": "unconditional", "classification": "L1", "update_frequency": "P1D",
        "quality": {"max_error_rate": 0.01}}))
    (root / "subscriptions").mkdir()
    (root / "subscriptions" / "bench.yaml").write_text(yaml.safe_dump({
        "id": "SUB-BENCH-001", "resource": "BENCH-001", "consumer": "dst", "purpose": "bench",
        "fields": ["id", "id_no", "name", "phone", "birth_date", "district", "score", "income"],
        "masking": {"name": "mask_name", "phone": "mask_phone"},
        "target": {"connection": "dst_db", "table": "residents_copy"}, "mode": "upsert",
        "valid_from": "2026-01-01"}))


def govex_run(workdir: Path, env: dict[str, str]) -> tuple[float, dict[str, object], float]:
    """(seconds, run summary, peak RSS of the run's own process in MiB). The peak is that
    child's (`os.wait4`): the benchmark's other children (dlt, earlier rounds) are not it. On
    Linux it starts at this process's peak when forked, which stays far below a run's."""
    subprocess.run([sys.executable, "-m", "exchange.cli", "apply", str(workdir / "ws")],
                   env=env, check=True, capture_output=True)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "exchange.cli", "run", "BENCH-001",
                                  "--json"], env=env, stdout=out, stderr=err)
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        except BaseException:  # interrupted: the run does not outlive the benchmark
            child.kill()
            child.wait()
            raise
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        msg = f"govex run failed:\n{stdout}\n{stderr}"
        raise SystemExit(msg)
    return elapsed, json.loads(stdout), usage.ru_maxrss / 1024


@contextlib.contextmanager
def s3_staging(bucket: str | None) -> Iterator[tuple[dict[str, str], str, str]]:
    """(environment, staging URL, label) of S3 staging: AWS_ENDPOINT_URL's when set, else a
    local S3-API server (moto) started for the benchmark."""
    import boto3

    if os.environ.get("AWS_ENDPOINT_URL") or bucket:
        if not bucket:
            msg = "--staging s3 against AWS_ENDPOINT_URL needs --bucket NAME (an existing bucket)"
            raise SystemExit(msg)
        endpoint = os.environ.get("AWS_ENDPOINT_URL", "AWS")
        yield {}, f"s3://{bucket}/govex-bench-{uuid.uuid4().hex[:8]}", f"S3 at {endpoint}"
        return
    from benchmarks.s3_server import local_s3_server, s3_environment

    with local_s3_server() as endpoint:
        env = s3_environment(endpoint)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                     region_name=env["AWS_DEFAULT_REGION"]).create_bucket(Bucket="govex-bench")
        yield env, "s3://govex-bench/staging", "local S3-API server (moto, 127.0.0.1)"


def staged_run(
    source: str, target: str, staging: dict[str, str], rows: int | None = None
) -> tuple[float, float]:
    """One whole-process govex run of the benchmark into `target` on a fresh SQLite store,
    staged as `staging` says (none: local): (seconds, peak MiB). Every row read (`rows`, when
    given) must arrive."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _workspace(workdir / "ws", source, target)
        inherited = {k: v for k, v in os.environ.items() if k != "GOVEX_STAGING_URL"}
        env = {**inherited, "GOVEX_DB_URL": f"sqlite:///{workdir / 'store.db'}",
               "GOVEX_STAGING_DIR": str(workdir / "staging"),
               "GOVEX_DATA_DOCS_DIR": str(workdir / "data_docs"), **staging}
        seconds, summary, peak_mib = govex_run(workdir, env)
    delivered = summary["deliveries"][0]["delivered"]  # type: ignore[index]
    expected = rows if rows is not None else int(summary["read"])  # type: ignore[call-overload]
    assert delivered == expected, summary  # noqa: S101 - a benchmark that lost rows is void
    return seconds, peak_mib


def _small_increment(admin: str, tag: str) -> None:
    """The fixed cost of a run (`small_increment`): a 10-row increment as a whole process, on
    a SQLite and a PostgreSQL store, beside `govex --help` and `python -c pass`."""
    store_name = f"govex_bench_store_{tag}"
    try:
        for label, url in (("SQLite", None), ("PostgreSQL", _database(admin, store_name))):
            with tempfile.TemporaryDirectory() as tmp:
                workdir = Path(tmp)
                store = sqlalchemy_url(url) if url else f"sqlite:///{workdir / 'store.db'}"
                env = {**os.environ, "GOVEX_DB_URL": store,
                       "GOVEX_STAGING_DIR": str(workdir / "staging"),
                       "GOVEX_DATA_DOCS_DIR": str(workdir / "docs")}
                small = small_increment.measure(workdir, env)
            print(f"10-row run, {label + ' store':<16} {small['run']:>6.2f} s  (median of 5; "
                  f"govex --help {small['help']:.2f} s, python -c pass {small['python']:.2f} s)")
            print(f"  with a declared GE expectation  {small['run_ge']:>6.2f} s")
    finally:
        _drop(admin, store_name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN))
    parser.add_argument("--staging", choices=["local", "s3"], default="local",
                        help="s3: also run staged on S3 and report it beside local staging")
    parser.add_argument("--bucket", help="existing bucket for --staging s3 with AWS_ENDPOINT_URL")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of COPY pipe then govex run; medians are printed "
                             "(a shared machine's minutes differ)")
    parser.add_argument("--no-small-increment", action="store_true",
                        help="skip the 10-row runs (the fixed cost; ten more processes)")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    src_name, dst_name = f"govex_bench_src_{tag}", f"govex_bench_dst_{tag}"
    s3_name, dlt_name = f"govex_bench_s3_{tag}", f"govex_bench_dlt_{tag}"
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    source = _database(args.admin_url, src_name)
    try:
        with psycopg.connect(source) as conn:
            conn.execute(SOURCE_DDL)
            conn.execute(FILL.format(rows=int(args.rows)))
            conn.execute("ANALYZE residents")
            conn.commit()
        dlt_target = _database(args.admin_url, dlt_name)
        settle(args.admin_url)
        dlt_seconds = dlt_run(source, dlt_target, args.rows)
        pairs: list[tuple[float, float]] = []  # (COPY pipe, govex) seconds, one pair a round
        peak_mib = 0.0
        for _round in range(args.repeat):
            target = _database(args.admin_url, dst_name)  # fresh for both, every round
            settle(args.admin_url)
            copy_seconds = baseline(source, target)
            settle(args.admin_url)
            seconds, peak = staged_run(source, target, {}, rows=args.rows)
            pairs.append((copy_seconds, seconds))
            peak_mib = max(peak_mib, peak)
        copy_seconds = statistics.median(c for c, _ in pairs)
        seconds = statistics.median(g for _, g in pairs)
        ratios = [c / g for c, g in pairs]
        ours, base = args.rows / seconds, args.rows / copy_seconds
        print(f"rows                      {args.rows:>12,}")
        print(f"rounds                    {args.repeat:>12}  (COPY pipe then govex, a "
              "CHECKPOINT before each; medians)")
        print(f"baseline COPY→COPY        {copy_seconds:>10.2f} s  {base:>12,.0f} rows/s")
        print(f"govex run (full path)     {seconds:>10.2f} s  {ours:>12,.0f} rows/s")
        print(f"dlt (pyarrow, merge)      {dlt_seconds:>10.2f} s  "
              f"{args.rows / dlt_seconds:>12,.0f} rows/s")
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"ratio govex / COPY pipe   {statistics.median(ratios):>12.2f}  (each round: {each}; "
              "target 0.35, practical limit 0.5: provenance is a second COPY)")
        print(f"ratio govex / dlt         {dlt_seconds / seconds:>12.2f}  (above 1: govex faster)")
        print(f"govex peak memory         {peak_mib:>10.0f} MiB")
        if not args.no_small_increment:
            _small_increment(args.admin_url, tag)
        if args.staging == "s3":
            with s3_staging(args.bucket) as (env, url, label):
                s3_target = _database(args.admin_url, s3_name)
                settle(args.admin_url)
                s3_seconds, s3_peak = staged_run(source, s3_target,
                                                 {**env, "GOVEX_STAGING_URL": url})
            print(f"staged on S3: {label}")
            print(f"govex run, S3 staging     {s3_seconds:>10.2f} s  "
                  f"{args.rows / s3_seconds:>12,.0f} rows/s")
            print(f"S3 / local staging time   {s3_seconds / seconds:>12.2f}  "
                  f"(+{s3_seconds - seconds:.2f} s)")
            print(f"govex peak memory, S3     {s3_peak:>10.0f} MiB")
    finally:
        _drop(args.admin_url, src_name)
        _drop(args.admin_url, dst_name)
        _drop(args.admin_url, s3_name)
        _drop(args.admin_url, dlt_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
