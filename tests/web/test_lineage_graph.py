"""The run page's lineage graph, drawn from a run's stored OpenLineage events."""

from __future__ import annotations

from exchange.web.lineage_graph import graph_nodes, lineage_svg

RUN = {
    "run_id": "01a2", "resource": "PSB-RES-001", "status": "success",
    "read": 1000, "passed": 980, "quarantined": 20,
    "deliveries": [{"subscription": "SUB-GSC-001", "delivered": 980, "status": "success"},
                   {"subscription": "SUB-HPF-001", "delivered": 980, "status": "failed"}],
}
EVENTS = [
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001"},
     "inputs": [{"namespace": "postgres://db:5432", "name": "psb.public.residents"}]},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001.deliver.SUB-GSC-001"},
     "outputs": [{"namespace": "postgres://gsc:5432", "name": "gsc.public.psb_residents"}]},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001.deliver.SUB-HPF-001"},
     "outputs": [{"namespace": "mysql://hpf:3306", "name": "hpf.residents<script>"}]},
]


def test_graph_follows_source_resource_and_each_delivery() -> None:
    source, resource, outputs = graph_nodes(RUN, EVENTS)
    assert source.title == "psb.public.residents"
    assert resource.lines == ("read 1000", "passed 980", "quarantined 20")
    assert [o.title for o in outputs] == ["SUB-GSC-001", "SUB-HPF-001"]
    assert "postgres://gsc:5432 gsc.public.psb_residents" in outputs[0].lines
    assert outputs[1].colour != outputs[0].colour  # a failed delivery stands out


def test_svg_escapes_names_and_links_to_quality() -> None:
    svg = str(lineage_svg(RUN, EVENTS, base="/govex"))
    assert svg.startswith("<svg")
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'href="/govex/quality/PSB-RES-001"' in svg
    assert svg.count("<line") == 3


def test_a_run_without_lineage_still_draws() -> None:
    svg = str(lineage_svg({**RUN, "deliveries": []}, []))
    assert "no lineage recorded" in svg


def test_only_govex_events_draw_and_odd_ones_are_skipped() -> None:
    """Events of other namespaces (an Airflow job that happens to be called like govex's) and
    malformed stored events change nothing and break nothing."""
    odd = [
        ["not", "an", "event"],
        {"job": "exchange.PSB-RES-001"},
        {"job": {"namespace": "govex", "name": 7}},
        {"job": {"namespace": "airflow", "name": "exchange.PSB-RES-001"},
         "inputs": [{"namespace": "evil://", "name": "forged.source"}]},
        {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001"}, "inputs": "residents"},
        {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001"},
         "inputs": [None, {"name": ["x"]}]},
        {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001.deliver.SUB-GSC-001"},
         "outputs": [["x"], {"namespace": 1, "name": "t"}]},
        {"job": {"namespace": "airflow", "name": "exchange.PSB-RES-001.deliver.SUB-HPF-001"},
         "outputs": [{"namespace": "evil://", "name": "forged.target"}]},
    ]
    source, _, outputs = graph_nodes(RUN, [*odd, *EVENTS])
    assert source.title == "psb.public.residents"
    assert "postgres://gsc:5432 gsc.public.psb_residents" in outputs[0].lines
    assert "mysql://hpf:3306 hpf.residents<script>" in outputs[1].lines
    svg = str(lineage_svg(RUN, odd))
    assert "no lineage recorded" in svg
    assert "forged" not in svg
