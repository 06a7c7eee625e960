"""Package names that load their submodule on first use (`govex.lazy`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import catalog
from catalog import apply


def test_a_lazy_name_is_the_submodules_own_object() -> None:
    assert catalog.apply_workspace is apply.apply_workspace


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    with pytest.raises(AttributeError, match="module 'catalog' has no attribute 'nothing_here'"):
        _ = catalog.nothing_here  # type: ignore[attr-defined]


def test_the_submodule_loads_only_when_its_name_is_read() -> None:
    probe = (
        "import sys, catalog; before = 'catalog.apply' in sys.modules; "
        "catalog.apply_workspace; print(before, 'catalog.apply' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "True"]
