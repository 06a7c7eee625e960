"""The disputed-record flag (异议标注) end to end on real databases: while a dispute on a record is
open or acknowledged, every consumer copy of the record shows it (`_govex_disputed = true` on its
row in upsert and snapshot targets, a `_govex_disputes` row beside an append target, holding the
key as that consumer holds it), and it goes when the dispute is resolved or rejected; a target
that is down gets it at the next run; a target table from before gets the column."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.cli import main
from exchange.run import master_key
from exchange.store import create_store_engine, tokens, upgrade
from exchange.web.received_keys import delivered_forms
from tests.exchange.conftest import create_source, make_rows, write_workspace

pytestmark = pytest.mark.integration

N = 40
ROWS = make_rows(N)
KEY1, KEY2 = ROWS[1]["id_no"], ROWS[2]["id_no"]
CODE = "PSB-RES-001"


def _sub(sub_id: str, consumer: str, fields: list[str], mode: str, connection: str,
         table: str, masking: dict[str, str] | None = None) -> dict[str, Any]:
    return {"id": sub_id, "consumer": consumer, "fields": fields, "mode": mode,
            "masking": masking or {}, "target": {"connection": connection, "table": table}}


class City:
    """A PostgreSQL source of N residents, its subscribers, the store, and the CLI."""

    def __init__(self, root: Path, store_url: str, targets: dict[str, str],
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.root, self.store_url, self.targets, self.capsys = root, store_url, targets, capsys

    def govex(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self.govex(*argv, "--json")
        assert code == 0, err
        return json.loads(out)

    def token(self, department: str, role: str = "consumer") -> str:
        engine = create_store_engine(self.store_url)
        try:
            with engine.begin() as conn:
                return tokens.create_token(conn, department, role)
        finally:
            engine.dispose()

    def open(self, department: str, key: str, field: str) -> str:
        code, out, err = self.govex("dispute", "open", CODE, key, "--field", field, "--claim",
                                    "值有误", "--token", self.token(department))
        assert code == 0, err
        return out.strip().splitlines()[-1]

    def step(self, *argv: str) -> tuple[int, str, str]:
        return self.govex("dispute", *argv, "--token", self.token("psb", "provider"))

    def run(self, *extra: str) -> dict[str, Any]:
        summary: dict[str, Any] = self.json("run", CODE, *extra)
        return summary

    def rows(self, connection: str, table: str) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.targets[connection])
        try:
            with engine.connect() as conn:
                return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))
                        .mappings()]
        finally:
            engine.dispose()

    def flagged(self, connection: str, table: str, by: str) -> set[Any]:
        return {r[by] for r in self.rows(connection, table) if r["_govex_disputed"]}

    def marks(self, connection: str) -> set[tuple[str, str, str]]:
        return {(r["target_table"], r["record_key"], r["dispute"])
                for r in self.rows(connection, "_govex_disputes")}

    def received_as(self, sub_id: str, *keys: str) -> list[str]:
        """Source keys as subscription `sub_id` received them (its hash or `_govex_key`)."""
        engine = create_store_engine(self.store_url)
        try:
            secret = master_key(engine)
            with engine.connect() as conn:
                resource = catalog.load_resource(conn, CODE)
                sub = next(s for s in catalog.load_subscriptions(conn, CODE) if s.id == sub_id)
        finally:
            engine.dispose()
        forms = delivered_forms(resource, sub, pa.array(list(keys), pa.string()), secret)
        return [str(f) for f in forms.to_pylist()]


@pytest.fixture
def city_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., City]:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))

    def make(targets: dict[str, str], subscriptions: list[dict[str, Any]],
             files: dict[str, str] | None = None) -> City:
        create_source(pg_url, ROWS)
        root = tmp_path / "ws"
        write_workspace(root, pg_url, targets, subscriptions)
        if files:  # directory connections: CSV file targets
            path = root / "connections.yaml"
            declared = yaml.safe_load(path.read_text())
            for name, directory in files.items():
                Path(directory).mkdir(parents=True, exist_ok=True)
                declared["connections"][name] = {"path": directory, "format": "csv"}
            path.write_text(yaml.safe_dump(declared))
        store_url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = create_store_engine(store_url)
        upgrade(engine)
        catalog.apply_workspace(engine, root)
        engine.dispose()
        monkeypatch.setenv("GOVEX_DB_URL", store_url)
        return City(root, store_url, targets, capsys)

    return make


def test_a_dispute_flags_every_copy_of_its_record_until_it_closes(
    city_factory: Callable[..., City], pg_url: str, mariadb_url: str, tmp_path: Path
) -> None:
    city = city_factory(
        {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
         "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}",
         "hpf_lite": f"sqlite:///{tmp_path / 'hpf.db'}"},
        [
            _sub("SUB-GSC-001", "gsc", ["id_no", "name", "score"], "upsert", "gsc_pg",
                 "gsc_residents"),
            _sub("SUB-HPF-001", "hpf", ["id_no", "phone"], "append", "hpf_maria",
                 "hpf_residents"),
            # The key not delivered: rows are named by the `_govex_key` stand-in.
            _sub("SUB-GSC-002", "gsc", ["name", "score"], "snapshot", "gsc_lite",
                 "gsc_snapshot", {"name": "hash"}),
            # The key hashed, with this subscription's own key, in an upsert and an append
            # target of one database.
            _sub("SUB-HPF-002", "hpf", ["id_no", "name"], "upsert", "hpf_lite", "hpf_hashed",
                 {"id_no": "hash"}),
            _sub("SUB-HPF-003", "hpf", ["id_no", "score"], "append", "hpf_lite", "hpf_log",
                 {"id_no": "hash"}),
        ],
    )
    assert city.run()["status"] == "success"
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == set()
    hashed = dict(zip((KEY1, KEY2), city.received_as("SUB-HPF-002", KEY1, KEY2), strict=True))
    logged = dict(zip((KEY1, KEY2), city.received_as("SUB-HPF-003", KEY1, KEY2), strict=True))
    stand_in = dict(zip((KEY1, KEY2), city.received_as("SUB-GSC-002", KEY1, KEY2), strict=True))
    assert len(set(hashed.values()) | set(logged.values()) | {KEY1, KEY2}) == 6

    first = city.open("gsc", KEY1, "score")
    second = city.open("hpf", hashed[KEY2], "name")  # named as hpf received it: hashed

    def shows(keys: set[str], marks: set[tuple[str, str]]) -> None:
        """Exactly the rows of `keys` flagged in every copy; `marks`: (key, dispute) rows."""
        assert city.flagged("gsc_pg", "gsc_residents", "id_no") == keys
        assert city.flagged("gsc_lite", "gsc_snapshot", "_govex_key") == {
            stand_in[k] for k in keys}
        assert city.flagged("hpf_lite", "hpf_hashed", "id_no") == {hashed[k] for k in keys}
        assert city.marks("hpf_maria") == {("hpf_residents", k, d) for k, d in marks}
        assert city.marks("hpf_lite") == {("hpf_log", logged[k], d) for k, d in marks}

    shows({KEY1, KEY2}, {(KEY1, first), (KEY2, second)})
    shown = city.json("dispute", "show", first)
    assert {(f["subscription"], f["state"]) for f in shown["flags"]} == {
        (s, "flagged") for s in ("SUB-GSC-001", "SUB-GSC-002", "SUB-HPF-001", "SUB-HPF-002",
                                 "SUB-HPF-003")}
    # Nothing but the append consumer's own key form sits beside its table: not the source
    # key it receives hashed, not another subscription's hash of it.
    beside = {r["record_key"] for r in city.rows("hpf_lite", "_govex_disputes")}
    assert beside == {logged[KEY1], logged[KEY2]}
    assert not beside & ({KEY1, KEY2} | set(hashed.values()))

    # A run re-delivering everything (the snapshot swapped whole) keeps the flags.
    assert city.run("--full")["status"] == "success"
    shows({KEY1, KEY2}, {(KEY1, first), (KEY2, second)})

    # Resolved: the corrected record arrives unflagged, and the flag leaves every copy.
    assert city.step("ack", first)[0] == 0
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE residents SET score = 77, updated_at = updated_at + "
                             "interval '1 day' WHERE id_no = :k"), {"k": KEY1})
    engine.dispose()
    code, _, err = city.step("resolve", first)
    assert code == 0, err
    shows({KEY2}, {(KEY2, second)})
    corrected = {r["id_no"]: r for r in city.rows("gsc_pg", "gsc_residents")}[KEY1]
    assert (corrected["score"], corrected["_govex_disputed"]) == (77, False)
    assert {f["state"] for f in city.json("dispute", "show", first)["flags"]} == {"cleared"}

    # Rejected: the flag goes too.
    assert city.step("ack", second)[0] == 0
    code, _, err = city.step("reject", second, "--reason", "值无误")
    assert code == 0, err
    shows(set(), set())
    assert {f["state"] for f in city.json("dispute", "show", second)["flags"]} == {"cleared"}
    assert len(city.rows("gsc_pg", "gsc_residents")) == N


def test_a_target_down_when_a_dispute_moves_is_written_by_the_next_run(
    city_factory: Callable[..., City], pg_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GSC_PG_URL", pg_url)
    city = city_factory(
        {"gsc_pg": "${GSC_PG_URL}", "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"},
        [_sub("SUB-GSC-001", "gsc", ["id_no", "score"], "upsert", "gsc_pg", "gsc_residents"),
         _sub("SUB-GSC-002", "gsc", ["id_no", "score"], "snapshot", "gsc_lite", "gsc_copy")],
    )
    city.targets["gsc_pg"] = pg_url
    assert city.run()["status"] == "success"

    def states(dispute: str) -> dict[str, str]:
        return {f["subscription"]: f["state"] for f in city.json("dispute", "show",
                                                                  dispute)["flags"]}

    monkeypatch.setenv("GSC_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    dispute = city.open("gsc", KEY1, "score")  # the step stands; its flag waits
    assert states(dispute) == {"SUB-GSC-001": "pending", "SUB-GSC-002": "flagged"}
    pending = next(f for f in city.json("dispute", "show", dispute)["flags"]
                   if f["state"] == "pending")
    assert "127.0.0.1" in pending["error"]
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == set()
    assert city.flagged("gsc_lite", "gsc_copy", "id_no") == {KEY1}
    code, _, err = city.step("ack", dispute)
    assert code == 0, err

    monkeypatch.setenv("GSC_PG_URL", pg_url)
    assert city.run()["status"] == "success"  # nothing new to deliver: the flag still goes
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == {KEY1}
    assert states(dispute) == {"SUB-GSC-001": "flagged", "SUB-GSC-002": "flagged"}

    monkeypatch.setenv("GSC_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    code, _, err = city.step("reject", dispute, "--reason", "值无误")
    assert code == 0, err
    assert "next run" in err  # the provider is told the flag follows
    assert states(dispute) == {"SUB-GSC-001": "pending", "SUB-GSC-002": "cleared"}
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == {KEY1}

    monkeypatch.setenv("GSC_PG_URL", pg_url)
    city.run()
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == set()
    assert states(dispute) == {"SUB-GSC-001": "cleared", "SUB-GSC-002": "cleared"}


def test_a_target_table_from_before_gets_the_column_at_the_next_delivery(
    city_factory: Callable[..., City], pg_url: str, tmp_path: Path
) -> None:
    files = tmp_path / "gsc_files"
    city = city_factory(
        {"gsc_pg": pg_url, "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"},
        [_sub("SUB-GSC-001", "gsc", ["id_no", "score"], "upsert", "gsc_pg", "gsc_residents"),
         _sub("SUB-GSC-002", "gsc", ["id_no", "name"], "upsert", "gsc_lite", "gsc_names"),
         _sub("SUB-GSC-003", "gsc", ["id_no", "score"], "snapshot", "gsc_csv", "gsc_scores")],
        files={"gsc_csv": str(files)},
    )
    assert city.run()["status"] == "success"
    # As govex before the flag left them: no `_govex_disputed` anywhere.
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE gsc_residents DROP COLUMN _govex_disputed"))
    engine.dispose()
    lite = sqlite3.connect(tmp_path / "gsc.db")
    lite.execute("ALTER TABLE gsc_names DROP COLUMN _govex_disputed")
    lite.commit()
    lite.close()
    csv_path = files / "gsc_scores.csv"
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    drop = header.index('"_govex_disputed"')
    csv_path.write_text("\n".join(",".join(c for i, c in enumerate(line.split(","))
                                           if i != drop) for line in lines) + "\n")
    sidecar = files / "gsc_scores.govex-ledger.json"
    declared = json.loads(sidecar.read_text())
    declared["table"]["columns"] = [c for c in declared["table"]["columns"]
                                    if c["name"] != "_govex_disputed"]
    sidecar.write_text(json.dumps(declared))
    assert "_govex_disputed" not in city.rows("gsc_pg", "gsc_residents")[0]

    findings = city.json("check")
    assert [f for f in findings if f["level"] == "problem"] == []
    added = [f for f in findings if f["column"] == "_govex_disputed"]
    assert {(f["level"], f["subscription"]) for f in added} == {
        ("info", "SUB-GSC-001"), ("info", "SUB-GSC-002"), ("info", "SUB-GSC-003")}
    assert all("the next delivery adds it" in f["message"] for f in added)

    assert city.run()["status"] == "success"
    assert not [f for f in city.json("check") if f["column"] == "_govex_disputed"]
    pg_rows = city.rows("gsc_pg", "gsc_residents")
    assert len(pg_rows) == N
    assert {r["_govex_disputed"] for r in pg_rows} == {False}
    assert {r["_govex_disputed"] for r in city.rows("gsc_lite", "gsc_names")} == {0}
    dispute = city.open("gsc", KEY2, "score")
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == {KEY2}
    assert city.flagged("gsc_lite", "gsc_names", "id_no") == {KEY2}
    scores = csv_path.read_text().splitlines()
    flagged = [line for line in scores[1:] if line.endswith(",true")]
    assert len(flagged) == 1
    assert KEY2 in flagged[0]
    assert len(scores) == N + 1
    assert {f["state"] for f in city.json("dispute", "show", dispute)["flags"]} == {"flagged"}


def test_a_dispute_opened_while_a_delivery_runs_ends_flagged(
    city_factory: Callable[..., City], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delivery writes its rows as the store said when it began; a dispute opened after
    its first batch, on a record of a later batch, is still on the row when the run ends."""
    import connectors
    from exchange.run import dispute_flags

    city = city_factory(
        {"gsc_pg": pg_url},
        [_sub("SUB-GSC-001", "gsc", ["id_no", "score"], "upsert", "gsc_pg", "gsc_residents")],
    )
    assert city.run()["status"] == "success"
    late = ROWS[35]["id_no"]  # in the last of four batches of ten
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "10")
    real_open = connectors.open_sink
    writes: list[int] = []

    def open_sink(*args: Any, **kwargs: Any) -> Any:
        sink = real_open(*args, **kwargs)
        write = sink.write

        def writing(spec: Any, batch: Any, mode: Any, ledger: Any) -> int:
            done: int = write(spec, batch, mode, ledger)
            writes.append(done)
            if len(writes) == 1:  # a consumer disputes the late record right now
                store = create_store_engine(city.store_url)
                with store.begin() as conn:
                    import records

                    records.open_dispute(conn, resource=CODE, key=late, field="score",
                                         claim="值有误", opened_by="gsc")
                dispute_flags.settle(store, CODE)
                store.dispose()
                assert city.flagged("gsc_pg", "gsc_residents", "id_no") == {late}
            return done

        sink.write = writing
        return sink

    monkeypatch.setattr(connectors, "open_sink", open_sink)
    assert city.run("--full")["status"] == "success"
    assert writes == [10, 10, 10, 10]
    assert city.flagged("gsc_pg", "gsc_residents", "id_no") == {late}


