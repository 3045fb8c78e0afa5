"""Several processes pull one model while the one holding the download lock is SIGKILLed:
the others take its partial file over (a Range request), every file crosses the wire from
its start once, and all of them succeed.

(Eight processes pulling without a kill: tests/test_pull_processes.py.)
``MODELPORT_FAULT_PROCESSES`` sets how many pull at once here (default 4).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.faults.campaign import concurrent_round
from tests.hf_server import HubServer

pytestmark = pytest.mark.slow

PROCESSES = int(os.environ.get("MODELPORT_FAULT_PROCESSES", "4"))


def test_the_lock_holder_killed_mid_file_is_taken_over(
    hub: HubServer, rng: random.Random, seed: int, _isolated_home: Path
) -> None:
    done = concurrent_round(
        hub, _isolated_home, rng, processes=PROCESSES, kill_first=True, env=dict(os.environ)
    )
    assert done.problems == [], f"seed {seed}: " + "\n".join(done.problems)
    assert done.gets["model.safetensors"] == 2  # the killed start and the one continuation
    assert all(n == 1 for n in done.fresh_gets.values()), done.fresh_gets
