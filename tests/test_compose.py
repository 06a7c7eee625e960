"""The production-shaped deployment (docker-compose.yml) parses and has the shape we promise.

No Docker engine is needed: `docker-compose config` validates and interpolates the file
offline. Without the binary those tests skip with the reason, except under CI=true, where a
missing tool is a failure (CI must never go green by skipping). The structural checks read the
YAML directly and always run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
INSTALL_HINT = "apt-get install -y --no-install-recommends docker-compose"

SECRETS = (
    "POSTGRES_PASSWORD",
    "AIRFLOW_DB_PASSWORD",
    "GOVEX_DB_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "GOVEX_SECRET_KEY",
    "REDIS_PASSWORD",
    "MINIO_ROOT_PASSWORD",
    "MINIO_KMS_SECRET_KEY",
    "GOVEX_S3_SECRET_KEY",
)
LONG_RUNNING = (
    "postgres",
    "kafka",
    "redis",
    "minio",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "govex-web",
    "govex-ingest",
)
ONE_SHOT = ("airflow-init", "govex-init", "minio-init")
AIRFLOW = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
# Every container that runs govex code: the Airflow components (tasks run on the workers) and
# govex's own services.
GOVEX_CODE = (*AIRFLOW, "airflow-worker", "govex-web", "govex-ingest")
SCALABLE = ("airflow-worker", "govex-ingest")
STAGING_URL = "s3://govex-staging/staging"
# Not govex's: the databases, the broker and the object store need neither PostgreSQL nor us.
INFRASTRUCTURE = ("postgres", "kafka", "redis", "minio", "minio-init")


def _compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    reason = f"docker-compose is not installed (Debian: {INSTALL_HINT})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing tool is a failure, not a skip")
    pytest.skip(reason)


def _dummy_secrets(*, without: str | None = None) -> dict[str, str]:
    return {name: f"test-{name.lower()}" for name in SECRETS if name != without}


def _run_compose(
    args: list[str], tmp_path: Path, secrets: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run compose on our file with dummy secrets, ignoring any developer's .env."""
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(_dummy_secrets() if secrets is None else secrets)
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    command = [
        *_compose_command(), "--env-file", str(empty_env_file),
        "--project-directory", str(ROOT), "-f", str(COMPOSE), *args,
    ]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120
    )


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """The file as YAML (anchors and merge keys resolved, `${…}` left as written)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as compose understands it: validated, interpolated, normalised (once: every
    test only reads it)."""
    result = _run_compose(["config"], tmp_path_factory.mktemp("rendered"))
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = yaml.safe_load(result.stdout)
    return loaded


# --- with the compose binary ----------------------------------------------------------------


