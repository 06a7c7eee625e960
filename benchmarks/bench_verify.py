"""Verification (`POST /api/v1/verify/{code}`) through the HTTP API on a PostgreSQL store, beside
a plain indexed SELECT of the same keys on the same PostgreSQL, in the same run.

    govex bench verify --records 100000      (or: python -m benchmarks.bench_verify --records N)

A fresh PostgreSQL database holds the store and the source table of N people (generated
server-side with generate_series). A workspace with one `delivery: verify` subscription is
applied, and a real run builds its verification index. The web app then serves the API under
uvicorn in its own process(es) on a free port (`--workers`, default 1; access log off), and
this process measures:

(a) single-record calls paced at `--rate` requests/s (default 100) for `--seconds`, latency
    from each call's scheduled start (a late start counts against it) to its answer, p50/p99;
(b) batch calls of `--batch` records (default 1000), `--clients` at a time, in records/s.

Baselines, from the same run on the same database: (a) `SELECT … WHERE id_no = %s` for the
same keys, one at a time over one connection; (b) `SELECT … WHERE id_no = ANY(%s)` of the same
batches. Targets: single-record p99 < 20 ms at 100 req/s, batch > 20,000 records/s. The
server runs with GOVEX_VERIFY_KEY_DAILY raised so that a small --records is not limited.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import yaml

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CODE = "BENCH-VERIFY"
SUBSCRIPTION = "SUB-GSC-V01"
FIELDS = ["name", "birth_date", "score"]
SINGLE_TARGET_MS = 20.0
PACED_CONNECTIONS = 16  # keep-alive connections the paced calls share
BATCH_TARGET = 20_000  # records/s

CONTRACT = {
    "type": "object",
    "required": ["id_no", "name", "updated_at"],
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$",
                  "x-govex-pii": "id_number"},
        "name": {"type": "string", "maxLength": 50, "x-govex-normalize": ["trim", "fullwidth"]},
        "birth_date": {"type": "string", "format": "date"},
        "score": {"type": "number"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}


def _key(i: int) -> str:
    return f"{110105000000000000 + i:018d}"


def _truth(i: int) -> dict[str, object]:
    """What the source holds for person `i` (as the fill below makes it)."""
    day = 1 + i % 28
    return {"name": f"居民{i}", "birth_date": f"1980-02-{day:02d}", "score": (i % 200) / 2}


def _workspace(root: Path, url: str) -> None:
    (root / "contracts" / "people").mkdir(parents=True)
    (root / "contracts" / "people" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "psb", "name": "provider"}, {"code": "gsc", "name": "service centre"}]}))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "src": {"url": url.replace("postgresql://", "postgresql+psycopg://")}}}))
    (root / "resources").mkdir()
    (root / "resources" / "r.yaml").write_text(yaml.safe_dump({
        "code": CODE, "name": "bench", "provider": "psb", "contract": "people@1.0.0",
        "key": ["id_no"],
        "source": {"connection": "src", "table": "people", "watermark": "updated_at"},
        "sharing": "unconditional", "classification": "L2", "update_frequency": "P1D"}))
    (root / "subscriptions").mkdir()
    (root / "subscriptions" / "v.yaml").write_text(yaml.safe_dump({
        "id": SUBSCRIPTION, "resource": CODE, "consumer": "gsc", "purpose": "bench",
        "delivery": "verify", "fields": FIELDS, "valid_from": "2026-01-01"}))


def _fill(url: str, records: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE people (id_no text PRIMARY KEY, name text NOT NULL, birth_date date,"
            " score double precision, updated_at timestamptz NOT NULL)")
        conn.execute(
            "INSERT INTO people SELECT lpad((110105000000000000 + g)::text, 18, '0'), "
            "'居民' || g, date '1980-02-01' + (g %% 28), (g %% 200) / 2.0, "
            "timestamptz '2026-11-01 00:00:00+00' FROM generate_series(0, %s - 1) AS g",
            (records,))
        conn.execute("ANALYZE people")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(store_url: str, staging: str, workers: int) -> Iterator[str]:
    """The web app (`exchange.web.create_app` on GOVEX_DB_URL) under uvicorn on a free port,
    in `workers` processes; its base URL once it answers."""
    port = _free_port()
    env = {**os.environ, "GOVEX_DB_URL": store_url, "GOVEX_STAGING_DIR": staging,
           "GOVEX_VERIFY_KEY_DAILY": "1000000"}
    process = subprocess.Popen(  # noqa: S603 - uvicorn on our own app, fixed arguments
        [sys.executable, "-P", "-m", "uvicorn", "--factory", "exchange.web:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--no-access-log", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:  # noqa: PLR2004
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                msg = f"govex serve did not start (exit {process.poll()})"
                raise RuntimeError(msg)
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _record(i: int) -> dict[str, object]:
    return {"key": {"id_no": _key(i)}, "fields": _truth(i)}


class _Connection:
    """One keep-alive HTTP/1.1 connection: the load generator's own, a few lines of asyncio,
    so that its CPU (an HTTP client library costs a millisecond a call) does not compete with
    the server's on the same machine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str) -> _Connection:
        host, port = base.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def _body(keys: list[int]) -> bytes:
    return json.dumps({"records": [_record(i) for i in keys]}).encode()


