"""Compile a resource's quality declaration into one Great Expectations 1.x suite.

Three sources, one suite, every expectation tagged `meta={"govex_check": name, "column": col,
"govex_engine": "contract" | "ge"}`:

- the contract: required -> not null, enum/const -> in set, minimum/maximum (and the exclusive
  forms) -> between, minLength/maxLength -> value lengths, pattern -> regex, format -> strftime /
  dateutil, type -> in type list, additionalProperties: false -> columns in set. These are
  tagged `contract`: the gate judges them with the vectorised contract validator (jsonschema's
  semantics, exact for every source column type), and reports them under the same expectation.
- the resource key -> compound/unique columns, and the contract's `x-govex-checks` -> the
  national-standard expectations of `quality.expectations`: tagged `ge`, run by GE.
- the resource's `quality.expectations` (GE class name + kwargs): tagged `ge`, run by GE. Their
  check name is the expectation's snake-case type unless kwargs carry `meta.govex_check`.
  Regex expectations are tagged `re2` instead: the gate runs them on RE2
  (quality.regex_expectations), and a regex without an RE2 form is a declaration error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import contracts
from govex.errors import DeclarationError
from quality.national import CHECKS, DATED_DIVISION, PAIRS
from quality.regex_expectations import REGEX_EXPECTATIONS, regex_refusal

__all__ = ["KNOWN_CHECKS", "CheckSpec", "CompiledSuite", "ExpectationConfig", "compile_suite"]

Engine = Literal["contract", "ge", "re2"]
#: Every `x-govex-checks` name govex knows.
KNOWN_CHECKS: frozenset[str] = frozenset(CHECKS) | frozenset(PAIRS)
#: Built-in expectations whose bounds GE's pydantic model turns into floats.
_FLOAT_BOUNDS = frozenset({"ExpectColumnValuesToBeBetween"})


@dataclass(frozen=True)
class ExpectationConfig:
    """One expectation of the suite as its configuration (GE class name, kwargs, meta), so
    that compiling a suite imports no GE (seconds): the gate runs the contract and national
    checks without it. `to_ge` makes the GE expectation, for GE's own runs and Data Docs;
    `kwargs` are as GE's configuration holds them (tests/quality/test_national_agreement.py)."""

    class_name: str
    kwargs: dict[str, Any]
    meta: dict[str, Any]
    built: Any = field(default=None, compare=False, repr=False)  # a declared GE expectation

    @property
    def type(self) -> str:
        """GE's snake-case type name (`expect_column_values_to_not_be_null`)."""
        return _snake(self.class_name)

    @property
    def configuration(self) -> ExpectationConfig:
        """Itself: reads like a GE expectation's `configuration` (type, kwargs, meta)."""
        return self

    def to_ge(self) -> Any:
        """The GE expectation (imports GE: only a run that hands GE work pays for it)."""
        if self.built is not None:
            return self.built
        return _ge_class(self.class_name)(**self.kwargs, meta=dict(self.meta))


def _ge_class(name: str) -> Any:
    # GE is heavy to import (seconds): only when a GE expectation object is really needed.
    import great_expectations.expectations as gxe

    from quality import expectations

    return getattr(expectations, name, None) or getattr(gxe, name)


def _config(class_name: str, meta: dict[str, Any], **kwargs: Any) -> ExpectationConfig:
    """An expectation's configuration as GE's pydantic model would normalise it."""
    if class_name in _FLOAT_BOUNDS:
        kwargs = {k: float(v) if k in ("min_value", "max_value") and isinstance(v, int)
                  and not isinstance(v, bool) else v for k, v in kwargs.items()}
    return ExpectationConfig(class_name, kwargs, meta)

_JSON_TO_PANDAS_TYPES: dict[str, list[str]] = {
    "string": ["str", "string", "object", "large_string", "datetime64", "date32"],
    "integer": ["int", "int64", "int32", "Int64", "float64"],
    "number": ["float", "float64", "int64", "Int64", "decimal"],
    "boolean": ["bool", "boolean"],
    "null": [],
}


@dataclass(frozen=True)
class CheckSpec:
    """One check of the gate: its govex name, column ('' for a table-level check), who runs
    it, and its expectation in the suite (None for a contract keyword GE cannot express)."""

    check: str
    column: str
    engine: Engine
    expectation: ExpectationConfig | None


@dataclass(frozen=True)
class CompiledSuite:
    """The suite's name and the gate's check list; `suite` is the GE ExpectationSuite of
    every expectation (for export), made on first use."""

    name: str
    checks: tuple[CheckSpec, ...]

    @property
    def suite(self) -> Any:
        import great_expectations as gx  # heavy (seconds): only when the GE suite is asked for

        return gx.ExpectationSuite(
            name=self.name,
            expectations=[s.expectation.to_ge() for s in self.checks if s.expectation],
        )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _meta(check: str, column: str, engine: Engine) -> dict[str, Any]:
    return {"govex_check": check, "column": column, "govex_engine": engine}


