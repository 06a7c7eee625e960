"""The city of tests/disclosure/city.py, delivered once per module by real `govex run`s into
SQLite targets, and helpers that write a leaked sample the way a leaker would."""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.disclosure.city import City, build_city


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """Both resources run once: every bulk subscription holds its copy. GOVEX_DB_URL points
    at the city's store while the module's tests run."""
    tmp = tmp_path_factory.mktemp("leak_city")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOVEX_STAGING_DIR", str(tmp / "staging"))
        city = build_city(tmp)
        patch.setenv("GOVEX_DB_URL", city.store_url)
        city.run("PSB-RES-001")
        city.run("HRSS-RES-001")
        yield city


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """The city applied, nothing run: enough for answers that never reach provenance."""
    tmp = tmp_path_factory.mktemp("leak_catalog")
    with pytest.MonkeyPatch.context() as patch:
        city = build_city(tmp, people=10)
        patch.setenv("GOVEX_DB_URL", city.store_url)
        yield city


def leak_sample(
    rows: Sequence[dict[str, Any]], n: int, *, rename: dict[str, str] | None = None,
    seed: int = 14,
) -> tuple[list[str], list[list[Any]]]:
    """`n` rows of a target table as a leaker passes them on: a random sample, govex's
    columns dropped, the columns shuffled, some renamed."""
    chance = random.Random(seed)
    picked = chance.sample(list(rows), n)
    columns = [c for c in picked[0] if not c.startswith("_govex_")]
    chance.shuffle(columns)
    header = [(rename or {}).get(c, c) for c in columns]
    return header, [[row[c] for c in columns] for row in picked]


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows([["" if v is None else str(v) for v in row] for row in rows])
    return path


def write_jsonl(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False,
                                 default=str) + "\n")
    return path
