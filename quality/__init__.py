"""Quality gates: contract checks, Great Expectations suites, national-standard checks.

Public API:
- the gate seam: `Gate`, `GateResult`, `ContractGate`, `FAILURE_SCHEMA`;
- `resource_gate(contract, resource)`: the one factory of a resource's gate, a `QualityGate`
  (contract + GE suite + national checks in one gate);
- `compile_suite` (contract + declaration -> GE suite), `QualityReport`/`CheckResult` (per check
  counts, OpenLineage assertions and metrics, mergeable across batches);
- persistence (`quality.tables`): `record_gate`, `record_check_totals`, `quarantine`, `report`,
  `metadata`;
- `build_data_docs(result, directory)`, `data_docs_dir(run_id)`; a run defers its page
  (`defer_data_docs`, to Settings.data_docs_location: a folder or object storage) and the
  web app renders it when first asked (`render_pending`, `fetch_data_docs`);
- the national-standard check digits in `quality.standards`.

To add a national-standard check: its vectorised rule in `standards.py`, a custom GE
expectation in `expectations.py` registered in `CHECK_EXPECTATIONS` (a contract then names it
in `x-govex-checks`), and a test that feeds it bad data and sees it fail.

Great Expectations is heavy to import (seconds): the names that need it load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from govex.lazy import lazy_names
from quality import divisions
from quality.gate import FAILURE_SCHEMA, ContractGate, Gate, GateResult
from quality.report import CheckResult, QualityReport
from quality.standards import today as standards_today
from quality.tables import metadata, quarantine, record_check_totals, record_gate, report

if TYPE_CHECKING:
    from quality.docs import (
        build_data_docs,
        data_docs_dir,
        defer_data_docs,
        fetch_data_docs,
        has_data_docs,
        has_pending,
        render_pending,
    )
    from quality.ge_gate import GatedResource, QualityGate, resource_gate
    from quality.suite import KNOWN_CHECKS, CompiledSuite, compile_suite

__all__ = [
    "FAILURE_SCHEMA",
    "KNOWN_CHECKS",
    "CheckResult",
    "CompiledSuite",
    "ContractGate",
    "Gate",
    "GateResult",
    "GatedResource",
    "QualityGate",
    "QualityReport",
    "build_data_docs",
    "division_reference",
    "compile_suite",
    "data_docs_dir",
    "defer_data_docs",
    "fetch_data_docs",
    "has_data_docs",
    "has_pending",
    "metadata",
    "quarantine",
    "record_check_totals",
    "record_gate",
    "render_pending",
    "report",
    "resource_gate",
    "use_division_overrides",
]

_LAZY = {
    "QualityGate": "ge_gate",
    "GatedResource": "ge_gate",
    "resource_gate": "ge_gate",
    "compile_suite": "suite",
    "CompiledSuite": "suite",
    "KNOWN_CHECKS": "suite",
    "build_data_docs": "docs",
    "data_docs_dir": "docs",
    "defer_data_docs": "docs",
    "fetch_data_docs": "docs",
    "has_data_docs": "docs",
    "has_pending": "docs",
    "render_pending": "docs",
}


__getattr__ = lazy_names(__name__, _LAZY)


def use_division_overrides(rows: Sequence[Mapping[str, str]]) -> None:
    """Judge division and resident-ID area codes with the shipped GB/T 2260 history plus a
    workspace's rows (as `govex apply` stored them); the rows of a code replace its shipped
    ones. Process-wide: a run calls it before it builds its gate."""
    divisions.use_overrides([divisions.DivisionCode.from_json(row) for row in rows])


def division_reference() -> dict[str, Any]:
    """What the GB/T 2260 checks use: the shipped list's source, last update and counts."""
    table = divisions.builtin()
    today = standards_today()
    return {
        **divisions.builtin_info(),
        "codes_ever_valid": len(table.ever),
        "codes_valid_today": len(table.valid_at(today)),
        "today": today.isoformat(),
    }
