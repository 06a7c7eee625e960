"""Staged batches of one run, as Arrow IPC files on disk.

Why files: the run is cut into steps (extract, gate, deliver per subscription, report) that may
run in different processes — Airflow tasks — and data must not travel through XCom. Arrow IPC
is written and memory-mapped back at disk speed, and each file holds one bounded batch, so no
step ever holds the whole increment in memory.

Staged batches are raw source data, before masking: they are private to the user govex runs
as (directories 0700, files 0600, whatever the umask), and they do not outlive their run.
`finish` removes a run's own; a run that never reached it (killed) is marked abandoned by the
next run of its resource, which then removes what such runs left (`staged_runs` +
`remove_runs`, driven by `steps.start_run`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from govex.settings import load_settings

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def staging_root() -> Path:
    """GOVEX_STAGING_DIR, else `.govex/staging` under the working directory."""
    return load_settings().staging_root


def _private_directory(path: Path) -> None:
    """Make `path` owner-only (0700) if it does not exist yet. `mkdir`'s mode passes through
    the umask, which may take bits away (a umask of 0o277 would leave the owner unable to
    write), so the mode is set again; it is never wider than 0700 meanwhile. A directory that
    exists is left as it is (a staging root an operator chose and set up)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIRECTORY_MODE)
    except FileExistsError:
        return  # another step of the run made it: it did the same
    os.chmod(path, DIRECTORY_MODE)


@dataclass(frozen=True)
class Stage:
    """One run's staging directory: `<root>/<run_id>/<area>/<batch>.arrow`."""

    directory: Path

    @classmethod
    def for_run(cls, run_id: str, root: Path | None = None) -> Stage:
        if not run_id or run_id in (".", "..") or Path(run_id).name != run_id:
            msg = f"{run_id!r} is not a run id"
            raise ValueError(msg)
        return cls((root or staging_root()) / run_id)

    def write(self, area: str, index: int, table: pa.Table) -> Path:
        folder = self.directory / area
        for directory in (self.directory.parent, self.directory, folder):
            _private_directory(directory)
        path = folder / f"{index:06d}.arrow"
        tmp = path.with_suffix(".tmp")
        # Created owner-only before any byte is written (pyarrow would create it 0666 less
        # the umask); truncating it again below keeps the mode.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path)  # a batch file is either whole or absent
        return path

    def batches(self, area: str) -> Iterator[pa.Table]:
        folder = self.directory / area
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.arrow")):
            with pa.memory_map(str(path)) as source:
                yield pa.ipc.open_file(source).read_all()

    def clear(self, area: str) -> None:
        shutil.rmtree(self.directory / area, ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def staged_runs(root: Path | None = None) -> list[str]:
    """The ids of the runs that have a staging directory (finished or not)."""
    folder = root or staging_root()
    try:
        return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())
    except FileNotFoundError:
        return []


def remove_runs(run_ids: Iterable[str], root: Path | None = None) -> None:
    """Remove these runs' staging directories. The caller names only runs that have ended
    (the store says so): never one that is still running elsewhere."""
    for run_id in run_ids:
        Stage.for_run(run_id, root).remove()
