"""`govex bench` finds the benchmarks as modules of the installed `benchmarks` package."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks
from exchange.cli import bench, main


def test_bench_lists_the_benchmark_modules() -> None:
    on_disk = sorted(p.stem.removeprefix("bench_")
                     for p in Path(benchmarks.__file__).parent.glob("bench_*.py"))
    assert bench.names() == on_disk
    assert "gate" in on_disk


def test_an_unknown_benchmark_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no benchmark named 'nope'" in err
    assert "gate" in err


@pytest.mark.integration
def test_bench_exchange_reports_govex_beside_copy_and_dlt(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A small `govex bench exchange` runs all three paths and prints both ratios, so the
    benchmark (and its dlt baseline) cannot rot unnoticed."""
    assert main(["bench", "exchange", "--rows", "3000", "--no-small-increment",
                 "--repeat", "2"]) == 0
    out = capfd.readouterr().out
    for line in ("baseline COPY→COPY", "govex run (full path)", "dlt (pyarrow, merge)",
                 "ratio govex / COPY pipe", "ratio govex / dlt", "govex peak memory"):
        assert line in out, out
    each = out.split("each round: ", 1)[1].split(";", 1)[0].split(", ")
    assert len(each) == 2, out  # one ratio per round, their median printed before them
