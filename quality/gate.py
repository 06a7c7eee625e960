"""The quality gate's seam: what the exchange engine asks of quality, per batch.

A gate looks at one batch and says which rows pass and, for each failing row, every check that
failed and on which column. The engine decides what to do with that (quarantine the rows, block
the run when the error rate is too high); the gate only judges.

`ContractGate` is the first gate: the contract's own rules, run by the vectorised validator.
The Great Expectations suite and the national-standard checks join it behind the same seam.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

import contracts

if TYPE_CHECKING:
    from quality.report import CheckResult, QualityReport

_FAILURE_FIELDS: list[pa.Field[Any]] = [
        pa.field("row", pa.int64()),
        pa.field("check", pa.string()),
        pa.field("column", pa.string()),
        pa.field("message", pa.string()),
        # Which part of the check failed ("check digit", "area code 350112 unknown", the
        # contract keyword's own sentence): the check name alone does not say what to fix.
        pa.field("detail", pa.string()),
]
FAILURE_SCHEMA = pa.schema(_FAILURE_FIELDS)


@dataclass(frozen=True)
class GateResult:
    """`passed[i]` is True when row i may be delivered; `failures` has one row per failed
    check (row, check, column, message, detail). `report` (set by `QualityGate`) holds per check
    counts and column metrics, mergeable across the batches of a run."""

    passed: npt.NDArray[np.bool_]
    failures: pa.Table
    report: QualityReport | None = None

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        """Per check evaluated/failed counts (empty without a report)."""
        return () if self.report is None else self.report.checks

    def assertions(self) -> list[dict[str, Any]]:
        """OpenLineage `dataQualityAssertions` items ({assertion, success, column})."""
        return [] if self.report is None else self.report.assertions()

    def data_quality_metrics(self) -> dict[str, Any]:
        """OpenLineage `dataQualityMetrics` body (rowCount, columnMetrics)."""
        if self.report is None:
            return {"rowCount": self.num_rows, "columnMetrics": {}}
        return self.report.data_quality_metrics()

    @property
    def num_rows(self) -> int:
        return len(self.passed)

    @property
    def num_failed(self) -> int:
        return int(np.count_nonzero(~self.passed))


class Gate(Protocol):
    def evaluate(self, batch: pa.Table) -> GateResult:
        """Judge one batch."""
        ...


class ContractGate:
    """The contract's rules as a gate: a check is named after the JSON Schema keyword."""

    def __init__(self, contract: contracts.Contract) -> None:
        self._validator = contracts.BatchValidator(contract)

    def evaluate(self, batch: pa.Table) -> GateResult:
        outcome = self._validator.validate(batch)
        v = outcome.violations
        failures = pa.table(
            {
                "row": v.column("row"),
                "check": v.column("check"),
                "column": v.column("field"),
                "message": v.column("message"),
                # The validator's sentence names the keyword's bound ("longer than 18"):
                # that is the part of the check that failed.
                "detail": v.column("message"),
            },
            schema=FAILURE_SCHEMA,
        )
        return GateResult(outcome.valid, failures)
