"""`QualityGate`: the contract's vectorised check plus the resource's Great Expectations suite.

Built once per resource run (the GE context, data source, batch definition and suite are made
in `__init__`), then `evaluate` judges each Arrow batch:

1. `ContractGate` (the vectorised validator) judges every contract keyword, with jsonschema's
   semantics on whatever Arrow types the source produced. The suite's `contract` expectations
   are these same rules; they are reported from the validator's verdicts rather than computed a
   second time by GE (which would double the work and could disagree with jsonschema on edge
   cases such as SQLite text dates).
2. GE validates the suite's `ge` expectations (record key uniqueness, national-standard checks,
   the resource's declared expectations) on a pandas view of the batch, with COMPLETE results
   so every failing row index comes back.
3. Both are merged into one `GateResult`: every failing row lists every failed check. A failed
   expectation that does not judge rows (a mean, a row count) fails every row of the batch:
   its problem cannot be pinned on some rows, and the batch must not be delivered silently.

An expectation that raises inside GE is not a passed check: `evaluate` raises FatalError.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _compute

import contracts
from govex.errors import FatalError
from quality import national
from quality.details import explain
from quality.gate import FAILURE_SCHEMA, ContractGate, GateResult
from quality.regex_expectations import failing_rows as regex_failing_rows
from quality.report import SAMPLE_SIZE, CheckResult, ColumnStats, QualityReport
from quality.suite import CheckSpec, CompiledSuite, compile_suite

__all__ = ["QualityGate"]

log = logging.getLogger(__name__)
pc: Any = _compute
Mask = npt.NDArray[np.bool_]

_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": SAMPLE_SIZE,
    # The pandas "query" is a string of every failing index: pure overhead for us.
    "return_unexpected_index_query": False,
}


def _messages(spec: CheckSpec) -> str:
    kind = spec.expectation.class_name if spec.expectation is not None else spec.check
    where = f" on {spec.column}" if spec.column else ""
    return f"failed {spec.check}{where} ({kind})"


class QualityGate:
    """The full gate of one resource: contract + GE suite (national checks, declared
    expectations, key uniqueness). Implements the `Gate` protocol.

    `quality_declaration` is the resource's `quality` mapping (`max_error_rate`,
    `expectations`); `key` the resource's record key; `options` pass to the national-standard
    expectations (e.g. `{"as_of": "2026-11-27"}`).
    """

    def __init__(
        self,
        contract: contracts.Contract,
        quality_declaration: Mapping[str, Any] | None = None,
        *,
        key: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.contract = contract
        self.declaration = dict(quality_declaration or {})
        self.max_error_rate = float(self.declaration.get("max_error_rate", 0.02))
        self.compiled: CompiledSuite = compile_suite(
            contract, self.declaration, key=key, options=options
        )
        self._contract_gate = ContractGate(contract)
        # The national checks and key uniqueness run on Arrow (quality.national) unless they
        # carry arguments only GE models; GE, and its import, is for what is left.
        ge = [
            s for s in self.compiled.checks
            if s.engine == "ge" and s.expectation is not None
            and not national.handles(s.expectation.type, s.expectation.kwargs)
        ]
        # Results come back matched by meta["govex_index"]: unique even when two declared
        # expectations share a type and column.
        self._ge_specs = {id(spec): index for index, spec in enumerate(ge)}
        self._ge_list = ge
        self._ge_columns = self._columns_needed()
        self._enum_columns = {
            name for name in contract.fields
            if "enum" in contract.property(name) or contract.property(name).get("type")
            in ("boolean", ["boolean"])
        }
        self._ge_suite: Any = None
        self._batch_definition: Any = None
        if ge:
            self._start_ge(contract.name)

    def _start_ge(self, asset_name: str) -> None:
        """The GE suite of what only GE runs, and an ephemeral context to run it in."""
        # GE is heavy to import (seconds): only a suite with declared expectations pays it.
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.execution_engine import pandas_execution_engine

        from quality.expectations import without_row_dropping

        # GE fingerprints every dataframe smaller than HASH_THRESHOLD bytes (a full
        # hash_pandas_object + md5, done twice per validation) only to label the batch; that
        # was ~60% of GE's time on a 1M-row batch. govex names batches by run and index, so we
        # take GE's own large-frame path (no fingerprint) for every frame.
        pandas_execution_engine.HASH_THRESHOLD = 0
        copies = []
        for index, spec in enumerate(self._ge_list):
            assert spec.expectation is not None  # noqa: S101 - filtered in __init__
            copy = without_row_dropping(spec.expectation.to_ge().copy(deep=True))
            copy.meta = {**(copy.meta or {}), "govex_index": index}
            copies.append(copy)
        self._ge_suite = gx.ExpectationSuite(
            name=f"{self.compiled.name}.ge", expectations=copies
        )
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = context.data_sources.add_pandas(name="govex")
        asset = source.add_dataframe_asset(name=asset_name)
        self._batch_definition = asset.add_batch_definition_whole_dataframe("batch")

    @property
    def suite(self) -> Any:
        """The full GE ExpectationSuite (contract + national + declared); imports GE."""
        return self.compiled.suite

    def _columns_needed(self) -> list[str] | None:
        """Columns GE reads (the pandas view holds only these); None when some expectation
        does not name its columns (then GE gets them all)."""
        needed: list[str] = []
        for spec in self._ge_list:
            kwargs = spec.expectation.configuration.kwargs if spec.expectation else {}
            names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
            names += list(kwargs.get("column_list") or [])
            if not names:
                return None
            needed += [n for n in names if n not in needed]
        return needed

    # -- evaluation ----------------------------------------------------------------------------

    def evaluate(self, batch: pa.Table) -> GateResult:
        if isinstance(batch, pa.RecordBatch):
            batch = pa.Table.from_batches([batch])
        rows = batch.num_rows
        contract = self._contract_gate.evaluate(batch)
        found: list[tuple[CheckSpec | None, str, str, Any, str]] = []  # spec, check, col, rows, msg
        ge_failed: dict[int, tuple[npt.NDArray[np.int64], Any]] = {}
        if self._ge_specs and rows:
            ge_failed = self._run_ge(batch)

        # Per check rows, contract side: group the validator's violations.
        v = contract.failures
        contract_rows: dict[tuple[str, str], npt.NDArray[np.int64]] = {}
        if v.num_rows:
            columns: Any = {
                "check": v.column("check"), "column": pc.fill_null(v.column("column"), ""),
                "row": v.column("row"),
            }
            grouped = pa.table(columns).group_by(["check", "column"]).aggregate(
                [("row", "distinct")]
            )
            for check, column, hit in zip(
                grouped.column("check").to_pylist(),
                grouped.column("column").to_pylist(),
                grouped.column("row_distinct").to_pylist(),
                strict=True,
            ):
                contract_rows[(str(check), str(column))] = np.sort(np.asarray(hit, np.int64))

        results: list[CheckResult] = []
        seen: set[tuple[str, str]] = set()
        passed = contract.passed.copy()
        for spec in self.compiled.checks:
            key = (spec.check, spec.column)
            if spec.engine == "contract":
                hit = contract_rows.get(key, np.zeros(0, dtype=np.int64))
                observed = None
                seen.add(key)
            else:
                if spec.engine == "re2":
                    hit, observed = self._run_re2(spec, batch), None
                elif id(spec) not in self._ge_specs:
                    assert spec.expectation is not None  # noqa: S101 - ge specs carry one
                    found_rows = national.failing_rows(
                        spec.expectation.type, spec.expectation.kwargs, batch
                    )
                    hit = found_rows if found_rows is not None else np.zeros(0, np.int64)
                    observed = None
                else:
                    hit, observed = ge_failed.get(
                        self._ge_specs[id(spec)], (np.zeros(0, dtype=np.int64), None)
                    )
                if len(hit):
                    passed[hit] = False
                    found.append((spec, spec.check, spec.column, hit, _messages(spec)))
            results.append(
                CheckResult(
                    check=spec.check, column=spec.column, engine=spec.engine, evaluated=rows,
                    failed=len(hit), expectation=_config_json(spec),
                    sample=self._sample(batch, spec.column, hit), observed=observed,
                )
            )
        # Violations of keywords the suite does not list (e.g. an undeclared column).
        for (check, column), hit in contract_rows.items():
            if (check, column) not in seen:
                results.append(CheckResult(check, column, "contract", rows, len(hit)))

        failures = self._merge_failures(v, found, batch)
        report = QualityReport(
            suite_name=self.compiled.name,
            row_count=rows,
            checks=tuple(results),
            columns=self._column_stats(batch),
        )
        return GateResult(passed, failures, report)

    def _run_ge(self, batch: pa.Table) -> dict[int, tuple[npt.NDArray[np.int64], Any]]:
        frame = self._frame(batch)
        ge_batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        outcome = ge_batch.validate(self._ge_suite, result_format=_RESULT_FORMAT)
        failed: dict[int, tuple[npt.NDArray[np.int64], Any]] = {}
        for r in outcome.results:
            config: Any = r.expectation_config
            meta = config.meta or {}
            sid = meta.get("govex_index")
            problem = _raised(r.exception_info)
            if problem is not None:
                msg = (
                    f"expectation {config.type} ({meta.get('govex_check')} on "
                    f"{meta.get('column') or 'the table'}) could not be evaluated: {problem}"
                )
                raise FatalError(msg)
            if sid is None or r.success:
                continue
            result = r.result or {}
            index = result.get("unexpected_index_list")
            if index is not None:
                hit = np.unique(np.asarray(index, dtype=np.int64))
            else:  # an aggregate expectation: the whole batch fails it
                hit = np.arange(batch.num_rows, dtype=np.int64)
            failed[sid] = (hit, result.get("observed_value"))
        return failed

    @staticmethod
    def _run_re2(spec: CheckSpec, batch: pa.Table) -> npt.NDArray[np.int64]:
        """A declared regex expectation, judged on RE2 (never GE's Python `re`)."""
        assert spec.expectation is not None  # noqa: S101 - re2 specs always carry one
        kwargs = spec.expectation.configuration.kwargs
        return regex_failing_rows(spec.expectation.class_name, kwargs, batch)

    def _frame(self, batch: pa.Table) -> Any:
        """The pandas view GE validates: only the columns it reads, a RangeIndex (so GE's
        unexpected indices are row numbers), Arrow-backed strings, dates as datetime64."""
        if self._ge_columns is not None:
            arrays = [
                batch.column(name) if name in batch.column_names else pa.nulls(batch.num_rows)
                for name in self._ge_columns
            ]
            batch = pa.table(arrays, names=self._ge_columns)
        return batch.to_pandas(date_as_object=False, split_blocks=True)

    @staticmethod
    def _sample(batch: pa.Table, column: str, hit: npt.NDArray[np.int64]) -> tuple[Any, ...]:
        if not len(hit) or column not in batch.column_names:
            return ()
        rows: Any = pa.array(hit[:SAMPLE_SIZE], pa.int64())
        return tuple(batch.column(column).take(rows).to_pylist())

    @staticmethod
    def _merge_failures(
        contract_failures: pa.Table,
        found: list[tuple[CheckSpec | None, str, str, Any, str]],
        batch: pa.Table,
    ) -> pa.Table:
        if not found:
            return contract_failures.cast(FAILURE_SCHEMA)
        parts = [contract_failures.cast(FAILURE_SCHEMA)]
        for spec, check, column, hit, message in found:
            n = len(hit)
            kwargs = spec.expectation.configuration.kwargs if spec and spec.expectation else {}
            details = explain(check, kwargs, batch, hit, fallback=message)
            parts.append(
                pa.table(
                    {
                        "row": pa.array(hit, pa.int64()),
                        "check": pa.array(np.full(n, check, dtype=object), pa.string()),
                        "column": pa.array(np.full(n, column, dtype=object), pa.string()),
                        "message": pa.array(np.full(n, message, dtype=object), pa.string()),
                        "detail": pa.array(details, pa.string()),
                    },
                    schema=FAILURE_SCHEMA,
                )
            )
        merged = pa.concat_tables(parts)
        order = np.argsort(merged.column("row").to_numpy(), kind="stable")
        take: Any = pa.array(order, pa.int64())
        return merged.take(take)

    def _column_stats(self, batch: pa.Table) -> dict[str, ColumnStats]:
        stats: dict[str, ColumnStats] = {}
        for name in batch.column_names:
            column = batch.column(name)
            kind = column.type
            entry = ColumnStats(null_count=column.null_count)
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                bounds = pc.min_max(column)
                total = pc.sum(column).as_py()
                entry = ColumnStats(
                    null_count=column.null_count,
                    count=len(column) - column.null_count,
                    total=None if total is None else float(total),
                    minimum=_float(bounds["min"].as_py()),
                    maximum=_float(bounds["max"].as_py()),
                )
            elif name in self._enum_columns:
                distinct = pc.unique(column.drop_null()).to_pylist()
                entry = ColumnStats(null_count=column.null_count, distinct=frozenset(distinct))
            stats[name] = entry
        return stats


def _raised(info: Any) -> str | None:
    """The exception message of a GE result's exception_info, flat or keyed by metric."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _config_json(spec: CheckSpec) -> dict[str, Any] | None:
    if spec.expectation is None:
        return None
    config = spec.expectation.configuration
    return {"type": config.type, "kwargs": dict(config.kwargs), "meta": dict(config.meta or {})}


class _QualityDeclaration(Protocol):
    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


class GatedResource(Protocol):
    """What the gate needs of a catalog resource (structural: `catalog.Resource` fits)."""

    @property
    def key(self) -> Sequence[str]: ...

    @property
    def quality(self) -> _QualityDeclaration: ...


def resource_gate(
    contract: contracts.Contract, resource: GatedResource, *, keyed: bool = True
) -> QualityGate:
    """The one way to build a resource's gate: its contract, its `quality` declaration and,
    when `keyed`, key uniqueness. Ingest gates unkeyed: a stream legitimately carries several
    versions of one record in one micro-batch (in order), and the landing keeps the latest."""
    return QualityGate(
        contract,
        resource.quality.model_dump(mode="json"),
        key=tuple(resource.key) if keyed else (),
    )
