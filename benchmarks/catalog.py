"""Catalog benchmark: a 100k-entry catalog, and whole-process catalog commands.

    python benchmarks/catalog.py [--entries 100000] [--user-entries 50000] [--runs 7]
    python benchmarks/catalog.py --commands-only     # just the second table

The first table: load, index, exact get, fuzzy get, filtered queries (median of many
runs), then `modelport --help` and `hf --help` wall times (median of 10 processes).

The second: the wall time (median of --runs processes, after one warm-up that also
builds the snapshot) and peak RSS of `--help`, `show gpt-4o`, `models -n 5` and
`search llama --hub catalog`, with the bundled catalog and with --user-entries
entries imported into the database, each with the catalog snapshot and without it
(``MODELPORT_CATALOG_SNAPSHOT=0``: the previous code path, which validates and indexes
every entry in every process). Each home is a fresh temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelport.catalog.catalog import Catalog, CatalogQuery
from modelport.catalog.entry import ModelEntry
from modelport.catalog.loader import load_bundled_entries
from modelport.errors import AmbiguousModelError, ModelNotFoundError

WORDS = [
    "llama",
    "qwen",
    "mistral",
    "gemma",
    "phi",
    "bert",
    "vit",
    "whisper",
    "deepseek",
    "coder",
    "vision",
    "embed",
    "instruct",
    "chat",
    "base",
    "mini",
    "large",
    "nano",
]


def synthetic_json(i: int, rng: random.Random, words: Sequence[str] = WORDS) -> dict[str, Any]:
    """The JSON of synthetic entry ``i``: a valid entry with a varied provider, task, price
    and context, its name three of ``words``."""
    api = rng.random() < 0.4
    picked = rng.sample(list(words), 3)
    size = rng.choice([1, 3, 7, 8, 13, 32, 70])
    data: dict[str, Any] = {
        "id": f"org{i % 997}/{'-'.join(picked)}-{size}b-v{i}",
        "name": f"{' '.join(picked).title()} {size}B v{i}",
        "provider": f"org{i % 997}",
        "source": "api" if api else "self-hosted",
        "category": rng.choice(["text-llm", "vision-vlm", "embedding"]),
        "tasks": [rng.choice(["text-generation", "feature-extraction", "image-text-to-text"])],
        "context_window": rng.choice([2048, 8192, 32768, 131072, 1_000_000]),
        "parameters": size * 10**9,
        "capabilities": {
            "chat": rng.random() < 0.7,
            "vision": rng.random() < 0.3,
            "tool_calling": rng.random() < 0.5,
        },
    }
    if api:
        data["pricing"] = {
            "input_per_1m_tokens": round(rng.uniform(0.05, 20), 2),
            "output_per_1m_tokens": round(rng.uniform(0.1, 60), 2),
        }
    else:
        data["requirements"] = {"min_vram_gb": size * 2.4}
    return data


def synthetic(n: int, seed: int = 7) -> list[ModelEntry]:
    """n distinct, valid entries with varied providers, tasks, prices and contexts."""
    rng = random.Random(seed)
    return [ModelEntry.model_validate(synthetic_json(i, rng)) for i in range(n)]


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def process_ms(cmd: list[str], runs: int = 10) -> float | None:
    """Median wall time of a command, after one warm-up run.

    Bytecode caching stays on (``PYTHONDONTWRITEBYTECODE`` unset), as on a user's machine,
    so that neither side pays for compiling its sources on every start.
    """
    if shutil.which(cmd[0]) is None and cmd[0] != sys.executable:
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, capture_output=True, check=False, env=env)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False, env=env)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


COMMANDS: list[tuple[str, list[str]]] = [
    ("--help", ["--help"]),
    ("show gpt-4o", ["show", "gpt-4o"]),
    ("models -n 5", ["models", "-n", "5"]),
    # The catalog only: `--hub all` would also ask every hub over the network.
    ("search llama --hub catalog", ["search", "llama", "--hub", "catalog"]),
]


#: Runs a command and reports its wall time, CPU time and peak RSS. A small process in
#: between, because a child forked straight from this one (which holds 100k entries)
#: would report this process's peak RSS as its own.
MEASURE = """
import json, os, subprocess, sys, time
t = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read().decode()
_pid, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"wall": time.perf_counter() - t, "cpu": usage.ru_utime + usage.ru_stime,
    "rss_kib": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status), "err": err[-2000:]}))
