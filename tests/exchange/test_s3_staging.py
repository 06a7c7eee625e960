"""Staging on object storage: S3 through a real S3-API server on this machine (moto in server
mode, on a free port of 127.0.0.1), reached by s3fs and botocore as AWS would be. Batches are
whole or absent, encrypted server-side, gone when their run ends or is abandoned."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

import catalog
from benchmarks.s3_server import local_s3_server, s3_environment
from exchange.cli import main
from exchange.run import extract, run_resource, start_run
from exchange.run.staging import Stage, staged_runs
from exchange.store import create_store_engine, upgrade
from govex.settings import load_settings
from tests.exchange.conftest import (
    SCENARIO_BAD_EVERY,
    SCENARIO_ROWS,
    create_source,
    make_rows,
    three_subscriptions,
    write_workspace,
)

CODE = "PSB-RES-001"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with local_s3_server() as endpoint:
        yield endpoint


class Bucket:
    """A fresh bucket on the local S3-API server, and a boto3 client to look into it."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.name = f"govex-{uuid.uuid4().hex[:12]}"
        self.client = boto3.client("s3", endpoint_url=endpoint)
        self.client.create_bucket(Bucket=self.name)

    def url(self, prefix: str) -> str:
        return f"s3://{self.name}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def head(self, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client.head_object(Bucket=self.name, Key=key)
        return head


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    return Bucket(s3_endpoint)


def test_batches_round_trip_encrypted_and_go_with_their_run(bucket: Bucket) -> None:
    stage = Stage.for_run("run-1", bucket.url("staging"))
    stage.write("raw", 0, pa.table({"id": [1, 2]}))
    stage.write("raw", 1, pa.table({"id": [3]}))
    assert [t.num_rows for t in stage.batches("raw")] == [2, 1]
    keys = bucket.keys()
    assert keys == ["staging/run-1/raw/000000.arrow", "staging/run-1/raw/000001.arrow"]
    assert {bucket.head(k)["ServerSideEncryption"] for k in keys} == {"AES256"}
    assert staged_runs(bucket.url("staging")) == ["run-1"]

    stage.clear("raw")
    assert list(stage.batches("raw")) == []
    stage.write("passed", 0, pa.table({"id": [1]}))
    stage.remove()
    assert bucket.keys() == []
    assert staged_runs(bucket.url("staging")) == []
    stage.remove()  # nothing left: not an error


