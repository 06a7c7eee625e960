"""The defect manifest: every defect the generator planted, so tests and the demo can check
that the quality gate finds exactly these and nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PlantedDefect:
    """One planted defect: which record (key values joined by ','), which column, the value
    written there, and the name of the check expected to catch it."""

    key: str
    column: str
    check: str
    value: str | None
    schema_visible: bool
    """True when plain JSON Schema validation of the contract also rejects the record."""
    description: str


@dataclass(frozen=True)
class ResourceDefects:
    """The defects planted in one resource's source data."""

    resource: str
    rows: int
    clean_rows: int
    defects: tuple[PlantedDefect, ...]

    @property
    def defect_rate(self) -> float:
        return (self.rows - self.clean_rows) / self.rows if self.rows else 0.0

    def by_check(self) -> dict[str, int]:
        """Number of planted defects per check name."""
        counts: dict[str, int] = {}
        for d in self.defects:
            counts[d.check] = counts.get(d.check, 0) + 1
        return counts


@dataclass(frozen=True)
class DefectManifest:
    """What `generate_city` planted, per resource; written to `<workspace>/data/defects.json`."""

    seed: int
    scale: float
    resources: tuple[ResourceDefects, ...]

    def resource(self, code: str) -> ResourceDefects:
        for r in self.resources:
            if r.resource == code:
                return r
        msg = f"no resource {code!r} in the defect manifest"
        raise KeyError(msg)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "scale": self.scale,
            "resources": {
                r.resource: {
                    "rows": r.rows,
                    "clean_rows": r.clean_rows,
                    "defects": [asdict(d) for d in r.defects],
                }
                for r in self.resources
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DefectManifest:
        return cls(
            seed=int(data["seed"]),
            scale=float(data["scale"]),
            resources=tuple(
                ResourceDefects(
                    resource=code,
                    rows=int(r["rows"]),
                    clean_rows=int(r["clean_rows"]),
                    defects=tuple(PlantedDefect(**d) for d in r["defects"]),
                )
                for code, r in data["resources"].items()
            ),
        )

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=False)
        path.write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DefectManifest:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class GeneratedResource:
    """One resource's rows (Python values: str, int, float, date, aware datetime, None) and the
    defects planted in them."""

    code: str
    key: tuple[str, ...]
    rows: list[dict[str, Any]]
    defects: tuple[PlantedDefect, ...]

    def key_of(self, row: Mapping[str, Any]) -> str:
        return ",".join(str(row[k]) for k in self.key)

    def summary(self) -> ResourceDefects:
        return ResourceDefects(
            resource=self.code,
            rows=len(self.rows),
            clean_rows=len(self.rows) - len(self.defects),
            defects=self.defects,
        )