"""


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one process.

    CPU time is the figure to trust on a busy machine: waiting for a core adds wall time
    but not CPU time. The command must succeed.
    """
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], env=env, capture_output=True, text=True, check=True
    )
    got = json.loads(done.stdout)
    if got["code"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({got['code']}): {got['err'].strip()}")
    return got["wall"], got["cpu"], got["rss_kib"] / 1024  # Linux reports KiB


def command_table(user_entries: int, runs: int) -> None:
    """Whole-process catalog commands, with and without the snapshot, at two sizes."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base.pop("MODELPORT_DATABASE_URL", None)
    modelport = [sys.executable, "-m", "modelport"]
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="modelport-bench-") as tmp:
        user_label = f"{user_entries:,} user"
        homes = {"bundled": Path(tmp) / "bundled", user_label: Path(tmp) / "user"}
        catalog_file = Path(tmp) / "entries.json"
        from modelport.catalog.loader import dump_catalog

        catalog_file.write_text(dump_catalog(synthetic(user_entries)))
        wall, _cpu, _rss = run_measured(
            [*modelport, "catalog", "import", str(catalog_file)],
            {**base, "MODELPORT_HOME": str(homes[user_label])},
        )
        print(f"\n(`catalog import` of {user_entries:,} entries: {wall:.1f} s)")
        for label, args in COMMANDS:
            for size, home in homes.items():
                for snapshot in ("1", "0"):
                    env = {
                        **base,
                        "MODELPORT_HOME": str(home),
                        "MODELPORT_CATALOG_SNAPSHOT": snapshot,
                    }
                    first = run_measured([*modelport, *args], env)  # builds the snapshot
                    samples = [run_measured([*modelport, *args], env) for _ in range(runs)]
                    rows.append(
                        [
                            label,
                            size,
                            "on" if snapshot == "1" else "off (before)",
                            f"{statistics.median(s[0] for s in samples) * 1000:.0f}",
                            f"{min(s[0] for s in samples) * 1000:.0f}",
                            f"{statistics.median(s[1] for s in samples) * 1000:.0f}",
                            f"{max(s[2] for s in samples):.0f}",
                            f"{first[0] * 1000:.0f}",
                        ]
                    )
    header = [
        "command",
        "catalog",
        "snapshot",
        "wall ms",
        "min ms",
        "CPU ms",
        "peak RSS MiB",
        "first run ms",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(
        f"\nwhole process: median of {runs} runs after one first run "
        "(which builds and writes the snapshot)"
    )
    print(
        "  ".join(
            h.ljust(w) if i < 3 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    )
    print("-" * (sum(widths) + 2 * len(widths)))
    for row in rows:
        print(
            "  ".join(
                v.ljust(w) if i < 3 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print("targets: show and models ≤ 150 ms bundled, ≤ 300 ms with 50k user entries")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--user-entries", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--commands-only", action="store_true")
    args = parser.parse_args()
    if args.commands_only:
        command_table(args.user_entries, args.runs)
        return
    rows: list[tuple[str, str, str]] = []

    t = time.perf_counter()
    bundled = load_bundled_entries()
    rows.append(
        (
            "load bundled catalog (validate JSON)",
            f"{(time.perf_counter() - t) * 1000:.0f} ms",
            f"{len(bundled)} entries",
        )
    )
    entries = synthetic(args.entries)
    t = time.perf_counter()
    catalog = Catalog(entries)
    rows.append(
        (f"index {args.entries:,} entries", f"{(time.perf_counter() - t) * 1000:.0f} ms", "-")
    )

    rng = random.Random(1)
    ids = [e.id for e in rng.sample(entries, 200)]
    it = iter(ids * 10)
    rows.append(
        ("exact get", f"{median_ms(lambda: catalog.get(next(it)), 1000) * 1000:.1f} µs", "target -")
    )
    # Realistic fuzzy lookups: a model's display name, lowercased, one word with a typo,
    # so that every lookup goes past the exact, alias and normalized steps.
    queries = []
    for entry in rng.sample(entries, 50):
        words = entry.name.lower().split()
        i = rng.randrange(3)
        words[i] = words[i][:2] + words[i][3:]
        queries.append(" ".join(words))
    for label, batch in (
        ("fuzzy get, typo'd full name", queries),
        ("fuzzy get, typo'd name without version", [q.rsplit(" ", 1)[0] for q in queries]),
    ):
        qit = iter(batch * 10)
        outcomes = {"found": 0, "ambiguous": 0, "not found": 0}

        def fuzzy(qit=qit, outcomes=outcomes) -> None:  # type: ignore[no-untyped-def]
            try:
                catalog.resolve(next(qit))
                outcomes["found"] += 1
            except AmbiguousModelError:
                outcomes["ambiguous"] += 1
            except ModelNotFoundError:
                outcomes["not found"] += 1

        fuzzy_ms = median_ms(fuzzy, 50)
        rows.append(
            (
                label,
                f"{fuzzy_ms:.1f} ms",
                "target ≤ 20 ms; " + ", ".join(f"{v} {k}" for k, v in outcomes.items()),
            )
        )
    q = CatalogQuery(source="api", capabilities=("vision",), min_context=100_000, limit=50)
    found = catalog.count_matching(q)
    rows.append(
        (
            "3-filter query (api, vision, ctx≥100k), top 50",
            f"{median_ms(lambda: catalog.query(q), 50):.2f} ms",
            f"target ≤ 5 ms; {found:,} match",
        )
    )
    q2 = CatalogQuery(provider="org5", task="text-generation", max_price=5.0)
    rows.append(
        (
            "3-filter query (provider, task, price≤5)",
            f"{median_ms(lambda: catalog.query(q2), 50):.2f} ms",
            f"{catalog.count_matching(q2):,} match",
        )
    )
    rows.append(
        (
            "search('qwen coder') top 20",
            f"{median_ms(lambda: catalog.search('qwen coder'), 20):.1f} ms",
            "-",
        )
    )
    mp = process_ms([sys.executable, "-m", "modelport", "--help"])
    mp_script = process_ms(["modelport", "--help"])
    hf = process_ms(["hf", "--help"])
    rows.append(("`python -m modelport --help` (median of 10)", f"{mp:.0f} ms", "target ≤ 150 ms"))
    if mp_script is not None:
        rows.append(("`modelport --help` (median of 10)", f"{mp_script:.0f} ms", "target ≤ 150 ms"))
    rows.append(("`hf --help` (median of 10)", f"{hf:.0f} ms" if hf else "hf not installed", "-"))

    width = max(len(r[0]) for r in rows)
    print(f"{'operation'.ljust(width)}  {'time':>12}  note")
    print("-" * (width + 40))
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>12}  {note}")
    command_table(args.user_entries, args.runs)


if __name__ == "__main__":
    main()
