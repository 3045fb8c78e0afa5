"""Fixtures of the fault campaign: the loopback Hub and a seeded random source.

``MODELPORT_FAULT_SEED`` replays a run (every failure message names its seed).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest

import modelport.api as api
from tests.hf_server import HubServer, serve_hub


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """The loopback Hub as ``HF_ENDPOINT``, for this process and the ones it starts."""
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        api.reset()
        yield server


@pytest.fixture
def seed() -> int:
    """This run's seed: ``MODELPORT_FAULT_SEED``, or a new one each run."""
    return int(os.environ.get("MODELPORT_FAULT_SEED") or random.randrange(2**32))


@pytest.fixture
def rng(seed: int) -> random.Random:
    """A random source replayable from ``seed``."""
    return random.Random(seed)
