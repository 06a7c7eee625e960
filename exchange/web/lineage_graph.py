"""The run page's lineage graph: source → resource → each subscription, as inline SVG.

Drawn from the run's own stored OpenLineage events (the same facts any lineage tool receives):
the resource run's input dataset, and one output per delivery child run with its row count. No
JavaScript; every text is escaped.

Only events of govex's own jobs (namespace `govex`) are drawn, and stored events are read
defensively: rows stored by older versions may hold whatever was posted, and an odd one is
skipped, never a reason for the page to fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from exchange.web.charts import OTHER_COLOUR, STATUS_COLOURS
from lineage.events import JOB_NAMESPACE


@dataclass(frozen=True)
class Node:
    title: str
    lines: tuple[str, ...]
    colour: str
    link: str | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _job_name(event: Any) -> str | None:
    """The name of a govex job the event is about; None for anything else."""
    job = event.get("job") if isinstance(event, Mapping) else None
    if not isinstance(job, Mapping) or job.get("namespace") != JOB_NAMESPACE:
        return None
    return _text(job.get("name"))


def _dataset(event: Mapping[str, Any], side: str) -> tuple[str, str] | None:
    """(namespace, name) of the first well-formed dataset on `side` (inputs or outputs)."""
    datasets = event.get(side)
    for dataset in datasets if isinstance(datasets, list) else ():
        if isinstance(dataset, Mapping):
            namespace, name = _text(dataset.get("namespace")), _text(dataset.get("name"))
            if namespace and name:
                return namespace, name
    return None


def graph_nodes(
    run: dict[str, Any], events: Sequence[Any]
) -> tuple[Node, Node, list[Node]]:
    """(source, resource, deliveries) from the run summary and its stored lineage events."""
    resource_job = f"exchange.{run['resource']}"
    ours = [(name, e) for e in events if (name := _job_name(e)) is not None]
    inputs = next(
        (found for name, e in ours if name == resource_job
         and (found := _dataset(e, "inputs")) is not None),
        None,
    )
    source = (
        Node(inputs[1], (inputs[0],), OTHER_COLOUR)
        if inputs else Node("source", ("no lineage recorded",), OTHER_COLOUR)
    )
    middle = Node(
        run["resource"],
        (f"read {run['read']}", f"passed {run['passed']}", f"quarantined {run['quarantined']}"),
        STATUS_COLOURS.get(run["status"], OTHER_COLOUR),
        f"/quality/{run['resource']}",
    )
    targets: dict[str, tuple[str, str]] = {}
    for name, event in ours:
        if name.startswith(f"{resource_job}.deliver."):
            output = _dataset(event, "outputs")
            if output is not None:
                targets[name.removeprefix(f"{resource_job}.deliver.")] = output
    outputs = []
    for delivery in run["deliveries"]:
        target = targets.get(delivery["subscription"])
        where = f"{target[0]} {target[1]}" if target else "target unknown"
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


def lineage_svg(run: dict[str, Any], events: Sequence[Any], base: str = "") -> Markup:
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
