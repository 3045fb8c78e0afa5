"""Pulls in separate processes: killed mid-file and resumed, and eight at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport.api as api
from tests.hf_server import HubServer, serve_hub

pytestmark = pytest.mark.slow

WEIGHTS = random.Random(7).randbytes(8_000_000)
FILES = {
    "config.json": b'{"model_type": "bert"}',
    "tokenizer.json": b'{"version": "1.0"}',
    "model.safetensors": WEIGHTS,
}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add_repo("acme/big", FILES)
        api.reset()
        yield server


def _pull_process(*extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelport", "pull", "hf:acme/big", "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_kill_9_mid_file_then_resume(hub: HubServer, _isolated_home: Path) -> None:
    hub.knobs.bytes_per_second = 2_000_000
    proc = _pull_process()
    partial_dir = _isolated_home / "store" / "partial"
    deadline = time.monotonic() + 60
    size = 0
    while time.monotonic() < deadline:
        parts = list(partial_dir.glob("sha256-*")) if partial_dir.exists() else []
        size = parts[0].stat().st_size if parts else 0
        if size >= 3_000_000:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = next(partial_dir.glob("sha256-*")).stat().st_size
    assert 3_000_000 <= kept < len(WEIGHTS)
    assert not (_isolated_home / "store" / "manifests").exists()

    hub.knobs.bytes_per_second = None
    time.sleep(0.5)  # let the server thread that served the killed process notice
    hub.reset_counts()
    model = api.pull("hf:acme/big")
    ranges = [r[2] for r in hub.requests if r[1].startswith("/cdn-lfs/")]
    assert ranges == [f"bytes={kept}-"]
    # Only the missing tail of the weights crossed the wire again.
    assert hub.bytes_sent["model.safetensors"] == len(WEIGHTS) - kept
    assert model.downloaded_bytes >= len(WEIGHTS) - kept
    assert (Path(model.path) / "model.safetensors").read_bytes() == WEIGHTS
    assert api.verify_store().corrupt == ()


def test_eight_processes_download_each_file_once(hub: HubServer) -> None:
    hub.knobs.bytes_per_second = 8_000_000
    procs = [_pull_process() for _ in range(8)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip().endswith(tuple(hub.repos["acme/big"].commits))
    assert dict(hub.file_gets) == dict.fromkeys(FILES, 1)
    [model] = api.list_models()
    assert model.file_count == 3
    assert api.verify_store().corrupt == ()
    stats = api.get_store().stats()
    assert stats.pull_hits + stats.pull_misses == 8
