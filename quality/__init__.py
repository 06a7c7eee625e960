"""Quality gates: contract checks, Great Expectations suites, national-standard checks.

Public API: the gate seam (`Gate`, `GateResult`, `ContractGate`) and the national-standard
check digits in `quality.standards`.
"""

from .gate import FAILURE_SCHEMA, ContractGate, Gate, GateResult

__all__ = ["FAILURE_SCHEMA", "ContractGate", "Gate", "GateResult"]