def test_consumers_see_the_disputes_on_what_they_received(
    city_factory: Callable[..., City], tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from exchange.web import create_app

    city = city_factory(
        {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}",
         "hpf_lite": f"sqlite:///{tmp_path / 'hpf.db'}"},
        [_sub("SUB-GSC-001", "gsc", ["id_no", "score"], "upsert", "gsc_lite", "gsc_scores"),
         _sub("SUB-HPF-002", "hpf", ["id_no", "name"], "upsert", "hpf_lite", "hpf_hashed",
              {"id_no": "hash"})],
    )
    assert city.run()["status"] == "success"
    hashed = city.received_as("SUB-HPF-002", KEY1)[0]
    by_gsc = city.open("gsc", KEY1, "score")
    by_hpf = city.open("hpf", hashed, "name")  # the same record, another consumer's dispute

    engine = create_store_engine(city.store_url)
    try:
        with TestClient(create_app(engine, docs_dir=tmp_path / "docs")) as client:
            def get(department: str, role: str, **query: str) -> Any:
                return client.get("/api/v1/disputes", params=query, headers={
                    "Authorization": f"Bearer {city.token(department, role)}"})

            mine = get("hpf", "consumer", consumer="me")
            assert mine.status_code == 200, mine.text
            listed = {d["id"]: d for d in mine.json()}
            assert set(listed) == {by_gsc, by_hpf}
            assert {d["key"] for d in listed.values()} == {hashed}  # as hpf received it
            for d in listed.values():
                assert d["flags"] == [{"subscription": "SUB-HPF-002", "consumer": "hpf",
                                       "state": "flagged", "error": None}]
            # Another department's case: that the record is disputed, not its words.
            other = listed[by_gsc]
            assert (other["claim"], other["opened_by"], other["reason"], other["evidence"]) \
                == ("", "", None, None)
            assert other["field"] == "score"
            assert listed[by_hpf]["claim"] == "值有误"
            assert KEY1 not in mine.text

            # Without `consumer`: as before, the disputes it opened.
            assert [d["id"] for d in get("hpf", "consumer").json()] == [by_hpf]
            assert get("hpf", "consumer", consumer="gsc").status_code == 403
            assert get("psb", "provider", consumer="me").status_code == 403
            audited = get("psb", "auditor", consumer="gsc").json()
            assert {d["id"] for d in audited} == {by_gsc, by_hpf}
            assert {d["key"] for d in audited} == {KEY1}  # full readers: the source key
            assert {f["subscription"] for d in audited for f in d["flags"]} == {"SUB-GSC-001"}
            assert {d["claim"] for d in audited} == {"值有误"}

            assert city.step("ack", by_gsc)[0] == 0
            assert city.step("reject", by_gsc, "--reason", "值无误")[0] == 0
            after = {d["id"]: d for d in get("gsc", "consumer", consumer="me").json()}
            assert after[by_gsc]["flags"][0]["state"] == "cleared"
            assert after[by_hpf]["flags"][0]["state"] == "flagged"
            assert get("gsc", "consumer", consumer="me", state="open").json()[0]["id"] == by_hpf
    finally:
        engine.dispose()
    # The other consumer's dispute still holds the row flagged.
    assert city.flagged("gsc_lite", "gsc_scores", "id_no") == {KEY1}
