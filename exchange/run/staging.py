"""Staged batches of one run, as Arrow IPC files on disk.

Why files: the run is cut into steps (extract, gate, deliver per subscription, report) that may
run in different processes — Airflow tasks — and data must not travel through XCom. Arrow IPC
is written and memory-mapped back at disk speed, and each file holds one bounded batch, so no
step ever holds the whole increment in memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from govex.settings import load_settings


def staging_root() -> Path:
    """GOVEX_STAGING_DIR, else `.govex/staging` under the working directory."""
    return load_settings().staging_root


@dataclass(frozen=True)
class Stage:
    """One run's staging directory: `<root>/<run_id>/<area>/<batch>.arrow`."""

    directory: Path

    @classmethod
    def for_run(cls, run_id: str, root: Path | None = None) -> Stage:
        return cls((root or staging_root()) / run_id)

    def write(self, area: str, index: int, table: pa.Table) -> Path:
        folder = self.directory / area
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{index:06d}.arrow"
        tmp = path.with_suffix(".tmp")
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
