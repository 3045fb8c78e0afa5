"""The catalog snapshot: used when current, invalidated by every change, never trusted blindly."""

from __future__ import annotations

import gc
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import modelport.api as api
from modelport.catalog import snapshot
from modelport.catalog.catalog import Catalog, CatalogQuery
from modelport.catalog.discovery import NameIndex
from modelport.catalog.loader import dump_catalog, load_bundled_entries
from modelport.errors import ConfigError, ModelNotFoundError
from modelport.settings import get_settings
from tests.catalog_server import serve_catalogs
from tests.conftest import make_entry

SRC = Path(__file__).parents[1] / "src"

#: Prints where the catalog came from (LazyEntries: the snapshot; dict: built) and one entry.
PROBE = (
    "import sys, json\n"
    "from modelport.api import get_catalog\n"
    "catalog = get_catalog()\n"
    "wanted = sys.argv[1]\n"
    "entry = catalog.get(wanted) if wanted in catalog else None\n"
    "print(json.dumps({'from': type(catalog._entries).__name__, 'count': len(catalog),\n"
    "    'description': entry.description if entry else None,\n"
    "    'sqlalchemy': 'sqlalchemy' in sys.modules}))\n"
)


def probe(model_id: str = "openai/gpt-4o", *, env: dict[str, str] | None = None) -> dict:
    """What a new process sees of the catalog."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, model_id],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout)


def other_process(code: str) -> None:
    """Run Python code in another process against the same MODELPORT_HOME."""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def outcome(catalog: Catalog, name: str) -> object:
    """What resolving a name gives: the match, or the error with its suggestions."""
    try:
        return catalog.resolve(name)
    except ModelNotFoundError as e:
        return (type(e).__name__, str(e), getattr(e, "suggestions", None))


def fresh() -> Catalog:
    """The catalog as this process would load it on start."""
    api.reset()
    return api.get_catalog()


def test_a_second_process_answers_from_the_snapshot_without_sqlalchemy() -> None:
    first = probe()
    assert first["from"] == "dict" and first["sqlalchemy"]
    assert snapshot.snapshot_path(get_settings()).is_file()
    second = probe()
    assert second == {**first, "from": "LazyEntries", "sqlalchemy": False}


def test_snapshot_catalog_answers_like_a_built_one() -> None:
    built = fresh()
    restored = fresh()
    assert isinstance(restored._entries, snapshot.LazyEntries)
    assert restored.keys() == built.keys()
    for name in ("gpt-4o", "openai/gpt-4o", "minilm", "llama 8b", "Llama-3.1-8B", "gpt4o"):
        assert restored.resolve(name) == built.resolve(name)
    with pytest.raises(ModelNotFoundError):
        restored.resolve("no-such-model-anywhere")
    q = CatalogQuery(source="api", capabilities=("vision",), sort="price", limit=7)
    assert restored.query(q) == built.query(q)
    assert [h.entry.id for h in restored.search("qwen coder")] == [
        h.entry.id for h in built.search("qwen coder")
    ]
    assert restored.stats() == built.stats()
    assert restored.values() == built.values()


def test_a_search_reads_only_the_entries_of_its_page() -> None:
    from modelport.api.listing import list_catalog

    fresh()
    built = Catalog(load_bundled_entries())
    restored = fresh()
    table = restored._entries
    assert isinstance(table, snapshot.LazyEntries)
    page = list_catalog(text="llama", limit=3, offset=2)
    read = {k for k, v in dict.items(table) if not isinstance(v, tuple)}
    assert read == {e.id for e in page.models}
    # The same page a built catalog ranks, out of the same hits.
    hits = [h.entry.id for h in built.search("llama", limit=1000)]
    assert [e.id for e in page.models] == hits[2:5] and page.total == len(hits) > 5
    assert "_sort_values" not in vars(restored)  # read only when a sort needs it
    # So does a sorted listing of the whole catalog.
    for sort in ("price", "parameters", "name", "release"):
        q = CatalogQuery(sort=sort, descending=True, limit=4, offset=1)
        assert restored.query(q) == built.query(q)
        read |= {e.id for e in restored.query(q)}
    assert {k for k, v in dict.items(table) if not isinstance(v, tuple)} == read


def test_deferred_exact_lookup_matches_the_name_index() -> None:
    built = fresh()
    restored = fresh()
    names = restored._names
    assert not isinstance(names, NameIndex)  # not read yet
    for model_id in built:
        assert names.resolve(model_id) == built._names.resolve(model_id)
    assert not isinstance(restored._names, NameIndex)  # exact ids needed no index
    assert restored.resolve("minilm") == built.resolve("minilm")
    assert isinstance(restored._names, NameIndex)
    # Names, aliases and normalized names need no fuzzy tables; a typo does.
    assert "_token_ids" not in vars(restored._names)
    assert restored.resolve("gpt-4o") == built.resolve("gpt-4o")
    assert "_token_ids" not in vars(restored._names)
    for typo in ("minlm", "all minilm l6", "qwen coder", "lama 3.1 8b"):
        assert outcome(restored, typo) == outcome(built, typo)
    assert "_token_ids" in vars(restored._names)


def test_a_partly_read_name_index_takes_new_entries() -> None:
    fresh()
    catalog = fresh()
    catalog.resolve("gpt-4o")  # the name index is read, its fuzzy tables are not
    assert "_fuzzy_keys" not in vars(catalog._names)
    catalog.register(make_entry("acme/zebrafish-detector-9000"))
    catalog.remove("openai/gpt-4o")
    built = Catalog(load_bundled_entries())
    built.register(make_entry("acme/zebrafish-detector-9000"))
    built.remove("openai/gpt-4o")
    assert outcome(catalog, "zebrafish detectr 9000") == outcome(built, "zebrafish detectr 9000")
    assert "acme/zebrafish-detector-9000" in {h.entry.id for h in catalog.search("zebrafish")}
    assert "openai/gpt-4o" not in {h.entry.id for h in catalog.search("gpt 4o", limit=50)}
    assert [h.entry.id for h in catalog.search("llama 8b")] == [
        h.entry.id for h in built.search("llama 8b")
    ]


def test_entries_round_trip_equal() -> None:
    entries = {e.id: e for e in load_bundled_entries()}
    fresh()
    restored = fresh()
    assert dict(restored._entries) == entries
    assert {**restored._entries} == entries
    assert restored._entries.copy() == entries
    assert fresh()._entries == entries
    assert fresh()._entries | {} == entries and {} | fresh()._entries == entries


def test_lazy_entries_never_hand_out_bytes() -> None:
    fresh()
    restored = fresh()
    table = restored._entries
    assert isinstance(table, snapshot.LazyEntries)
    first = next(iter(table))
    assert table.get("missing", 1) == 1
    assert table.get(first) is table[first]
    assert table.pop(first).id == first and first not in table
    assert all(not isinstance(v, bytes) for v in table.values())
    assert all(not isinstance(v, bytes) for _k, v in table.items())


def test_user_entry_added_and_removed_by_another_process_is_seen(tmp_path: Path) -> None:
    fresh()
    assert isinstance(fresh()._entries, snapshot.LazyEntries)
    doc = tmp_path / "mine.json"
    doc.write_text(dump_catalog([make_entry("acme/other-process", description="added")]))
    other_process(f"import modelport.api as a; a.import_catalog({str(doc)!r})")
    catalog = fresh()
    assert catalog.get("acme/other-process").description == "added"
    assert probe("acme/other-process")["description"] == "added"
    other_process("import modelport.api as a; a.remove_entry('acme/other-process')")
    assert "acme/other-process" not in fresh()
    assert probe("acme/other-process")["description"] is None


def test_a_replaced_bundled_entry_and_its_return_are_seen() -> None:
    fresh()
    other_process(
        "import modelport.api as a\n"
        "e = a.show_model('openai/gpt-4o').model_copy(update={'description': 'mine'})\n"
        "a.add_entries([e], replace=True)\n"
    )
    assert fresh()["openai/gpt-4o"].description == "mine"
    other_process("import modelport.api as a; a.remove_entry('openai/gpt-4o')")
    assert fresh()["openai/gpt-4o"].description != "mine"


def test_a_write_in_plain_sql_invalidates_the_snapshot() -> None:
    fresh()
    entry = make_entry("acme/raw-sql", description="raw")
    db = get_settings().database_path
    assert db is not None
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO catalog_entries (id, origin, data, updated_at) VALUES (?, ?, ?, ?)",
            (entry.id, "user", json.dumps(entry.to_json_dict()), "2026-01-01 00:00:00"),
        )
    assert fresh()["acme/raw-sql"].description == "raw"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE catalog_entries SET data = ? WHERE id = ?",
            (
                json.dumps(make_entry("acme/raw-sql", description="changed").to_json_dict()),
                entry.id,
            ),
        )
    assert fresh()["acme/raw-sql"].description == "changed"


def test_remote_catalog_update_in_another_process_is_seen() -> None:
    docs = [dump_catalog([make_entry(f"remote/m-{i}") for i in range(n)]) for n in (3, 4)]
    with serve_catalogs() as server:
        server.routes["/c.json"] = (200, docs[0].encode())
        api.add_remote_catalog("team", f"{server.url}/c.json")
        api.update_catalogs()
        assert "remote/m-2" in fresh()
        assert isinstance(fresh()._entries, snapshot.LazyEntries)
        server.routes["/c.json"] = (200, docs[1].encode())
        other_process("import modelport.api as a; a.update_catalogs()")
    assert "remote/m-3" in fresh()
    other_process("import modelport.api as a; a.remove_remote_catalog('team')")
    assert "remote/m-0" not in fresh()


def test_usage_is_read_fresh_and_recorded_from_a_snapshot_catalog() -> None:
    fresh()
    catalog = fresh()
    assert isinstance(catalog._entries, snapshot.LazyEntries)
    catalog.record_usage("openai/gpt-4o", 3)
    assert fresh().usage("openai/gpt-4o") == 3
    other_process("import modelport.api as a; a.get_catalog().record_usage('openai/gpt-4o')")
    assert fresh().usage("openai/gpt-4o") == 4


def test_a_change_in_the_bundled_data_invalidates_the_snapshot(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        SRC / "modelport", src / "modelport", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {**os.environ, "PYTHONPATH": str(src)}
    assert probe(env=env)["from"] == "dict"
    assert probe(env=env)["from"] == "LazyEntries"
    data_file = src / "modelport" / "catalog" / "data" / "openai.json"
    doc = json.loads(data_file.read_text())
    for item in doc["entries"]:
        if item["id"] == "openai/gpt-4o":
            item["description"] = "edited in the bundled file"
    data_file.write_text(json.dumps(doc))
    seen = probe(env=env)
    assert (seen["from"], seen["description"]) == ("dict", "edited in the bundled file")
    assert probe(env=env)["description"] == "edited in the bundled file"


def test_the_key_follows_code_settings_and_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh()
    key = snapshot.catalog_key(get_settings())
    assert key is not None and key == snapshot.catalog_key(get_settings())
    monkeypatch.setenv("MODELPORT_BUNDLED_CATALOG", "false")
    api.reset()
    assert snapshot.catalog_key(get_settings()) not in (None, key)
    assert len(api.get_catalog()) == 0
    monkeypatch.delenv("MODELPORT_BUNDLED_CATALOG")
    other = tmp_path / "other.db"
    monkeypatch.setenv("MODELPORT_DATABASE_URL", f"sqlite:///{other}")
    api.reset()
    assert snapshot.catalog_key(get_settings()) is None  # that database does not exist yet
    api.add_entries([make_entry("acme/only-in-other")])
    assert snapshot.catalog_key(get_settings()) not in (None, key)
    assert "acme/only-in-other" in fresh()
    monkeypatch.delenv("MODELPORT_DATABASE_URL")
    assert "acme/only-in-other" not in fresh()
    monkeypatch.setenv("MODELPORT_CATALOG_SNAPSHOT", "off")
    api.reset()
    assert snapshot.catalog_key(get_settings()) is None
    assert isinstance(api.get_catalog()._entries, dict)
    assert not isinstance(api.get_catalog()._entries, snapshot.LazyEntries)


@pytest.mark.parametrize(
    "damage",
    [
        "garbage",
        "empty",
        "truncated",
        "format",
        "spots-byte",
        "entries-byte",
        "names-byte",
        "fuzzy-byte",
        "index-byte",
        "sorts-byte",
    ],
)
def test_a_damaged_snapshot_is_never_used(damage: str) -> None:
    built = fresh()
    path = snapshot.snapshot_path(get_settings())
    data = bytearray(path.read_bytes())
    start = len(snapshot.MAGIC) + 4 + int.from_bytes(data[8:12], "big")
    header = json.loads(data[12:start])

    def flip(section: str) -> None:
        spec = header["sections"][section]
        data[start + spec["offset"] + spec["length"] // 2] ^= 0xFF

    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "empty":
        data = bytearray()
    elif damage == "truncated":
        data = data[: len(data) - 100]
    elif damage == "format":
        text = data[12:start].replace(b'"format": 1', b'"format": 99')
        data = data[:12] + text + data[start:]
    else:
        flip(damage.split("-")[0])
    path.write_bytes(bytes(data))

    catalog = fresh()
    assert catalog.keys() == built.keys()
    assert catalog.resolve("minilm") == built.resolve("minilm")
    assert catalog.query(CatalogQuery(source="api", limit=5)) == built.query(
        CatalogQuery(source="api", limit=5)
    )
    assert [h.entry.id for h in catalog.search("llama")] == [
        h.entry.id for h in built.search("llama")
    ]
    by_price = CatalogQuery(sort="price", descending=True, limit=5)
    assert catalog.query(by_price) == built.query(by_price)
    assert list(catalog.values()) == list(built.values())
    # The damaged file is gone or replaced by a good one; the next process uses that.
    fresh()
    assert isinstance(fresh()._entries, snapshot.LazyEntries)


def test_other_databases_bypass_the_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh()
    assert snapshot.snapshot_path(get_settings()).is_file()
    monkeypatch.setenv("MODELPORT_DATABASE_URL", "sqlite://")
    catalog = fresh()
    assert snapshot.catalog_key(get_settings()) is None
    assert not isinstance(catalog._entries, snapshot.LazyEntries)
    api.add_entries([make_entry("acme/in-memory")])
    assert "acme/in-memory" in api.get_catalog()
    # A PostgreSQL URL is never answered from the SQLite snapshot in the same home.
    monkeypatch.setenv("MODELPORT_DATABASE_URL", "postgresql+psycopg://u:p@127.0.0.1:9/mp")
    api.reset()
    assert snapshot.catalog_key(get_settings()) is None
    with pytest.raises(ConfigError):
        api.get_catalog()


def test_a_killed_writer_leaves_no_lasting_litter() -> None:
    fresh()
    home = snapshot.snapshot_path(get_settings()).parent
    old, recent = home / ".catalog.snapshot.old.tmp", home / ".catalog.snapshot.new.tmp"
    old.write_bytes(b"half")
    recent.write_bytes(b"half")
    os.utime(old, (0, 0))
    api.add_entries([make_entry("acme/after-a-crash")])
    assert "acme/after-a-crash" in fresh()  # rebuilt: writes a new snapshot
    assert not old.exists() and recent.exists()  # a recent one may be another's, mid-write


def test_an_unwritable_home_costs_speed_not_correctness(tmp_path: Path) -> None:
    fresh()
    path = snapshot.snapshot_path(get_settings())
    path.unlink()
    path.mkdir()  # os.replace onto a folder fails: the snapshot cannot be written
    assert not snapshot.write_snapshot(get_settings(), "k", fresh())
    catalog = fresh()
    assert "openai/gpt-4o" in catalog and not isinstance(catalog._entries, snapshot.LazyEntries)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_bulk_registration_pauses_and_restores_the_collector() -> None:
    entries = [make_entry(f"acme/m-{i}") for i in range(1500)]
    catalog = Catalog()
    assert gc.isenabled()
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    threshold = gc.get_threshold()
    gc.set_threshold(50, 1, 1)  # a collection every 50 allocations, were it running
    gc.callbacks.append(count)
    try:
        catalog.register_bulk(entries)
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*threshold)
    # Indexing 1,500 entries this way runs some 250 collections; paused, only the ones
    # before the pause (checking the batch) remain.
    assert len(collections) <= 5, len(collections)
    assert gc.isenabled() and len(catalog) == 1500
    gc.disable()
    try:
        Catalog(entries)
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_import_modelport_stays_light() -> None:
    code = (
        "import sys, modelport\n"
        "print([m for m in ('sqlalchemy', 'pydantic', 'typer') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args", [["show", "gpt-4o"], ["models", "-n", "5"], ["search", "llama", "--hub", "catalog"]]
)
def test_catalog_commands_skip_sqlalchemy_once_the_snapshot_exists(args: list[str]) -> None:
    code = (
        "import sys\nfrom modelport.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('SQLALCHEMY', 'sqlalchemy' in sys.modules)\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert "SQLALCHEMY True" in runs[0].stdout  # the first builds the catalog
    assert "SQLALCHEMY False" in runs[1].stdout
    assert runs[0].stdout.replace("True", "False") == runs[1].stdout


def test_a_damaged_entry_is_rebuilt_where_it_is_read() -> None:
    built = fresh()
    path = snapshot.snapshot_path(get_settings())
    data = bytearray(path.read_bytes())
    start = len(snapshot.MAGIC) + 4 + int.from_bytes(data[8:12], "big")
    sections = json.loads(data[12:start])["sections"]
    spots_at = start + sections["spots"]["offset"]
    spots = pickle.loads(data[spots_at : spots_at + sections["spots"]["length"]])
    begin, end, _crc = spots["openai/gpt-4o"]
    at = start + sections["entries"]["offset"] + (begin + end) // 2
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    catalog = fresh()
    assert isinstance(catalog._entries, snapshot.LazyEntries)
    assert catalog["openai/gpt-4o"] == built["openai/gpt-4o"]
    assert not isinstance(catalog._entries, snapshot.LazyEntries)  # rebuilt in place
    assert catalog.resolve("minilm") == built.resolve("minilm")
    assert not path.exists()
    fresh()
    assert isinstance(fresh()._entries, snapshot.LazyEntries)


def test_bulk_save_replaces_in_batches_and_the_last_of_equal_ids_wins() -> None:
    from modelport.api.catalog import _repository

    repo = _repository()
    first = [make_entry(f"acme/bulk-{i}", description="first") for i in range(1200)]
    repo.save(first, origin="user")
    again = [make_entry(f"acme/bulk-{i}", description="again") for i in range(0, 1200, 2)]
    repo.save([*again, make_entry("acme/bulk-0", description="last")], origin="user")
    stored = {e.id: e.description for _o, e in repo.entries(origin="user")}
    assert len(stored) == 1200
    assert stored["acme/bulk-0"] == "last"
    assert stored["acme/bulk-2"] == "again" and stored["acme/bulk-1"] == "first"
    assert repo.replace_origin("remote:x", [make_entry("acme/bulk-5"), make_entry("r/1")]) == [
        "acme/bulk-5"
    ]
    assert [e.id for _o, e in repo.entries(origin="remote:x")] == ["r/1"]


@pytest.mark.parametrize("damaged", [False, True])
def test_threads_reading_a_fresh_snapshot_agree(damaged: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    built = fresh()
    expected = (built.resolve("minilm"), built.query(CatalogQuery(source="api", limit=3)))
    if damaged:
        path = snapshot.snapshot_path(get_settings())
        data = bytearray(path.read_bytes())
        data[-10] ^= 0xFF  # inside the last section, the filter indexes
        path.write_bytes(bytes(data))
    catalog = fresh()

    def work(i: int) -> tuple[object, ...]:
        if i % 3 == 0:
            catalog.values()
        got = (catalog.resolve("minilm"), catalog.query(CatalogQuery(source="api", limit=3)))
        catalog.stats()
        return got

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(32)))
    assert all(r == expected for r in results)
    assert catalog.keys() == built.keys()


def test_uses_journaled_while_no_catalog_was_loaded_count_with_a_snapshot() -> None:
    fresh()
    fresh()
    api.reset()
    from modelport.api.catalog import record_use

    record_use("hf", "openai/gpt-4o")  # no catalog loaded: journaled
    catalog = api.get_catalog()
    assert isinstance(catalog._entries, snapshot.LazyEntries)
    assert catalog.usage("openai/gpt-4o") == 1
    assert fresh().usage("openai/gpt-4o") == 1  # folded once, into the database


def test_an_index_that_cannot_be_pickled_means_no_snapshot_not_an_error() -> None:
    catalog = Catalog(load_bundled_entries())
    catalog._names.__dict__["_cache"] = lambda: None  # e.g. a future cache of callables
    assert not snapshot.write_snapshot(get_settings(), "k", catalog)
    assert not snapshot.snapshot_path(get_settings()).exists()
