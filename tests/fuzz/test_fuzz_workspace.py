"""Fuzz: `govex apply` on damaged copies of the demo city's workspace.

Each example copies the demo workspace and a store that already holds its catalog, then damages
one or two files: random bytes, a random YAML document, or a structural edit of the real
declaration (a value replaced by a random scalar, list or mapping; a key deleted; an unknown key
added), or a new file. `govex apply` (in process, SQLite store) must either succeed or refuse
with exit 2 and one single-line `error: ...` per problem, never a traceback; and a refused
apply leaves every table of the store exactly as it was. Fixed, derandomised budget.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange.cli import main
from exchange.demo.files import copy_workspace, packaged_workspace

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

# The packaged declarations: read here, never written (each example works on a copy).
_WS = packaged_workspace()
FILES = sorted(
    str(p.relative_to(_WS)) for p in _WS.rglob("*")
    if p.suffix in (".yaml", ".json") and not {"data", "__pycache__"} & set(p.parts)
)


def _run_apply(ws: Path, store: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"GOVEX_DB_URL": f"sqlite:///{store}"}
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        for name in [n for n in os.environ if n.startswith("GOVEX_DEMO_")]:
            del os.environ[name]
        code = main(["apply", str(ws)])
    return code, out.getvalue(), err.getvalue()


def _snapshot(store: Path) -> dict[str, list[str]]:
    """Every row of every table of the store."""
    engine = sa.create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {
                name: sorted(
                    json.dumps(dict(r), sort_keys=True, default=str)
                    for r in conn.execute(sa.text(f'SELECT * FROM "{name}"')).mappings()
                )
                for name in names
            }
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def applied_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the demo workspace's catalog, to copy for each example."""
    root = tmp_path_factory.mktemp("fuzz-store")
    store = root / "govex.db"
    code, _, err = _run_apply(copy_workspace(root / "ws"), store)
    assert code == 0, err
    return store


# -- strategies --------------------------------------------------------------------------------

_text = st.text(max_size=12) | st.sampled_from(
    ["", "~", "null", "${GOVEX_UNSET}", "${X:-sqlite:///data/x.db}", "L4", "none", "P1D",
     "2026-13-01", "psb", "PSB-RES-001", "resident_identity@9.9.9", "*", "&a", "\x00", "\t",
     "9" * 400, "---", "'", "\"", "{", "[", ": x", "- y"])
_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**100), 2**100)
            | st.floats() | _text | st.dates())
yaml_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*here, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*here, i))


@st.composite
def structural_edit(draw: st.DrawFn, doc: Any) -> Any:
    """`doc` with one value replaced, one key deleted or one unknown key added."""
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if not path:
        return draw(yaml_values) if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = draw(yaml_values)
    elif action == "delete":
        del parent[last]
    else:
        target = parent[last]
        if isinstance(target, dict):
            target[draw(_text)] = draw(yaml_values)
        elif isinstance(target, list):
            target.append(draw(yaml_values))
        else:
            parent[last] = draw(yaml_values)
    return doc


def _dump(value: Any, file: str) -> bytes:
    if file.endswith(".json"):
        return json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False).encode(
        "utf-8", "surrogatepass")


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, bytes]:
    """(a workspace file, its new content)."""
    file, content = draw(_damage())
    return file, content


@st.composite
def _damage(draw: st.DrawFn) -> tuple[str, bytes]:
    new_file = draw(st.sampled_from(
        ["resources/fuzz.yaml", "subscriptions/fuzz.yaml", "contracts/fuzz/1.0.0.json"]))
    file = draw(st.sampled_from(FILES) | st.just(new_file))
    kind = draw(st.sampled_from(["bytes", "document", "edit", "edit", "edit", "edit", "text"]))
    seed = file if (_WS / file).exists() else (
        "contracts/tax_credit_rating/1.0.0.json" if file.endswith(".json")
        else "resources/psb-residents.yaml")
    original = (_WS / seed).read_text("utf-8")
    if kind == "bytes":
        return file, draw(st.binary(max_size=300))
    if kind == "document":
        return file, _dump(draw(yaml_values), file)
    if kind == "text":
        at = draw(st.integers(0, len(original)))
        cut = draw(st.integers(0, 20))
        return file, (original[:at] + draw(_text) + original[at + cut:]).encode(
            "utf-8", "surrogatepass")
    doc = json.loads(original) if file.endswith(".json") else yaml.safe_load(original)
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(structural_edit(doc))
    return file, _dump(doc, file)


# -- the property --------------------------------------------------------------------------------


@FUZZ
@given(changes=st.lists(damage(), min_size=1, max_size=2))
def test_apply_of_damaged_workspace_succeeds_or_refuses_cleanly(
    applied_store: Path, changes: list[tuple[str, bytes]],
) -> None:
    with tempfile.TemporaryDirectory(prefix="govex-fuzz-") as tmp:
        ws = copy_workspace(Path(tmp) / "ws")
        store = Path(tmp) / "govex.db"
        shutil.copyfile(applied_store, store)
        for file, content in changes:
            (ws / file).parent.mkdir(parents=True, exist_ok=True)
            (ws / file).write_bytes(content)
        before = _snapshot(store)

        code, out, err = _run_apply(ws, store)

        assert "Traceback" not in err
        assert "Traceback" not in out
        assert code in (0, 2), f"exit {code}\n{err}"
        if code == 0:  # apply's schema check may warn (one line each), nothing else
            assert all(line.startswith("warning: ") for line in err.splitlines()), err
            return
        lines = err.splitlines()
        assert lines, "a refusal without a message"
        assert err.endswith("\n")
        for line in lines:
            assert line.startswith("error: "), f"not a single-line error: {line!r}\n{err}"
            assert len(line) > len("error: ")
        assert _snapshot(store) == before, "a refused apply changed the store"


def test_the_pristine_copy_applies_cleanly(applied_store: Path, tmp_path: Path) -> None:
    """The damage starts from a workspace the store already holds (only the connections'
    SQLite paths, anchored at the workspace, move with the copy)."""
    store = tmp_path / "govex.db"
    shutil.copyfile(applied_store, store)
    code, out, err = _run_apply(copy_workspace(tmp_path / "ws"), store)
    assert code == 0, err
    changed = [line for line in out.splitlines() if line.startswith(("  +", "  -", "  ~"))]
    assert changed
    assert all(line.startswith("  ~ connection ") for line in changed), out
