"""Entry versions: every change to a user or remote entry keeps the version it ended (with
how, by what, by whom and when), on SQLite and PostgreSQL alike; ``modelport catalog
history ID`` and ``GET /api/v1/models/{id}/versions`` show them."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

import modelport.api as api
from modelport import db, migrations
from modelport.catalog.loader import dump_catalog
from modelport.errors import ModelNotFoundError
from modelport.settings import get_settings
from tests.catalog_server import serve_catalogs
from tests.conftest import make_entry
from tests.test_db_migrations import run

ME = f"{getpass.getuser()}@{socket.gethostname()}"


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
def database(request: pytest.FixtureRequest) -> str:
    """Every test on the default SQLite file and on a real PostgreSQL server."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return get_settings().database_url


def _import(tmp_path: Path, capsys: pytest.CaptureFixture[str], **fields: Any) -> None:
    path = tmp_path / "mine.json"
    path.write_text(dump_catalog([make_entry("acme/versioned", **fields)]))
    code, _, err = run(capsys, "catalog", "import", str(path), "--replace")
    assert code == 0, err


def test_each_change_by_the_user_keeps_the_version_it_ended(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = dt.datetime.now(dt.UTC)
    _import(tmp_path, capsys, description="first")
    _import(tmp_path, capsys, description="second", tags=["new"])
    _import(tmp_path, capsys, description="second", tags=["new"])  # as it is: no version
    versions = api.entry_history("acme/versioned")
    assert [(v.version, v.current, v.entry["description"]) for v in versions] == [
        (2, True, "second"),
        (1, False, "first"),
    ]
    current, first = versions
    assert (current.change, current.replaced_at, current.actor) == (None, None, None)
    assert (first.change, first.changed_by, first.actor, first.origin) == (
        "replaced",
        "user",
        ME,
        "user",
    )
    assert first.replaced_at is not None and started <= first.replaced_at <= current.written_at
    assert first.written_at <= first.replaced_at

    code, out, _ = run(capsys, "catalog", "history", "acme/versioned")
    assert code == 0
    head, row2, row1 = out.splitlines()
    assert head.split()[:3] == ["VERSION", "ORIGIN", "WRITTEN"]
    assert row2.startswith("2 (current)") and "description, tags" in row2
    assert row1.startswith("1 ") and "(first)" in row1 and f"replaced by user ({ME})" in row1

    # Removed: the last version is kept, and the history still answers.
    code, _, err = run(capsys, "catalog", "remove", "acme/versioned")
    assert code == 0, err
    gone = api.entry_history("acme/versioned")
    assert [(v.version, v.current, v.change) for v in gone] == [
        (2, False, "removed"),
        (1, False, "replaced"),
    ]
    code, out, _ = run(capsys, "catalog", "history", "acme/versioned", "--json")
    doc = json.loads(out)
    assert [d["version"] for d in doc] == [2, 1]
    assert doc[0]["entry"]["tags"] == ["new"]
    assert doc[0]["changed_by"] == "user"
    # Added again, it goes on from there.
    _import(tmp_path, capsys, description="third")
    assert [v.version for v in api.entry_history("acme/versioned")] == [3, 2, 1]


def test_a_remote_catalog_changes_its_entries_as_itself(capsys: pytest.CaptureFixture[str]) -> None:
    docs = [
        dump_catalog([make_entry("remote/a", description="v1"), make_entry("remote/b")]),
        dump_catalog([make_entry("remote/a", description="v2"), make_entry("remote/c")]),
    ]
    with serve_catalogs() as server:
        server.routes["/c.json"] = (200, docs[0].encode())
        api.add_remote_catalog("team", f"{server.url}/c.json")
        api.update_catalogs()
        api.update_catalogs()  # nothing changed: no version
        assert len(api.entry_history("remote/a")) == 1
        server.routes["/c.json"] = (200, docs[1].encode())
        api.update_catalogs(force=True)
    [now, before] = api.entry_history("remote/a")
    assert (now.entry["description"], before.entry["description"]) == ("v2", "v1")
    assert (before.change, before.changed_by, before.origin) == (
        "replaced",
        "remote:team",
        "remote:team",
    )
    [dropped] = api.entry_history("remote/b")
    assert (dropped.current, dropped.change, dropped.changed_by) == (
        False,
        "removed",
        "remote:team",
    )
    api.remove_remote_catalog("team")
    [ended] = api.entry_history("remote/c")
    assert (ended.change, ended.changed_by) == ("removed", "user")


def test_bundled_and_unknown_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert api.entry_history("openai/gpt-4o") == []
    code, out, _ = run(capsys, "catalog", "history", "openai/gpt-4o")
    assert code == 0
    assert "bundled with modelport" in out
    with pytest.raises(ModelNotFoundError):
        api.entry_history("acme/never-was")
    code, out, err = run(capsys, "catalog", "history", "acme/never-was")
    assert code == 1
    assert err.count("\n") == 1 and "Traceback" not in err


def test_two_writers_changing_one_entry_at_once_number_its_versions_in_turn() -> None:
    api.add_entries([make_entry("acme/contended", description="v0")])
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def change(i: int) -> None:
        try:
            barrier.wait(30)
            api.add_entries([make_entry("acme/contended", description=f"v{i + 1}")], replace=True)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=change, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    versions = api.entry_history("acme/contended")
    assert [v.version for v in versions] == [5, 4, 3, 2, 1]
    assert versions[-1].entry["description"] == "v0"
    # Each kept version is what the next writer replaced: all five descriptions, once each.
    assert sorted(v.entry["description"] for v in versions) == ["v0", "v1", "v2", "v3", "v4"]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_versions_route(anyio_backend: str) -> None:
    from modelport.server.app import create_app

    api.add_entries([make_entry("acme/served", description="old")])
    api.add_entries([make_entry("acme/served", description="new")], replace=True)
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get("/api/v1/models/acme/served/versions")
        assert r.status_code == 200
        body = r.json()
        assert body["meta"] == {"model": "acme/served", "count": 2}
        assert [(d["version"], d["current"]) for d in body["data"]] == [(2, True), (1, False)]
        assert body["data"][1]["entry"]["description"] == "old"
        assert body["data"][1]["changed_by"] == "user"
        r = await client.get("/api/v1/models/openai/gpt-4o/versions")
        assert (r.status_code, r.json()["data"]) == (200, [])
        r = await client.get("/api/v1/models/acme/never-was/versions")
        assert r.status_code == 404
        assert set(r.json()) == {"error"}
        # The registry's own model route still answers ids that end as this one does.
        r = await client.get("/api/v1/registry/models/acme/served")
        assert r.json()["data"]["description"] == "new"


def test_entries_made_before_versions_start_at_version_one(database: str) -> None:
    """A database at revision 0002 with entries: after the upgrade, each is version 1."""
    from alembic import command
    from sqlalchemy import create_engine

    if database.startswith("sqlite:///"):
        Path(database.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    raw = create_engine(database)
    try:
        cfg = migrations.config()
        with raw.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002")
        with raw.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO catalog_entries (id, origin, data, updated_at) "
                    "VALUES (:id, 'user', :data, :at)"
                ),
                {
                    "id": "acme/old",
                    "data": json.dumps(make_entry("acme/old").to_json_dict()),
                    "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                },
            )
    finally:
        raw.dispose()
    [only] = api.entry_history("acme/old")
    assert (only.version, only.current) == (1, True)
    assert only.written_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with db.get_engine(database).connect() as conn:
        assert (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == migrations.HEAD
        )
