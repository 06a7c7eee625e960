"""The fixed cost of a run, as the modules it imports (a module list, not a timing): a run of
a resource without declared expectations imports no Great Expectations, SciPy, Alembic,
jsonschema, openlineage-python, YAML or the modules of `govex apply`, corrections and
reconciliations, and `govex --help` no command's heavy dependencies (issue #16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import small_increment

GOVEX = [sys.executable, "-X", "importtime", "-m", "exchange.cli"]


def _imported(argv: list[str], env: dict[str, str]) -> set[str]:
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines() if line.startswith("import time:")
    }


def _roots(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ, "GOVEX_DB_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "GOVEX_STAGING_DIR": str(tmp_path / "staging"),
        "GOVEX_DATA_DOCS_DIR": str(tmp_path / "docs"),
    }


def test_a_run_without_expectations_imports_no_great_expectations(
    tmp_path: Path, env: dict[str, str]
) -> None:
    source, target = tmp_path / "source.db", tmp_path / "target.db"
    small_increment._workspace(tmp_path / "ws", source, target)
    small_increment._add_rows(source, 1, 10)
    cli = [sys.executable, "-m", "exchange.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([*cli, "apply", str(tmp_path / "ws")], env=env, check=True,
                   capture_output=True)
    modules = _imported([*GOVEX, "run", "SMALL-001", "--json"], env)
    roots = _roots(modules)
    assert "exchange" in roots  # the listing works
    assert not roots & {"great_expectations", "scipy"}
    # Reading and applying a workspace (YAML, its files), a dispute's correction, a key
    # reconciliation and the Kafka ingest worker are other commands' work.
    assert "yaml" not in roots
    assert not modules & {"catalog.apply", "catalog.workspace", "exchange.run.correction",
                          "exchange.run.reconcile", "exchange.ingest.worker"}
    # An up-to-date store is checked without Alembic; nothing in a run validates with jsonschema.
    assert not roots & {"alembic", "jsonschema"}
    # Its lineage events are JSON built by govex: openlineage-python (which loads every
    # transport it has, HTTP clients and all) is imported only to send events on.
    assert not roots & {"openlineage", "requests", "httpx", "httpx2", "fsspec"}
    # The run's Data Docs wait for the web app to render them (GE is imported there).
    assert any((tmp_path / "docs" / ".pending").glob("*.json"))


def test_help_imports_no_heavy_dependency(env: dict[str, str]) -> None:
    """Every command module imports its dependencies in its handler: `--help` loads none."""
    roots = _roots(_imported([*GOVEX, "--help"], env))
    assert "exchange" in roots
    assert not roots & {"sqlalchemy", "alembic", "pydantic", "pyarrow", "numpy",
                        "great_expectations", "scipy", "airflow", "fastapi", "pandas",
                        "openlineage"}


FREEZES = """
import gc, sys
from exchange.cli.main import main
sys.argv = ["govex", "--help"]
try:
    main({argv})
except SystemExit:
    pass
print(gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(("argv", "frozen"), [("", "True"), ("['--help']", "False")])
def test_the_last_garbage_collections_are_skipped_only_when_the_process_ends(
    argv: str, frozen: str, env: dict[str, str]
) -> None:
    """`govex …` freezes the heap as it returns (the interpreter's last collections cost a fifth
    of a small run); a caller that passes `argv`, and goes on, keeps its collector."""
    done = subprocess.run([sys.executable, "-c", FREEZES.format(argv=argv)], env=env,
                          check=True, capture_output=True, text=True)
    assert done.stdout.split()[-1] == frozen


LOADS = """
import gc, sys
import exchange.store
from exchange.cli.main import main

def opening(settings):  # the run's first step once its modules are loaded
    print(gc.get_freeze_count() > 0, gc.isenabled())
    raise SystemExit(0)

exchange.store.open_store = opening
sys.argv = ["govex", "run", "SMALL-001"]
main({argv})
"""


@pytest.mark.parametrize(("argv", "frozen"), [("", "True"), ("['run', 'SMALL-001']", "False")])
def test_a_run_leaves_what_its_modules_made_to_the_end_of_the_process(
    argv: str, frozen: str, env: dict[str, str]
) -> None:
    """`govex run` freezes what loading its modules made before it starts (the collector would
    walk it again and again); in a process that goes on, the collector is left as it was. Both
    end with the collector running."""
    done = subprocess.run([sys.executable, "-c", LOADS.format(argv=argv)], env=env,
                          check=True, capture_output=True, text=True)
    assert done.stdout.split()[-2:] == [frozen, "True"]
