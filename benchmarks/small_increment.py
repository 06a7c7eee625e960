"""The fixed cost of a run: whole-process `govex run` of a 10-row increment, beside `govex
--help` and a bare `python -c pass` measured in the same run (part of `govex bench exchange`).

The resource's quality rules are its contract and national-standard checks (resident ID,
mobile phone, ID/birth date and ID/gender consistency) with no declared `quality.expectations`,
so the run needs no Great Expectations. A second resource on the same table declares one
Great Expectations expectation (`SMALL-GE-001`), the figure for a resource that needs GE. The
source is a SQLite table read by its watermark; before each timed round 10 new rows are added
to it. Medians of `repeat` runs.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

#: The checks every resource of a government exchange carries, as a contract names them.
CONTRACT = {
    "type": "object",
    "required": ["id", "id_no", "name", "updated_at"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "id_no": {"type": "string", "x-govex-checks": ["cn_resident_id"]},
        "name": {"type": "string", "maxLength": 50},
        "gender": {"type": "string", "x-govex-checks": ["id_gender_consistency"]},
        "birth_date": {"type": "string", "format": "date",
                       "x-govex-checks": ["id_birth_date_consistency"]},
        "phone": {"type": "string", "x-govex-checks": ["cn_mobile_phone"]},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
_CHECK = "10X98765432"  # GB 11643 check characters by weighted sum mod 11
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _resident_id(n: int) -> tuple[str, str, str]:
    """(a valid ID number, its birth date, its gender) for row n."""
    birth = f"19{50 + n % 50:02d}-{1 + n % 12:02d}-{1 + n % 28:02d}"
    first = f"110105{birth.replace('-', '')}{n % 1000:03d}"
    check = _CHECK[sum(int(d) * w for d, w in zip(first, _WEIGHTS, strict=True)) % 11]
    return first + check, birth, "男" if int(first[16]) % 2 else "女"


def _add_rows(db: Path, start: int, count: int) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS residents (id INTEGER PRIMARY KEY, id_no TEXT, name TEXT,"
            " gender TEXT, birth_date TEXT, phone TEXT, updated_at TEXT)"
        )
        rows = []
        for n in range(start, start + count):
            id_no, birth, gender = _resident_id(n)
            rows.append((n, id_no, f"居民{n}", gender, birth, f"138{n % 10**8:08d}",
                         f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}+00:00"))
        conn.executemany("INSERT INTO residents VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _workspace(root: Path, source_db: Path, target_db: Path) -> None:
    (root / "contracts" / "small").mkdir(parents=True)
    (root / "contracts" / "small" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    (root / "departments.yaml").write_text(yaml.safe_dump({"departments": [
        {"code": "src", "name": "source"}, {"code": "dst", "name": "consumer"}]}))
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "src_db": {"url": f"sqlite:///{source_db}"}, "dst_db": {"url": f"sqlite:///{target_db}"}}}))
    (root / "resources").mkdir()
    (root / "resources" / "small.yaml").write_text(yaml.safe_dump({
        "code": "SMALL-001", "name": "small", "provider": "src", "contract": "small@1.0.0",
        "key": ["id"], "source": {"connection": "src_db", "table": "residents",
                                  "watermark": "updated_at"},
        "sharing": "unconditional", "classification": "L1", "update_frequency": "P1D",
        "quality": {"max_error_rate": 0.01}}))
    (root / "resources" / "small_ge.yaml").write_text(yaml.safe_dump({
        "code": "SMALL-GE-001", "name": "small, with a declared expectation", "provider": "src",
        "contract": "small@1.0.0", "key": ["id"],
        "source": {"connection": "src_db", "table": "residents", "watermark": "updated_at"},
        "sharing": "unconditional", "classification": "L1", "update_frequency": "P1D",
        "quality": {"max_error_rate": 0.01, "expectations": [
            {"type": "ExpectColumnValueLengthsToBeBetween",
             "kwargs": {"column": "name", "min_value": 1, "max_value": 50}}]}}))
    (root / "subscriptions").mkdir()
    (root / "subscriptions" / "small_ge.yaml").write_text(yaml.safe_dump({
        "id": "SUB-SMALL-GE-001", "resource": "SMALL-GE-001", "consumer": "dst",
        "purpose": "bench", "fields": ["id", "name"],
        "target": {"connection": "dst_db", "table": "residents_ge"}, "mode": "upsert",
        "valid_from": "2026-01-01"}))
    (root / "subscriptions" / "small.yaml").write_text(yaml.safe_dump({
        "id": "SUB-SMALL-001", "resource": "SMALL-001", "consumer": "dst", "purpose": "bench",
        "fields": ["id", "id_no", "name", "gender", "birth_date", "phone"],
        "masking": {"name": "mask_name", "phone": "mask_phone"},
        "target": {"connection": "dst_db", "table": "residents_copy"}, "mode": "upsert",
        "valid_from": "2026-01-01"}))


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        msg = f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
        raise SystemExit(msg)
    return elapsed


def measure(workdir: Path, env: dict[str, str], repeat: int = 5) -> dict[str, float]:
    """Medians in seconds: `python -c pass`, `govex --help`, and `govex run` of 10 new rows
    (after a first run that delivers the table's first 100 rows, not timed), for the resource
    without declared expectations (`run`) and the one with (`run_ge`). `env` names the
    store (GOVEX_DB_URL) and staging; the store is upgraded and the workspace applied here."""
    source, target = workdir / "small_source.db", workdir / "small_target.db"
    _workspace(workdir / "small_ws", source, target)
    _add_rows(source, 1, 100)
    govex = [sys.executable, "-m", "exchange.cli"]
    subprocess.run([*govex, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*govex, "apply", str(workdir / "small_ws")], env=env, check=True,
                   capture_output=True)
    _timed([*govex, "run", "SMALL-001", "--json"], env)
    _timed([*govex, "run", "SMALL-GE-001", "--json"], env)
    runs, ge_runs, helps, bare = [], [], [], []
    for i in range(repeat):
        _add_rows(source, 101 + 10 * i, 10)
        runs.append(_timed([*govex, "run", "SMALL-001", "--json"], env))
        ge_runs.append(_timed([*govex, "run", "SMALL-GE-001", "--json"], env))
        helps.append(_timed([*govex, "--help"], env))
        bare.append(_timed([sys.executable, "-c", "pass"], env))
    return {"run": statistics.median(runs), "run_ge": statistics.median(ge_runs),
            "help": statistics.median(helps), "python": statistics.median(bare)}
