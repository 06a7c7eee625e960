"""Hostile workspace files: refused quickly, in one sentence naming the file, with bounded
memory, never a traceback.

Hardening issue item 9: a 1 KB YAML alias bomb in `quality.expectations[].kwargs` drove
`govex apply` to 7.1 GB. Its siblings: deep or huge YAML and JSON, and values PyYAML or the JSON
parser cannot build (a 13th month, a 5000-digit integer) that ended in tracebacks.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import contracts
from catalog.yamlio import MAX_BYTES, MAX_DEPTH, MAX_NODES, read_yaml
from govex.errors import DeclarationError

RESOURCE = "resources/psb-residents.yaml"


def _billion_laughs(levels: int = 9) -> str:
    """10**levels strings from a document of under 1 KB."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)
    ]
    return "\n".join("        " + line for line in lines)


def _resource_with_kwargs(ws: Any, kwargs_yaml: str) -> None:
    """The base resource, with one expectation whose kwargs are the given YAML block."""
    text = (ws.root / RESOURCE).read_text("utf-8").replace(
        "expectations: []",
        "expectations:\n  - type: ExpectColumnValuesToNotBeNull\n    kwargs:\n"
        "      column: id_no\n      extra:\n" + kwargs_yaml,
    )
    assert "kwargs" in text
    ws.write_text(RESOURCE, text)


def test_billion_laughs_is_refused_at_once_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("quality:\n  expectations:\n    - kwargs:\n" + _billion_laughs() + "\n")
    assert path.stat().st_size < 1024
    tracemalloc.start()
    started = time.process_time()  # the reader's own work, whatever else shares the cores
    try:
        with pytest.raises(DeclarationError) as raised:
            read_yaml(path, display="resources/bomb.yaml")
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 20 * 2**20  # bytes
    assert raised.value.render() == (
        f"resources/bomb.yaml: holds more than {MAX_NODES} values, counting what each alias "
        "repeats; a declaration is never that large"
    )


def test_apply_refuses_the_bomb_in_expectation_kwargs(
    workspace: Any, govex: Any, store_snapshot: Any
) -> None:
    """Through the CLI, with a million-value bomb: fifty times the limit, yet small enough that
    a regression accepts it (and fails here) instead of taking the machine's memory."""
    assert govex("apply", str(workspace.root))[0] == 0
    before = store_snapshot()
    _resource_with_kwargs(workspace, _billion_laughs(levels=5))
    started = time.perf_counter()
    code, _, err = govex("apply", str(workspace.root))
    assert time.perf_counter() - started < 10  # the whole apply, store included
    assert code == 2
    assert err == (
        f"error: {RESOURCE}: holds more than {MAX_NODES} values, counting what each alias "
        "repeats; a declaration is never that large\n"
    )
    assert store_snapshot() == before


def test_small_anchors_and_aliases_still_work(workspace: Any, govex: Any) -> None:
    _resource_with_kwargs(workspace, "        a: &shared {x: 1, y: [1, 2]}\n        b: *shared\n")
    code, _, err = govex("apply", str(workspace.root))
    assert code == 0, err


YAML_CASES: list[tuple[str, str, str]] = [
    ("recursive alias", "a: &a [1, *a]\n", "an alias refers to a value that contains it"),
    ("deep flow nesting", "a: " + "[" * 10_000 + "]" * 10_000 + "\n",
     f"nested deeper than {MAX_DEPTH} levels at line 1"),
    ("deep block nesting", "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "x\n",
     f"nested deeper than {MAX_DEPTH} levels"),
    ("long flat list", "- 1\n" * (MAX_NODES + 1), f"holds more than {MAX_NODES} values"),
    ("over 1 MiB", "# " + "x" * MAX_BYTES + "\n", "is larger than 1 MiB"),
    ("13th month", "valid_from: 2026-13-45\n",
     "malformed YAML at line 1, column 13: this value cannot be read (month must be in 1..12)"),
    ("25th hour", "a: 2026-01-01 25:00:00\n", "this value cannot be read (hour must be in 0..23)"),
    ("5000-digit integer", "a: " + "1" * 5000 + "\n",
     "this value cannot be read (Exceeds the limit (4300 digits) for integer string conversion"),
    ("list as a key", "? [1]\n: 2\n", "line 1, column 3: a list or mapping cannot be a key"),
    ("not UTF-8", "a: \udcff\n", "is not UTF-8 text"),
]


