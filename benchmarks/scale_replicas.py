"""Scale-out benchmark, second half: registry requests per second through one `modelport
serve` replica against three, all on one PostgreSQL and one S3 bucket.

    python benchmarks/scale_replicas.py [--seconds 8] [--concurrency 32]

``benchmarks/scale.py`` runs it too, on its million-entry database; alone, it runs on a
new database holding only the bundled catalog.

Real servers on loopback, as in tests/test_replicas.py: PostgreSQL (tests/postgres.py),
moto's S3 server (tests/s3_server.py), a loopback Hugging Face Hub with one model pulled
through replica 1, and three `modelport serve` processes (the bundled catalog, a
MODELPORT_HOME each). A closed loop of ``--concurrency`` clients sends GET requests round
robin to the first N replicas for ``--seconds``; the table gives requests/s and p50/p99
latency per route. Every replica, the load generator and the databases share this
machine's cores: on a small machine three replicas compete for the same CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("USE_TF", "0")

from tests.hf_server import serve_hub  # noqa: E402
from tests.postgres import PostgresServer, binaries  # noqa: E402
from tests.s3_server import S3Server  # noqa: E402
from tests.serving import ServerProcess, serve  # noqa: E402

ROUTES = {
    "registry: list": "/api/v1/registry/models?limit=20",
    "registry: search": "/api/v1/registry/models?q=llama&limit=10",
    "registry: one model": "/api/v1/registry/models/openai/gpt-4o",
    "store: /api/tags": "/api/tags",
}


async def _load(urls: list[str], path: str, seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [httpx.AsyncClient(base_url=u, limits=limits, timeout=60) for u in urls]
    latencies: list[float] = []
    errors = 0
    turn = 0
    try:

        async def worker(deadline: float) -> None:
            nonlocal errors, turn
            while time.perf_counter() < deadline:
                client = clients[turn % len(clients)]
                turn += 1
                started = time.perf_counter()
                try:
                    answer = await client.get(path)
                except httpx.TransportError:
                    errors += 1  # counted, not fatal: the table says how many
                    continue
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1

        await asyncio.gather(*(worker(time.perf_counter() + 1.0) for _ in range(concurrency)))
        latencies.clear()
        errors = 0
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        for client in clients:
            await client.aclose()
    ordered = sorted(latencies)
    return {
        "per_s": len(ordered) / elapsed,
        "p50": statistics.median(ordered) * 1000,
        "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        "errors": errors,
    }


def measure_replicas(
    database: str,
    *,
    seconds: float,
    concurrency: int,
    routes: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Requests/s and latency of each route through one replica and through three, all on
    ``database`` (a PostgreSQL URL) and one moto bucket; prints the table as it goes."""
    scratch = Path(tempfile.mkdtemp(prefix="modelport-scale-"))
    s3 = S3Server()
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        s3.start()
        stack.callback(s3.close)
        hub = stack.enter_context(serve_hub())
        hub.add_repo(
            "acme/tiny",
            {"config.json": b'{"model_type": "bert"}', "model.safetensors": b"0" * 4096},
        )
        bucket = s3.create_bucket()
        env = {
            "MODELPORT_DATABASE_URL": database,
            **s3.environment(bucket),
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(scratch / "hf-home"),
            "HF_HUB_DISABLE_XET": "1",
        }
        replicas: list[ServerProcess] = [
            stack.enter_context(serve(scratch / f"home-{i}", env=env)) for i in range(3)
        ]
        import httpx

        httpx.post(
            f"{replicas[0].url}/api/pull",
            json={"model": "hf:acme/tiny", "stream": False},
            timeout=120,
        ).raise_for_status()
        print(f"{os.cpu_count()} CPUs; {concurrency} clients for {seconds:g} s per row\n")
        print(f"| {'route':<26} | replicas | requests/s | p50 ms | p99 ms | errors |")
        print(f"|{'-' * 28}|----------|------------|--------|--------|--------|")
        for label, path in (routes or ROUTES).items():
            for count in (1, 3):
                urls = [r.url for r in replicas[:count]]
                row = asyncio.run(_load(urls, path, seconds, concurrency))
                rows.append({"route": label, "replicas": count, **row})
                print(
                    f"| {label:<26} | {count:>8} | {row['per_s']:>10.0f} | {row['p50']:>6.1f} "
                    f"| {row['p99']:>6.1f} | {row['errors']:>6} |",
                    flush=True,
                )
    return rows


def main() -> None:
    """Run the benchmark on a new, empty database (the bundled catalog) and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    folder = binaries()
    if folder is None:
        sys.exit("PostgreSQL is not installed (initdb, pg_ctl, postgres).")
    postgres = PostgresServer(folder)
    postgres.start()
    try:
        database = postgres.create_database()
        measure_replicas(database, seconds=args.seconds, concurrency=args.concurrency)
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