def _check(status: int, answer: bytes, size: int) -> None:
    """Every answer is a 200 with every record found and matching (the source's values)."""
    results = json.loads(answer)["results"] if status == 200 else []  # noqa: PLR2004
    if len(results) != size or not all(r.get("match") == dict.fromkeys(FIELDS, True)
                                       for r in results):
        msg = f"unexpected answer {status}: {answer[:200]!r}"
        raise RuntimeError(msg)


async def _paced(base: str, token: str, keys: list[int], rate: float) -> list[float]:
    """One single-record call per key, started every 1/rate s on whichever connection is
    free; latency from the scheduled start, so that a call delayed by a slow one before it
    counts as slow."""
    path = f"/api/v1/verify/{CODE}"
    free: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(PACED_CONNECTIONS):
        free.put_nowait(await _Connection.open(base))
    bodies = [_body([i]) for i in keys]
    for body in bodies[:20]:  # warm the connections, the server's caches and its pool
        connection = await free.get()
        _check(*await connection.post(path, token, body), 1)
        free.put_nowait(connection)
    latencies: list[float] = []
    start = time.perf_counter() + 0.05

    async def one(n: int, body: bytes) -> None:
        scheduled = start + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        connection = await free.get()
        try:
            status, answer = await connection.post(path, token, body)
        finally:
            free.put_nowait(connection)
        latencies.append(time.perf_counter() - scheduled)
        _check(status, answer, 1)

    await asyncio.gather(*(one(n, body) for n, body in enumerate(bodies)))
    while not free.empty():
        free.get_nowait().close()
    return latencies