def test_a_kms_key_asks_for_sse_kms(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVEX_STAGING_KMS_KEY", "alias/govex-staging")
    Stage.for_run("run-1", bucket.url("staging")).write("raw", 0, pa.table({"id": [1]}))
    head = bucket.head("staging/run-1/raw/000000.arrow")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert "govex-staging" in head["SSEKMSKeyId"]


def _failing_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Arrow writer of the next batch dies half-way: after its first record batch."""
    real = pa.ipc.RecordBatchFileWriter.write_batch

    def write_table(self: Any, table: pa.Table, max_chunksize: int | None = None) -> None:
        batches = table.to_batches(max_chunksize=1)
        real(self, batches[0])
        msg = "the worker died mid-write"
        raise OSError(msg)

    monkeypatch.setattr(pa.ipc.RecordBatchFileWriter, "write_table", write_table)


@pytest.mark.parametrize("where", ["s3", "local"])
def test_a_batch_interrupted_mid_write_is_never_read(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    root = bucket.url("staging") if where == "s3" else str(tmp_path / "staging")
    stage = Stage.for_run("run-1", root)
    stage.write("raw", 0, pa.table({"id": [1, 2]}))
    with monkeypatch.context() as patch:
        _failing_writer(patch)
        with pytest.raises(OSError, match="mid-write"):
            stage.write("raw", 1, pa.table({"id": [3, 4, 5]}))
    assert [t.column("id").to_pylist() for t in stage.batches("raw")] == [[1, 2]]
    if where == "s3":
        assert bucket.keys() == ["staging/run-1/raw/000000.arrow"]


def test_an_upload_never_completed_is_never_read(bucket: Bucket) -> None:
    """A writer killed inside a multipart upload (batches over 100 MB) leaves parts S3 keeps
    out of every listing until the upload completes; the lifecycle rule aborts them."""
    stage = Stage.for_run("run-1", bucket.url("staging"))
    stage.write("raw", 0, pa.table({"id": [1]}))
    key = "staging/run-1/raw/000001.arrow"
    upload = bucket.client.create_multipart_upload(
        Bucket=bucket.name, Key=key, ServerSideEncryption="AES256")
    bucket.client.upload_part(Bucket=bucket.name, Key=key, PartNumber=1,
                              UploadId=upload["UploadId"], Body=b"ARROW1" + b"\0" * 64)
    assert [t.num_rows for t in stage.batches("raw")] == [1]


# ---- whole runs -------------------------------------------------------------------------------


def _apply(tmp_path: Path, source: str, targets: dict[str, str],
           subscriptions: list[dict[str, Any]], rows: int, bad_every: int) -> sa.Engine:
    """The shared scenario's workspace applied to a fresh store; the resource is shared
    unconditionally, so that no sharing request is needed."""
    create_source(source, make_rows(rows, bad_every=bad_every))
    root = tmp_path / "ws"
    write_workspace(root, source, targets, subscriptions)
    resource = root / "resources" / "psb.yaml"
    resource.write_text(resource.read_text().replace("sharing: conditional",
                                                     "sharing: unconditional"))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    return engine


@pytest.fixture
def lite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """SQLite only: one upsert subscriber, 300 rows, 3 of them bad."""
    engine = _apply(tmp_path, f"sqlite:///{tmp_path / 'psb.db'}",
                    {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"},
                    [{"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name"],
                      "masking": {}, "mode": "upsert",
                      "target": {"connection": "gsc_lite", "table": "gsc_residents"}}],
                    300, 100)
    monkeypatch.setenv("GOVEX_DB_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    yield engine
    engine.dispose()


def test_the_url_wins_over_the_directory(bucket: Bucket, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GOVEX_STAGING_URL", bucket.url("staging/"))
    assert load_settings().staging_url == bucket.url("staging")


def test_an_abandoned_runs_objects_are_swept(
    bucket: Bucket, lite_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_STAGING_URL", bucket.url("staging"))
    monkeypatch.setenv("GOVEX_LEASE_SECONDS", "1")  # its lease expires after 3 s unrenewed
    killed = start_run(lite_store, CODE)
    assert extract(lite_store, killed) == 300
    assert bucket.keys(f"staging/{killed}/raw/")
    # The worker running `killed` dies here (its machine is gone): its lease runs out.
    time.sleep(3.5)
    after = run_resource(lite_store, CODE)
    assert after.status == "success"
    assert bucket.keys("staging/") == []


@pytest.mark.integration
def test_a_run_staged_on_s3_delivers_every_record_and_leaves_nothing(
    bucket: Bucket, tmp_path: Path, pg_url: str, mariadb_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: Any,
) -> None:
    """`govex run` of the shared scenario (PostgreSQL source; upsert, append and snapshot
    targets on PostgreSQL, MariaDB and SQLite) with every batch staged on S3."""
    targets = {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    store = _apply(tmp_path, pg_url, targets, three_subscriptions(), SCENARIO_ROWS,
                   SCENARIO_BAD_EVERY)
    monkeypatch.setenv("GOVEX_DB_URL", store.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))  # the URL wins
    monkeypatch.setenv("GOVEX_STAGING_URL", bucket.url("govex/staging"))
    capsys.readouterr()
    code = main(["run", CODE, "--json"])
    summary = json.loads(capsys.readouterr().out)
    good = SCENARIO_ROWS - SCENARIO_ROWS // SCENARIO_BAD_EVERY
    assert code == 0, summary
    assert {d["subscription"]: d["delivered"] for d in summary["deliveries"]} == {
        s["id"]: good for s in three_subscriptions()}
    for connection, table in (("gsc_pg", "gsc_residents"), ("hpf_maria", "hpf_residents"),
                              ("gsc_lite", "gsc_snapshot")):
        target = sa.create_engine(targets[connection])
        with target.connect() as conn:
            count = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        target.dispose()
        assert count == good, table
    assert bucket.keys() == []  # every staged batch removed by `finish`
    assert not (tmp_path / "staging").exists()  # nothing went to local disk
    store.dispose()


def test_check_warns_of_single_machine_connections_with_remote_staging(
    lite_store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    assert main(["check", str(tmp_path / "ws"), "--json"]) == 0
    assert not [f for f in json.loads(capsys.readouterr().out) if f["level"] == "warning"]

    monkeypatch.setenv("GOVEX_STAGING_URL", "s3://somewhere/staging")
    assert main(["check", str(tmp_path / "ws"), "--json"]) == 0  # a warning fails nothing
    warnings = [f for f in json.loads(capsys.readouterr().out) if f["level"] == "warning"]
    assert {(f["side"], f["connection"]) for f in warnings} == {
        ("source", "psb_db"), ("target", "gsc_lite")}
    assert all("one machine's disk" in f["message"] for f in warnings)


@pytest.mark.parametrize(("env", "staging", "docs"), [
    ({}, str(Path(".govex/staging").resolve()), ".govex/data_docs"),
    ({"GOVEX_STAGING_DIR": "/srv/stage"}, "/srv/stage", ".govex/data_docs"),
    ({"GOVEX_STAGING_URL": "file:///srv/stage"}, "/srv/stage", ".govex/data_docs"),
    ({"GOVEX_STAGING_URL": "s3://b/govex/staging/", "GOVEX_STAGING_DIR": "/x"},
     "s3://b/govex/staging", "s3://b/govex/data_docs"),
    ({"GOVEX_STAGING_URL": "s3://b", "GOVEX_DATA_DOCS_DIR": "/docs"}, "s3://b", "/docs"),
])
def test_where_staging_and_data_docs_go(env: dict[str, str], staging: str, docs: str) -> None:
    settings = load_settings(env)
    assert (settings.staging_url, settings.data_docs_location) == (staging, docs)


def test_data_docs_go_to_s3_and_the_web_app_serves_them(
    bucket: Bucket, lite_store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With staging on S3, a run leaves its Data Docs report beside it (`data_docs/.pending`),
    writing nothing to the worker's disk; the web app renders the page from there into its
    own cache, serves it, and puts the page on S3 for every other server."""
    from fastapi.testclient import TestClient

    from exchange.store import tokens
    from exchange.web import create_app

    worker = tmp_path / "worker"
    worker.mkdir()
    monkeypatch.chdir(worker)
    monkeypatch.delenv("GOVEX_DATA_DOCS_DIR")
    monkeypatch.setenv("GOVEX_STAGING_URL", bucket.url("govex/staging"))
    run = run_resource(lite_store, CODE)
    assert run.status == "success"
    pending = f"govex/data_docs/.pending/{run.run_id}.json"
    assert bucket.keys("govex/data_docs/") == [pending]
    assert bucket.head(pending)["ServerSideEncryption"] == "AES256"
    assert list(worker.iterdir()) == []  # nothing on the worker's local disk

    server = tmp_path / "server"
    server.mkdir()
    monkeypatch.chdir(server)
    with lite_store.begin() as conn:
        secret = tokens.create_token(conn, "gsc", "checklist_owner")
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(lite_store)) as client:
        runs = client.get(f"/api/v1/quality/{CODE}", headers=headers).json()["runs"]
        assert {r["run_id"]: r["data_docs"] for r in runs} == {
            run.run_id: f"/data-docs/{run.run_id}/index.html"}
        page = client.get(f"/data-docs/{run.run_id}/index.html", headers=headers)
    assert page.status_code == 200
    assert "id_no" in page.text  # the checks of the contract's columns, as GE renders them
    assert bucket.keys("govex/data_docs/") == [f"govex/data_docs/{run.run_id}/index.html"]
    assert (server / ".govex" / "data_docs" / run.run_id / "index.html").is_file()
