"""The national checks and key uniqueness have two engines: govex's own on Arrow
(`quality.national`, what a run without declared expectations uses, no GE import) and GE's
(the expectation classes of `quality.expectations` on a pandas frame, what Data Docs show and
what a run falls back to for arguments only GE models). They must fail exactly the same rows:
on the demo city's data, and on values built to break them. And the configurations the suite
builds without GE must be the ones GE itself builds (issue #16)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import contracts
from quality import national, standards
from quality.suite import CheckSpec, compile_suite
from tests.quality.conftest import contract_of, to_table

AS_OF = "2026-11-27"
# Every national check the brief of issue #16 names, and key uniqueness.
NATIONAL = {"cn_resident_id", "cn_uscc", "cn_division_code", "cn_mobile_phone",
            "id_birth_date_consistency", "id_gender_consistency", "unique"}


def _resident_id(area: str, born: str, sequence: str = "001") -> str:
    first17 = area + born + sequence
    return first17 + standards.resident_id_check_digit(first17)


def _uscc(body: str) -> str:
    return body + standards.uscc_check_char(body)


FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
GOOD_ID = _resident_id("110105", "19800101")
GOOD_X = next(i for i in (_resident_id("110105", "19800101", f"{n:03d}") for n in range(200))
              if i.endswith("X"))
GOOD_USCC = _uscc("91350100M000100Y4")
# Hostile values per kind of column: each is judged by both engines, whatever the verdict.
HOSTILE_TEXT: dict[str, list[str | None]] = {
    "resident_id": [
        GOOD_ID, GOOD_X, GOOD_X[:-1] + "x",  # lower-case check letter
        GOOD_ID[:-1], GOOD_ID + "1", GOOD_ID[:15],  # wrong lengths (15: the old format)
        GOOD_ID.translate(FULL_WIDTH), GOOD_ID.translate(ARABIC_INDIC),  # non-ASCII digits
        None, "", " " * 18, GOOD_ID[:-1] + "Y",
        _resident_id("110103", "19800101"),  # Chongwen, retired 2010: an 18-char old area
        _resident_id("990000", "19800101"),  # never a division
        _resident_id("110105", "20990101"),  # born in the future
        _resident_id("110105", "19800230"),  # no such day
        _resident_id("110105", "17000101"),  # too early
        "11010519800101001" + "0" if GOOD_ID[-1] != "0" else "1",  # bad check digit
    ],
    "uscc": [GOOD_USCC, GOOD_USCC.lower(), GOOD_USCC[:-1], GOOD_USCC + "0",
             GOOD_USCC.translate(FULL_WIDTH), None, "", "91350100I000100Y4A",
             "91350100M000100Y4" + ("0" if GOOD_USCC[-1] != "0" else "1")],
    "mobile": ["13800138000", "12800138000", "1380013800", "138001380000", "+8613800138000",
               "13800138000".translate(FULL_WIDTH), "1380013800a", None, ""],
    "division": ["110105", "110103", "999999", "11010", "1101050", "110105".translate(
        FULL_WIDTH), None, "", "000000"],
    "gender": ["男", "女", "1", "2", "M", "f", "x", "", None, "男 "],
    "other": ["<script>", None, "", "é" * 40],
}
HOSTILE_DATES = [dt.date(2099, 1, 1), dt.date(1700, 1, 1), None, dt.date(1980, 1, 1),
                 dt.date(2026, 11, 28), dt.date(1949, 12, 31)]


def _kind(spec_checks: set[str], name: str) -> str:
    if "cn_resident_id" in spec_checks:
        return "resident_id"
    if "cn_uscc" in spec_checks:
        return "uscc"
    if "cn_mobile_phone" in spec_checks:
        return "mobile"
    if "cn_division_code" in spec_checks:
        return "division"
    if "gender" in name:
        return "gender"
    return "other"


def _hostile(table: pa.Table, contract: contracts.Contract) -> pa.Table:
    """The first rows of `table`, twice (every key duplicated), with every text and date
    column cycling through hostile values (keys included: null and empty keys too)."""
    base = table.slice(0, 24)
    base = pa.concat_tables([base, base])
    columns = []
    for field in base.schema:
        values: list[Any]
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            values = HOSTILE_TEXT[_kind(set(contract.checks(field.name)), field.name)]
        elif pa.types.is_date(field.type):
            values = HOSTILE_DATES
        else:
            columns.append(base.column(field.name))
            continue
        cycled = [values[i % len(values)] for i in range(base.num_rows)]
        columns.append(pa.array(cycled, field.type))
    return pa.table(columns, schema=base.schema)


def _ge_failing_rows(specs: list[CheckSpec], table: pa.Table) -> list[list[int]]:
    """The rows GE fails for each spec, each run as the gate hands it to GE (pair checks
    without row dropping) and as configured (with GE's default `ignore_row_if`)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from quality.expectations import without_row_dropping

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas(name="agreement").add_dataframe_asset(name="t")
    batch_definition = asset.add_batch_definition_whole_dataframe("batch")
    expectations = []
    for index, spec in enumerate(specs):
        assert spec.expectation is not None
        for variant, made in enumerate((
            without_row_dropping(spec.expectation.to_ge().copy(deep=True)),
            spec.expectation.to_ge().copy(deep=True),
        )):
            made.meta = {**(made.meta or {}), "index": index, "variant": variant}
            expectations.append(made)
    suite = gx.ExpectationSuite(name="agreement", expectations=expectations)
    frame = table.to_pandas(date_as_object=False, split_blocks=True)  # as the gate's _frame
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    outcome = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    found: dict[tuple[int, int], list[int]] = {}
    for result in outcome.results:
        assert not result.exception_info.get("raised_exception"), result.exception_info
        meta = result.expectation_config.meta
        rows = (result.result or {}).get("unexpected_index_list") or []
        found[(meta["index"], meta["variant"])] = sorted({int(r) for r in rows})
    answers = []
    for index in range(len(specs)):
        gated, configured = found[(index, 0)], found[(index, 1)]
        assert gated == configured, specs[index].check
        answers.append(gated)
    return answers


def _national_specs(contract: contracts.Contract, key: list[str]) -> list[CheckSpec]:
    suite = compile_suite(contract, {}, key=key, options={"as_of": AS_OF})
    return [s for s in suite.checks if s.engine == "ge" and s.expectation is not None
            and national.handles(s.expectation.type, s.expectation.kwargs)]


@pytest.mark.parametrize("data", ["demo", "hostile"])
def test_govex_and_ge_fail_the_same_rows(data: str, demo: Any,
                                         city_resources: dict[str, Any]) -> None:
    covered: set[str] = set()
    failing = 0
    for code, resource in sorted(city_resources.items()):
        if code not in demo:  # a resource the city generator does not fill (Kafka-fed)
            continue
        contract = contract_of(resource)
        table = to_table(demo[code].rows, contract)
        if data == "hostile":
            table = _hostile(table, contract)
        specs = _national_specs(contract, list(resource.get("key") or []))
        if not specs:
            continue
        ge = _ge_failing_rows(specs, table)
        for spec, ge_rows in zip(specs, ge, strict=True):
            assert spec.expectation is not None
            ours = national.failing_rows(spec.expectation.type, spec.expectation.kwargs, table)
            assert ours is not None
            assert ours.tolist() == ge_rows, (code, spec.check, spec.column)
            covered.add(spec.check)
            failing += len(ge_rows)
    assert covered >= NATIONAL
    assert failing  # planted defects and hostile values do fail: the comparison means something


def _contract(tmp_path: Path) -> contracts.Contract:
    """Every contract keyword and every national class, on one contract."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://govex.example.gov.cn/contracts/everything/1.0.0.json",
        "title": "everything", "type": "object", "additionalProperties": False,
        "required": ["id_no", "amount"],
        "properties": {
            "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "minLength": 18,
                      "maxLength": 18, "x-govex-checks": ["cn_resident_id"]},
            "uscc": {"type": ["string", "null"], "x-govex-checks": ["cn_uscc"]},
            "phone": {"type": "string", "x-govex-checks": ["cn_mobile_phone"]},
            "division": {"type": "string", "x-govex-checks": ["cn_division_code"]},
            "old_division": {"type": "string",
                             "x-govex-checks": [{"cn_division_code": {"as_of": "2009-06-30"}}]},
            "dated_division": {"type": "string",
                               "x-govex-checks": [{"cn_division_code":
                                                   {"as_of": "record:birth_date"}}]},
            "birth_date": {"type": "string", "format": "date",
                           "x-govex-checks": ["id_birth_date_consistency", "not_future_date",
                                              "max_age_150"]},
            "gender": {"type": "string", "enum": ["男", "女"],
                       "x-govex-checks": ["id_gender_consistency"]},
            "kind": {"const": "person"},
            "amount": {"type": "number", "minimum": 0, "maximum": 100,
                       "exclusiveMinimum": -1, "exclusiveMaximum": 101},
            "count": {"type": "integer", "minimum": 1, "multipleOf": 2},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    path = tmp_path / "everything" / "1.0.0.json"
    path.parent.mkdir()
    path.write_text(json.dumps(schema), encoding="utf-8")
    return contracts.load_contract(path)


@pytest.mark.parametrize("options", [
    {}, {"as_of": AS_OF, "check_division": False, "check_org_code": False, "max_age": 120}])
@pytest.mark.parametrize("key", [["id_no"], ["id_no", "phone"]])
def test_configurations_built_without_ge_are_ges_own(
    tmp_path: Path, options: dict[str, Any], key: list[str]
) -> None:
    import great_expectations.expectations as gxe

    from quality import expectations

    suite = compile_suite(_contract(tmp_path), {}, key=key, options=options)
    classes: set[str] = set()
    keywords: set[str] = set()
    for spec in suite.checks:
        if spec.expectation is None:
            continue
        config = spec.expectation
        assert config.built is None  # built without GE
        made = config.to_ge().configuration
        assert (made.type, dict(made.kwargs), dict(made.meta or {})) == (
            config.type, config.kwargs, config.meta), spec.check
        # GE's own class, given the same arguments, agrees as well.
        cls = getattr(expectations, config.class_name, None) or getattr(gxe, config.class_name)
        own = cls(**config.kwargs, meta=dict(config.meta)).configuration
        assert dict(own.kwargs) == config.kwargs
        classes.add(config.class_name)
        keywords.add(spec.check)
    national_classes = {c.expectation for c in (*national.CHECKS.values(),
                                                *national.PAIRS.values(),
                                                national.DATED_DIVISION)}
    assert national_classes <= classes
    assert {"required", "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "minLength", "maxLength", "pattern", "format",
            "additionalProperties", "unique"} <= keywords
    assert {"ExpectColumnValuesToBeUnique" if len(key) == 1
            else "ExpectCompoundColumnsToBeUnique"} <= classes


def test_the_comparison_can_fail() -> None:
    """A deliberately wrong answer is caught: the equality above is not vacuous."""
    table = pa.table({"id_no": [GOOD_ID, GOOD_X[:-1] + "x", None]})
    rows = national.failing_rows("expect_column_values_to_be_valid_cn_resident_id",
                                 {"column": "id_no", "as_of": AS_OF}, table)
    assert rows is not None
    assert rows.tolist() == [1]
    assert rows.tolist() != np.arange(3).tolist()
