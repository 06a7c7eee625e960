"""A local S3-API server (moto in server mode) for the S3 staging tests and benchmark.

A real HTTP server speaking the S3 API on 127.0.0.1, on a free port, so that govex goes
through s3fs and botocore exactly as against AWS or MinIO; never a mocked client. moto comes
with govex's dev extra (`pip install govex[dev]`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

#: Credentials moto accepts (it checks none); always these, so no real key is ever sent to it.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "govex-test",
    "AWS_SECRET_ACCESS_KEY": "govex-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def local_s3_server() -> Iterator[str]:
    """Run moto's S3-API server on a free port of 127.0.0.1; yields its endpoint URL."""
    # moto (and its Flask server) only for the tests and benchmarks that ask for it.
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_environment(endpoint: str) -> dict[str, str]:
    """The AWS variables that point botocore (under s3fs) at `endpoint`."""
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
