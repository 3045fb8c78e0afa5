"""SIGKILL a throttled ``modelport pull`` at random moments; each resume must finish with
the right digests, continue partial files where they stopped, and nothing partial may be
visible in between.

A few kills per run; ``MODELPORT_FAULT_KILLS=20`` (or benchmarks/faults.py) runs more.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.faults.campaign import kill_round
from tests.hf_server import HubServer

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("MODELPORT_FAULT_KILLS", "3"))


def test_random_kills_then_resume(
    hub: HubServer, rng: random.Random, seed: int, _isolated_home: Path
) -> None:
    env = dict(os.environ)
    rounds = []
    for i in range(KILLS):
        # Alternate: at a share of the bytes (always mid-download), at a moment (anywhere:
        # start-up, metadata, between files, the commit).
        mode = "bytes" if i % 2 == 0 else "time"
        done = kill_round(hub, _isolated_home, rng, mode=mode, env=env)
        rounds.append(done)
        assert done.survived, f"seed {seed}, kill {i + 1} ({mode}, {done.delay_s:.2f} s): " + (
            "\n".join(done.problems)
        )
    # The campaign reached into the files: at least one kill left a partial file behind.
    assert any(kept > 0 for r in rounds for kept in r.kept.values()), (seed, rounds)
