"""A real Airflow 3 CeleryExecutor deployment on this machine, for the scale-out tests.

Redis (127.0.0.1:6379, database `REDIS_DB`) is the Celery broker; a PostgreSQL database made
for the test holds Airflow's metadata and Celery's task results. The control plane (API server,
scheduler, DAG processor) runs in one directory; each `airflow celery worker` runs in its own,
with its own AIRFLOW_HOME, DAG folder copy and task logs, like a separate machine. The workers
share only what a multi-host deployment shares: Airflow's database and broker, the govex
metadata store (PostgreSQL), the staging URL (S3, a local S3-API server) and the department
databases. Every process gets its environment from `Cluster.environment`, never from the
pytest process (whose AIRFLOW_* point at the other tests' SQLite database).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 11  # this test's own Redis database; flushed before and after

# The DAG file every component parses: the generated govex DAGs (dags/govex_exchanges.py) with
# two of the factory's settings changed for the test. Manual runs only: the test triggers
# them, where an unpaused scheduled DAG would also start its latest interval by itself. And a
# retry 2 s after a failure instead of 5 minutes (see `TIMINGS`); the retry count stays 2.
DAG_FILE = '''"""govex DAGs for the CeleryExecutor test: triggered runs only, retries after 2 s."""
import datetime as dt

import exchange.airflow.factory as factory

factory.RETRY_DELAY = dt.timedelta(seconds=2)
factory.resource_schedule = lambda *args, **kwargs: None

globals().update(factory.build_dags())
'''

# Recovery from a dead worker in seconds rather than Airflow's minutes. A killed worker's
# task instance stays `running` in Airflow's database until the scheduler notices that its
# heartbeats stopped; only then does it fail the try and, retries left, queue the next one.
# (Airflow watches task instances, not workers: the Celery worker's own heartbeat plays no
# part, and the scheduler's job heartbeat matters only when a scheduler dies.)
TIMINGS = {
    # The task supervisor reports every 2 s that its task lives (default 5 s)...
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    # ...and the scheduler fails a running task silent for 15 s (default 300: five minutes
    # before anyone notices a dead worker). Seven missed reports: a busy 2-core machine does
    # not trip it by accident, which would fail a live task.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
    # It looks for such tasks every 2 s (default 10), and runs its loop every second
    # (default 5), so the retry is queued within about a second of being due.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    # Celery acknowledges a task's message when the task ends (task_acks_late), so a message
    # whose worker died returns to the queue after the visibility timeout (Airflow's default:
    # 24 hours). Recovery here does not wait for it: Airflow 3.3 ignores a redelivered
    # message of a task instance that is running (TaskAlreadyRunningError), the message of a
    # superseded try names a task instance id that is gone (each try has its own), and with
    # concurrency 1 and prefetch multiplier 1 a worker holds no message it has not started.
    # It must still be longer than any task runs (a redelivery then is a wasted start), so
    # 60 s; shorter than Airflow's default so that a message a worker took and never started
    # returns soon.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "60",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    # [scheduler] task_queued_timeout stays at its default (600 s): it is also the lifetime of
    # the token a queued task authenticates with, and tasks wait in the queue for a free worker.
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def flush_redis() -> None:
    """Empty this test's Redis database (and only it): no message of an earlier run lingers."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kill_tree(pid: int, sig: int) -> None:
    """Signal a process started in its own session, its group, and every descendant (a
    process that left the group included)."""
    children = _descendants(pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, sig)


