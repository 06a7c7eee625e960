"""Great Expectations Data Docs for one run, built by GE's own site builder.

An ephemeral GE context gets a local filesystem Data Docs site rooted at the run's directory;
the run's merged validation result is put in the context's (in-memory) validation results
store under the run id, and `context.build_data_docs` renders the site: `index.html` plus one
validation page naming every check, its counts and a sample of failing values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from govex.settings import load_settings
from quality.gate import GateResult
from quality.report import QualityReport

__all__ = ["build_data_docs", "data_docs_dir"]

_SITE = "govex"


def data_docs_dir(run_id: str) -> Path:
    """Where a run's Data Docs go: `$GOVEX_DATA_DOCS_DIR/<run_id>`, default
    `.govex/data_docs/<run_id>` under the working directory."""
    return Path(load_settings().data_docs_dir) / run_id


def build_data_docs(
    result: GateResult | QualityReport, directory: Path | str, *, run_id: str | None = None
) -> Path:
    """Render `result` (one batch's GateResult or a run's merged QualityReport) as a GE Data
    Docs site in `directory`; returns the path of its index.html."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    report = result.report if isinstance(result, GateResult) else result
    if report is None:
        msg = "this GateResult has no quality report (it came from a ContractGate alone)"
        raise ValueError(msg)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    context: Any = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.add_data_docs_site(
        site_name=_SITE,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(directory),
            },
        },
    )
    validation = report.validation_result()
    now = dt.datetime.now(dt.UTC)
    run = RunIdentifier(run_name=run_id or f"govex-{now:%Y%m%dT%H%M%S}", run_time=now)
    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=report.suite_name),
        run_id=run,
        batch_identifier="run",
    )
    context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[_SITE])
    index = directory / "index.html"
    if not index.exists():  # pragma: no cover - GE changed its layout
        msg = f"Great Expectations did not write {index}"
        raise FileNotFoundError(msg)
    return index
