"""Quality gates: contract checks, Great Expectations suites, national-standard checks.

Public API:
- the gate seam: `Gate`, `GateResult`, `ContractGate`, `FAILURE_SCHEMA`;
- `QualityGate(contract, quality_declaration, key=...)`: contract + GE suite in one gate;
- `compile_suite` (contract + declaration -> GE suite), `QualityReport`/`CheckResult` (per check
  counts, OpenLineage assertions and metrics, mergeable across batches);
- persistence (`quality.tables`): `record_gate`, `record_check_totals`, `quarantine`, `report`,
  `metadata`;
- `build_data_docs(result, directory)`, `data_docs_dir(run_id)`;
- the national-standard check digits in `quality.standards`.

Great Expectations is heavy to import (seconds): the names that need it load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .gate import FAILURE_SCHEMA, ContractGate, Gate, GateResult
from .report import CheckResult, QualityReport
from .tables import metadata, quarantine, record_check_totals, record_gate, report

if TYPE_CHECKING:
    from .docs import build_data_docs, data_docs_dir
    from .quality_gate import QualityGate
    from .suite import KNOWN_CHECKS, CompiledSuite, compile_suite

__all__ = [
    "FAILURE_SCHEMA",
    "KNOWN_CHECKS",
    "CheckResult",
    "CompiledSuite",
    "ContractGate",
    "Gate",
    "GateResult",
    "QualityGate",
    "QualityReport",
    "build_data_docs",
    "compile_suite",
    "data_docs_dir",
    "metadata",
    "quarantine",
    "record_check_totals",
    "record_gate",
    "report",
]

_LAZY = {
    "QualityGate": "quality_gate",
    "compile_suite": "suite",
    "CompiledSuite": "suite",
    "KNOWN_CHECKS": "suite",
    "build_data_docs": "docs",
    "data_docs_dir": "docs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'quality' has no attribute {name!r}"
        raise AttributeError(msg)
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
