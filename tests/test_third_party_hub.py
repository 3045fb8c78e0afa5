"""A hub another package registers through the ``modelport.hubs`` entry point group is a
hub like ``hf:``: its names are checked by its own rules, and it is searched, pulled,
listed and removed through the same use-cases and commands.

The package is ``tests/plugins/mp_toyhub`` with its own ``mp_toyhub-0.1.dist-info``:
putting the folder on ``sys.path`` is how an installed distribution is found, so
``importlib.metadata`` discovers its entry point exactly as it would after ``pip install``.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelport.api as api
from modelport.errors import InvalidReferenceError, InvalidValueError
from modelport.hubs.base import reset_hubs
from modelport.refs import parse_ref
from tests.test_cli import run

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "toyhub"
    for version, text in (("1", "first"), ("2", "second")):
        folder = root / "greeter" / version
        (folder / "weights").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"says": text}))
        (folder / "weights" / "w.bin").write_bytes(text.encode() * 1000)
    (root / "farewell" / "1").mkdir(parents=True)
    (root / "farewell" / "1" / "config.json").write_text("{}")
    monkeypatch.setenv("TOYHUB_ROOT", str(root))
    sys.path.insert(0, str(PLUGINS))
    importlib.invalidate_caches()
    reset_hubs(rescan=True)
    try:
        yield root
    finally:
        sys.path.remove(str(PLUGINS))
        sys.modules.pop("mp_toyhub", None)
        reset_hubs(rescan=True)


def test_the_hub_is_found_through_its_distributions_entry_point(toy: Path) -> None:
    from importlib.metadata import entry_points

    from modelport.hubs.base import get_hub, hub_names

    [ep] = [e for e in entry_points(group="modelport.hubs") if e.name == "toy"]
    assert ep.dist is not None and ep.dist.name == "mp-toyhub"
    assert "toy" in hub_names()
    assert type(get_hub("toy")).__module__ == "mp_toyhub"


def test_every_hub_supplies_steps_and_pulls_through_the_one_template(toy: Path) -> None:
    """``Hub.pull`` is the template (resolve, served from the store, fetch, commit); a
    hub, built in or not, supplies only its steps."""
    from modelport.hubs.base import Hub, get_hub, hub_names

    assert {"hf", "onnx", "tfhub", "torch", "toy"} <= set(hub_names())
    for name in hub_names():
        cls = type(get_hub(name))
        assert cls.pull is Hub.pull, f"{name} pulls its own way"
        assert cls.resolve is not Hub.resolve and cls.fetch is not Hub.fetch, name


def test_its_own_name_rules_hold(toy: Path) -> None:
    ref = parse_ref("toy:greeter@2")
    assert (ref.registry, ref.name, ref.revision, ref.hub) == ("toy", "greeter", "2", "toy")
    with pytest.raises(InvalidReferenceError) as bad:
        parse_ref("toy:Greeter_1")
    assert "not a toy model name" in str(bad.value)


def test_its_references_are_never_answered_by_a_catalog_namesake(toy: Path) -> None:
    from modelport.errors import ModelNotFoundError

    # Registered after modelport.api was imported: still a hub, so "minilm" here is the
    # toy hub's model, not the catalog's MiniLM (an alias of an hf: model).
    with pytest.raises(ModelNotFoundError) as info:
        api.resolve_model("toy:minilm")
    assert info.value.suggestions == ["sentence-transformers/all-MiniLM-L6-v2"]


def test_searched_pulled_listed_and_removed_like_hf(toy: Path) -> None:
    assert [m.id for m in api.search_hub("greet", hub="toy")] == ["greeter"]
    everywhere = api.search_everywhere("greeter", sources=["toy"], timeout=10)
    assert "toy:greeter" in [r.ref for r in everywhere.results]

    pulled = api.pull("toy:greeter")
    assert (pulled.hub, pulled.id, pulled.revision, pulled.from_store) == (
        "toy",
        "greeter",
        "2",
        False,
    )
    assert json.loads((Path(pulled.path) / "config.json").read_text()) == {"says": "second"}
    assert (Path(pulled.path) / "weights" / "w.bin").read_bytes() == b"second" * 1000
    assert api.pull("toy:greeter").from_store
    api.pull("toy:greeter@1")
    stored = api.list_models(registry="toy")
    assert sorted(m.revision for m in stored) == ["1", "2"]
    assert api.stored_model("toy:greeter@1").task == "text-classification"

    plan = api.remove("toy:greeter@1")
    assert [m.revision for m in plan.models] == ["1"]
    assert [m.revision for m in api.list_models(registry="toy")] == ["2"]
    api.remove("toy:greeter")
    assert api.list_models(registry="toy") == []


def test_offline_it_is_served_from_the_store(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.pull("toy:greeter")
    monkeypatch.setenv("MODELPORT_OFFLINE", "1")
    # The registry is gone: only the store can answer.
    os.rename(toy, toy.with_name("gone"))
    assert api.pull("toy:greeter").from_store
    from modelport.errors import OfflineError

    with pytest.raises(OfflineError) as refused:
        api.pull("toy:farewell")
    assert refused.value.one_line().startswith(
        "toy:farewell is not complete in the store and offline mode is on."
    )


def test_options_it_cannot_honour_are_refused(toy: Path) -> None:
    with pytest.raises(InvalidValueError) as refused:
        api.pull("toy:greeter", include=["*.json"])
    assert "--include cannot apply to toy: models: a toy model is one folder" in str(refused.value)
    assert api.list_models() == []


def test_the_commands_work_on_it(toy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "greet", "--hub", "toy")
    assert code == 0 and "toy:greeter" in out
    code, out, _ = run(capsys, "pull", "toy:greeter")
    assert code == 0 and "toy:greeter@2" in out
    code, out, _ = run(capsys, "ls", "--hub", "toy", "--json")
    assert [row["name"] for row in json.loads(out)] == ["greeter"]
    code, out, _ = run(capsys, "rm", "toy:greeter")
    assert code == 0 and "Removed toy:greeter@2" in out
    code, _, err = run(capsys, "pull", "toy:greeter", "--exclude", "*.bin")
    assert code != 0 and "--exclude cannot apply to toy: models" in err


def test_a_fresh_process_finds_and_pulls_it(toy: Path, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "pull", "toy:greeter@1", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (Path(done.stdout.strip()) / "weights" / "w.bin").read_bytes() == b"first" * 1000