def _contract_checks(contract: contracts.Contract) -> list[CheckSpec]:
    specs: list[CheckSpec] = []

    def add(check: str, col: str, expectation_type: str | None, **kwargs: Any) -> None:
        expectation = (
            None
            if expectation_type is None
            else _config(expectation_type, _meta(check, col, "contract"), **kwargs)
        )
        specs.append(CheckSpec(check, col, "contract", expectation))

    required = contract.required
    for name in contract.fields:
        prop = contract.property(name)
        if name in required:
            add("required", name, "ExpectColumnValuesToNotBeNull", column=name)
        types = sorted(set(_json_types(prop.get("type"))) - {"null"})
        if types:
            type_list = sorted({t for j in types for t in _JSON_TO_PANDAS_TYPES.get(j, [])})
            add("type", name, "ExpectColumnValuesToBeInTypeList", column=name,
                type_list=type_list)
        if "enum" in prop:
            add("enum", name, "ExpectColumnValuesToBeInSet", column=name,
                value_set=list(prop["enum"]))
        if "const" in prop:
            add("const", name, "ExpectColumnValuesToBeInSet", column=name,
                value_set=[prop["const"]])
        for keyword, kwargs in (
            ("minimum", {"min_value": prop.get("minimum")}),
            ("maximum", {"max_value": prop.get("maximum")}),
            ("exclusiveMinimum", {"min_value": prop.get("exclusiveMinimum"), "strict_min": True}),
            ("exclusiveMaximum", {"max_value": prop.get("exclusiveMaximum"), "strict_max": True}),
        ):
            if keyword in prop:
                add(keyword, name, "ExpectColumnValuesToBeBetween", column=name, **kwargs)
        if "minLength" in prop:
            add("minLength", name, "ExpectColumnValueLengthsToBeBetween", column=name,
                min_value=prop["minLength"])
        if "maxLength" in prop:
            add("maxLength", name, "ExpectColumnValueLengthsToBeBetween", column=name,
                max_value=prop["maxLength"])
        if "pattern" in prop:
            add("pattern", name, "ExpectColumnValuesToMatchRegex", column=name,
                regex=prop["pattern"])
        if prop.get("format") == "date":
            add("format", name, "ExpectColumnValuesToMatchStrftimeFormat", column=name,
                strftime_format="%Y-%m-%d")
        elif prop.get("format") == "date-time":
            add("format", name, "ExpectColumnValuesToBeDateutilParseable", column=name)
        if "multipleOf" in prop:
            add("multipleOf", name, None)
    if contract.schema.get("additionalProperties") is False:
        add("additionalProperties", "", "ExpectTableColumnsToMatchSet",
            column_set=list(contract.fields), exact_match=False)
    return specs


def _json_types(declared: Any) -> list[str]:
    if declared is None:
        return []
    return [declared] if isinstance(declared, str) else [str(t) for t in declared]


#: The fields every GE column (pair) map expectation has besides its own options: a national
#: check given one of these (say `mostly`) is made by GE itself, which also runs it.
_GE_FIELDS = frozenset({
    "id", "meta", "notes", "result_format", "description", "catch_exceptions",
    "rendered_content", "severity", "windows", "batch_id", "column", "mostly", "row_condition",
    "condition_parser", "column_A", "column_B", "ignore_row_if",
})


