"""A real ``modelport serve`` process on loopback, for the protocol tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from modelport.settings import PROVIDER_URLS


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """A running server: its base URL, process and log file."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    home: Path

    def output(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")


@contextmanager
def serve(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    api_key: str | None = None,
    startup_s: float = 90,
) -> Iterator[ServerProcess]:
    """Start ``modelport serve ARGS`` with MODELPORT_HOME=home; stop it at the end."""
    port = free_port()
    # No provider is reached and no developer's key is read unless the test says so.
    inherited = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    closed = {f"MODELPORT_{name.upper()}_URL": "http://127.0.0.1:9" for name in PROVIDER_URLS}
    environ = {
        **inherited,
        **closed,
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "MODELPORT_HOME": str(home),
        **(env or {}),
    }
    if api_key is not None:
        environ["MODELPORT_API_KEY"] = api_key
    log = Path(tempfile.mkstemp(prefix="modelport-serve-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "modelport", "serve", "--port", str(port), *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tempfile.gettempdir(),
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", port, process, log, home)
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                if httpx.get(f"{server.url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"modelport serve did not start (exit {process.poll()}):\n{server.output()}"
                )
            time.sleep(0.2)
        yield server
    finally:
        stop(process)
        log.unlink(missing_ok=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server as Ctrl-C would, then for good."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def metric(server: ServerProcess, name: str, labels: Sequence[str] = ()) -> float:
    """The sum of a Prometheus sample's values whose line holds every label given."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and all(label in line for label in labels):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total
