"""What a gate found, as data: per check counts, column metrics, and the OpenLineage facets.

`QualityReport` describes one batch (attached to its `GateResult`) and merges with the reports
of the run's other batches (`merge`), so the engine keeps one running report per run and hands
it to lineage (`assertions()`, `data_quality_metrics()`), to persistence
(`quality.record_check_totals`) and to Data Docs (`validation_result()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["SAMPLE_SIZE", "CheckResult", "QualityReport"]

#: Failing values kept per check (GE's partial_unexpected_count default).
SAMPLE_SIZE = 20


@dataclass(frozen=True)
class CheckResult:
    """One check over one batch or run: rows evaluated, rows failed, a sample of failing values.

    `evaluated` counts every row of the batch (a null is judged by `required`, and passes the
    other checks); `expectation` is the GE expectation configuration as JSON (None for a
    contract keyword GE has no expectation for)."""

    check: str
    column: str
    engine: str
    evaluated: int
    failed: int
    expectation: dict[str, Any] | None = None
    sample: tuple[Any, ...] = ()
    observed: Any = None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.evaluated if self.evaluated else 0.0

    @property
    def success(self) -> bool:
        return self.failed == 0

    def merge(self, other: CheckResult) -> CheckResult:
        return replace(
            self,
            evaluated=self.evaluated + other.evaluated,
            failed=self.failed + other.failed,
            sample=(self.sample + other.sample)[:SAMPLE_SIZE],
            observed=other.observed if other.observed is not None else self.observed,
        )


@dataclass(frozen=True)
class ColumnStats:
    """Cheap per-column facts: nulls always; count/sum/min/max for numeric columns; the distinct
    values of enum or boolean columns (small by construction)."""

    null_count: int = 0
    count: int | None = None
    total: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    distinct: frozenset[Any] | None = None

    def merge(self, other: ColumnStats) -> ColumnStats:
        def pick(a: float | None, b: float | None, f: Any) -> float | None:
            return b if a is None else a if b is None else f(a, b)

        return ColumnStats(
            null_count=self.null_count + other.null_count,
            count=None if self.count is None and other.count is None
            else (self.count or 0) + (other.count or 0),
            total=pick(self.total, other.total, lambda a, b: a + b),
            minimum=pick(self.minimum, other.minimum, min),
            maximum=pick(self.maximum, other.maximum, max),
            distinct=None if self.distinct is None or other.distinct is None
            else self.distinct | other.distinct,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nullCount": self.null_count}
        if self.distinct is not None:
            out["distinctCount"] = len(self.distinct)
        for key, value in (
            ("count", self.count), ("sum", self.total), ("min", self.minimum),
            ("max", self.maximum),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class QualityReport:
    """Per check results and column metrics of one batch, or of a run (merged batches)."""

    suite_name: str
    row_count: int
    checks: tuple[CheckResult, ...]
    columns: dict[str, ColumnStats] = field(default_factory=dict)
    batches: int = 1

    @property
    def failed_checks(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.failed)

    def merge(self, other: QualityReport) -> QualityReport:
        """This report and a later batch's, added up (checks matched by check and column)."""
        merged: dict[tuple[str, str], CheckResult] = {(c.check, c.column): c for c in self.checks}
        for c in other.checks:
            key = (c.check, c.column)
            merged[key] = merged[key].merge(c) if key in merged else c
        columns = dict(self.columns)
        for name, stats in other.columns.items():
            columns[name] = columns[name].merge(stats) if name in columns else stats
        return QualityReport(
            suite_name=self.suite_name,
            row_count=self.row_count + other.row_count,
            checks=tuple(merged.values()),
            columns=columns,
            batches=self.batches + other.batches,
        )

    def assertions(self) -> list[dict[str, Any]]:
        """The OpenLineage `dataQualityAssertions` facet's `assertions` list."""
        out: list[dict[str, Any]] = []
        for c in self.checks:
            item: dict[str, Any] = {"assertion": c.check, "success": c.success}
            if c.column:
                item["column"] = c.column
            out.append(item)
        return out

    def data_quality_metrics(self) -> dict[str, Any]:
        """The OpenLineage `dataQualityMetrics` facet body (rowCount, columnMetrics)."""
        return {
            "rowCount": self.row_count,
            "columnMetrics": {name: s.to_json() for name, s in self.columns.items()},
        }

    def totals(self) -> list[dict[str, Any]]:
        """Per check {check, column, evaluated, failed, failure_rate} (what
        `record_check_totals` stores)."""
        return [
            {"check": c.check, "column": c.column, "evaluated": c.evaluated,
             "failed": c.failed, "failure_rate": c.failure_rate}
            for c in self.checks
        ]

    def validation_result(self) -> Any:
        """A GE `ExpectationSuiteValidationResult` of the whole report: one expectation result
        per check with an expectation (counts, failing-value sample, observed value)."""
        from great_expectations.core import (
            ExpectationSuiteValidationResult,
            ExpectationValidationResult,
        )
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        results = []
        for c in self.checks:
            if c.expectation is None:
                continue
            config = ExpectationConfiguration(
                type=c.expectation["type"],
                kwargs=c.expectation.get("kwargs", {}),
                meta=c.expectation.get("meta"),
            )
            result: dict[str, Any] = {
                "element_count": c.evaluated,
                "unexpected_count": c.failed,
                "unexpected_percent": 100.0 * c.failure_rate,
                "partial_unexpected_list": [_plain(v) for v in c.sample],
                "missing_count": 0,
                "missing_percent": 0.0,
                "unexpected_percent_total": 100.0 * c.failure_rate,
                "unexpected_percent_nonmissing": 100.0 * c.failure_rate,
            }
            if c.observed is not None:
                result["observed_value"] = _plain(c.observed)
            results.append(
                ExpectationValidationResult(
                    success=c.success, expectation_config=config, result=result
                )
            )
        evaluated = len(results)
        successful = sum(1 for r in results if r.success)
        return ExpectationSuiteValidationResult(
            success=successful == evaluated,
            results=results,
            suite_name=self.suite_name,
            statistics={
                "evaluated_expectations": evaluated,
                "successful_expectations": successful,
                "unsuccessful_expectations": evaluated - successful,
                "success_percent": 100.0 * successful / evaluated if evaluated else 100.0,
            },
            meta={"govex_rows": self.row_count, "govex_batches": self.batches},
        )


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar for GE's renderers."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
