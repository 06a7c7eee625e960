"""Every contract pattern runs on RE2; a pattern RE2 cannot run is refused up front.

Hardening issue item 8: a contract `pattern` of `^(a+)+$` against `'a' * 35 + '!'` takes
Python `re` (what jsonschema uses) minutes. `govex apply` now refuses a pattern without an RE2
form, naming the file, the field and the pattern; the vectorised validator has no Python
fallback any more; and the jsonschema reference validator (the ingest worker's per-record
verdict) evaluates `pattern` on RE2.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import contracts
from contracts import BatchValidator, re2_search, reference_validator, reference_violations
from contracts.patterns import schema_patterns
from exchange.cli import main
from govex.errors import DeclarationError

ROOT = Path(__file__).resolve().parents[2]
EVIL = "^(a+)+$"
EVIL_TEXT = "a" * 35 + "!"

REFUSED = [
    (r"^(?!0)\d+$", "it uses a lookahead or lookbehind"),
    (r"(?<=x)y", "it uses a lookahead or lookbehind"),
    (r"^(a)\1$", "it uses a backreference"),
    (r"\bword", "it uses \\b or \\B"),
    (r"(?i)^abc$", "case-insensitive"),
    (r"a++", "it uses a possessive repeat"),
    (r"(?>a)", "it uses an atomic group"),
    (r"a$b", "it has a '$' that is not at the end"),
    (r"a{1001}", "it repeats something more than 1000 times"),
    (r"^\w{1000}$", "it is too large for RE2"),
    ("(" * 3000 + ")" * 3000, "it is nested too deeply"),
]


def _schema(prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"x": {"type": "string", **prop}}}


def _write(tmp_path: Path, schema: dict[str, Any]) -> Path:
    path = tmp_path / "resident_identity" / "1.0.0.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema), "utf-8")
    return path


@pytest.mark.parametrize(("pattern", "reason"), REFUSED)
def test_loading_refuses_a_pattern_re2_cannot_run(
    pattern: str, reason: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, _schema({"pattern": pattern}))
    with pytest.raises(DeclarationError) as raised:
        contracts.load_contract(path)
    message = raised.value.render()
    shown = repr(pattern if len(pattern) <= 80 else pattern[:80] + "…")
    assert message.startswith(
        f"{path}: field '/properties/x/pattern': pattern {shown} cannot run on RE2, "
        "the linear-time engine every contract pattern runs on: "
    )
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("where", "schema"),
    [
        ("/properties/x/items/pattern",
         {"type": "object", "properties": {"x": {"items": {"pattern": "(a)\\1"}}}}),
        ("/$defs/code/pattern",
         {"type": "object", "properties": {"x": {}}, "$defs": {"code": {"pattern": "(a)\\1"}}}),
        ("/patternProperties/(a)\\1",
         {"type": "object", "properties": {"x": {}}, "patternProperties": {"(a)\\1": {}}}),
        ("/properties/x/anyOf/1/pattern",
         {"type": "object", "properties": {"x": {"anyOf": [{}, {"pattern": "(?=a)"}]}}}),
        ("/propertyNames/pattern",
         {"type": "object", "properties": {"x": {}}, "propertyNames": {"pattern": "(?=a)"}}),
    ],
)
def test_patterns_anywhere_in_the_schema_are_checked(
    where: str, schema: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(DeclarationError, match="cannot run on RE2") as raised:
        contracts.load_contract(_write(tmp_path, schema))
    assert raised.value.field == where


def test_a_pattern_inside_data_is_not_a_pattern() -> None:
    schema = _schema({"enum": [{"pattern": "(a)\\1"}]})
    assert list(schema_patterns(schema)) == []


def test_apply_refuses_the_pattern_naming_file_field_and_pattern(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    schema = _schema({"pattern": r"^(?!0)\d+$"})
    schema["properties"]["id_no"] = schema["properties"].pop("x")
    _write(ws / "contracts", schema)
    monkeypatch.setenv("GOVEX_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    code = main(["apply", str(ws)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: contracts/resident_identity/1.0.0.json: field '/properties/id_no/pattern': "
        "pattern '^(?!0)\\\\d+$' cannot run on RE2, the linear-time engine every contract "
        "pattern runs on: it uses a lookahead or lookbehind\n"
    )


def test_apply_refuses_keywords_no_run_can_validate(tmp_path: Path) -> None:
    """Loading builds the run's validator, so a contract apply accepts is one a run can use."""
    path = _write(tmp_path, {"type": "object", "properties": {"x": {"anyOf": [{}]}}})
    with pytest.raises(DeclarationError, match="keyword 'anyOf' is not supported") as raised:
        contracts.load_contract(path)
    assert raised.value.file == str(path)
    assert raised.value.field == "x"


