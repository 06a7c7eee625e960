"""Dataset naming: one source of truth, compatible with what the Airflow operators report."""

from __future__ import annotations

from pathlib import Path

import pytest

import catalog
import lineage


@pytest.mark.parametrize(
    ("url", "table", "expected"),
    [
        ("postgresql+psycopg://u:pw@db:5433/psb", "residents",
         ("postgres://db:5433", "psb.public.residents")),
        ("postgresql://db/psb", "hr.staff", ("postgres://db:5432", "psb.hr.staff")),
        ("mysql+pymysql://root:pw@amr/amr", "entities", ("mysql://amr:3306", "amr.entities")),
        ("mariadb+pymysql://root@amr:3307/amr", "entities", ("mysql://amr:3307", "amr.entities")),
        ("sqlite:////srv/gsc.db", "t", ("sqlite:///srv/gsc.db", "main.t")),
        ("sqlite://", "t", ("sqlite://:memory:", "main.t")),
    ],
)
def test_sql_datasets(url: str, table: str, expected: tuple[str, str]) -> None:
    dataset = lineage.sql_dataset(url, table)
    assert (dataset.namespace, dataset.name) == expected
    assert "pw" not in dataset.namespace


def test_connections(tmp_path: Path) -> None:
    files = catalog.ResolvedConnection("files", "path", str(tmp_path), "jsonl")
    assert lineage.connection_dataset(files, "residents") == lineage.DatasetName(
        "file", str(tmp_path / "residents.jsonl")
    )
    bus = catalog.ResolvedConnection("bus", "kafka", "k1:9092, k2:9092")
    assert lineage.connection_dataset(bus, "govex.ingest.TAX-RES-001") == lineage.DatasetName(
        "kafka://k1:9092", "govex.ingest.TAX-RES-001"
    )
    relative = catalog.ResolvedConnection("db", "url", "sqlite:///data/x.db")
    assert lineage.connection_dataset(relative, "t").namespace == (
        f"sqlite://{(Path.cwd() / 'data' / 'x.db').resolve()}"
    )
