"""The schema's migrations, on SQLite and on a real PostgreSQL server alike: an empty
database and one made before migrations reach the newest revision with their rows kept,
processes starting together upgrade once under a lock, a database newer than the code is
one sentence, and ``modelport db`` says and does all of it."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    text,
)

import modelport.api as api
from modelport import db, migrations
from modelport.cli import main
from modelport.errors import ConfigError
from modelport.settings import get_settings
from tests.conftest import make_entry

SRC = Path(migrations.__file__).parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    """The URL of this test's empty database: the default SQLite file, or PostgreSQL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return get_settings().database_url


def _plain_engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def raw(database: str) -> Iterator[Engine]:
    """An engine of the test's database that runs no migration (what another tool sees)."""
    if database.startswith("sqlite:///"):
        Path(database.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    yield from _plain_engine(database)


def _revision(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]


# ------------------------------------------------------------- the first schema, frozen

_UTC = DateTime(timezone=True)


def first_schema(*, without: tuple[str, ...] = ()) -> MetaData:
    """The tables exactly as modelport made them with ``metadata.create_all`` before it had
    migrations (``db.py`` at commit a38d508); ``without`` leaves out tables that older
    releases did not have yet."""
    m = MetaData()
    tables = [
        Table(
            "catalog_entries",
            m,
            Column("id", String(256), primary_key=True),
            Column("origin", String(300), nullable=False, index=True),
            Column("data", Text, nullable=False),
            Column("updated_at", _UTC, nullable=False),
        ),
        Table(
            "catalog_state",
            m,
            Column("id", Integer, primary_key=True),
            Column("stamp", String(64), nullable=False),
        ),
        Table(
            "model_usage",
            m,
            Column("id", String(256), primary_key=True),
            Column("count", Integer, nullable=False, default=0),
            Column("last_used", _UTC, nullable=True),
        ),
        Table(
            "catalog_sources",
            m,
            Column("name", String(100), primary_key=True),
            Column("url", Text, nullable=False),
            Column("format", String(32), nullable=False, default="modelport"),
            Column("entry_count", Integer, nullable=False, default=0),
            Column("etag", Text, nullable=True),
            Column("refreshed_at", _UTC, nullable=True),
        ),
        Table(
            "store_models",
            m,
            Column("key", String(600), primary_key=True),
            Column("registry", String(32), nullable=False, index=True),
            Column("name", String(400), nullable=False, index=True),
            Column("revision", String(100), nullable=False),
            Column("ref", Text, nullable=False),
            Column("requested", String(200), nullable=True),
            Column("size", Integer, nullable=False, default=0),
            Column("file_count", Integer, nullable=False, default=0),
            Column("task", String(100), nullable=True),
            Column("library", String(100), nullable=True),
            Column("pulled_at", _UTC, nullable=False),
            Column("last_used", _UTC, nullable=True),
            Column("use_count", Integer, nullable=False, default=0),
        ),
        Table(
            "store_files",
            m,
            Column("model_key", String(600), primary_key=True),
            Column("path", String(1024), primary_key=True),
            Column("sha256", String(64), nullable=False, index=True),
            Column("size", Integer, nullable=False),
            Column("digest_kind", String(16), nullable=False),
            Column("digest", String(64), nullable=False),
        ),
        Table(
            "store_refs",
            m,
            Column("registry", String(32), primary_key=True),
            Column("name", String(400), primary_key=True),
            Column("ref", String(200), primary_key=True),
            Column("revision", String(100), nullable=False),
            Column("updated_at", _UTC, nullable=False),
        ),
        Table(
            "store_counters",
            m,
            Column("name", String(64), primary_key=True),
            Column("value", Integer, nullable=False, default=0),
        ),
        Table(
            "trusted_sources",
            m,
            Column("kind", String(32), primary_key=True),
            Column("name", String(400), primary_key=True),
            Column("added_at", _UTC, nullable=False),
        ),
        Table(
            "call_log",
            m,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("started_at", _UTC, nullable=False, index=True),
            Column("model", String(400), nullable=False),
            Column("provider", String(100), nullable=False),
            Column("access", String(16), nullable=False),
            Column("origin", String(16), nullable=False),
            Column("operation", String(32), nullable=False),
            Column("input_tokens", Integer, nullable=True),
            Column("output_tokens", Integer, nullable=True),
            Column("cached_tokens", Integer, nullable=True),
            Column("reasoning_tokens", Integer, nullable=True),
            Column("latency_ms", Float, nullable=False),
            Column("ttft_ms", Float, nullable=True),
            Column("cost_usd", Float, nullable=True),
            Column("status", String(64), nullable=False),
            Column("served_by", String(400), nullable=True),
        ),
    ]
    for table in tables:
        if table.name in without:
            m.remove(table)
    return m


_STAMP = "lower(hex(randomblob(16)))"
#: What modelport ran on SQLite after create_all (the catalog snapshot's stamp).
OLD_SQLITE_STAMP = (
    f"INSERT OR IGNORE INTO catalog_state (id, stamp) VALUES (1, {_STAMP})",
    *(
        f"CREATE TRIGGER IF NOT EXISTS catalog_entries_stamp_{op.lower()} AFTER {op} ON "
        f"catalog_entries BEGIN UPDATE catalog_state SET stamp = {_STAMP} WHERE id = 1; END"
        for op in ("INSERT", "UPDATE", "DELETE")
    ),
)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
LEGACY = make_entry("acme/legacy-model", name="Legacy model", tags=["kept"])


def make_legacy(engine: Engine, *, without: tuple[str, ...] = ()) -> None:
    """A database as an earlier modelport left it, with a row in most tables."""
    schema = first_schema(without=without)
    schema.create_all(engine)
    t = schema.tables
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite" and "catalog_state" in t:
            for statement in OLD_SQLITE_STAMP:
                conn.execute(text(statement))
        conn.execute(
            t["catalog_entries"]
            .insert()
            .values(
                id=LEGACY.id,
                origin="user",
                data=json.dumps(LEGACY.to_json_dict()),
                updated_at=NOW,
            )
        )
        conn.execute(t["model_usage"].insert().values(id=LEGACY.id, count=7, last_used=NOW))
        conn.execute(
            t["store_models"]
            .insert()
            .values(
                key="hf/acme/legacy@abc123",
                registry="hf",
                name="acme/legacy",
                revision="abc123",
                ref="hf:acme/legacy@abc123",
                size=1234,
                file_count=1,
                pulled_at=NOW,
                use_count=3,
            )
        )
        conn.execute(
            t["store_files"]
            .insert()
            .values(
                model_key="hf/acme/legacy@abc123",
                path="config.json",
                sha256="a" * 64,
                size=1234,
                digest_kind="sha256",
                digest="a" * 64,
            )
        )
        conn.execute(t["store_counters"].insert().values(name="pull.miss", value=5))


# ------------------------------------------------------------------------------- tests


def test_head_names_the_newest_script() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations.config())
    assert script.get_current_head() == migrations.HEAD
    assert [r.id for r in migrations.history()] == ["0001", "0002", "0003", "0004", "0005"]
    assert migrations.history()[0].id == migrations.FIRST
    assert migrations.history()[0].down_revision is None
    assert [r.down_revision for r in migrations.history()[1:]] == [
        "0001",
        "0002",
        "0003",
        "0004",
    ]
    # Module names mypy and imports accept, and the same template for the next one.
    names = sorted(p.name for p in (SRC / "versions").glob("*.py") if p.stem != "__init__")
    assert names == [
        "v0001_first_schema.py",
        "v0002_postgres_keeps_what_sqlite_keeps.py",
        "v0003_catalog_entry_versions.py",
        "v0004_catalog_search_on_postgresql.py",
        "v0005_ui_pulls_shared_by_replicas.py",
    ]
    assert (SRC / "script.py.mako").is_file()