def _national_kwargs(
    class_name: str, own: tuple[str, ...], given: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments a national expectation takes of `given` (contract parameters over the
    caller's options): its own options; with any GE field among them, GE's own choice."""
    if not any(k in _GE_FIELDS and k not in own for k in given):
        return {k: v for k, v in given.items() if k in own}
    cls = _ge_class(class_name)
    return {k: v for k, v in given.items() if k in cls.__fields__}


def _national(
    class_name: str, meta: dict[str, Any], kwargs: Mapping[str, Any], **columns: Any
) -> ExpectationConfig:
    """A national expectation's configuration; made by GE when it has GE-only arguments."""
    if any(k in _GE_FIELDS for k in kwargs):
        built = _ge_class(class_name)(**columns, **kwargs, meta=meta)
        config = built.configuration
        return ExpectationConfig(class_name, dict(config.kwargs), dict(config.meta or {}), built)
    return ExpectationConfig(class_name, {**columns, **kwargs}, meta)


def _national_checks(
    contract: contracts.Contract, options: Mapping[str, Any]
) -> list[CheckSpec]:
    specs: list[CheckSpec] = []
    id_fields = [f for f in contract.fields if "cn_resident_id" in contract.checks(f)]
    for name in contract.fields:
        for check, params in contract.check_parameters(name).items():
            meta = _meta(check, name, "ge")
            dated_by = str(params.get("as_of", ""))
            if dated_by.startswith(contracts.RECORD_PREFIX):  # valid on each record's own date
                dated = _national(
                    DATED_DIVISION.expectation, meta,
                    {k: v for k, v in options.items() if k == "as_of"},
                    column_A=name, column_B=dated_by.removeprefix(contracts.RECORD_PREFIX),
                )
                specs.append(CheckSpec(check, name, "ge", dated))
            elif check in CHECKS:
                # The contract's own parameters (a fixed as_of) win over the caller's defaults.
                spec = CHECKS[check]
                chosen = _national_kwargs(spec.expectation, spec.options, {**options, **params})
                specs.append(CheckSpec(
                    check, name, "ge", _national(spec.expectation, meta, chosen, column=name)
                ))
            elif check in PAIRS:
                if len(id_fields) != 1:
                    msg = (
                        f"check {check!r} compares property {name!r} with the record's resident "
                        "ID, so the contract needs exactly one property with the "
                        f"'cn_resident_id' check (it has {len(id_fields)})"
                    )
                    raise DeclarationError(msg, file=contract.ref, field=name, value=check)
                pair = _national(PAIRS[check].expectation, meta, {},
                                 column_A=id_fields[0], column_B=name)
                specs.append(CheckSpec(check, name, "ge", pair))
            else:
                known = ", ".join(sorted(KNOWN_CHECKS))
                msg = f"unknown x-govex-checks name {check!r}; known: {known}"
                raise DeclarationError(msg, file=contract.ref, field=name, value=check)
    return specs


def _declared(expectations: Sequence[Mapping[str, Any]], file: str) -> list[CheckSpec]:
    specs: list[CheckSpec] = []
    for index, item in enumerate(expectations):
        # Declared expectations are GE's to build and check: only their suites import GE.
        import great_expectations.expectations as gxe
        from great_expectations.expectations.expectation import Expectation

        type_name = str(item.get("type"))
        cls = getattr(gxe, type_name, None)
        where = f"quality.expectations[{index}]"
        if not isinstance(cls, type) or not issubclass(cls, Expectation):
            msg = f"unknown Great Expectations expectation {type_name!r}"
            raise DeclarationError(msg, file=file, field=f"{where}.type", value=type_name)
        kwargs = dict(item.get("kwargs") or {})
        meta = dict(kwargs.pop("meta", None) or {})
        check = str(meta.get("govex_check") or _snake(type_name))
        column = kwargs.get("column") or ",".join(
            str(c) for c in kwargs.get("column_list") or
            [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
        )
        engine: Engine = "re2" if type_name in REGEX_EXPECTATIONS else "ge"
        refusal = regex_refusal(type_name, kwargs) if engine == "re2" else None
        if refusal is not None:
            raise DeclarationError(refusal, file=file, field=f"{where}.kwargs", value=kwargs)
        meta |= _meta(check, str(column), engine)
        try:
            built = cls(**kwargs, meta=meta)
        except Exception as error:  # pydantic validation: a bad declaration, named
            msg = f"invalid arguments for {type_name}: {error}"
            raise DeclarationError(msg, file=file, field=f"{where}.kwargs", value=kwargs) from error
        config = built.configuration
        expectation = ExpectationConfig(
            type_name, dict(config.kwargs), dict(config.meta or {}), built
        )
        specs.append(CheckSpec(check, str(column), engine, expectation))
    return specs


def compile_suite(
    contract: contracts.Contract,
    quality: Mapping[str, Any] | None = None,
    *,
    key: Sequence[str] = (),
    name: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> CompiledSuite:
    """The suite for `contract` + the resource's `quality` declaration (`max_error_rate`,
    `expectations`) + its record `key` (unique within a batch).

    `options` pass through to the national-standard expectations that declare them (e.g.
    `as_of="2026-11-27"`, `check_division=False`). Raises DeclarationError for an unknown check
    or expectation, or expectation arguments GE rejects.
    """
    quality = quality or {}
    specs = _contract_checks(contract)
    if key:
        key = list(key)
        unknown = [k for k in key if k not in contract.properties]
        if unknown:
            msg = f"key field(s) {unknown} are not properties of the contract"
            raise DeclarationError(msg, file=contract.ref, field="key", value=key)
        column = ",".join(key)
        meta = _meta("unique", column, "ge")
        unique = (
            _config("ExpectColumnValuesToBeUnique", meta, column=key[0])
            if len(key) == 1
            else _config("ExpectCompoundColumnsToBeUnique", meta, column_list=key)
        )
        specs.append(CheckSpec("unique", column, "ge", unique))
    specs += _national_checks(contract, options or {})
    specs += _declared(list(quality.get("expectations") or []), contract.ref)
    return CompiledSuite(name=name or f"govex.{contract.ref}", checks=tuple(specs))
