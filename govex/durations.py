"""The one ISO-8601 duration grammar of govex (`P1D`, `PT6H`, `P1M`, `P1Y2M10DT2H30M`).

The catalog validates `update_frequency` with it, Airflow turns it into a schedule and the
web app into a timeliness deadline; each wants its own type (a timedelta, a relativedelta, a
calendar-aware deadline), so this module only says which components a text has.
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
COMPONENTS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")


def duration_parts(text: str) -> dict[str, float] | None:
    """Every component of the duration `text` (0 when absent), or None when `text` is not an
    ISO-8601 duration with at least one component. Case and surrounding blanks count."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return {name: float(value) if value else 0.0 for name, value in match.groupdict().items()}