def test_an_empty_database_is_migrated_to_the_newest_schema(database: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = db.get_engine(database)
    assert _revision(engine) == [migrations.HEAD]
    names = set(inspect(engine).get_table_names())
    only = db.POSTGRESQL_ONLY_TABLES if engine.dialect.name == "postgresql" else set()
    assert names == set(db.metadata.tables) | {"alembic_version"} | only

    def shared(_object: Any, name: str | None, kind: str, *_: Any) -> bool:
        return not (kind == "table" and name in db.POSTGRESQL_ONLY_TABLES)

    with engine.connect() as conn:
        # The migrations make exactly the tables, columns, types and indexes the code uses.
        context = MigrationContext.configure(conn, opts={"include_object": shared})
        assert compare_metadata(context, db.metadata) == []
        if engine.dialect.name == "sqlite":
            triggers = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            ).scalars()
            assert list(triggers) == [
                "catalog_entries_stamp_delete",
                "catalog_entries_stamp_insert",
                "catalog_entries_stamp_update",
            ]
            assert conn.execute(text("SELECT count(*) FROM catalog_state")).scalar() == 1
        else:
            kinds = dict(
                conn.execute(
                    text(
                        "SELECT table_name || '.' || column_name, data_type "
                        "FROM information_schema.columns WHERE table_schema = 'public'"
                    )
                ).all()
            )
            assert kinds["store_files.size"] == kinds["call_log.id"] == "bigint"
            assert kinds["call_log.model"] == kinds["catalog_entries.id"] == "text"
            assert kinds["ui_pulls.completed"] == kinds["ui_pulls.total"] == "bigint"
            assert kinds["ui_pulls.cancel_requested"] == "boolean"
            # The catalog stamp is SQLite's alone: PostgreSQL bypasses the snapshot.
            assert conn.execute(text("SELECT count(*) FROM catalog_state")).scalar() == 0


