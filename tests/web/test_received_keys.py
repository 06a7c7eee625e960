"""A consumer names a record by what it received (INTERFACES.md, "Keys, tokens and roles"):
the key as delivered (hashed where it was hashed) or `_govex_key`. A source key it only
received hashed, or never received, answers 404 exactly as a key that does not exist, so trace
and dispute cannot confirm guesses of plaintext keys. Providers and full readers keep source
keys. Trace and dispute opening are rate-limited per token, counted in the store (so across
every process serving the API), 429 with Retry-After beyond GOVEX_LOOKUP_RATE."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import catalog
import records
from exchange.run import masking
from exchange.run.secrets import master_key
from exchange.store import create_store_engine, tokens
from exchange.web import create_app

from .conftest import City, build_city

RES = "PSB-RES-001"
K1 = "110105199001011234"  # delivered to hpf (hashed key, and by _govex_key) and to gsc
K2 = "110105199001015678"  # delivered to gsc only (clear key)
NOWHERE = "110105199001019999"  # no such record
# Received only in a month retention has since dropped: K3 by hpf as SUB-HPF-009's
# `_govex_key` and by gsc in clear, K4 by hpf hashed.
K3, K4 = "110105199001013333", "110105199001014444"
DROPPED_MONTH = dt.datetime(2020, 3, 10, 8, tzinfo=dt.UTC)
HASHED = {"SUB-HPF-001": {"id_no": "hash", "phone": "mask_phone", "address": "mask_address"}}
NAMES_REQUEST = """resource: PSB-RES-001
subscription: SUB-HPF-009
purpose: 公积金缴存职工姓名核验
legal_basis: 住房公积金管理条例
fields: [name]
masking: {name: mask_name}
target: {connection: hpf_db, table: psb_names}
mode: upsert
valid_from: 2026-01-01
valid_until: 2028-12-31
"""


def _hash(engine: Any, subscription: str, value: str) -> str:
    key = masking.subscription_key(master_key(engine), subscription)
    return str(masking.mask("hash", pa.array([value]), key=key)[0].as_py())


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, TestClient]]:
    root = tmp_path_factory.mktemp("received-keys")
    def edit(ws: Path) -> None:
        asked = ws / "requests" / "hpf-resident-contact.yaml"
        asked.write_text(asked.read_text(encoding="utf-8").replace(
            "masking: {phone: mask_phone, address: mask_address}",
            "masking: {id_no: hash, phone: mask_phone, address: mask_address}",
        ), encoding="utf-8")
        (ws / "requests" / "hpf-resident-names.yaml").write_text(NAMES_REQUEST,
                                                                 encoding="utf-8")

    city = build_city(root, edit=edit)
    run = city.runs[RES][-1]
    at = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        for sub, keys in (("SUB-HPF-001", [K1]), ("SUB-HPF-009", [K1]),
                          ("SUB-GSC-001", [K1, K2])):
            records.record_provenance(
                conn, resource=RES, subscription=sub, run_id=run, delivered_at=at,
                keys=pa.array(keys), hashes=pa.array(["0123456789abcdef"] * len(keys)))
        for sub, keys in (("SUB-HPF-009", [K3]), ("SUB-GSC-001", [K3]), ("SUB-HPF-001", [K4])):
            records.record_provenance(
                conn, resource=RES, subscription=sub, run_id=run, delivered_at=DROPPED_MONTH,
                keys=pa.array(keys), hashes=pa.array(["0123456789abcdef"] * len(keys)))
        city.tokens["consumer:amr"] = tokens.create_token(conn, "amr", "consumer")
        # A second hpf consumer token, for the rate limit: its count is its own.
        city.tokens["consumer:hpf2"] = tokens.create_token(conn, "hpf", "consumer")
    dropped = records.maintain_provenance(city.engine, retention="P1Y")
    assert [d.name for d in dropped.dropped] == ["lineage_provenance_p202003"]
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as client:
        yield city, client
    city.engine.dispose()


def _trace(client: TestClient, city: City, who: tuple[str, str], key: str) -> Any:
    return client.post("/api/v1/trace", json={"resource": RES, "key": key},
                       headers=city.headers(*who))


def test_the_consumer_sees_the_subscription_hash_as_its_target_does(keyed: Any) -> None:
    city, _ = keyed
    with city.engine.connect() as conn:
        resource = catalog.load_resource(conn, RES)
        sub = next(s for s in catalog.load_subscriptions(conn, RES) if s.id == "SUB-HPF-001")
    assert sub.masking["id_no"] == "hash"
    from exchange.web import received_keys

    forms = received_keys.delivered_forms(resource, sub, pa.array([K1]), master_key(city.engine))
    assert forms.to_pylist() == [_hash(city.engine, "SUB-HPF-001", K1)]


def test_a_consumer_traces_by_the_hashed_key_it_holds(keyed: Any) -> None:
    city, client = keyed
    hashed = _hash(city.engine, "SUB-HPF-001", K1)
    for answer in (_trace(client, city, ("consumer", "hpf"), hashed),
                   client.get(f"/api/v1/trace/{RES}/{hashed}",
                              headers=city.headers("consumer", "hpf"))):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["key"] == hashed  # never the source key
        assert K1 not in answer.text
        assert {d["subscription"] for d in body["deliveries"]} == {"SUB-HPF-001", "SUB-HPF-009"}
        assert body["source"]["current_hash"] is None


def test_a_consumer_traces_by_govex_key(keyed: Any) -> None:
    city, client = keyed
    stand_in = _hash(city.engine, "SUB-HPF-009", K1)
    answer = _trace(client, city, ("consumer", "hpf"), stand_in)
    assert answer.status_code == 200, answer.text
    assert answer.json()["key"] == stand_in


def test_a_key_never_received_is_404_whether_or_not_it_exists(keyed: Any) -> None:
    city, client = keyed
    hpf = ("consumer", "hpf")
    answers = [
        _trace(client, city, hpf, K1),  # exists, delivered to hpf, but only hashed
        _trace(client, city, hpf, K2),  # exists, delivered to gsc only
        _trace(client, city, hpf, NOWHERE),  # no such record
        _trace(client, city, hpf, _hash(city.engine, "SUB-GSC-001", K1)),  # not its hash
        _trace(client, city, hpf, "a,b"),
        client.get(f"/api/v1/trace/{RES}/{K1}", headers=city.headers(*hpf)),
    ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1  # the same body: nothing tells them apart
    # gsc receives the key in clear: the source key is what it holds.
    assert _trace(client, city, ("consumer", "gsc"), K2).status_code == 200
    assert _trace(client, city, ("consumer", "gsc"), NOWHERE).text == _trace(
        client, city, ("consumer", "gsc"), "110105199001010000").text


def test_providers_and_full_readers_keep_source_keys(keyed: Any) -> None:
    city, client = keyed
    for who in (("provider", "psb"), ("admin", "gsc"), ("auditor", "gsc"),
                ("checklist_owner", "gsc")):
        answer = _trace(client, city, who, K1)
        assert answer.status_code == 200, (who, answer.text)
        assert answer.json()["key"] == K1
        assert len(answer.json()["deliveries"]) == 3
    # A consumer's hash names no source record: the provider finds nothing delivered under it.
    by_hash = _trace(client, city, ("provider", "psb"), _hash(city.engine, "SUB-HPF-001", K1))
    assert by_hash.json()["deliveries"] == []


def test_roles_that_may_not_trace_still_get_403(keyed: Any) -> None:
    city, client = keyed
    for who in (("consumer", "amr"), ("provider", "amr"), ("lineage_producer", "psb")):
        assert _trace(client, city, who, K1).status_code == 403, who
    body = {"resource": RES, "key": K1, "field": "name", "claim": "应为 张三"}
    assert client.post("/api/v1/disputes", json=body,
                       headers=city.headers("provider", "psb")).status_code == 403


def test_a_consumer_disputes_by_what_it_received(keyed: Any) -> None:
    city, client = keyed
    hashed = _hash(city.engine, "SUB-HPF-001", K1)
    body = {"resource": RES, "field": "name", "claim": "应为 张三"}
    hpf = city.headers("consumer", "hpf")
    refused = [client.post("/api/v1/disputes", json={**body, "key": key}, headers=hpf)
               for key in (K1, NOWHERE)]
    assert [r.status_code for r in refused] == [404, 404]
    assert refused[0].text == refused[1].text
    assert refused[0].text == _trace(client, city, ("consumer", "hpf"), K1).text

    opened = client.post("/api/v1/disputes", json={**body, "key": hashed}, headers=hpf)
    assert opened.status_code == 201, opened.text
    assert opened.json()["key"] == hashed
    did = opened.json()["id"]
    assert client.get(f"/api/v1/disputes/{did}", headers=hpf).json()["key"] == hashed
    assert {d["key"] for d in client.get("/api/v1/disputes", headers=hpf).json()} == {hashed}
    assert K1 not in client.get(f"/disputes/{did}", headers=hpf).text
    # The provider it is routed to sees the source key, to correct the record.
    shown = client.get(f"/api/v1/disputes/{did}", headers=city.headers("provider", "psb"))
    assert shown.json()["key"] == K1
    traced = _trace(client, city, ("consumer", "hpf"), hashed).json()
    assert traced["disputes"] == [{"id": did, "state": "open"}]


def test_a_consumer_disputes_by_its_govex_key(keyed: Any) -> None:
    """Through SUB-HPF-009 hpf holds K1 only as `_govex_key` (no key field): that stand-in
    names the record for a dispute on a field of that subscription, as it does for trace."""
    city, client = keyed
    stand_in = _hash(city.engine, "SUB-HPF-009", K1)
    hpf = city.headers("consumer", "hpf")
    body = {"resource": RES, "key": stand_in, "field": "name", "claim": "姓名有误"}
    opened = client.post("/api/v1/disputes", json=body, headers=hpf)
    assert opened.status_code == 201, opened.text
    assert opened.json()["key"] == stand_in
    shown = client.get(f"/api/v1/disputes/{opened.json()['id']}",
                       headers=city.headers("provider", "psb"))
    assert shown.json()["key"] == K1
    gsc_stand_in = _hash(city.engine, "SUB-GSC-001", K1)  # not what hpf received
    refused = client.post("/api/v1/disputes", json={**body, "key": gsc_stand_in}, headers=hpf)
    assert refused.status_code == 404
    assert refused.text == _trace(client, city, ("consumer", "hpf"), NOWHERE).text


def test_a_record_received_only_in_a_month_retention_dropped_is_still_named(
    keyed: Any,
) -> None:
    """Retention kept each subscription's last delivery of K3 and K4: the consumer still
    names them by what it holds (hashed, `_govex_key`, clear), and sees its own form back."""
    city, client = keyed
    with city.engine.connect() as conn:
        kept = records.deliveries_of_keys(conn, RES, [K3, K4])
    assert {(d["key"], d["subscription"]) for d in kept} == {
        (K3, "SUB-HPF-009"), (K3, "SUB-GSC-001"), (K4, "SUB-HPF-001")}
    assert all(d["beyond_retention"] for d in kept)
    hpf = ("consumer", "hpf")
    stand_in, hashed = _hash(city.engine, "SUB-HPF-009", K3), _hash(city.engine, "SUB-HPF-001", K4)
    for who, key in ((hpf, stand_in), (hpf, hashed), (("consumer", "gsc"), K3)):
        answer = _trace(client, city, who, key)
        assert answer.status_code == 200, (key, answer.text)
        assert answer.json()["key"] == key
        assert [d.get("beyond_retention") for d in answer.json()["deliveries"]] == [True]
    assert _trace(client, city, hpf, K3).status_code == 404  # still never received in clear
    opened = client.post("/api/v1/disputes", headers=city.headers(*hpf), json={
        "resource": RES, "key": stand_in, "field": "name", "claim": "姓名有误"})
    assert opened.status_code == 201, opened.text
    # Shown back as hpf received it: SUB-HPF-009's stand-in, not SUB-HPF-001's hash of K3.
    shown = client.get(f"/api/v1/disputes/{opened.json()['id']}", headers=city.headers(*hpf))
    assert shown.json()["key"] == stand_in


def test_the_trace_page_links_its_quality_rows_to_their_runs(keyed: Any) -> None:
    """Each quality verdict names its run as the delivery rows do: a link to the run page (for
    those who may read runs), the full id in the title."""
    city, client = keyed
    run = city.runs[RES][-1]
    page = client.post("/trace", data={"resource": RES, "key": K1},
                       headers=city.headers("admin", "gsc"))
    assert page.status_code == 200, page.text
    quality = page.text.split("<h2>Quality", 1)[1].split("<h2>Disputes", 1)[0]
    assert f'<a href="/runs/{run}" title="{run}">' in quality
    consumer = client.post("/trace", data={"resource": RES, "key": K2},
                           headers=city.headers("consumer", "gsc")).text
    assert f'<code title="{run}">' in consumer  # no run pages for consumers: no link
    assert f'href="/runs/{run}"' not in consumer


def test_the_lookup_rate_holds_across_app_instances(
    keyed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two app instances on two engines (two processes' worth) over one store share one count:
    the 61st lookup in a minute by one token is refused with Retry-After; another token is
    not affected; the next minute starts afresh."""
    from exchange.store import tokens as tokens_module

    city, _ = keyed
    url = city.engine.url.render_as_string(hide_password=False)
    engines = [create_store_engine(url), create_store_engine(url)]
    minute = dt.datetime(2026, 12, 3, 10, 15, 20, tzinfo=dt.UTC)
    monkeypatch.setattr(tokens_module, "_now", lambda: minute)
    monkeypatch.delenv("GOVEX_LOOKUP_RATE", raising=False)
    hpf = city.headers("consumer", "hpf2")
    hashed = _hash(city.engine, "SUB-HPF-001", K1)
    clients = [TestClient(create_app(e, docs_dir=city.docs_dir)) for e in engines]
    try:
        for i in range(60):
            client = clients[i % 2]
            if i % 3:
                answer = client.post("/api/v1/trace", json={"resource": RES, "key": hashed},
                                     headers=hpf)
                assert answer.status_code == 200, (i, answer.text)
            else:  # refused lookups count as well: they are what guessing looks like
                answer = client.post("/api/v1/trace", json={"resource": RES, "key": K1},
                                     headers=hpf)
                assert answer.status_code == 404, (i, answer.text)
        for client in clients:
            limited = client.post("/api/v1/trace", json={"resource": RES, "key": hashed},
                                  headers=hpf)
            assert limited.status_code == 429, limited.text
            assert limited.headers["Retry-After"] == "40"
            assert "GOVEX_LOOKUP_RATE" in limited.json()["detail"]
        dispute = clients[0].post("/api/v1/disputes", headers=hpf, json={
            "resource": RES, "key": hashed, "field": "name", "claim": "应为 张三"})
        assert dispute.status_code == 429
        page = clients[1].post("/trace", data={"resource": RES, "key": hashed}, headers=hpf)
        assert page.status_code == 429
        assert page.headers["Retry-After"] == "40"
        # Another token of the same department has its own count.
        other = clients[0].post("/api/v1/trace", json={"resource": RES, "key": hashed},
                                headers=city.headers("consumer", "hpf"))
        assert other.status_code == 200
        monkeypatch.setattr(tokens_module, "_now", lambda: minute + dt.timedelta(seconds=40))
        again = clients[1].post("/api/v1/trace", json={"resource": RES, "key": hashed},
                                headers=hpf)
        assert again.status_code == 200
    finally:
        for client in clients:
            client.close()
        for engine in engines:
            engine.dispose()