@pytest.mark.parametrize(("pattern", "reason"), REFUSED[:4])
def test_the_validators_refuse_instead_of_falling_back_to_python_re(
    pattern: str, reason: str
) -> None:
    schema = _schema({"pattern": pattern})
    with pytest.raises(DeclarationError, match=re.escape(reason)):
        BatchValidator(schema)
    with pytest.raises(DeclarationError, match=re.escape(reason)):
        reference_validator(schema)


def test_the_reference_validator_refuses_pattern_properties() -> None:
    schema = {"type": "object", "properties": {}, "patternProperties": {"^x": {}}}
    with pytest.raises(DeclarationError, match="'patternProperties' is not supported"):
        reference_validator(schema)


def test_catastrophic_pattern_is_linear_in_the_vectorised_validator() -> None:
    table = pa.table({"x": ["aaa", EVIL_TEXT, "a" * 100_000 + "!"]})
    started = time.perf_counter()
    result = BatchValidator(_schema({"pattern": EVIL})).validate(table)
    assert time.perf_counter() - started < 0.5
    assert result.valid.tolist() == [True, False, False]


def test_catastrophic_pattern_is_linear_in_the_reference_validator() -> None:
    """In a child process, so that a regression (Python `re`: minutes) fails on the timeout
    instead of hanging the suite: `re` never lets go of the interpreter while it matches."""
    program = (
        "import time\n"
        "from contracts import reference_validator, reference_violations\n"
        f"schema = {_schema({'pattern': EVIL})!r}\n"
        "validator = reference_validator(schema)\n"
        "started = time.perf_counter()\n"
        f"errors = [e.message for e in validator.iter_errors({{'x': {EVIL_TEXT!r}}})]\n"
        f"rows = reference_violations(schema, [{{'x': {EVIL_TEXT!r}}}, {{'x': 'aa'}}])\n"
        "print(time.perf_counter() - started, errors, rows)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=20,
        check=True,
    )
    elapsed, _, rest = done.stdout.partition(" ")
    assert float(elapsed) < 0.5
    assert rest.strip() == (
        f"[\"{EVIL_TEXT!r} does not match '^(a+)+$'\"] [{{('x', 'pattern')}}, set()]"
    )


TEXT = st.text(alphabet=st.sampled_from("aAbB019٣_ \n\t-é中X"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    pattern=st.sampled_from([
        "^[0-9]{17}[0-9X]$", r"^1[3-9]\d{9}$", "^[A-Z]+$", r"\d", r"^\w+$", r"\s", "^(A+)+$",
        "^(AB|C)*$|^x", r"(?s)^.a", r"[^\d\s-]", "a$", "^$", "", r"\A[ab]+\Z", "(?a)^\\w+$",
    ]),
    texts=st.lists(TEXT, min_size=1, max_size=8),
)
def test_re2_gives_exactly_python_search_verdicts(pattern: str, texts: list[str]) -> None:
    """RE2 stands in for `re.search` everywhere, so it must agree with it wherever `re` is
    quick (short texts): the translation is what keeps the reference honest."""
    assert re2_search(pattern, texts) == [re.search(pattern, t) is not None for t in texts]


def test_a_text_no_utf8_can_hold_matches_nothing() -> None:
    assert re2_search("", ["\ud800", "x"]) == [False, True]
    assert reference_violations(_schema({"pattern": ""}), [{"x": "\ud800"}], project=False) == [
        {("x", "pattern")}
    ]
