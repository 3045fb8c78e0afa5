"""`modelport serve` as a real process: starts offline on the bundled catalog and answers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_on_the_bundled_catalog(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MODELPORT_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelport", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"server did not start (exit {proc.poll()}):\n{out}")
                time.sleep(0.2)
        assert health.json()["data"]["models"] >= 150
        models = httpx.get(f"{base}/v1/models", timeout=5).json()
        assert any(m["id"] == "openai/gpt-4o" for m in models["data"])
        missing = httpx.get(f"{base}/api/v1/registry/models/zzzz-not-a-model", timeout=5)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "model_not_found"
        assert (tmp_path / "home" / "modelport.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode in (0, -signal.SIGINT, 130)


def test_serve_with_a_bad_config_fails_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("port = 'eighty'\n")
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "serve"],
        env={**os.environ, "MODELPORT_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "MODELPORT_PORT must be a number" in done.stderr
