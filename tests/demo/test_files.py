"""The packaged demo workspace: found as package data, copied out, never written in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.cli import main
from exchange.demo.files import copy_workspace, packaged_workspace, refresh_working_copy
from govex.errors import DeclarationError

DECLARATIONS = ["README.md", "connections.yaml", "contracts", "departments.yaml", "requests",
                "resources", "subscriptions"]


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_the_packaged_workspace_is_the_declarations_only() -> None:
    root = packaged_workspace()
    assert sorted(p.name for p in root.iterdir() if p.name != "data") == DECLARATIONS
    assert root.parent.name == "demo"  # exchange/demo/workspace, inside the package


def test_copy_workspace_copies_every_declaration(tmp_path: Path) -> None:
    copied = copy_workspace(tmp_path / "city")
    assert _files(copied) == [
        f for f in _files(packaged_workspace()) if not f.startswith("data/")]


def test_copy_workspace_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "city").mkdir()
    (tmp_path / "city" / "mine.yaml").write_text("x: 1\n")
    with pytest.raises(DeclarationError, match="already exists and is not empty"):
        copy_workspace(tmp_path / "city")


def test_refresh_keeps_the_generated_data_and_drops_stale_declarations(tmp_path: Path) -> None:
    work = tmp_path / ".govex" / "demo" / "city"
    (work / "data").mkdir(parents=True)
    (work / "data" / "psb.db").write_bytes(b"generated")
    (work / "resources").mkdir()
    (work / "resources" / "gone.yaml").write_text("code: GONE\n")
    assert refresh_working_copy(work) == work.resolve()
    assert (work / "data" / "psb.db").read_bytes() == b"generated"
    assert not (work / "resources" / "gone.yaml").exists()
    assert sorted(p.name for p in work.iterdir()) == sorted([*DECLARATIONS, "data"])


def test_govex_demo_copy_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "my-city"
    assert main(["demo", "--copy-workspace", str(target)]) == 0
    assert f"copied the demo city's workspace to {target}" in capsys.readouterr().out
    assert (target / "resources").is_dir()
    assert main(["demo", "--copy-workspace", str(target)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