def test_the_lookup_rate_is_a_setting(keyed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from govex.errors import DeclarationError
    from govex.settings import load_settings

    city, client = keyed
    assert load_settings({}).lookup_rate == 60
    assert load_settings({"GOVEX_LOOKUP_RATE": "5"}).lookup_rate == 5
    with pytest.raises(DeclarationError, match="GOVEX_LOOKUP_RATE"):
        _ = load_settings({"GOVEX_LOOKUP_RATE": "0"}).lookup_rate
    monkeypatch.setenv("GOVEX_LOOKUP_RATE", "2")
    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "psb", "provider")
    headers = {"Authorization": f"Bearer {secret}"}
    codes = [client.post("/api/v1/trace", json={"resource": RES, "key": K1},
                         headers=headers).status_code for _ in range(3)]
    assert codes[:2] == [200, 200]
    assert codes[2] == 429


def test_a_composite_key_is_masked_field_by_field_as_the_target_receives_it(
    keyed: Any,
) -> None:
    """Key fields hashed one by one and joined by ',' (as `targets.shape_keys` delivers them),
    the clear ones kept; `_govex_key` over the whole joined key where the key is not
    delivered."""
    from exchange.run import targets
    from exchange.web import received_keys

    city, _ = keyed
    secret = master_key(city.engine)
    with city.engine.connect() as conn:
        resource = catalog.load_resource(conn, RES)
        sub = next(s for s in catalog.load_subscriptions(conn, RES) if s.id == "SUB-HPF-001")
    composite = resource.model_copy(update={"key": ["id_no", "name"]})
    for masks in ({"id_no": "hash"}, {"id_no": "hash", "name": "hash"}, {"name": "hash"}):
        hashed = sub.model_copy(update={"fields": ["id_no", "name"], "masking": masks})
        keys = pa.table({"id_no": [K1, K2], "name": ["张三", "李,四"]})
        spec = targets.target_spec(composite, _contract(city), hashed)
        shaped = targets.shape_keys(keys, spec, composite, hashed,
                                    key=masking.subscription_key(secret, hashed.id))
        expected = [",".join(row) for row in zip(*(shaped.column(k).to_pylist()
                                                   for k in composite.key), strict=True)]
        forms = received_keys.delivered_forms(
            composite, hashed, pa.array([f"{K1},张三", f"{K2},李,四"]), secret)
        assert forms.to_pylist() == expected, masks
    hidden = sub.model_copy(update={"fields": ["phone"], "masking": {}})
    spec = targets.target_spec(composite, _contract(city), hidden)
    shaped = targets.shape_keys(pa.table({"id_no": [K1], "name": ["张三"]}), spec, composite,
                                hidden, key=masking.subscription_key(secret, hidden.id))
    forms = received_keys.delivered_forms(composite, hidden, pa.array([f"{K1},张三"]), secret)
    assert forms.to_pylist() == shaped.column("_govex_key").to_pylist()


def _contract(city: City) -> Any:
    with city.engine.connect() as conn:
        resource = catalog.load_resource(conn, RES)
        return catalog.load_contract_version(conn, resource.contract)