@dataclass
class Component:
    """One Airflow process (and its children), started in its own session."""

    name: str
    home: Path
    process: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.home / f"{self.name}.out"

    def output(self, last: int = 4000) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return text[-last:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def runs(self, pid: int) -> bool:
        """Whether process `pid` is this component or one of its descendants."""
        return pid == self.process.pid or pid in _descendants(self.process.pid)

    def kill(self) -> None:
        """SIGKILL the process and everything it started, as a lost machine would."""
        _kill_tree(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        if self.alive():
            _kill_tree(self.process.pid, signal.SIGTERM)

    def finish(self, deadline: float) -> None:
        """Wait for the process to end until `deadline` (monotonic), then SIGKILL what is
        left of it."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        _kill_tree(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=15)


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.5,
             diagnose: Callable[[], str] = lambda: "") -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n"
                                 + diagnose())
        time.sleep(every)


@dataclass
class Cluster:
    """Airflow with the CeleryExecutor: `start` the control plane and workers, `api` to drive
    it, `stop` everything. `govex_env` is what every process needs to run govex tasks."""

    root: Path
    metadata_url: str
    govex_env: dict[str, str]
    api_port: int = field(default_factory=free_port)
    jwt_secret: str = field(default_factory=lambda: os.urandom(24).hex())
    components: dict[str, Component] = field(default_factory=dict)
    _token: str | None = None

    # -- environment ---------------------------------------------------------------------
    def environment(self, home: Path) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AIRFLOW", "GOVEX_", "AWS_", "OPENLINEAGE"))}
        return {
            **base,
            **self.govex_env,
            **TIMINGS,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            # The API server's async sessions through psycopg 3 too (Airflow would derive
            # asyncpg, which govex does not install).
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metadata_url.replace(
                "postgresql+psycopg://", "postgresql+psycopg_async://", 1),
            "AIRFLOW__CELERY__BROKER_URL": redis_url(),
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
            # Every component signs and checks the same JWTs (scheduler -> task -> API).
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _home(self, name: str) -> Path:
        home = self.root / name
        (home / "dags").mkdir(parents=True, exist_ok=True)
        (home / "dags" / "govex_celery_test.py").write_text(DAG_FILE, encoding="utf-8")
        return home

    # -- processes -----------------------------------------------------------------------
    def airflow(self, *args: str, timeout: float = 180) -> str:
        """Run one `airflow` command to completion in the control plane's directory."""
        home = self._home("control")
        result = subprocess.run(
            [str(AIRFLOW_BIN), *args], cwd=home, env=self.environment(home),
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        return result.stdout

    def _spawn(self, name: str, home: Path, *args: str) -> Component:
        with (home / f"{name}.out").open("wb") as out:
            process = subprocess.Popen(
                [str(AIRFLOW_BIN), *args], cwd=home, env=self.environment(home),
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        component = Component(name, home, process)
        self.components[name] = component
        return component

    def start_worker(self, name: str) -> Component:
        """`airflow celery worker` in its own directory; one task at a time (see TIMINGS).
        It serves no task logs (`-s`): they stay in its own AIRFLOW_HOME/logs."""
        home = self._home(name)
        return self._spawn(name, home, "celery", "worker", "--concurrency", "1",
                           "--celery-hostname", f"{name}@%h", "--skip-serve-logs")

    def start(self, workers: tuple[str, ...]) -> None:
        control = self._home("control")
        self.airflow("db", "migrate")
        self._spawn("api-server", control, "api-server", "--host", "127.0.0.1",
                    "--port", str(self.api_port), "--workers", "1")
        self._spawn("dag-processor", control, "dag-processor")
        self._spawn("scheduler", control, "scheduler")
        for name in workers:
            self.start_worker(name)
        for name in workers:
            self.wait_worker_ready(name)
        wait_for("the API server", self._api_up, 120, diagnose=self.diagnose)

    def wait_worker_ready(self, name: str) -> None:
        component = self.components[name]
        wait_for(f"celery worker {name}", lambda: " ready." in component.output(10**6), 120,
                 diagnose=self.diagnose)

    def stop(self) -> None:
        """SIGTERM every component at once, give them 5 s together, then SIGKILL."""
        for component in self.components.values():
            component.terminate()
        deadline = time.monotonic() + 5
        for component in self.components.values():
            component.finish(deadline)

    def diagnose(self) -> str:
        """For failure messages: the tail of every component's output, which have died, and
        the errors the tasks logged (task logs stay on the worker that ran the task)."""
        parts = []
        for component in self.components.values():
            state = "running" if component.alive() else f"exited {component.process.returncode}"
            parts.append(f"--- {component.name} ({state}) ---\n{component.output(3000)}")
        for log in sorted(self.root.glob("*/logs/dag_id=*/**/attempt=*.log")):
            errors = [line[:1500] for line in log.read_text(errors="replace").splitlines()
                      if '"level":"error"' in line]
            if errors:
                parts.append(f"--- {log.relative_to(self.root)} ---\n" + "\n".join(errors[-2:]))
        return "\n".join(parts)

    # -- the REST API --------------------------------------------------------------------
    def _api_up(self) -> bool:
        try:
            return httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).is_success
        except httpx.HTTPError:
            return False

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._token is None:
            reply = httpx.get(f"{self.api_url}/auth/token", timeout=30)
            reply.raise_for_status()
            self._token = str(reply.json()["access_token"])
        reply = httpx.request(method, f"{self.api_url}/api/v2/{path}", timeout=30,
                              headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
        assert reply.is_success, f"{method} {path}: {reply.status_code} {reply.text[:2000]}"
        return reply.json()

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.api("GET", "dags", params={"limit": 100})["dags"]}

    def trigger(self, dag_id: str) -> str:
        run = self.api("POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None})
        return str(run["dag_run_id"])

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        listed = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                          params={"limit": 100})
        return list(listed["task_instances"])

    def tries(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every try of every task instance of the run (a retried one's from its history)."""
        tries = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["try_number"] <= 1:
                tries.append(ti)
                continue
            path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}"
            if ti["map_index"] >= 0:
                path += f"/{ti['map_index']}"
            tries.extend(self.api("GET", f"{path}/tries")["task_instances"])
        return tries

    def wait_finished(self, runs: dict[str, str], timeout: float) -> dict[str, str]:
        """{dag id: final state} of the given {dag id: run id}, once none is still going."""
        def states() -> dict[str, str] | None:
            now = {dag: self.dag_run_state(dag, run) for dag, run in runs.items()}
            return now if all(s in ("success", "failed") for s in now.values()) else None

        result: dict[str, str] = wait_for("the DAG runs to finish", states, timeout, every=1,
                                          diagnose=self.diagnose)
        return result

    def logged_tries(self, worker: str, dag_id: str, run_id: str) -> set[tuple[str, int, int]]:
        """(task id, map index, try) of every task log of one DAG run in `worker`'s own
        directory: which tries ran there (a task's log stays with the worker that ran it)."""
        found = set()
        logs = self.root / worker / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        for log in logs.rglob("attempt=*.log"):
            parts = dict(p.split("=", 1) for p in log.relative_to(logs).parts)
            found.add((parts["task_id"], int(parts.get("map_index", "-1")),
                       int(parts["attempt"].removesuffix(".log"))))
        return found


@contextlib.contextmanager
def running_cluster(root: Path, metadata_url: str, govex_env: dict[str, str],
                    workers: tuple[str, ...]) -> Iterator[Cluster]:
    flush_redis()
    cluster = Cluster(root, metadata_url, govex_env)
    try:
        cluster.start(workers)
        yield cluster
    finally:
        cluster.stop()
        flush_redis()
