"""Which DAG file builds which govex DAGs, so that a large catalog parses as many small files.

`dags/govex_exchanges.py` builds the DAG of every resource. Airflow spends about 10 ms on each
DAG object (the operators, their default arguments, the trigger parameter's JSON Schema), so at
thousands of resources one file takes longer than the DAG processor allows a file
(`dagbag_import_timeout`, 30 s by default) and fails whole. A providing department can
therefore have a DAG file of its own beside it, `govex__<department>.py`, holding exactly that
department's DAGs; the main file then leaves that department out. Every such file has the same
body as the main one: what it builds is chosen by its name (`dags_for_file`), so a department
that appears after the split is built by the main file until the next split, never by none or
by two. `govex dags split DAGS_FOLDER` writes the files (and removes those it wrote for
departments that provide nothing any more).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from airflow.sdk import DAG

from exchange.airflow.factory import build_dags

PREFIX = "govex__"
SUFFIX = ".py"
# The body of every govex DAG file, the main one included (dags/govex_exchanges.py).
BODY = '''"""govex DAGs, built from the metadata store at GOVEX_DB_URL. A file named
govex__<department>.py holds that providing department's DAGs (`govex dags split` writes
them); any other file, those of every department without such a file beside it. Edit the
workspace and `govex apply`, not this file."""

from exchange.airflow import dags_for_file

globals().update(dags_for_file(__file__))
'''


def department_file(department: str) -> str:
    """The name of the DAG file that holds `department`'s DAGs."""
    return f"{PREFIX}{department}{SUFFIX}"


def department_of(path: str | Path) -> str | None:
    """The department a DAG file stands for by its name; None for any other file."""
    name = Path(path).name
    if name.startswith(PREFIX) and name.endswith(SUFFIX) and len(name) > len(PREFIX + SUFFIX):
        return name[len(PREFIX):-len(SUFFIX)]
    return None


def departments_with_files(folder: Path) -> set[str]:
    """The departments that have a DAG file of their own in `folder`."""
    return {d for p in folder.glob(f"{PREFIX}*{SUFFIX}") if (d := department_of(p))}


def dags_for_file(path: str | Path, store_url: str | None = None) -> dict[str, DAG]:
    """The DAGs the DAG file at `path` holds: its department's when it is named
    `govex__<department>.py`, else those of every department without such a file beside it."""
    department = department_of(path)
    if department is not None:
        return build_dags(store_url, departments=[department])
    return build_dags(store_url, skip_departments=departments_with_files(Path(path).parent))


@dataclass(frozen=True)
class Split:
    """What `write_department_files` changed in the DAG folder."""

    written: tuple[str, ...]  # file names written (departments that had no file)
    unchanged: tuple[str, ...]  # file names already there with our body
    removed: tuple[str, ...]  # file names of departments that provide nothing now
    kept: tuple[str, ...]  # department files with another body than ours: left alone


def write_department_files(folder: Path, departments: Iterable[str]) -> Split:
    """One DAG file per department in `folder`, each with `BODY`; a department file this
    module wrote for a department not among `departments` is removed. A file of that name
    with another body (edited by hand) is neither rewritten nor removed."""
    wanted = {department_file(d) for d in departments}
    written, unchanged, removed, kept = [], [], [], []
    for name in sorted(wanted):
        path = folder / name
        if not path.exists():
            path.write_text(BODY, encoding="utf-8")
            written.append(name)
        elif path.read_text(encoding="utf-8") == BODY:
            unchanged.append(name)
        else:
            kept.append(name)
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        if path.name in wanted or department_of(path) is None:
            continue
        if path.read_text(encoding="utf-8") == BODY:
            path.unlink()
            removed.append(path.name)
        else:
            kept.append(path.name)
    return Split(tuple(written), tuple(unchanged), tuple(removed), tuple(kept))
