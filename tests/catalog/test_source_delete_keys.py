"""`source.deleted` and `source.reconcile` at `govex apply`: accepted on a table source, stored
in the catalog; a bad duration, a zero one, or either key on a Kafka source refused whole."""

from __future__ import annotations

from typing import Any

import pytest

import catalog
from exchange.store import create_store_engine


def test_deleted_and_reconcile_are_accepted_and_stored(
    workspace: Any, govex: Any, store_url: str
) -> None:
    workspace.edit("resources/psb-residents.yaml", lambda r: r["source"].update(
        deleted="is_deleted", reconcile="P7D"))
    code, _, err = govex("apply", str(workspace.root))
    assert code == 0, err
    engine = create_store_engine(store_url)
    with engine.connect() as conn:
        source = catalog.load_resource(conn, "PSB-RES-001").source
    engine.dispose()
    assert (source.deleted, source.reconcile) == ("is_deleted", "P7D")


@pytest.mark.parametrize(("source", "fragments"), [
    ({"reconcile": "weekly"}, ["source.reconcile", "'weekly'", "ISO-8601"]),
    ({"reconcile": "P0D"}, ["source.reconcile", "'P0D'", "positive"]),
    ({"connection": "psb_db", "kafka": {"topic": "t"}, "table": None, "watermark": None,
      "deleted": "is_deleted"}, ["'deleted' is for a table or query source"]),
])
def test_bad_delete_keys_are_refused_with_no_change(
    source: dict[str, Any], fragments: list[str], workspace: Any, govex: Any,
    store_snapshot: Any,
) -> None:
    code, _, err = govex("apply", str(workspace.root))
    assert code == 0, err
    before = store_snapshot()

    def mutate(r: dict[str, Any]) -> None:
        r["source"].update(source)
        for k in [k for k, v in r["source"].items() if v is None]:
            del r["source"][k]

    workspace.edit("resources/psb-residents.yaml", mutate)
    code, out, err = govex("apply", str(workspace.root))
    assert code == 2, out + err
    for fragment in fragments:
        assert fragment in err, err
    assert store_snapshot() == before
