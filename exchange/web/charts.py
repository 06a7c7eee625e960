"""Small inline SVG charts for the quality dashboard: no JavaScript, readable when printed.

Every value drawn is a number computed here; every text is escaped. Pass rates are fractions
(0..1); the y axis starts at a round floor below the lowest rate and the gate's threshold so
a few tenths of a percent stay visible, and the floor is labelled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

STATUS_COLOURS = {"success": "#1a7f37", "blocked": "#cf222e", "failed": "#bc4c00"}
OTHER_COLOUR = "#57606a"


def _floor(rates: Sequence[float], threshold: float | None) -> float:
    """Lowest value on the y axis: a multiple of 10% at least 5 points below everything."""
    lowest = min([*rates, threshold if threshold is not None else 1.0, 1.0])
    return max(0.0, math.floor((lowest - 0.05) * 10) / 10)


def pass_rate_chart(
    points: Sequence[dict[str, Any]],
    threshold: float | None = None,
    *,
    width: int = 640,
    height: int = 200,
) -> Markup:
    """Pass rate per run, oldest left: a line through one dot per run coloured by status, and
    the gate's threshold (1 - max_error_rate) dashed. `points` are quality_report()['runs']."""
    rated = [p for p in points if p.get("pass_rate") is not None]
    if not rated:
        return Markup('<p class="muted">No runs with records yet. 暂无运行记录。</p>')
    left, right, top, bottom = 48, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    floor = _floor([float(p["pass_rate"]) for p in rated], threshold)

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(rated) == 1 else plot_w * i / (len(rated) - 1))

    def y(rate: float) -> float:
        return top + plot_h * (1 - (rate - floor) / (1 - floor))

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape('Pass rate per run 每次运行通过率')}</title>",
    ]
    span = 1 - floor  # grid lines at round percentages: 5, 10 or 25 points apart
    step = 0.05 if span <= 0.2 + 1e-9 else 0.1 if span <= 0.5 + 1e-9 else 0.25
    floor = math.floor(round(floor / step, 6)) * step
    span = 1 - floor
    for k in range(round(span / step) + 1):
        rate = floor + step * k
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(rate):.1f}" y2="{y(rate):.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(rate) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{rate:.0%}</text>'
        )
    if threshold is not None and floor <= threshold <= 1:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}" stroke="#cf222e" stroke-dasharray="6 4" '
            f'stroke-width="1.5"><title>{escape(f"gate threshold {threshold:.1%}")}</title>'
            "</line>"
        )
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(float(p['pass_rate'])):.1f}"
        for i, p in enumerate(rated)
    )
    parts.append(f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="2"/>')
    for i, p in enumerate(rated):
        colour = STATUS_COLOURS.get(str(p.get("status")), OTHER_COLOUR)
        label = (
            f"{p.get('started_at') or ''} {p['run_id']}: {float(p['pass_rate']):.2%} passed, "
            f"{p.get('status')}"
        )
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(float(p["pass_rate"])):.1f}" r="4" '
            f'fill="{colour}"><title>{escape(label)}</title></circle>'
        )
    first = str(rated[0].get("started_at") or "")[:10]
    last = str(rated[-1].get("started_at") or "")[:10]
    parts.append(
        f'<text x="{left}" y="{height - 8}" font-size="11" fill="#57606a">{escape(first)}</text>'
        f'<text x="{width - right}" y="{height - 8}" font-size="11" fill="#57606a" '
        f'text-anchor="end">{escape(last)} ({len(rated)} runs)</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only


def sparkline(points: Sequence[dict[str, Any]], threshold: float | None = None) -> Markup:
    """A 140x32 pass-rate sparkline for table rows (the same drawing, no axes)."""
    rated = [p for p in points if p.get("pass_rate") is not None]
    if not rated:
        return Markup('<span class="muted">—</span>')
    width, height, pad = 140, 32, 4
    floor = _floor([float(p["pass_rate"]) for p in rated], threshold)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (0.5 if len(rated) == 1 else i / (len(rated) - 1))

    def y(rate: float) -> float:
        return pad + (height - 2 * pad) * (1 - (rate - floor) / (1 - floor))

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(float(p['pass_rate'])):.1f}"
        for i, p in enumerate(rated)
    )
    last = rated[-1]
    colour = STATUS_COLOURS.get(str(last.get("status")), OTHER_COLOUR)
    title = escape(
        f"pass rate over {len(rated)} runs, from {floor:.0%} to 100%; "
        f"last {float(last['pass_rate']):.2%}"
    )
    return Markup(  # noqa: S704 - numbers and escaped text only
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img"><title>{title}</title>'
        f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="1.5"/>'
        f'<circle cx="{x(len(rated) - 1):.1f}" cy="{y(float(last["pass_rate"])):.1f}" r="3" '
        f'fill="{colour}"/></svg>'
    )
