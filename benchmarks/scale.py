"""Scale benchmark: a catalog of a million entries in PostgreSQL.

    python benchmarks/scale.py [--entries 1000000] [--memory-entries 100000] [--runs 400]
                               [--replica-seconds 8] [--concurrency 32]

Starts a PostgreSQL server as the tests do (tests/postgres.py), upgrades an empty database
to the newest schema, and loads ``--entries`` synthetic user entries (shaped like
benchmarks/catalog.py's ``synthetic``: varied providers, tasks, contexts, prices) with
COPY in batches: ``catalog_entries`` and ``catalog_search`` with its indexes dropped, then
the indexes of revision 0004 built again (as a restore does). Then, through the
``PostgresCatalog`` a server uses (with the bundled entries in process), p50/p99 over
``--runs`` random lookups of: an exact get by id, a fuzzy get of a name with a typo (and
how many resolved to the right id), and a three-filter query (capability + min_context +
max_price, sorted by price, limit 20).

Compared in the same run against the obvious alternatives: the in-process ``Catalog``
(what SQLite uses) holding ``--memory-entries`` of the same entries (its build time is
that many entries' load per process), and a naive ``ILIKE`` scan of the million rows for
the fuzzy get. Targets: fuzzy ≤ 20 ms, filtered ≤ 10 ms (p99).

Then three ``modelport serve`` replicas on that database and one moto bucket
(``benchmarks/scale_replicas.py``): registry requests/s and p50/p99 through one replica
and through three, with a closed loop of ``--concurrency`` clients per row.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.catalog import WORDS, synthetic_json  # noqa: E402

from modelport.catalog.discovery import normalize_id, short_name, tokens  # noqa: E402
from modelport.catalog.search_rows import SEARCH_COLUMNS, fuzzy_key  # noqa: E402

MORE_WORDS = [*WORDS, "falcon", "orca", "nova", "atlas", "sage", "pixel", "turbo", "flash"]
CAPS = ("chat", "vision", "tool_calling")


def raw_entry(i: int, rng: random.Random) -> dict[str, Any]:
    """The JSON of one synthetic entry, from a larger vocabulary than the UI benchmark's."""
    return synthetic_json(i, rng, MORE_WORDS)


def raw_search_row(data: dict[str, Any]) -> dict[str, Any]:
    """Its search row, computed without pydantic (checked against ``search_row``)."""
    model_id, name = data["id"], data["name"]
    pricing = data.get("pricing")
    keys = {normalize_id(model_id), normalize_id(short_name(model_id)), normalize_id(name)}
    return {
        "id": model_id,
        "lower_id": model_id.lower(),
        "name_key": name.lower(),
        "provider": data["provider"],
        "category": data["category"],
        "source": data["source"],
        "status": "stable",
        "tasks": data["tasks"],
        "tags": [],
        "capabilities": [c for c in CAPS if data["capabilities"][c]],
        "alias_keys": [],
        "name_keys": sorted(keys),
        "words": sorted(set(tokens(model_id)) | set(tokens(name))),
        "fuzzy": fuzzy_key(model_id, name),
        "context": data["context_window"],
        "price": (
            pricing["input_per_1m_tokens"] * 0.75 + pricing["output_per_1m_tokens"] * 0.25
            if pricing
            else None
        ),
        "vram": data["requirements"]["min_vram_gb"] if "requirements" in data else None,
        "parameters": data["parameters"],
        "release": None,
        "has_pricing": pricing is not None,
        "has_requirements": "requirements" in data,
        "rank": 0.1,
    }


def check_rows(n: int = 300) -> None:
    """The rows loaded are those the catalog itself would write."""
    from modelport.catalog.entry import ModelEntry
    from modelport.catalog.search_rows import search_row

    rng = random.Random(1)
    for i in range(n):
        data = raw_entry(i, rng)
        mine, theirs = raw_search_row(data), search_row(ModelEntry.model_validate(data))
        if mine != theirs:
            diff = {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}
            raise SystemExit(f"The benchmark's rows differ from search_row: {diff}")


