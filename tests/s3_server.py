"""A real S3-protocol server for the tests: moto in server mode, in a process of its own on
127.0.0.1 at a free port, driven by boto3 like any bucket; stopped at the end.

Where moto or boto3 is not installed the tests that need it skip, except in CI
(``CI=true``), where they fail: the ``dev`` extra installs both.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

#: What the tests' clients sign with: moto takes any credentials.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-access-key",
    "AWS_SECRET_ACCESS_KEY": "test-secret-key-never-shown",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def missing_reason() -> str | None:
    """Why the S3 server cannot be started here, or None."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as e:
        return f"{e.name} is not installed (pip install 'modelport[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's S3 server: start, make a bucket per test, look inside, stop."""

    def __init__(self) -> None:
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="modelport-moto-", suffix=".log")[1])
        self._names = itertools.count(1)

    def start(self) -> None:
        """Start the server and wait until it answers."""
        for _attempt in range(3):  # another program may take the port first
            self.port = _free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            with self.log.open("wb") as out:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=tempfile.gettempdir(),
                )
            deadline = time.monotonic() + 60
            while self.process.poll() is None and time.monotonic() < deadline:
                try:
                    httpx.get(f"{self.url}/moto-api/", timeout=2)
                    return
                except httpx.TransportError:
                    time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"moto's S3 server did not start:\n{self.log.read_text()}")

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.url)

    def create_bucket(self) -> str:
        """A new, empty bucket; its name."""
        name = f"models-{next(self._names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        """Every object under a prefix, with its bytes."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"]] = body
        return found

    def environment(self, bucket: str, prefix: str = "team") -> dict[str, str]:
        """The settings that point modelport at a bucket of this server."""
        return {
            "MODELPORT_STORE_URL": f"s3://{bucket}/{prefix}",
            "MODELPORT_S3_ENDPOINT_URL": self.url,
            **CREDENTIALS,
        }

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        """Stop the server and remove its log."""
        self.stop()
        self.log.unlink(missing_ok=True)