@pytest.mark.parametrize(
    "without",
    [(), ("call_log", "trusted_sources", "catalog_state")],
    ids=["first-schema", "an-older-release"],
)
def test_a_database_made_before_migrations_is_upgraded_with_its_rows(
    database: str, raw: Engine, without: tuple[str, ...]
) -> None:
    make_legacy(raw, without=without)
    assert "alembic_version" not in inspect(raw).get_table_names()

    # Every use-case sees the old rows through the upgraded database.
    assert api.show_model("acme/legacy-model").tags == ["kept"]
    assert api.get_catalog().usage("acme/legacy-model") == 7
    [stored] = api.list_models()
    assert (stored.name, stored.size, stored.use_count) == ("acme/legacy", 1234, 3)
    assert api.store_stats().pull_misses == 5
    engine = db.get_engine(database)
    assert _revision(engine) == [migrations.HEAD]
    only = db.POSTGRESQL_ONLY_TABLES if engine.dialect.name == "postgresql" else set()
    assert set(inspect(engine).get_table_names()) == (
        set(db.metadata.tables) | {"alembic_version"} | only
    )
    # The tables an older release lacked work now: a call is logged, a source trusted.
    api.record_call(
        api.CallRecord(
            started_at=NOW,
            model="acme/legacy-model",
            provider="acme",
            access="local",
            origin="python",
            operation="chat",
            latency_ms=12.0,
            cost_usd=0.0,
        )
    )
    assert api.usage_report(since="all").total.calls == 1
    from modelport.trust import is_trusted, trust

    trust("acme/hubconf")
    assert is_trusted("acme/hubconf")
    # New entries still change the catalog stamp (SQLite), and old rows stay as they were.
    api.add_entries([make_entry("acme/new-model")])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM catalog_entries")).scalar() == 2
        if engine.dialect.name == "sqlite":
            triggers = conn.execute(
                text("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
            ).scalar()
            assert triggers == 3
            stamp = conn.execute(text("SELECT stamp FROM catalog_state")).scalar()
            api.remove_entry("acme/new-model")
            assert conn.execute(text("SELECT stamp FROM catalog_state")).scalar() != stamp


def test_an_upgrade_that_fails_leaves_the_database_as_it_was(
    database: str, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """All of an upgrade or none of it, DDL included, on SQLite as on PostgreSQL."""
    make_legacy(raw, without=("call_log",))
    with raw.begin() as conn:  # a table of that name, not ours: revision 0003 cannot make it
        conn.execute(text("CREATE TABLE catalog_entry_versions (something TEXT)"))
    before = sorted(inspect(raw).get_table_names())
    code, out, err = run(capsys, "ls")
    assert (code, out) == (1, "")
    assert err.startswith("Error: Cannot open the database:") and "already exists" in err
    assert err.count("\n") == 1
    assert sorted(inspect(raw).get_table_names()) == before  # no call_log, no version table
    with raw.begin() as conn:
        conn.execute(text("DROP TABLE catalog_entry_versions"))
    api.reset()
    assert api.show_model("acme/legacy-model").name == "Legacy model"  # upgraded now
    assert _revision(raw) == [migrations.HEAD]


def test_a_database_at_the_first_revision_takes_sizes_past_2_gib_after_the_upgrade(
    database: str, raw: Engine
) -> None:
    from alembic import command

    cfg = migrations.config()
    with raw.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert _revision(raw) == ["0001"]
    with raw.begin() as conn:
        conn.execute(
            text("INSERT INTO store_counters (name, value) VALUES ('pull.hit', 2147483647)")
        )
    assert db.upgrade_schema(database) == migrations.SchemaChange("0001", migrations.HEAD)
    engine = db.get_engine(database)
    api.get_store().count("pull.hit")  # one past what a 32-bit column holds
    with engine.connect() as conn:
        value = conn.execute(text("SELECT value FROM store_counters")).scalar()
    assert value == 2**31


def test_a_database_at_0003_with_entries_keeps_them_searchable_after_the_upgrade(
    database: str, raw: Engine
) -> None:
    """Revision 0004 backfills PostgreSQL's search table from the stored entries (their
    columns computed when the catalog first opens it); SQLite only moves its version."""
    from alembic import command

    from modelport.catalog.catalog import CatalogQuery
    from modelport.catalog.persistence import CatalogRepository

    cfg = migrations.config()
    with raw.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        for model_id, context in (("acme/long-reader", 200_000), ("acme/short-reader", 4096)):
            entry = make_entry(model_id, context_window=context, capabilities={"vision": True})
            conn.execute(
                text(
                    "INSERT INTO catalog_entries (id, origin, data, updated_at) "
                    "VALUES (:id, 'user', :data, :now)"
                ),
                {"id": model_id, "data": entry.model_dump_json(), "now": NOW},
            )
        conn.execute(text("INSERT INTO model_usage (id, count) VALUES ('acme/long-reader', 4)"))
    assert db.upgrade_schema(database) == migrations.SchemaChange("0003", migrations.HEAD)
    engine = db.get_engine(database)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            pending = "SELECT count(*) FROM catalog_search WHERE pending"
            assert conn.execute(text(pending)).scalar() == 2  # backfilled, not yet computed
    catalog = api.get_catalog()
    long = CatalogQuery(capabilities=("vision",), min_context=100_000, provider="acme")
    assert [e.id for e in catalog.query(long)] == ["acme/long-reader"]
    assert catalog.usage("acme/long-reader") == 4
    assert catalog.resolve("acme short reader").id == "acme/short-reader"
    assert CatalogRepository(engine).fill_search() == 0  # nothing left pending


def test_a_database_newer_than_this_modelport_is_one_sentence(
    database: str, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    db.get_engine(database)
    with raw.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    api.reset()
    with pytest.raises(ConfigError) as info:
        db.get_engine(database)
    assert "schema revision '0999'" in info.value.message
    assert "pip install -U modelport" in (info.value.hint or "")
    for command in (["ls"], ["db", "upgrade"]):
        code, out, err = run(capsys, *command)
        assert code == 1, command
        assert out == ""
        assert err.count("\n") == 1 and "Traceback" not in err
        assert re.match(r"Error: The database .+ is at schema revision '0999', which this", err)
    code, out, _ = run(capsys, "db", "current")
    assert code == 0
    assert "revision 0999, which a newer modelport wrote" in out
    code, out, _ = run(capsys, "db", "current", "--json")
    assert json.loads(out)["known"] is False
    # Nothing was changed or recreated.
    assert _revision(raw) == ["0999"]


def _hold_then_release(lock_holder: Any, release: threading.Event) -> None:
    with lock_holder:
        release.wait(30)


def test_a_second_process_waits_for_the_schema_lock(database: str, raw: Engine) -> None:
    """While another process upgrades, opening the database waits; it never races it."""
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        if raw.dialect.name == "sqlite":
            from filelock import FileLock

            with FileLock(database.removeprefix("sqlite:///") + ".lock"):
                holding.set()
                release.wait(30)
        else:
            with raw.begin() as conn:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": migrations.SCHEMA_LOCK_KEY}
                )
                holding.set()
                release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    opened: list[Any] = []
    opener = threading.Thread(target=lambda: opened.append(db.get_engine(database)))
    opener.start()
    time.sleep(0.6)
    assert opened == []  # still waiting for the lock
    release.set()
    holder.join(30)
    opener.join(30)
    assert len(opened) == 1
    assert _revision(raw) == [migrations.HEAD]


OPEN_AND_WRITE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import modelport.api as api
    import sqlalchemy, alembic.command
    from modelport import db
    from modelport.catalog.entry import ModelEntry
    from modelport.settings import get_settings
    go = Path(sys.argv[1])
    (go.parent / ("ready-" + sys.argv[2])).touch()
    while not go.exists():
        time.sleep(0.005)
    api.get_store().count("pull.hit")
    entry = {"id": "acme/" + sys.argv[2], "name": sys.argv[2], "provider": "acme",
             "source": "self-hosted", "category": "text-llm", "tasks": ["text-generation"]}
    api.add_entries([ModelEntry.model_validate(entry)])
    print("OK", db.schema_revision(get_settings().database_url))
    """
)


def test_processes_opening_a_new_database_together_all_succeed(
    database: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    env = dict(os.environ, MODELPORT_DATABASE_URL=database, MODELPORT_BUNDLED_CATALOG="0")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_WRITE, str(go), f"model-{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)  # until every process waits, its imports done
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert all(out.strip() == f"OK {migrations.HEAD}" for out, _ in results)
    engine = db.get_engine(database)
    assert _revision(engine) == [migrations.HEAD]
    assert api.store_stats().pull_hits == 4
    assert {f"acme/model-{i}" for i in range(4)} <= set(api.get_catalog().keys())


def test_opening_an_up_to_date_database_imports_no_alembic(database: str) -> None:
    db.get_engine(database)  # upgraded here, once
    code = (
        "import sys; from modelport import db; from modelport.settings import get_settings\n"
        "db.get_engine(get_settings().database_url)\n"
        "print('ALEMBIC', 'alembic' in sys.modules)\n"
    )
    env = dict(os.environ, MODELPORT_DATABASE_URL=database)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert "ALEMBIC False" in done.stdout


def test_the_db_commands_import_nothing_heavy_for_help() -> None:
    code = (
        "import sys; from modelport.cli import main\n"
        "try:\n    main(['db', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', [m for m in ('sqlalchemy', 'alembic') if m in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout
    assert "upgrade" in done.stdout and "history" in done.stdout


def test_db_current_upgrade_and_history(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "db", "current")
    assert code == 0
    assert "has no schema revision yet" in out
    assert f"the newest is {migrations.HEAD}" in out
    code, out, _ = run(capsys, "db", "current", "--json")
    status = json.loads(out)
    assert (status["revision"], status["head"], status["up_to_date"]) == (None, "0005", False)
    if database.startswith("sqlite"):
        # Asking did not create the file.
        assert not Path(database.removeprefix("sqlite:///")).exists()

    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert out.strip().endswith(f"from no revision to {migrations.HEAD}.")
    code, out, _ = run(capsys, "db", "current")
    assert f"is at revision {migrations.HEAD}, the newest schema." in out
    code, out, _ = run(capsys, "db", "upgrade", "--json")
    assert json.loads(out) == {
        "database": status["database"],
        "before": migrations.HEAD,
        "after": migrations.HEAD,
        "changed": False,
    }
    # Credentials never show: the database is named by its file or host and name.
    assert "@" not in status["database"]

    code, out, _ = run(capsys, "db", "history")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["REVISION", "FOLLOWS", "CHANGE"]
    assert lines[1].startswith("0001") and "The first schema" in lines[1]
    assert lines[2].startswith("0002 ") and "0001" in lines[2]
    assert lines[3].startswith("0003 ") and "Entry versions" in lines[3]
    assert lines[4].startswith("0004 ") and "catalog at scale" in lines[4]
    assert lines[5].startswith("0005 (head)") and "Web UI pulls" in lines[5]
    code, out, _ = run(capsys, "db", "history", "--json")
    assert [r["id"] for r in json.loads(out)] == ["0001", "0002", "0003", "0004", "0005"]


def test_db_upgrade_from_the_first_revision_says_from_and_to(
    database: str, raw: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    make_legacy(raw)
    code, out, _ = run(capsys, "db", "current")
    assert "has no schema revision yet (new, or made before migrations)" in out
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0
    assert f"from no revision to {migrations.HEAD}" in out
    assert api.show_model("acme/legacy-model").name == "Legacy model"


def test_an_unreachable_postgresql_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("MODELPORT_DATABASE_URL", "postgresql+psycopg://me:secret@127.0.0.1:9/x")
    api.reset()
    code, out, err = run(capsys, "ls")
    assert code == 1
    assert err.startswith("Error: Cannot open the database:")
    assert err.count("\n") == 1
    assert "secret" not in err
    code, out, err = run(capsys, "db", "current")
    assert code == 1 and "secret" not in err + out