def ms(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def typo(name: str, rng: random.Random) -> str:
    """The name with one letter of one of its words dropped."""
    words = name.split()
    k = rng.randrange(3)
    word = words[k]
    cut = rng.randrange(1, len(word))
    words[k] = word[:cut] + word[cut + 1 :]
    return " ".join(words)


def load(url: str, n: int, batch: int = 50_000) -> tuple[float, float]:
    """COPY n entries and their search rows; rebuild the indexes. (load s, index s)"""
    import datetime as dt

    import psycopg
    from sqlalchemy import make_url

    from modelport.catalog.pglisten import conninfo
    from modelport.migrations.versions.v0004_catalog_search_on_postgresql import INDEXES

    columns = SEARCH_COLUMNS
    types = [
        "text[]"
        if c in ("tasks", "tags", "capabilities", "alias_keys", "name_keys", "words")
        else {"context": "int8", "parameters": "int8", "price": "float8", "vram": "float8"}.get(
            c,
            {"release": "date", "has_pricing": "bool", "has_requirements": "bool"}.get(
                c, "float4" if c == "rank" else "text"
            ),
        )
        for c in columns
    ]
    now = dt.datetime.now(dt.UTC)
    rng = random.Random(7)
    with psycopg.connect(conninfo(make_url(url)), autocommit=True) as conn:
        for name, _ in INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("ALTER TABLE catalog_entries DISABLE TRIGGER USER")
        started = time.perf_counter()
        for first in range(0, n, batch):
            raws = [raw_entry(i, rng) for i in range(first, min(n, first + batch))]
            with conn.transaction(), conn.cursor() as cur:
                buffer = io.StringIO()
                for data in raws:
                    text = json.dumps(data, ensure_ascii=False)
                    buffer.write(
                        data["id"]
                        + "\tuser\t"
                        + text.replace("\\", "\\\\").replace("\t", "\\t")
                        + "\t"
                        + now.isoformat()
                        + "\n"
                    )
                with cur.copy(
                    "COPY catalog_entries (id, origin, data, updated_at) FROM STDIN"
                ) as copy:
                    copy.write(buffer.getvalue())
                with cur.copy(
                    f"COPY catalog_search (pending, {', '.join(columns)}) FROM STDIN"
                ) as copy:
                    copy.set_types(["bool", *types])
                    for data in raws:
                        row = raw_search_row(data)
                        copy.write_row([False, *(row[c] for c in columns)])
            print(f"  loaded {min(n, first + batch):,}", file=sys.stderr, end="\r")
        loaded = time.perf_counter() - started
        conn.execute("ALTER TABLE catalog_entries ENABLE TRIGGER USER")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        started = time.perf_counter()
        for name, definition in INDEXES:
            conn.execute(f"CREATE INDEX {name} ON catalog_search {definition}")
        conn.execute("VACUUM ANALYZE catalog_search")
        conn.execute("VACUUM ANALYZE catalog_entries")
        indexed = time.perf_counter() - started
    print(file=sys.stderr)
    return loaded, indexed


def sample_ids(n: int, runs: int, seed: int) -> Iterator[tuple[str, str]]:
    """(id, name) of ``runs`` entries picked at random among the n loaded."""
    picks = set(random.Random(seed).sample(range(n), runs))
    rng = random.Random(7)
    for i in range(n if n <= 200_000 else max(picks) + 1):
        data = raw_entry(i, rng)
        if i in picks:
            yield data["id"], data["name"]


def measure(catalog: Any, picks: list[tuple[str, str]], runs: int) -> dict[str, Any]:
    """p50/p99 of exact get, fuzzy get and the three-filter query on one catalog."""
    from modelport.catalog.catalog import CatalogQuery
    from modelport.errors import ModelNotFoundError

    rng = random.Random(3)
    exact = [ms(lambda i=i: catalog.get(i)) for i, _ in picks]
    right = 0
    fuzzy = []
    for model_id, name in picks:
        wrong = typo(name, rng)
        t = time.perf_counter()
        try:
            found = catalog.resolve(wrong).id
        except ModelNotFoundError:
            found = None
        fuzzy.append((time.perf_counter() - t) * 1000)
        right += found == model_id
    filtered = []
    for _ in range(runs):
        q = CatalogQuery(
            capabilities=(rng.choice(CAPS),),
            min_context=rng.choice([8192, 32768, 131072, 1_000_000]),
            max_price=round(rng.uniform(0.5, 20), 2),
            sort="price",
            limit=20,
        )
        filtered.append(ms(lambda q=q: catalog.query(q)))
    return {
        "exact": percentiles(exact),
        "fuzzy": percentiles(fuzzy),
        "right": right / len(picks),
        "filtered": percentiles(filtered),
    }


def naive_fuzzy(url: str, picks: list[tuple[str, str]]) -> tuple[float, float]:
    """The obvious SQL without the trigram index: ILIKE on each word of the typo'd name."""
    import psycopg
    from sqlalchemy import make_url

    from modelport.catalog.pglisten import conninfo

    rng = random.Random(3)
    times = []
    with psycopg.connect(conninfo(make_url(url)), autocommit=True) as conn:
        for _, name in picks:
            words = [w for w in typo(name, rng).lower().split() if len(w) > 1][-1:]
            pattern = "%" + words[0] + "%"
            times.append(
                ms(
                    lambda p=pattern: conn.execute(
                        "SELECT id FROM catalog_entries WHERE data ILIKE %s LIMIT 10", (p,)
                    ).fetchall()
                )
            )
    return percentiles(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--memory-entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument(
        "--replica-seconds", type=float, default=8.0, help="0: skip the replicas' table"
    )
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if args.entries < 1000 or args.runs < 10:
        raise SystemExit("Use at least --entries 1000 and --runs 10.")
    os.environ.setdefault("MODELPORT_HOME", "/tmp/modelport-scale-bench")
    check_rows()
    from sqlalchemy import create_engine

    from modelport import db
    from modelport.catalog.catalog import Catalog
    from modelport.catalog.entry import ModelEntry
    from modelport.catalog.loader import load_bundled_entries
    from modelport.catalog.pgcatalog import PostgresCatalog
    from tests.postgres import PostgresServer, binaries

    bindir = binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL is not installed (no initdb).")
    server = PostgresServer(bindir)
    server.start()
    try:
        url = server.create_database()
        db.upgrade_schema(url)
        print(f"loading {args.entries:,} entries…", file=sys.stderr)
        loaded, indexed = load(url, args.entries)
        picks = list(sample_ids(args.entries, args.runs, seed=11))
        engine = create_engine(url, pool_size=4)
        bundled = load_bundled_entries()
        t = time.perf_counter()
        catalog = PostgresCatalog(engine, bundled)
        opened = time.perf_counter() - t
        measure(catalog, picks[:20], 20)  # warm the pool and the planner
        pg = measure(catalog, picks, args.runs)
        naive = naive_fuzzy(url, picks[: min(40, len(picks))])

        m = min(args.memory_entries, args.entries)
        rng = random.Random(7)
        t = time.perf_counter()
        memory = Catalog(
            [
                *load_bundled_entries(),
                *(ModelEntry.model_validate(raw_entry(i, rng)) for i in range(m)),
            ]
        )
        built = time.perf_counter() - t
        in_memory = measure(
            memory, [p for p in picks if int(p[0].rsplit("-v", 1)[1]) < m], args.runs
        )
        del memory
        report(args, pg, in_memory, naive, loaded, indexed, opened, built, m)
        if args.replica_seconds > 0:
            from benchmarks.scale_replicas import ROUTES, measure_replicas

            stored = picks[0][0]
            print(f"\nRegistry requests through replicas on these {args.entries:,} entries:")
            measure_replicas(
                url,
                seconds=args.replica_seconds,
                concurrency=args.concurrency,
                routes={
                    **ROUTES,
                    "registry: one stored model": f"/api/v1/registry/models/{stored}",
                    "registry: 3 filters": "/api/v1/registry/models?capability=vision"
                    "&min_context=32768&max_price=5&sort=price&limit=20",
                },
            )
    finally:
        server.stop()


def report(
    args: argparse.Namespace,
    pg: dict[str, Any],
    in_memory: dict[str, Any],
    naive: tuple[float, float],
    loaded: float,
    indexed: float,
    opened: float,
    built: float,
    m: int,
) -> None:
    """Print the catalog's table."""

    def cell(pair: tuple[float, float]) -> str:
        return f"{pair[0]:8.2f} {pair[1]:8.2f}"

    print(
        f"\nPostgreSQL catalog, {args.entries:,} entries: COPY {loaded:.1f} s, "
        f"indexes {indexed:.1f} s (load total {loaded + indexed:.1f} s); a process opens it "
        f"in {opened * 1000:.0f} ms"
    )
    print(f"In-process Catalog, {m:,} entries: built in {built:.1f} s per process\n")
    print(f"{'operation (ms)':34} {'p50':>8} {'p99':>8}   target p99")
    print("-" * 66)
    print(f"{'exact get  — PostgreSQL':34} {cell(pg['exact'])}")
    print(f"{'exact get  — in-process':34} {cell(in_memory['exact'])}")
    print(
        f"{'fuzzy get  — PostgreSQL (pg_trgm)':34} {cell(pg['fuzzy'])}   ≤ 20  "
        f"right {pg['right']:.0%}"
    )
    print(
        f"{'fuzzy get  — in-process':34} {cell(in_memory['fuzzy'])}          "
        f"right {in_memory['right']:.0%}"
    )
    print(f"{'fuzzy get  — naive ILIKE scan':34} {cell(naive)}")
    print(f"{'3-filter   — PostgreSQL':34} {cell(pg['filtered'])}   ≤ 10")
    print(f"{'3-filter   — in-process':34} {cell(in_memory['filtered'])}")


if __name__ == "__main__":
    main()
