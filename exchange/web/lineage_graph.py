"""The run page's lineage graph: source → resource → each subscription, as inline SVG.

Drawn from the run's own stored OpenLineage events (the same facts any lineage tool receives):
the resource run's input dataset, and one output per delivery child run with its row count. No
JavaScript; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from exchange.web.charts import OTHER_COLOUR, STATUS_COLOURS


@dataclass(frozen=True)
class Node:
    title: str
    lines: tuple[str, ...]
    colour: str
    link: str | None = None


def graph_nodes(
    run: dict[str, Any], events: Sequence[dict[str, Any]]
) -> tuple[Node, Node, list[Node]]:
    """(source, resource, deliveries) from the run summary and its stored lineage events."""
    resource_events = [e for e in events if e["job"]["name"] == f"exchange.{run['resource']}"]
    inputs = next((e.get("inputs") for e in resource_events if e.get("inputs")), None) or []
    source = (
        Node(inputs[0]["name"], (inputs[0]["namespace"],), OTHER_COLOUR)
        if inputs else Node("source", ("no lineage recorded",), OTHER_COLOUR)
    )
    middle = Node(
        run["resource"],
        (f"read {run['read']}", f"passed {run['passed']}", f"quarantined {run['quarantined']}"),
        STATUS_COLOURS.get(run["status"], OTHER_COLOUR),
        f"/quality/{run['resource']}",
    )
    targets: dict[str, dict[str, Any]] = {}
    for event in events:
        name = event["job"]["name"]
        if ".deliver." in name and event.get("outputs"):
            targets[name.rsplit(".deliver.", 1)[1]] = event["outputs"][0]
    outputs = []
    for delivery in run["deliveries"]:
        target = targets.get(delivery["subscription"])
        where = f"{target['namespace']} {target['name']}" if target else "target unknown"
        outputs.append(Node(
            delivery["subscription"],
            (f"delivered {delivery['delivered']}", where),
            STATUS_COLOURS.get(delivery.get("status", "success"), OTHER_COLOUR),
        ))
    return source, middle, outputs


def _box(node: Node, x: int, y: int, width: int, height: int, base: str) -> str:
    text = [f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{escape(node.title)}</text>']
    text += [
        f'<text x="{x + 8}" y="{y + 36 + 16 * i}" font-size="12">{escape(line[:60])}</text>'
        for i, line in enumerate(node.lines)
    ]
    box = (f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="#fff" '
           f'stroke="{node.colour}" stroke-width="2"/>' + "".join(text))
    if node.link:
        return f'<a href="{escape(base + node.link)}">{box}</a>'
    return box


def lineage_svg(run: dict[str, Any], events: Sequence[dict[str, Any]], base: str = "") -> Markup:
    """The graph as one SVG element sized to its deliveries."""
    source, middle, outputs = graph_nodes(run, events)
    box_w, box_h, gap = 260, 90, 20
    rows = max(1, len(outputs))
    height = rows * (box_h + gap) + gap
    cols = (gap, gap + box_w + 60, gap + 2 * (box_w + 60))
    mid_y = (height - box_h) // 2
    parts = [_box(source, cols[0], mid_y, box_w, box_h, base),
             _box(middle, cols[1], mid_y, box_w, box_h, base)]
    arrow = 'stroke="#57606a" stroke-width="1.5" marker-end="url(#arrow)"'
    parts.append(f'<line x1="{cols[0] + box_w}" y1="{mid_y + box_h // 2}" x2="{cols[1] - 4}" '
                 f'y2="{mid_y + box_h // 2}" {arrow}/>')
    for i, node in enumerate(outputs):
        y = gap + i * (box_h + gap)
        parts.append(_box(node, cols[2], y, box_w, box_h, base))
        parts.append(f'<line x1="{cols[1] + box_w}" y1="{mid_y + box_h // 2}" '
                     f'x2="{cols[2] - 4}" y2="{y + box_h // 2}" {arrow}/>')
    width = cols[2] + box_w + gap
    marker = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
              'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
              'fill="#57606a"/></marker></defs>')
    return Markup(  # noqa: S704 - numbers and escaped text only
        f'<svg class="lineage" role="img" aria-label="lineage of run {escape(run["run_id"])}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg">{marker}{"".join(parts)}</svg>'
    )
