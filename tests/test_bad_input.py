"""Input that must be refused with one clear sentence, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.test_cli import run


def _entry(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "acme/huge",
        "name": "huge",
        "provider": "acme",
        "source": "self-hosted",
        "category": "text-llm",
        "tasks": ["text-generation"],
    }
    entry.update(fields)
    return entry


def _import(capsys: pytest.CaptureFixture[str], path: Path, text: str) -> tuple[int, str]:
    path.write_text(text)
    code, _, err = run(capsys, "catalog", "import", str(path))
    return code, err


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[" * 1000 + "]" * 1000, "nested too deeply"),
        ('[{"id": ' + "1" * 5000 + "}]", "not a usable number"),
        ('[{"id": "acme/x", "parameters": 1e400}]', "1e400 is not a JSON number"),
        ('[{"id": "acme/x", "parameters": Infinity}]', "Infinity is not a JSON number"),
        ('[{"id": "acme/x", "parameters": NaN}]', "NaN is not a JSON number"),
    ],
    ids=["deep", "long-int", "1e400", "Infinity", "NaN"],
)
def test_unparseable_catalog_numbers_and_nesting_are_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, says: str
) -> None:
    code, err = _import(capsys, tmp_path / "bad.json", text)
    assert code == 1
    assert says in err
    assert "Traceback" not in err
    assert "Unexpected" not in err


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context_window", 10**400),
        ("parameters", 10**400),
        ("max_output_tokens", 10**30),
        ("requirements", {"min_vram_gb": 1e300}),
        ("pricing", {"input_per_1m_tokens": 1e300}),
        ("latency", {"time_to_first_token_ms": 1e300}),
        ("moe", {"num_experts": 10**20, "experts_per_token": 1}),
    ],
    ids=["context", "parameters", "max-output", "vram", "price", "latency", "experts"],
)
def test_numbers_outside_their_physical_range_are_refused_at_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, field: str, value: Any
) -> None:
    code, err = _import(capsys, tmp_path / "big.json", json.dumps([_entry(**{field: value})]))
    assert code == 1
    assert f"$[0].{field}" in err
    assert "Traceback" not in err
    # Nothing was imported, so ranking and comparing still work.
    code, _, err = run(capsys, "recommend", "--task", "text-generation", "--json")
    assert code == 0, err
    code, _, err = run(capsys, "show", "acme/huge")
    assert code != 0
    assert "Traceback" not in err


def test_the_largest_accepted_numbers_still_rank_compare_and_validate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from modelport.catalog.entry import ModelEntry

    top = _entry(
        context_window=1_000_000_000,
        parameters=10**15,
        requirements={"min_vram_gb": 1_000_000},
        source="api",
        pricing={"input_per_1m_tokens": 1_000_000, "output_per_1m_tokens": 1_000_000},
    )
    ModelEntry.model_validate(top)
    code, err = _import(capsys, tmp_path / "top.json", json.dumps([top]))
    assert code == 0, err
    code, _, err = run(capsys, "recommend", "--task", "text-generation", "--json")
    assert code == 0, err
    code, _, err = run(capsys, "compare", "acme/huge", "openai/gpt-4o")
    assert "Traceback" not in err
    assert code == 0, err
    code, _, err = run(capsys, "validate", "acme/huge", "--for", "training")
    assert "Traceback" not in err
    assert code in (0, 3), err


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_select_over_a_catalog_with_the_largest_context_answers_200(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from modelport.server.app import create_app

    code, err = _import(
        capsys, tmp_path / "top.json", json.dumps([_entry(context_window=1_000_000_000)])
    )
    assert code == 0, err
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/api/v1/registry/select", json={"task": "text-generation"})
    assert r.status_code == 200, r.text


def test_tfhub_under_a_custom_kaggle_url_without_kagglesdk_gives_the_install_hint(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    # A real interpreter in which kagglesdk cannot be imported, as without the extra.
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text("import sys\nsys.modules['kagglesdk'] = None\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), env.get("PYTHONPATH", "")])
    env["MODELPORT_KAGGLE_URL"] = "http://127.0.0.1:9/custom"
    for ref in ("tfhub:acme/tiny/tensorFlow2/default/2", "tfhub:acme/tiny/tensorFlow2/default"):
        proc = subprocess.run(
            [sys.executable, "-m", "modelport", "pull", ref],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode != 0
        assert "pip install 'modelport[kaggle]'" in proc.stderr, proc.stderr
        assert "No module named" not in proc.stderr
        assert "Traceback" not in proc.stderr


def test_a_database_locked_by_another_program_is_one_sentence(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    _isolated_home: Path,
) -> None:
    import sqlite3
    import time

    import modelport.api as api

    monkeypatch.setenv("MODELPORT_DB_BUSY_TIMEOUT", "0.3")
    api.reset()
    code, _, err = run(capsys, "catalog", "stats")
    assert code == 0, err
    database = _isolated_home / "modelport.db"
    assert database.exists()
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        start = time.monotonic()
        code, err = _import(capsys, tmp_path / "one.json", json.dumps([_entry()]))
        waited = time.monotonic() - start
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == 1
    assert err.count("\n") == 1, err
    assert f"The database {database} stayed locked by another program for 0.3 s." in err
    assert "MODELPORT_DB_BUSY_TIMEOUT" in err
    assert "Unexpected" not in err
    assert waited < 8
    # Once the other program lets go, the same command works.
    code, err = _import(capsys, tmp_path / "one.json", json.dumps([_entry()]))
    assert code == 0, err


@pytest.mark.parametrize(
    ("hostile", "field"),
    [
        ({"sha": "0123abc/../../etc"}, "sha"),
        ({"lfs_sha256": "not-hex/../x"}, "lfs.sha256"),
        ({"lfs_size": -5}, "lfs.size"),
        ({"lfs_size": "big"}, "lfs.size"),
        ({"size": -1}, "size"),
    ],
    ids=["sha", "lfs-digest", "negative-lfs-size", "text-size", "negative-size"],
)
def test_hostile_hub_metadata_is_one_sentence_naming_hub_and_field(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hostile: dict[str, Any],
    field: str,
) -> None:
    import modelport.api as api
    from tests.hf_server import serve_hub
    from tests.test_pull import tiny_files

    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        api.reset()
        server.add_repo("acme/tiny", tiny_files())
        server.knobs.hostile = hostile
        code, _, err = run(capsys, "pull", "hf:acme/tiny")
    assert code != 0
    assert err.count("\n") == 1, err
    assert "Hugging Face" in err
    assert f"'{field}'" in err
    assert "Unexpected" not in err
    assert "Traceback" not in err


def test_an_entry_stored_before_ranges_were_enforced_is_skipped_not_a_crash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, _isolated_home: Path
) -> None:
    import sqlite3

    code, err = _import(capsys, tmp_path / "one.json", json.dumps([_entry()]))
    assert code == 0, err
    # What an older modelport stored: the same row with a context window of 10**400.
    db = sqlite3.connect(_isolated_home / "modelport.db")
    db.execute(
        "UPDATE catalog_entries SET data = ? WHERE id = 'acme/huge'",
        (json.dumps(_entry(context_window=10**400)),),
    )
    db.commit()
    db.close()
    import modelport.api as api

    api.reset()
    code, _, err = run(capsys, "recommend", "--task", "text-generation", "--json")
    assert code == 0, err
    assert "Traceback" not in err
    code, _, err = run(capsys, "catalog", "remove", "acme/huge")
    assert "Traceback" not in err