async def _batches(base: str, token: str, batches: list[list[int]], clients: int) -> float:
    """Seconds to answer every batch, `clients` calls at a time (one connection each)."""
    path = f"/api/v1/verify/{CODE}"
    bodies = [_body(batch) for batch in batches]
    connections = [await _Connection.open(base) for _ in range(clients)]
    _check(*await connections[0].post(path, token, bodies[0]), len(batches[0]))  # warm
    queue = list(zip(bodies, batches, strict=True))
    answered: list[tuple[int, bytes, int]] = []
    started = time.perf_counter()

    async def worker(connection: _Connection) -> None:
        while queue:
            body, batch = queue.pop()
            answered.append((*await connection.post(path, token, body), len(batch)))

    await asyncio.gather(*(worker(c) for c in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    # Checked once the clock stopped: decoding a thousand answers costs the load generator
    # milliseconds of the CPU the server shares with it on this machine.
    for status, answer, size in answered:
        _check(status, answer, size)
    return elapsed


def _baseline_single(url: str, keys: list[int]) -> list[float]:
    samples = []
    with psycopg.connect(url) as conn:
        for i in keys[:20]:
            conn.execute("SELECT name, birth_date, score FROM people WHERE id_no = %s",
                         (_key(i),)).fetchall()
        for i in keys:
            started = time.perf_counter()
            conn.execute("SELECT name, birth_date, score FROM people WHERE id_no = %s",
                         (_key(i),)).fetchall()
            samples.append(time.perf_counter() - started)
    return samples


def _baseline_batches(url: str, batches: list[list[int]]) -> float:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT name FROM people WHERE id_no = ANY(%s)",
                     ([_key(i) for i in batches[0]],)).fetchall()
        started = time.perf_counter()
        for batch in batches:
            conn.execute("SELECT id_no, name, birth_date, score FROM people "
                         "WHERE id_no = ANY(%s)", ([_key(i) for i in batch],)).fetchall()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="people in the source")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="single-record calls per second")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="how long the single-record calls go on")
    parser.add_argument("--batch", type=int, default=1000, help="records per batch call")
    parser.add_argument("--batch-calls", type=int, default=40, help="batch calls made")
    parser.add_argument("--clients", type=int, default=2, help="batch calls at a time")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--admin-url", default=os.environ.get("GOVEX_BENCH_PG", ADMIN))
    args = parser.parse_args()
    if not 1 <= args.batch <= 1000:  # noqa: PLR2004 - the API's limit
        parser.error("--batch must be 1 to 1000")

    import catalog
    from exchange.run import run_resource
    from exchange.store import create_store_engine, tokens, upgrade

    name = f"govex_bench_verify_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = args.admin_url.rsplit("/", 1)[0] + "/" + name
    store_url = url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_store_engine(store_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["GOVEX_STAGING_DIR"] = str(Path(tmp) / "staging")
            upgrade(engine)
            root = Path(tmp) / "ws"
            _workspace(root, url)
            catalog.apply_workspace(engine, root)
            _fill(url, args.records)
            started = time.perf_counter()
            summary = run_resource(engine, CODE)
            build = time.perf_counter() - started
            if summary.status != "success":
                msg = f"the index build failed: {summary.message}"
                raise RuntimeError(msg)
            with engine.begin() as conn:
                token = tokens.create_token(conn, "gsc", "consumer")
            rng = random.Random(14)
            singles = [rng.randrange(args.records) for _ in range(int(args.rate * args.seconds))]
            batches = [[rng.randrange(args.records) for _ in range(args.batch)]
                       for _ in range(args.batch_calls)]
            with _server(store_url, str(Path(tmp) / "staging"), args.workers) as base:
                single = _percentiles(asyncio.run(_paced(base, token, singles, args.rate)))
                batch_seconds = asyncio.run(_batches(base, token, batches, args.clients))
            base_single = _percentiles(_baseline_single(url, singles))
            base_batch_seconds = _baseline_batches(url, batches)
        answered = args.batch * args.batch_calls
        batch_rate = answered / batch_seconds
        base_rate = answered / base_batch_seconds
        print(f"records indexed              {args.records:>12,}  (a `govex run` built the "
              f"index in {build:.1f} s: {args.records / build:,.0f} records/s)")
        print(f"single-record verify, HTTP   p50 {single[0]:7.2f} ms   p99 {single[1]:7.2f} ms"
              f"   ({len(singles)} calls paced at {args.rate:g}/s, {args.workers} server "
              f"process{'es' if args.workers > 1 else ''})")
        print(f"baseline indexed SELECT      p50 {base_single[0]:7.2f} ms   "
              f"p99 {base_single[1]:7.2f} ms   (same keys, one connection)")
        print(f"single p99 ratio             {single[1] / base_single[1]:7.1f}x the baseline")
        print(f"batch verify, HTTP           {batch_rate:12,.0f} records/s   ({args.batch_calls}"
              f" calls of {args.batch}, {args.clients} at a time)")
        print(f"baseline SELECT = ANY(keys)  {base_rate:12,.0f} records/s   (same batches)")
        print(f"batch ratio                  {batch_rate / base_rate:7.2f}x the baseline")
        print(f"target single p99 < {SINGLE_TARGET_MS:g} ms    "
              f"{'met' if single[1] < SINGLE_TARGET_MS else 'NOT met'}")
        print(f"target batch > {BATCH_TARGET:,} rec/s  "
              f"{'met' if batch_rate > BATCH_TARGET else 'NOT met'}")
    finally:
        engine.dispose()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
