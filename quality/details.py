"""What part of a check a failing row broke: the `detail` beside each failure's check name.

The gate knows *that* a row failed `cn_resident_id` on `id_no`; a provider fixing the record
needs to know whether the check digit, the birth date or the area code is wrong. `explain`
answers for the failing rows of one check only, so a clean batch costs nothing, using the
vectorised reason functions of `quality.standards` with the expectation's own options (`as_of`,
`check_division`, …) so the explanation judges by the same rule as the check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from quality import standards

__all__ = ["explain"]


def _as_of(kwargs: Mapping[str, Any]) -> dt.date | None:
    value = kwargs.get("as_of")
    return None if value is None else dt.date.fromisoformat(str(value))


def explain(
    check: str,
    kwargs: Mapping[str, Any],
    batch: pa.Table,
    rows: npt.NDArray[np.int64],
    fallback: str,
) -> list[str]:
    """One detail per row of `rows` (the rows of `batch` that failed `check`); `kwargs` are
    the expectation's; `fallback` is said for a check without finer parts (a declared
    expectation, key uniqueness)."""
    column = kwargs.get("column") or kwargs.get("column_A")
    if column is None or column not in batch.column_names or not len(rows):
        return [fallback] * len(rows)
    take: Any = pa.array(rows, pa.int64())
    values = batch.column(str(column)).take(take)
    if check == "cn_resident_id":
        return standards.resident_id_reasons(
            values, today=_as_of(kwargs), check_division=bool(kwargs.get("check_division", True))
        )
    if check == "cn_uscc":
        return standards.uscc_reasons(
            values, check_org_code=bool(kwargs.get("check_org_code", True))
        )
    if check == "cn_mobile_phone":
        return standards.mobile_phone_reasons(values)
    if check == "cn_division_code":
        return standards.division_code_reasons(values)
    fixed = {
        "not_future_date": "date in the future",
        "max_age_150": f"more than {kwargs.get('max_age', 150)} years ago",
        "id_birth_date_consistency": "birth date differs from the ID number",
        "id_gender_consistency": "gender differs from the ID number",
    }
    return [fixed.get(check, fallback)] * len(rows)
