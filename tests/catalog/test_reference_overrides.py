"""A workspace's reference/division_codes.csv: stored by apply, shown by `govex reference`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

Govex = Callable[..., tuple[int, str, str]]


def test_apply_stores_overrides_and_reference_shows_them(workspace: Any, govex: Govex) -> None:
    code, out, _ = govex("reference", "--json")
    assert code == 0
    shown = json.loads(out)["gbt2260"]
    assert shown["overrides"]["count"] == 0
    assert "yescallop/areacodes" in shown["source"]
    assert shown["last_update"]
    workspace.write_text(
        "reference/division_codes.csv",
        "code,name,valid_from,valid_until\n830000,台湾居民居住证,2018-09-01,\n",
    )
    code, out, err = govex("apply", str(workspace.root))
    assert code == 0, err
    assert "+ reference list division_codes" in out
    code, out, _ = govex("reference", "--json")
    over = json.loads(out)["gbt2260"]["overrides"]
    assert over["count"] == 1
    assert over["workspace"] == str(workspace.root)
    code, out, _ = govex("reference")
    assert "workspace overrides: 1 rows" in out
    assert "codes ever valid" in out


@pytest.mark.parametrize(("text", "problem"), [
    ("code,name\n", "line 1: the header must be"),
    ("code,name,valid_from,valid_until\n83000,台湾,,\n", "line 2: code '83000'"),
    ("code,name,valid_from,valid_until\n830000,台湾,,\n830001,台湾,2018-9-1,\n",
     "line 3: valid_from '2018-9-1' is not a date"),
    ("code,name,valid_from,valid_until\n830000,台湾,2019-01-01,2018-01-01\n",
     "line 2: valid_until 2018-01-01 is not after"),
])
def test_bad_override_file_is_an_apply_error(
    workspace: Any, govex: Govex, text: str, problem: str
) -> None:
    workspace.write_text("reference/division_codes.csv", text)
    code, _, err = govex("apply", str(workspace.root))
    assert code == 2
    assert err.startswith("error: reference/division_codes.csv: ")
    assert problem in err
