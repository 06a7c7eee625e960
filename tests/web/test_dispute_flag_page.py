"""The dispute page shows the disputed-record flag (异议标注): for an open dispute, which
consumers' copies carry it and whether each is written or waits for the next run; for a closed
one, whether it was cleared. A consumer that opened the dispute sees its own copies only, as
the API shows it; the provider and full readers see every consumer's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import records
from exchange.web import create_app

from .conftest import City, build_city

RES = "PSB-RES-001"
KEY = "110105199001014321"


@pytest.fixture(scope="module")
def disputed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, TestClient, str]]:
    """A record delivered to gsc and hpf, disputed by gsc; no target written yet."""
    city = build_city(tmp_path_factory.mktemp("dispute-flag-page"))
    at = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        for sub in ("SUB-GSC-001", "SUB-HPF-001"):
            records.record_provenance(
                conn, resource=RES, subscription=sub, run_id=city.runs[RES][-1],
                delivered_at=at, keys=pa.array([KEY]), hashes=pa.array(["0123456789abcdef"]))
        opened = records.open_dispute(conn, resource=RES, key=KEY, field="name",
                                      claim="应为 张三", opened_by="gsc", actor="gsc/consumer")
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as client:
        yield city, client, str(opened["id"])
    city.engine.dispose()


def _written(city: City, subscription: str) -> None:
    """What `exchange.run.dispute_flags` does once it wrote `subscription`'s target."""
    with city.engine.begin() as conn:
        for row in records.pending_flags(conn, RES, subscription):
            assert records.flag_applied(conn, row, dt.datetime.now(dt.UTC))


def _flags(client: TestClient, city: City, who: tuple[str, str], did: str) -> dict[str, str]:
    """Subscription -> the flag cell's text, from the page's flag table."""
    page = client.get(f"/disputes/{did}", headers=city.headers(*who))
    assert page.status_code == 200, page.text
    assert "Disputed-record flag 异议标注" in page.text
    if 'id="flags"' not in page.text:
        return {}
    table = page.text.split('id="flags"', 1)[1].split("</table>", 1)[0]
    shown = {}
    for row in table.split("<tr><td>")[1:]:
        sub = row.split("<code>", 1)[1].split("</code>", 1)[0]
        shown[sub] = row.split("</code></td>", 1)[1]
    return shown


def test_an_open_dispute_shows_each_consumers_flag_written_or_pending(disputed: Any) -> None:
    city, client, did = disputed
    _written(city, "SUB-GSC-001")
    provider = _flags(client, city, ("provider", "psb"), did)
    assert set(provider) == {"SUB-GSC-001", "SUB-HPF-001"}
    assert "written 已标注" in provider["SUB-GSC-001"]
    assert "pending the next run 待下次运行写入" in provider["SUB-HPF-001"]
    assert _flags(client, city, ("auditor", "gsc"), did) == provider
    # The consumer that opened it sees its own copy's flag, never another department's.
    opener = client.get(f"/disputes/{did}", headers=city.headers("consumer", "gsc")).text
    assert "SUB-HPF-001" not in opener
    assert set(_flags(client, city, ("consumer", "gsc"), did)) == {"SUB-GSC-001"}
    # A consumer that received the record but did not open the dispute may not read the page.
    assert client.get(f"/disputes/{did}",
                      headers=city.headers("consumer", "hpf")).status_code == 403


def test_a_closed_dispute_shows_whether_each_flag_was_cleared(disputed: Any) -> None:
    city, client, did = disputed
    _written(city, "SUB-GSC-001")
    with city.engine.begin() as conn:
        records.acknowledge(conn, did, actor="psb/provider")
    acknowledged = _flags(client, city, ("provider", "psb"), did)
    assert "written 已标注" in acknowledged["SUB-GSC-001"]  # still open: the flag stays
    with city.engine.begin() as conn:
        records.reject(conn, did, "值无误", actor="psb/provider")
    _written(city, "SUB-HPF-001")
    provider = _flags(client, city, ("provider", "psb"), did)
    assert "cleared 已清除" in provider["SUB-HPF-001"]
    assert "clearing pending the next run 待下次运行清除" in provider["SUB-GSC-001"]
    _written(city, "SUB-GSC-001")
    opener = _flags(client, city, ("consumer", "gsc"), did)
    assert set(opener) == {"SUB-GSC-001"}
    assert "cleared 已清除" in opener["SUB-GSC-001"]
