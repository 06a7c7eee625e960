"""The demo city's workspace, shipped as package data (`exchange/demo/workspace/`), and the
working copy the demo runs in.

The demo writes its generated source data into `<workspace>/data/`, and an installed package
may be read-only (and must not change under its owner's feet), so the demo never runs in the
packaged workspace: it copies the declarations to a working directory first
(`.govex/demo/city` under the current directory by default) and runs there.
"""

from __future__ import annotations

import shutil
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from govex.errors import DeclarationError, FatalError

WORKING_COPY = Path(".govex") / "demo" / "city"
# Written by the demo into a working copy; never part of the packaged declarations.
GENERATED = "data"
_SKIP = {GENERATED, "__pycache__"}


def packaged_workspace() -> Path:
    """The packaged demo workspace. Read it, never write to it (copy it with `copy_workspace`).

    A wheel installs it as plain files; a zip import would not give a directory, and is refused.
    """
    root = resources.files("exchange.demo").joinpath("workspace")
    if not isinstance(root, Path) or not root.is_dir():
        msg = (f"the demo workspace is not a directory on disk ({root}); install govex from its "
               "wheel or a source checkout, not as a zip archive")
        raise FatalError(msg)
    return root


def _copy(source: Traversable, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.name in _SKIP:
            continue
        if entry.is_dir():
            _copy(entry, destination / entry.name)
        else:
            (destination / entry.name).write_bytes(entry.read_bytes())


def copy_workspace(destination: Path) -> Path:
    """Copy the packaged declarations (not generated data) to `destination`, which must not
    exist yet or be empty; returns it."""
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        msg = (f"{destination} already exists and is not empty: choose a new directory for "
               "the demo workspace")
        raise DeclarationError(msg, value=str(destination))
    _copy(packaged_workspace(), destination)
    return destination


def refresh_working_copy(directory: Path = WORKING_COPY) -> Path:
    """Make `directory` hold exactly the packaged declarations, keeping its generated `data/`
    (the demo regenerates it anyway); returns the absolute path. Only for a directory the demo
    owns: everything else in it is replaced."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.name == GENERATED:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    _copy(packaged_workspace(), directory)
    return directory
