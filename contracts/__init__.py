"""Contracts: versioned JSON Schema per resource, compatibility rules, vectorised validation.

Public API only; the modules behind it are internal.
"""

from contracts.arrow import arrow_schema, arrow_type
from contracts.compat import (
    BREAKING_KINDS,
    CHANGE_KINDS,
    SchemaChange,
    breaking_changes,
    check_evolution,
    compare,
)
from contracts.loading import check_contract_schema, load_contract, load_contracts
from contracts.model import (
    CHECK_PARAMETERS,
    NORMALIZE_STEPS,
    RECORD_PREFIX,
    Contract,
    allows_null,
    check_items,
    parse_semver,
)
from contracts.patterns import pattern_refusal, re2_search, to_re2
from contracts.reference import (
    json_projection,
    reference_validator,
    reference_violations,
    to_json_scalar,
)
from contracts.validate import VIOLATION_SCHEMA, BatchValidation, BatchValidator

__all__ = [
    "BREAKING_KINDS",
    "CHECK_PARAMETERS",
    "CHANGE_KINDS",
    "NORMALIZE_STEPS",
    "RECORD_PREFIX",
    "VIOLATION_SCHEMA",
    "BatchValidation",
    "BatchValidator",
    "Contract",
    "SchemaChange",
    "allows_null",
    "arrow_schema",
    "arrow_type",
    "breaking_changes",
    "check_contract_schema",
    "check_items",
    "check_evolution",
    "compare",
    "json_projection",
    "load_contract",
    "load_contracts",
    "parse_semver",
    "pattern_refusal",
    "re2_search",
    "reference_validator",
    "reference_violations",
    "to_json_scalar",
    "to_re2",
]
