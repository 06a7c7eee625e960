"""The usage page's chart: records per day, one line per consumer department, as inline SVG
(no JavaScript, readable when printed).

Every value drawn is a number computed here; every text is escaped. Days without use are
drawn as zero, so a line never bridges a gap as if use had continued.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Line colours, one per consumer in order (colour-blind safe, Okabe–Ito), then repeated.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000",
           "#f0e442")
#: Up to this many days, each day's value gets a dot with its figure as a tooltip.
DOTS_UP_TO = 62


@dataclass(frozen=True)
class Series:
    """One consumer's records per day over the chart's days."""

    consumer: str
    colour: str
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.values)


def series(
    per_day: Mapping[tuple[str, dt.date], int], days: Sequence[dt.date]
) -> list[Series]:
    """`per_day` ({(consumer, day): records}) as one series per consumer, zero-filled over
    `days`, consumers in code order, each with its colour."""
    consumers = sorted({consumer for consumer, _ in per_day})
    return [
        Series(consumer, PALETTE[i % len(PALETTE)],
               tuple(per_day.get((consumer, day), 0) for day in days))
        for i, consumer in enumerate(consumers)
    ]


def _step(top: int) -> int:
    """A round grid step (1, 2 or 5 times a power of ten) giving about four lines up to
    `top`."""
    rough = max(top / 4, 1)
    power = int(10 ** math.floor(math.log10(rough)))  # rough >= 1: a whole power
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def records_chart(
    lines: Sequence[Series], days: Sequence[dt.date], *, width: int = 880, height: int = 260
) -> Markup:
    """Records per day, oldest day left, one line per consumer."""
    if not days or not lines or not any(s.total for s in lines):
        return Markup('<p class="muted">No use in this period. 此期间无使用记录。</p>')
    left, right, top, bottom = 64, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = _step(max(max(s.values) for s in lines))
    ceiling = step * math.ceil(max(max(s.values) for s in lines) / step)

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(days) == 1 else plot_w * i / (len(days) - 1))

    def y(value: int) -> float:
        return top + plot_h * (1 - value / ceiling)

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape('Records per day by consumer 各使用方每日记录数')}</title>",
    ]
    for value in range(0, ceiling + 1, step):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{value:,}</text>'
        )
    for line in lines:
        path = " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(v):.1f}"
                        for i, v in enumerate(line.values))
        parts.append(f'<path d="{path}" fill="none" stroke="{line.colour}" stroke-width="2">'
                     f"<title>{escape(f'{line.consumer}: {line.total:,} records')}</title>"
                     "</path>")
        if len(days) <= DOTS_UP_TO:
            for i, value in enumerate(line.values):
                label = f"{days[i].isoformat()} {line.consumer}: {value:,} records"
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" '
                             f'fill="{line.colour}"><title>{escape(label)}</title></circle>')
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#57606a">'
        f"{escape(days[0].isoformat())}</text>"
        f'<text x="{width - right}" y="{height - 8}" font-size="11" fill="#57606a" '
        f'text-anchor="end">{escape(days[-1].isoformat())} ({len(days)} days)</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only
