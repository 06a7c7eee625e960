"""`govex bench trace --partitions` at a tiny size, so that the benchmark (its load across
monthly partitions, sealing, the unpartitioned baseline and the EXPLAIN figures) cannot rot."""

from __future__ import annotations

import re

import pytest

from exchange.cli.main import main


@pytest.mark.integration
def test_bench_trace_reports_partitioned_reads_beside_the_unpartitioned_baseline(
    capfd: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "trace", "--rows", "2400", "--partitions", "12",
                 "--samples", "20"]) == 0
    out = capfd.readouterr().out
    assert re.search(r"provenance rows\s+2,400\s+in 12 monthly partitions", out), out
    assert re.search(r"loaded in\s+[\d.]+ s\s+\(rows [\d.]+ s, indexes [\d.]+ s, sealing", out)
    read: dict[str, float] = {}
    for label in ("baseline: SELECT, one unpartitioned table",
                  "SELECT on the partitions, no time bound",
                  "provenance read (deliveries_of), pruned"):
        line = next(line for line in out.splitlines() if line.startswith(label))
        found = re.search(r"([\d.]+) tables of rows read per lookup", line)
        assert found, line
        read[label] = float(found.group(1))
    assert read["baseline: SELECT, one unpartitioned table"] == 1
    # 12 months and the empty one ahead, against the record's 3 months and the 2 unsealed.
    assert read["SELECT on the partitions, no time bound"] == 13
    assert read["provenance read (deliveries_of), pruned"] <= 5
    assert "trace, with source read" in out
