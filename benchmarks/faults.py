"""Fault campaign benchmark: the long version of tests/faults.

    python benchmarks/faults.py [--kills 20] [--processes 8] [--api-examples 300] [--seed N]

Against the loopback Hub (tests/hf_server.py, in this process), with the moves the suite
uses (tests/faults/campaign.py):

- ``--kills`` SIGKILLs of a throttled ``modelport pull`` (5 MB of weights at 4 MB/s), half
  at a random share of the bytes, half at a random moment from interpreter start to the
  end; each followed by a resume. Compared with a client that does not resume: the bytes
  it would fetch again.
- ``--processes`` processes pulling one new revision at once, without a kill and with the
  lock holder SIGKILLed mid-file. Compared with clients without locks: one request per
  process for every file.
- schemathesis over every operation of the in-process app's OpenAPI, ``--api-examples``
  schema-valid and as many schema-invalid requests per operation.

A promise broken anywhere is listed under the table and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _environment(scratch: Path) -> Path:
    """A home of its own; every hub but the loopback Hub at a closed port."""
    home = scratch / "home"
    os.environ["MODELPORT_HOME"] = str(home)
    os.environ["HF_HOME"] = str(scratch / "hf-home")
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    for var in (
        "MODELPORT_ONNX_ZOO_URL",
        "MODELPORT_KAGGLE_URL",
        "MODELPORT_TFHUB_URL",
        "MODELPORT_GITHUB_URL",
        "MODELPORT_GITHUB_API_URL",
    ):
        os.environ[var] = "http://127.0.0.1:9"
    for var in ("HF_TOKEN", "MODELPORT_DATABASE_URL", "MODELPORT_OFFLINE", "HF_HUB_OFFLINE"):
        os.environ.pop(var, None)
    return home


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--api-examples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    scratch = Path(tempfile.mkdtemp(prefix="mp-faults-"))
    home = _environment(scratch)

    import modelport.api as api
    from modelport.server.app import create_app
    from tests.faults.campaign import concurrent_round, fuzz_openapi, kill_round
    from tests.hf_server import serve_hub

    problems: list[str] = []
    rows: list[tuple[str, str, str]] = []
    try:
        with serve_hub() as hub:
            os.environ["HF_ENDPOINT"] = hub.url
            api.reset()
            env = dict(os.environ)

            began = time.monotonic()
            kills = [
                kill_round(hub, home, rng, mode="bytes" if i % 2 == 0 else "time", env=env)
                for i in range(args.kills)
            ]
            kill_s = time.monotonic() - began
            for number, done in enumerate(kills, 1):
                problems += [f"kill {number} ({done.mode}): {p}" for p in done.problems]
            survived = sum(done.survived for done in kills)
            digests = sum(not any("sha256" in p for p in done.problems) for done in kills)
            mid_file = sum(any(kept > 0 for kept in done.kept.values()) for done in kills)
            ended = sum(done.exited_first for done in kills)
            kept = sum(sum(done.kept.values()) for done in kills)
            again = sum(done.refetched for done in kills)
            rows += [
                ("SIGKILLs during a throttled pull", f"{args.kills}", f"seed {seed}"),
                ("  resumed, every promise kept", f"{survived} / {args.kills}", ""),
                ("  resumed with every sha256 right", f"{digests} / {args.kills}", ""),
                (
                    "  killed with a partial file on disk",
                    f"{mid_file}",
                    f"{ended} pull(s) ended before their signal",
                ),
                (
                    "  bytes kept by the kills, not fetched again",
                    f"{kept / 1e6:.1f} MB",
                    "a client that restarts would fetch them again",
                ),
                (
                    "  bytes a resume fetched from byte 0",
                    f"{again / 1e6:.1f} MB",
                    "only files the kill left no byte of",
                ),
                (
                    "  resume, median",
                    f"{statistics.median(d.resume_s for d in kills) * 1000:.0f} ms",
                    "in-process pull after the kill",
                ),
                ("  wall time, kills and resumes", f"{kill_s:.1f} s", ""),
            ]

            for kill_first in (False, True):
                done = concurrent_round(
                    hub, home, rng, processes=args.processes, kill_first=kill_first, env=env
                )
                what = "lock holder killed" if kill_first else "no kill"
                problems += [f"{args.processes} processes, {what}: {p}" for p in done.problems]
                files = len(done.gets)
                rows += [
                    (
                        f"{args.processes} processes pull one revision, {what}",
                        "ok" if not done.problems else f"{len(done.problems)} problem(s)",
                        f"{done.wall_s:.1f} s wall",
                    ),
                    (
                        "  requests per file (bodies)",
                        f"{sum(done.gets.values()) / files:.2f}",
                        f"max {max(done.gets.values())}; without locks: {args.processes}",
                    ),
                    (
                        "  requests per file from byte 0",
                        f"{sum(done.fresh_gets.values()) / files:.2f}",
                        f"max {max(done.fresh_gets.values())}",
                    ),
                ]

        fuzz = fuzz_openapi(create_app(), examples=args.api_examples)
        problems += [f"schemathesis: {name}" for name in fuzz.failures]
        errors = sum(n for status, n in fuzz.statuses.items() if status >= 500)
        rows += [
            (
                "schemathesis operations",
                f"{len(fuzz.cases)}",
                f"{args.api_examples} valid + {args.api_examples} invalid each at most",
            ),
            ("  cases sent", f"{sum(fuzz.cases.values())}", ""),
            ("  failures (distinct)", f"{len(fuzz.failures)}", "5xx, undocumented, 422 to valid"),
            ("  answers with status 5xx", f"{errors}", ""),
            (
                "  statuses seen",
                ", ".join(f"{s}×{n}" for s, n in sorted(fuzz.statuses.items())),
                "",
            ),
            ("  wall time", f"{fuzz.seconds:.1f} s", ""),
        ]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>14}  note")
    print("-" * (width + 50))
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>14}  {note}")
    for problem in problems:
        print(f"BROKEN: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
