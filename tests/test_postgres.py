"""The use-cases on a real PostgreSQL server (``MODELPORT_DATABASE_URL=postgresql+psycopg://…``):
the user's and remote catalogs, the store index, usage counts, trust and the call log, as
one server and as several sharing the database at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import modelport.api as api
from modelport import db
from modelport.catalog.loader import dump_catalog
from modelport.settings import get_settings
from modelport.store.store import Manifest, ManifestFile, Store
from tests.catalog_server import serve_catalogs
from tests.conftest import make_entry
from tests.hf_server import HubServer, serve_hub
from tests.test_call_log import call
from tests.test_pull import tiny_files

pytestmark = pytest.mark.usefixtures("postgres_url")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from modelport.cli import main

    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def other_server(*args: str) -> subprocess.CompletedProcess[str]:
    """``modelport ARGS`` in a process of its own, on the same database."""
    return subprocess.run(
        [sys.executable, "-m", "modelport", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )


def rows(sql: str, **params: Any) -> list[Any]:
    """What the database itself holds."""
    with db.get_engine(get_settings().database_url).connect() as conn:
        return list(conn.execute(text(sql), params).all())


def together(n: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in n threads released at once; raise the first error."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(30)
            work(i)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


# ---------------------------------------------------------------------------- catalog


def test_the_users_catalog_entries_live_in_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], _isolated_home: Path
) -> None:
    assert get_settings().database_url.startswith("postgresql+psycopg://")
    path = tmp_path / "mine.json"
    path.write_text(dump_catalog([make_entry("acme/pg-model", description="first")]))
    code, out, err = run(capsys, "catalog", "import", str(path))
    assert code == 0, err
    assert "Imported 1 new and 0 replaced" in out
    code, out, _ = run(capsys, "show", "acme/pg-model", "--json")
    assert json.loads(out)["description"] == "first"
    assert rows("SELECT id, origin FROM catalog_entries") == [("acme/pg-model", "user")]

    # Another server on the same database sees it, and its change reaches this one.
    seen = other_server("show", "acme/pg-model", "--json")
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout)["description"] == "first"
    path.write_text(dump_catalog([make_entry("acme/pg-model", description="second")]))
    done = other_server("catalog", "import", str(path), "--replace")
    assert done.returncode == 0, done.stderr
    api.reset()
    assert api.show_model("acme/pg-model").description == "second"
    code, out, _ = run(capsys, "models", "--provider", "acme", "-q")
    assert out.split() == ["acme/pg-model"]

    code, out, _ = run(capsys, "catalog", "remove", "acme/pg-model")
    assert code == 0
    assert rows("SELECT id FROM catalog_entries") == []
    # No snapshot file: a PostgreSQL catalog is read from the database every time.
    assert not (_isolated_home / "catalog.snapshot").exists()


def test_remote_catalogs_refresh_into_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    docs = [dump_catalog([make_entry(f"remote/m-{i}") for i in range(n)]) for n in (3, 4)]
    with serve_catalogs() as server:
        server.routes["/c.json"] = (200, docs[0].encode())
        code, _, err = run(capsys, "catalog", "remote", "add", "team", f"{server.url}/c.json")
        assert code == 0, err
        code, out, err = run(capsys, "catalog", "update")
        assert code == 0, err
        assert "team: 0 → 3 entries" in out
        [source] = json.loads(run(capsys, "catalog", "remote", "ls", "--json")[1])
        assert (source["entry_count"], source["etag"] is not None) == (3, True)
        assert source["refreshed_at"] is not None
        server.routes["/c.json"] = (200, docs[1].encode())
        done = other_server("catalog", "update", "team")
        assert done.returncode == 0, done.stderr
    api.reset()
    assert "remote/m-3" in api.get_catalog()
    assert len(rows("SELECT id FROM catalog_entries WHERE origin = 'remote:team'")) == 4
    # Added again: re-pointed, never refreshed from the new address.
    api.add_remote_catalog("team", "http://127.0.0.1:9/other.json")
    [source] = api.remote_catalogs()
    assert (source.url, source.entry_count, source.refreshed_at) == (
        "http://127.0.0.1:9/other.json",
        0,
        None,
    )
    api.remove_remote_catalog("team")
    assert rows("SELECT id FROM catalog_entries") == []


def test_first_uses_counted_by_many_threads_at_once_add_up() -> None:
    catalog = api.get_catalog()
    models = sorted(catalog.keys())[:20]
    barrier = threading.Barrier(6)

    def use_each(_i: int) -> None:
        for model in models:  # six threads use each model for the first time together
            barrier.wait(30)
            catalog.record_usage(model)

    # Each use is one upsert: two first uses of a model never collide.
    together(6, use_each)
    api.reset()
    assert {m: api.get_catalog().usage(m) for m in models} == dict.fromkeys(models, 6)
    assert rows("SELECT sum(count) FROM model_usage") == [(6 * len(models),)]


def test_trust_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # trusting again only renews the date
        code, out, _ = run(capsys, "trust", "acme/hubconf-repo")
        assert code == 0
    code, out, _ = run(capsys, "trust", "--list", "--json")
    assert [s["repo"] for s in json.loads(out)] == ["acme/hubconf-repo"]
    code, out, _ = run(capsys, "trust", "acme/hubconf-repo", "--remove")
    assert "no longer trusted" in out
    assert rows("SELECT name FROM trusted_sources") == []


# ---------------------------------------------------------------------------- store


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        server.add_repo(
            "acme/tiny",
            tiny_files(),
            pipeline_tag="feature-extraction",
            library_name="transformers",
        )
        api.reset()
        yield server


def test_a_pulled_model_is_indexed_in_postgresql(
    hub: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "pull", "hf:acme/tiny", "-q")
    assert code == 0, err
    code, out, _ = run(capsys, "pull", "hf:acme/tiny")
    assert "already in the store" in out
    code, out, _ = run(capsys, "ls", "--json")
    [row] = json.loads(out)
    assert (row["name"], row["task"]) == ("acme/tiny", "feature-extraction")
    code, out, _ = run(capsys, "inspect", "hf:acme/tiny", "--json")
    files = {f["path"]: f["size"] for f in json.loads(out)["files"]}
    assert files["model.safetensors"] == 200_000
    indexed = rows("SELECT path, size FROM store_files ORDER BY path")
    assert dict(indexed) == files
    assert rows("SELECT key, size FROM store_models") == [
        (f"hf/acme/tiny@{row['revision']}", sum(files.values()))
    ]
    code, out, _ = run(capsys, "cache", "stats", "--json")
    stats = json.loads(out)
    assert (stats["models"], stats["pull_hits"], stats["pull_misses"]) == (1, 1, 1)
    code, out, err = run(capsys, "cache", "verify")
    assert code == 0, err
    code, out, _ = run(capsys, "rm", "hf:acme/tiny")
    assert code == 0
    assert rows("SELECT key FROM store_models") == rows("SELECT path FROM store_files") == []


def _sparse_blob(store: Store, size: int) -> ManifestFile:
    """A blob of ``size`` bytes that takes no disk space, under a made-up digest."""
    sha = hashlib.sha256(f"sparse-{size}".encode()).hexdigest()
    blob = store.layout.blob(sha)
    blob.parent.mkdir(parents=True, exist_ok=True)
    with blob.open("wb") as f:
        f.truncate(size)
    return ManifestFile("model.safetensors", sha, size, "sha256", sha)


def test_the_store_index_takes_models_past_2_gib() -> None:
    store = api.get_store()
    big = 3 * 2**30  # past what a 32-bit INTEGER holds
    manifest = Manifest(
        registry="hf",
        name="acme/huge",
        revision="0" * 40,
        ref="hf:acme/huge@main",
        files=(_sparse_blob(store, big),),
        pulled_at=dt.datetime.now(dt.UTC).isoformat(),
        task="text-generation",
    )
    store.commit(manifest)
    [model] = api.list_models()
    assert (model.name, model.size) == ("acme/huge", big)
    assert rows("SELECT size FROM store_files") == [(big,)]
    assert api.store_stats().logical_size == big


def test_replicas_indexing_the_same_model_at_once_all_succeed(tmp_path: Path) -> None:
    """Servers with disks of their own on one database: the index writes never collide."""
    engine = db.get_engine(get_settings().database_url)
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(4096))
    replicas = [Store(tmp_path / f"replica-{i}", engine) for i in range(6)]

    def pull(i: int) -> None:
        store = replicas[i]
        added = store.add_file(source)
        store.commit(
            Manifest(
                registry="hf",
                name="acme/shared",
                revision="1" * 40,
                ref="hf:acme/shared@main",
                files=(added,),
                pulled_at=dt.datetime.now(dt.UTC).isoformat(),
            )
        )
        store.count("pull.miss")
        store.remember_ref("hf", "acme/shared", "main", "1" * 40)

    together(len(replicas), pull)
    assert rows("SELECT key, file_count FROM store_models") == [(f"hf/acme/shared@{'1' * 40}", 1)]
    assert rows("SELECT value FROM store_counters WHERE name = 'pull.miss'") == [(6,)]
    assert replicas[0].resolve_ref("hf", "acme/shared", "main") == "1" * 40


# ---------------------------------------------------------------------------- call log


def test_the_call_log_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    late = dt.datetime(2026, 1, 1, 23, 30, tzinfo=dt.UTC)  # already Jan 2 at the server
    long_ref = "hf:acme/" + "x" * 440  # longer than the first schema's 400 characters
    api.record_call(call("openai/gpt-4o", started=late, cost=0.25))
    api.record_call(call(long_ref, provider="local", access="local", cost=0.0))
    api.record_call(call("acme/priceless", provider="acme", cost=None, status="rate_limited"))
    api.flush_usage()
    by_day = api.usage_report(since="all", by="day")
    days = {r.key: r.calls for r in by_day.rows}
    # The UTC day, whatever the server's own time zone.
    assert days == {"2026-01-01": 1, dt.datetime.now(dt.UTC).date().isoformat(): 2}
    assert by_day.total.calls == 3
    assert by_day.total.unknown_cost_calls == 1
    assert by_day.total.cost_usd == pytest.approx(0.25)
    by_model = {r.key for r in api.usage_report(since="all", by="model").rows}
    assert long_ref in by_model
    calls = api.usage_report(since="all", by=None).calls
    assert [c.started_at for c in calls][-1] == late
    assert all(c.started_at.tzinfo is not None for c in calls)
    assert api.spent_today() == pytest.approx(0.0)
    code, out, _ = run(capsys, "usage", "--since", "all", "--by", "provider", "--json")
    assert code == 0
    assert {r["key"]: r["calls"] for r in json.loads(out)["rows"]} == {
        "openai": 1,
        "local": 1,
        "acme": 1,
    }
    ids = [r[0] for r in rows("SELECT id FROM call_log ORDER BY id")]
    assert len(ids) == 3 and ids == sorted(set(ids))
