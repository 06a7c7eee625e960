"""Names a package exports from submodules that load on first use (PEP 562 `__getattr__`).

Why: a package's `__init__` that imports every submodule makes each process pay for all of
them; a 10-row `govex run` would import what only `govex apply`, Kafka ingestion or Great
Expectations need (issue #16). The package keeps its names; the module behind a name loads
when the name is first read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_names"]


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: each name of `names` read from the submodule it
    maps to (`{"apply_workspace": "apply"}` reads `package.apply.apply_workspace`)."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        return getattr(import_module(f".{module}", package), name)

    return __getattr__
