"""Staged batches of one run, as Arrow IPC files: on local disk or in object storage.

Why files: the run is cut into steps (extract, gate, deliver per subscription, report) that may
run in different processes — Airflow tasks, on different machines — and data must not travel
through XCom. Each file holds one bounded batch, so no step ever holds the whole increment in
memory.

Where: `GOVEX_STAGING_URL` (`GOVEX_STAGING_DIR` is its alias), a local path or an fsspec URL
(`s3://bucket/prefix`; see govex.storage). A local path is written and memory-mapped back at
disk speed; any other URL goes through fsspec.

A batch is whole or absent, so that no step ever reads half of one:

- Local: written to `<batch>.tmp`, then renamed to `<batch>.arrow` (rename is atomic within a
  filesystem); readers list `*.arrow` only.
- Object storage: the batch is serialised in memory (it is already bounded by
  GOVEX_BATCH_ROWS) and sent in one call (`pipe_file`). S3 makes an object visible only when
  its PUT completes — a single PUT below 100 MB, else a multipart upload that exists only once
  completed, and that s3fs aborts on failure. A writer that dies mid-way therefore leaves no
  object (at most an incomplete multipart upload, invisible to listings; the bucket's lifecycle
  rule aborts those). Streaming through `fs.open(..., "wb")` is avoided on purpose: its
  `__exit__` closes, and so commits, a half-written file when the writer raises.

Staged batches are raw source data, before masking. Locally they are private to the user govex
runs as (directories 0700, files 0600, whatever the umask). On S3 every object is written with
server-side encryption requested (AES256, or aws:kms with GOVEX_STAGING_KMS_KEY), which a bucket
policy denying unencrypted PUTs can then enforce (docs/operations.md). Either way they do not
outlive their run: `finish` removes a run's own; a run that never reached it (killed) is marked
abandoned by the next run of its resource, which then removes what such runs left
(`staged_runs` + `remove_runs`, driven by `steps.start_run`).
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from govex.settings import load_settings
from govex.storage import filesystem, is_local

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def staging_url() -> str:
    """GOVEX_STAGING_URL, else GOVEX_STAGING_DIR, else `.govex/staging` (see govex.settings)."""
    return load_settings().staging_url


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


def _local_path(url: str | Path) -> Path:
    return Path(str(url).removeprefix("file://")).resolve()


@dataclass(frozen=True)
class Stage:
    """One run's staging area: `<root>/<run_id>/<area>/<batch>.arrow`. `directory` is a local
    path, or the path inside `fs` (an fsspec filesystem) when staging is not local."""

    directory: str
    fs: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def for_run(cls, run_id: str, root: Path | str | None = None) -> Stage:
        if not run_id or run_id in (".", "..") or posixpath.basename(run_id) != run_id:
            msg = f"{run_id!r} is not a run id"
            raise ValueError(msg)
        url = str(root) if root is not None else staging_url()
        if is_local(url):
            return cls(str(_local_path(url) / run_id))
        fs, path = filesystem(url)
        return cls(f"{path.rstrip('/')}/{run_id}", fs)

    @property
    def local(self) -> bool:
        return self.fs is None

    def write(self, area: str, index: int, table: pa.Table) -> str:
        """Stage one batch, whole or not at all (see the module docstring); returns its path."""
        name = f"{area}/{index:06d}.arrow"
        if not self.local:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            path = f"{self.directory}/{name}"
            self.fs.pipe_file(path, sink.getvalue().to_pybytes())
            return path
        directory = Path(self.directory)
        folder = directory / area
        for each in (directory.parent, directory, folder):
            _private_directory(each)
        path_ = directory / name
        tmp = path_.with_suffix(".tmp")
        # Created owner-only before any byte is written (pyarrow would create it 0666 less
        # the umask); truncating it again below keeps the mode.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
        with pa.OSFile(str(tmp), "wb") as sink_, pa.ipc.new_file(sink_, table.schema) as writer:
            writer.write_table(table)
        tmp.replace(path_)  # a batch file is either whole or absent
        return str(path_)

    def batches(self, area: str) -> Iterator[pa.Table]:
        """The batches staged in `area`, in order; only whole ones exist to be listed."""
        for _index, batch in self.numbered(area):
            yield batch

    def numbered(self, area: str) -> Iterator[tuple[int, pa.Table]]:
        """The batches staged in `area` with the index each was written under, in order."""
        if self.local:
            folder = Path(self.directory) / area
            if not folder.is_dir():
                return
            for path in sorted(folder.glob("*.arrow")):
                with pa.memory_map(str(path)) as source:
                    yield int(path.stem), pa.ipc.open_file(source).read_all()
            return
        for key in sorted(self.fs.glob(f"{self.directory}/{area}/*.arrow")):
            index = int(posixpath.basename(key).removesuffix(".arrow"))
            yield index, pa.ipc.open_file(pa.py_buffer(self.fs.cat_file(key))).read_all()

    def clear(self, area: str) -> None:
        self._remove(f"{self.directory}/{area}")

    def remove(self) -> None:
        self._remove(self.directory)

    def _remove(self, path: str) -> None:
        if self.local:
            shutil.rmtree(path, ignore_errors=True)
            return
        with contextlib.suppress(FileNotFoundError):  # nothing staged there: already gone
            self.fs.rm(path, recursive=True)


def staged_runs(root: Path | str | None = None) -> list[str]:
    """The ids of the runs that have a staging directory (finished or not)."""
    url = str(root) if root is not None else staging_url()
    try:
        if is_local(url):
            return sorted(e.name for e in _local_path(url).iterdir() if e.is_dir())
        fs, path = filesystem(url)
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return sorted(posixpath.basename(e["name"].rstrip("/")) for e in entries
                  if e["type"] == "directory")


def remove_runs(run_ids: Iterable[str], root: Path | str | None = None) -> None:
    """Remove these runs' staging directories. The caller names only runs that have ended
    (the store says so): never one that is still running elsewhere."""
    for run_id in run_ids:
        Stage.for_run(run_id, root).remove()