@pytest.mark.parametrize(("case", "text", "fragment"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_hostile_yaml_is_one_sentence(case: str, text: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    started = time.process_time()  # the reader's own work, whatever else shares the cores
    with pytest.raises(DeclarationError) as raised:
        read_yaml(path, display="subscriptions/x.yaml")
    assert time.process_time() - started < 5.0, case  # bounded: a pathological read takes minutes
    message = raised.value.render()
    assert message.startswith("subscriptions/x.yaml: ")
    assert fragment in message
    assert "\n" not in message
    assert "set_int_max_str_digits" not in message


@pytest.mark.parametrize(("case", "text", "fragment"), YAML_CASES, ids=[c[0] for c in YAML_CASES])
def test_apply_refuses_hostile_yaml_without_a_traceback(
    case: str, text: str, fragment: str, workspace: Any, govex: Any
) -> None:
    (workspace.root / "subscriptions" / "x.yaml").write_bytes(
        text.encode("utf-8", "surrogateescape")
    )
    code, _, err = govex("apply", str(workspace.root))
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: subscriptions/x.yaml: ")
    assert fragment in err


def _contract_text(ws: Any, text: str) -> Path:
    return ws.write_text("contracts/resident_identity/1.0.0.json", text)


def _nested(depth: int) -> str:
    schema = {"type": "object", "properties": {"a": {"type": "string", "x-govex-note": 0}}}
    note: Any = 0
    for _ in range(depth):
        note = [note]
    schema["properties"]["a"]["x-govex-note"] = note
    return json.dumps(schema)


JSON_CASES: list[tuple[str, Callable[[], str], str]] = [
    ("nested past the parser's recursion limit", lambda: "[" * 100_000 + "]" * 100_000,
     "nests arrays and objects more than 64 deep"),
    ("nested 65 deep", lambda: _nested(62), "nests arrays and objects more than 64 deep"),
    ("over 1 MiB", lambda: json.dumps({"type": "object", "description": "x" * (1 << 20)}),
     "is larger than 1 MiB"),
    ("NaN", lambda: '{"type": "object", "properties": {"a": {"maximum": NaN}}}',
     "is not valid JSON: NaN is not a JSON value"),
    ("5000-digit integer",
     lambda: '{"type": "object", "properties": {"a": {"maximum": ' + "1" * 5000 + "}}}",
     "is not valid JSON: Exceeds the limit (4300 digits)"),
]


@pytest.mark.parametrize(("case", "make", "fragment"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_hostile_contract_json_is_one_sentence(
    case: str, make: Callable[[], str], fragment: str, tmp_path: Path
) -> None:
    path = tmp_path / "resident_identity" / "1.0.0.json"
    path.parent.mkdir()
    path.write_text(make(), "utf-8")
    started = time.process_time()
    with pytest.raises(DeclarationError) as raised:
        contracts.load_contract(path)
    assert time.process_time() - started < 2.0, case
    message = raised.value.render()
    assert message.startswith(f"{path}: ")
    assert fragment in message
    assert "\n" not in message


def test_devices_and_fifos_are_not_read(tmp_path: Path) -> None:
    """`/dev/zero` never ends and a FIFO blocks; a symlink must not lead to either."""
    fifo = tmp_path / "connections.yaml"
    os.mkfifo(fifo)
    with pytest.raises(DeclarationError, match="connections.yaml: is not a regular file"):
        read_yaml(fifo, display="connections.yaml")
    contract = tmp_path / "resident_identity" / "1.0.0.json"
    contract.parent.mkdir()
    contract.symlink_to("/dev/zero")
    with pytest.raises(DeclarationError, match="is not a regular file"):
        contracts.load_contract(contract)


def test_a_contract_64_deep_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "resident_identity" / "1.0.0.json"
    path.parent.mkdir()
    path.write_text(_nested(61), "utf-8")  # object, properties, a, x-govex-note: 3 + 61
    assert contracts.load_contract(path).fields == ("a",)


@pytest.mark.parametrize(("case", "make", "fragment"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_apply_refuses_hostile_contracts_without_a_traceback(
    case: str, make: Callable[[], str], fragment: str, workspace: Any, govex: Any
) -> None:
    _contract_text(workspace, make())
    code, _, err = govex("apply", str(workspace.root))
    assert code == 2, err
    assert "Traceback" not in err
    assert err.startswith("error: contracts/resident_identity/1.0.0.json: ")
    assert fragment in err
