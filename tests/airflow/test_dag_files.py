"""DAG files at catalog scale (issue #15 item 7): one file per providing department
(`exchange.airflow.dag_files`, `govex dags split`), each holding exactly its department's DAGs
and the main file every department without one; catalog reads at parse time a constant number
of queries, also at 5,000 resources. The parse time itself is `govex bench catalog`'s."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from airflow.dag_processing.dagbag import DagBag

from benchmarks import large_catalog
from exchange.airflow import build_dags, dag_files
from exchange.airflow.factory import read_catalog
from exchange.cli import main as govex

SMALL, DEPARTMENTS = 60, 3


def _store(root: Path, resources: int, departments: int) -> str:
    url = f"sqlite:///{root / 'govex.db'}"
    large_catalog.build_store(url, resources, departments=departments,
                              runs_per_resource=0).dispose()
    return url


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("dag-files-small"), SMALL, DEPARTMENTS)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _store(tmp_path_factory.mktemp("dag-files-big"), 5000, large_catalog.DEPARTMENTS)


@pytest.fixture
def store_queries() -> Iterator[list[str]]:
    """Every statement any engine runs meanwhile (the factory makes its own engine)."""
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


def _dag_ids(department: str, resources: int, departments: int) -> set[str]:
    return {f"govex__{large_catalog.resource_code(i)}" for i in range(resources)
            if large_catalog.provider_of(i, departments) == department}


def _by_file(folder: Path) -> dict[str, set[str]]:
    """What Airflow's DagBag finds in `folder`: DAG ids by file name; no import errors."""
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    found: dict[str, set[str]] = {}
    for dag_id, dag in bag.dags.items():
        found.setdefault(Path(dag.fileloc).name, set()).add(dag_id)
    return found


def test_each_department_file_holds_exactly_its_dags(
    small_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_DB_URL", small_store)
    (tmp_path / "govex_exchanges.py").write_text(dag_files.BODY, encoding="utf-8")
    split = dag_files.write_department_files(tmp_path, ["d000", "d001"])
    assert split.written == ("govex__d000.py", "govex__d001.py")
    assert _by_file(tmp_path) == {
        "govex__d000.py": _dag_ids("d000", SMALL, DEPARTMENTS),
        "govex__d001.py": _dag_ids("d001", SMALL, DEPARTMENTS),
        "govex_exchanges.py": _dag_ids("d002", SMALL, DEPARTMENTS),  # no file of its own
    }
    # d001 provides nothing any more: its file goes, and the main file takes its DAGs back.
    split = dag_files.write_department_files(tmp_path, ["d000"])
    assert (split.unchanged, split.removed) == (("govex__d000.py",), ("govex__d001.py",))
    assert _by_file(tmp_path) == {
        "govex__d000.py": _dag_ids("d000", SMALL, DEPARTMENTS),
        "govex_exchanges.py": _dag_ids("d001", SMALL, DEPARTMENTS)
        | _dag_ids("d002", SMALL, DEPARTMENTS),
    }


def test_split_leaves_hand_edited_files_alone(tmp_path: Path) -> None:
    edited = tmp_path / "govex__d000.py"
    edited.write_text("# my own DAGs\n", encoding="utf-8")
    stale = tmp_path / "govex__gone.py"
    stale.write_text("# mine too\n", encoding="utf-8")
    split = dag_files.write_department_files(tmp_path, ["d000", "d001"])
    assert split.written == ("govex__d001.py",)
    assert split.kept == ("govex__d000.py", "govex__gone.py")
    assert edited.read_text(encoding="utf-8") == "# my own DAGs\n"
    assert stale.exists()


def test_the_repository_dag_file_is_the_shared_body() -> None:
    from .conftest import DAGS

    assert (DAGS / "govex_exchanges.py").read_text(encoding="utf-8") == dag_files.BODY
    assert dag_files.department_of("govex_exchanges.py") is None
    assert dag_files.department_of("/x/govex__psb.py") == "psb"
    assert dag_files.department_of("govex__.py") is None


def test_govex_dags_split_writes_one_file_per_providing_department(
    small_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GOVEX_DB_URL", small_store)
    assert govex(["dags", "split", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "govex__d000.py", "govex__d001.py", "govex__d002.py"]
    assert "3 providing departments: 3 DAG files written, 0 unchanged, 0 removed" in (
        capsys.readouterr().out)
    assert govex(["dags", "split", str(tmp_path)]) == 0
    assert "0 DAG files written, 3 unchanged" in capsys.readouterr().out
    assert govex(["dags", "split", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_at_5000_resources_catalog_reads_are_two_queries(
    big_store: str, store_queries: list[str], tmp_path: Path
) -> None:
    resources, subscriptions = read_catalog(big_store)
    assert len(resources) == 5000
    assert sum(len(s) for s in subscriptions.values()) == 5000
    selects = [q for q in store_queries if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2

    store_queries.clear()
    dags = build_dags(big_store, departments=["d007"])
    assert set(dags) == _dag_ids("d007", 5000, large_catalog.DEPARTMENTS)
    assert len(dags) == 25
    assert len([q for q in store_queries if re.match(r"\s*SELECT", q, re.I)]) == 2

    # Every department split off: the main file reads (two queries) and builds nothing.
    departments = [large_catalog.department(n) for n in range(large_catalog.DEPARTMENTS)]
    dag_files.write_department_files(tmp_path, departments)
    store_queries.clear()
    assert dag_files.dags_for_file(tmp_path / "govex_exchanges.py", big_store) == {}
    assert len([q for q in store_queries if re.match(r"\s*SELECT", q, re.I)]) == 2
    # A department file builds its own, whichever department it is.
    for department in ("d000", "d199"):
        built = dag_files.dags_for_file(tmp_path / f"govex__{department}.py", big_store)
        assert set(built) == _dag_ids(department, 5000, large_catalog.DEPARTMENTS)
