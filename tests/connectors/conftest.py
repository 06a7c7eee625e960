"""Backends for the shared connector conformance tests: each yields (kind, target, fmt)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BACKENDS = [
    pytest.param("postgresql", marks=pytest.mark.integration, id="postgresql"),
    pytest.param("mariadb", marks=pytest.mark.integration, id="mariadb"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("csv", id="csv"),
    pytest.param("jsonl", id="jsonl"),
]


@dataclass(frozen=True)
class Backend:
    name: str
    kind: str
    target: str
    fmt: str | None

    @property
    def is_sql(self) -> bool:
        return self.kind == "url"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = request.param
    if name == "postgresql":
        yield Backend(name, "url", request.getfixturevalue("pg_url"), None)
    elif name == "mariadb":
        yield Backend(name, "url", request.getfixturevalue("mariadb_url"), None)
    elif name == "sqlite":
        yield Backend(name, "url", f"sqlite:///{tmp_path / 'target.db'}", None)
    else:
        yield Backend(name, "path", str(tmp_path), name)