def test_config_is_valid(tmp_path: Path) -> None:
    result = _run_compose(["config", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr


def test_services_and_healthchecks(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    assert set(services) == {*LONG_RUNNING, *ONE_SHOT}
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", name


def test_startup_order_waits_on_health_and_migrations(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    for name in (*LONG_RUNNING, *ONE_SHOT):
        if name in INFRASTRUCTURE:
            continue
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
    for name in (*AIRFLOW, "airflow-worker"):
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
        assert depends["govex-init"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["minio-init"]["condition"] == "service_completed_successfully", name
    assert services["govex-ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("airflow-scheduler", "airflow-worker"):  # the worker's tasks call its API
        assert services[name]["depends_on"]["airflow-api-server"]["condition"] == (
            "service_healthy"
        )
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["govex-web"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )


def test_secrets_are_interpolated_into_urls(rendered: dict[str, Any]) -> None:
    web = rendered["services"]["govex-web"]["environment"]
    assert web["GOVEX_DB_URL"] == (
        "postgresql+psycopg://govex:test-govex_db_password@postgres:5432/govex"
    )
    assert web["GOVEX_SECRET_KEY"] == "test-govex_secret_key"
    scheduler = rendered["services"]["airflow-scheduler"]["environment"]
    assert scheduler["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(
        "postgresql+psycopg2://airflow:test-airflow_db_password@postgres:5432/airflow"
    )
    # The govex engine runs inside Airflow tasks: same store, same staging, same key.
    assert scheduler["GOVEX_DB_URL"] == web["GOVEX_DB_URL"]
    assert scheduler["GOVEX_SECRET_KEY"] == web["GOVEX_SECRET_KEY"]
    # govex containers get no Airflow secrets.
    assert not any(k.startswith("AIRFLOW__") for k in web)
    assert scheduler["AIRFLOW__CELERY__BROKER_URL"] == (
        "redis://:test-redis_password@redis:6379/0"
    )
    assert web["AWS_SECRET_ACCESS_KEY"] == "test-govex_s3_secret_key"
    minio = rendered["services"]["minio"]["environment"]
    assert minio["MINIO_ROOT_PASSWORD"] == "test-minio_root_password"
    assert minio["MINIO_KMS_SECRET_KEY"] == "test-minio_kms_secret_key"
    # The root credentials stay with MinIO and its init job; govex works as `govex`.
    assert web["AWS_ACCESS_KEY_ID"] == "govex"
    for name in GOVEX_CODE:
        assert "MINIO_ROOT_PASSWORD" not in rendered["services"][name]["environment"], name


def test_celery_executor_with_scalable_workers(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    brokers = set()
    for name in (*AIRFLOW, "airflow-worker"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        brokers.add(env["AIRFLOW__CELERY__BROKER_URL"])
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
            "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        )
        # A dead worker's unacknowledged message must not come back while a long task runs.
        assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 3600
    assert len(brokers) == 1
    worker = services["airflow-worker"]
    assert worker["command"] == ["celery", "worker"]
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"  # warm shutdown on SIGTERM
    assert "inspect ping" in worker["healthcheck"]["test"][1]
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert "redis-data:/data:rw" in redis["volumes"]


@pytest.mark.parametrize("name", SCALABLE)
def test_scalable_services_can_be_scaled(rendered: dict[str, Any], name: str) -> None:
    """`docker compose up --scale NAME=N` needs a service with no fixed container name and no
    fixed host port (N containers cannot share either)."""
    service = rendered["services"][name]
    assert "container_name" not in service
    assert not service.get("ports")


def test_ingest_replicas(tmp_path: Path) -> None:
    default = _run_compose(["config"], tmp_path)
    assert default.returncode == 0, default.stderr
    assert yaml.safe_load(default.stdout)["services"]["govex-ingest"]["deploy"]["replicas"] == 2
    env = {**_dummy_secrets(), "GOVEX_INGEST_REPLICAS": "4"}
    four = _run_compose(["config"], tmp_path, env)
    assert four.returncode == 0, four.stderr
    assert yaml.safe_load(four.stdout)["services"]["govex-ingest"]["deploy"]["replicas"] == 4


def test_staging_is_object_storage_for_every_govex_container(rendered: dict[str, Any]) -> None:
    """The steps of a run meet in the bucket, never on a shared volume."""
    for name in GOVEX_CODE:
        service = rendered["services"][name]
        env = service["environment"]
        assert env["GOVEX_STAGING_URL"] == STAGING_URL, name
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000", name
        assert "GOVEX_STAGING_DIR" not in env, name
        assert not any("staging" in volume for volume in service.get("volumes", [])), name
    assert not any("staging" in volume for volume in rendered.get("volumes", {}))


@pytest.mark.parametrize("missing", SECRETS)
def test_a_missing_secret_is_refused_by_name(tmp_path: Path, missing: str) -> None:
    result = _run_compose(["config", "-q"], tmp_path, _dummy_secrets(without=missing))
    assert result.returncode != 0
    assert missing in result.stderr


# --- the file itself (always) ---------------------------------------------------------------


def test_kafka_runs_in_kraft_mode_single_node(raw: dict[str, Any]) -> None:
    kafka = raw["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].endswith("apache/kafka:4.1.0}")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert raw["services"]["govex-ingest"]["environment"]["GOVEX_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_airflow_services_and_commands(raw: dict[str, Any]) -> None:
    services = raw["services"]
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["govex-init"]["command"] == ["govex", "db", "upgrade"]
    for name, command in zip(
        (*AIRFLOW, "airflow-worker"),
        (["api-server"], ["scheduler"], ["dag-processor"], ["triggerer"], ["celery", "worker"]),
        strict=True,
    ):
        assert services[name]["command"] == command
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "./dags:/opt/airflow/dags:ro" in services[name]["volumes"]
    assert services["govex-web"]["command"] == [
        "govex", "serve", "--host", "0.0.0.0", "--port", "8765"  # noqa: S104 - in a container
    ]
    assert services["govex-ingest"]["command"][:2] == ["govex", "ingest"]


def test_openlineage_transport_points_at_govex(raw: dict[str, Any]) -> None:
    for name in (*AIRFLOW, "airflow-worker"):  # the worker's tasks emit the task events
        env = raw["services"][name]["environment"]
        transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
        assert transport == {
            "type": "http", "url": "http://govex-web:8765", "endpoint": "api/v1/lineage"
        }


def test_postgres_holds_both_databases(raw: dict[str, Any]) -> None:
    postgres = raw["services"]["postgres"]
    init = "/docker-entrypoint-initdb.d/10-init-databases.sh"
    mount = f"./deploy/postgres/init-databases.sh:{init}:ro"
    assert mount in postgres["volumes"]
    script = ROOT / "deploy" / "postgres" / "init-databases.sh"
    assert script.stat().st_mode & stat.S_IXUSR, "the entrypoint runs it only if executable"
    text = script.read_text(encoding="utf-8")
    assert "CREATE DATABASE airflow" in text
    assert "CREATE DATABASE govex" in text


def test_image_installs_the_project_on_airflow_and_keeps_secrets_out() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "FROM ${AIRFLOW_IMAGE}" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
    # The image carries the DAG file (the Kubernetes route has no ./dags to mount).
    assert "COPY --chown=airflow:0 dags/ /opt/airflow/dags/" in dockerfile
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", ".git"} <= set(ignored)
    example = (ROOT / "deploy" / "env.example").read_text(encoding="utf-8")
    for name in SECRETS:
        assert f"\n{name}=" in example, name


def test_minio_init_makes_the_staging_bucket_and_its_user(raw: dict[str, Any]) -> None:
    """deploy/minio/: the bucket GOVEX_STAGING_URL names, encrypted by default, with the
    lifecycle backstop on the staging prefix only (docs/operations.md), and a `govex` user whose
    policy reaches that bucket and nothing else."""
    init = raw["services"]["minio-init"]
    assert "./deploy/minio:/opt/govex/minio:ro" in init["volumes"]
    assert init["entrypoint"] == ["/bin/sh", "/opt/govex/minio/init.sh"]
    script = ROOT / "deploy" / "minio" / "init.sh"
    checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    text = script.read_text(encoding="utf-8")
    bucket, _, prefix = STAGING_URL.removeprefix("s3://").partition("/")
    assert f"BUCKET={bucket}\n" in text
    assert 'mc encrypt set sse-s3 "local/$BUCKET"' in text
    assert 'mc ilm rule import "local/$BUCKET" < "$HERE/lifecycle.json"' in text
    assert 'mc admin user add local govex "$GOVEX_S3_SECRET_KEY"' in text

    lifecycle = json.loads((ROOT / "deploy" / "minio" / "lifecycle.json").read_text())
    [rule] = lifecycle["Rules"]
    assert rule["Filter"] == {"Prefix": f"{prefix}/"}  # never data_docs/ beside it
    assert rule["Expiration"] == {"Days": 7}

    policy = json.loads((ROOT / "deploy" / "minio" / "policy.json").read_text())
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}
    assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    # What docs/operations.md says the govex role needs on S3.
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket",
            "s3:AbortMultipartUpload"} <= actions
    assert not any("*" in action for action in actions)
