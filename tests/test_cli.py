"""The CLI, run in-process through main() and, for start-up checks, as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelport.catalog.loader import dump_catalog
from modelport.cli import main
from modelport.cli._errors import format_error
from modelport.errors import (
    AmbiguousModelError,
    CatalogValidationError,
    InvalidReferenceError,
    MissingExtraError,
    ModelNotFoundError,
)
from tests.conftest import make_entry


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from modelport.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('fastapi', 'sqlalchemy', 'onnx', 'onnxruntime', 'torch',"
        " 'transformers', 'pydantic', 'rapidfuzz', 'huggingface_hub', 'httpx',"
        " 'filelock') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout
    assert "models" in done.stdout
    assert "catalog" in done.stdout


def test_the_use_cases_leave_hosted_models_and_asyncio_until_asked() -> None:
    # Every command imports modelport.api; only prompt, chat, keys, usage and serve need
    # the providers, the key store, the call log or asyncio (about 60 ms at start-up).
    code = (
        "import sys, modelport.api\n"
        "late = ('modelport.api.prompting', 'modelport.api.keys', 'modelport.api.usage',"
        " 'modelport.secrets', 'modelport.providers.base', 'asyncio')\n"
        "print('LOADED', [m for m in late if m in sys.modules])\n"
        "modelport.api.prompt\n"
        "print('ASKED', 'modelport.api.prompting' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in done.stdout
    assert "ASKED True" in done.stdout


def test_python_dash_m_works() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "modelport", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("modelport ")


def test_models_filters_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "models",
        "--source",
        "api",
        "--provider",
        "openai",
        "--capability",
        "vision",
        "--min-context",
        "100000",
        "--sort",
        "price",
        "--limit",
        "5",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["total"] >= len(doc["models"]) > 0
    assert all(m["provider"] == "openai" and m["capabilities"]["vision"] for m in doc["models"])
    code, out, _ = run(capsys, "models", "--task", "embedding", "--source", "self-hosted", "-q")
    assert "sentence-transformers/all-MiniLM-L6-v2" in out.splitlines()
    code, out, _ = run(capsys, "models", "--category", "embedding", "-n", "3")
    assert code == 0
    assert "of" in out


def test_search_show_and_fuzzy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "search", "minilm", "--hub", "catalog", "--json")
    assert code == 0
    assert json.loads(out)[0]["model"]["id"].endswith("all-MiniLM-L6-v2")
    code, out, _ = run(capsys, "show", "minilm")
    assert code == 0
    assert "all-MiniLM-L6-v2" in out
    assert "apache-2.0" in out
    code, out, _ = run(capsys, "show", "openai:gpt-4o", "--json")
    assert json.loads(out)["pricing"]["input_per_1m_tokens"] > 0
    # The latency a simulation uses, said to be a preset when the entry has none of its own.
    code, out, _ = run(capsys, "show", "openai:gpt-4o")
    assert "first token 350 ms, then 15 ± 4 ms per token" in out
    assert "medium preset by size, not measured" in out


def test_unknown_and_ambiguous_names_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "show", "zzzz-not-a-model")
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("Error: No model matches")
    code, _, err = run(capsys, "show", "claude sonnet")
    assert code == 1
    assert "Did you mean" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "show", "hf:../etc/passwd")
    assert code == 2
    assert "Invalid model reference" in err


def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "models", "--sort", "colour")
    assert code == 2
    assert "Cannot sort by" in err
    code, _, err = run(capsys, "models", "--task", "levitation")
    assert code == 2
    assert "Unknown task" in err
    code, _, err = run(capsys, "validate", "minilm", "--gpu-memory", "lots")
    assert code == 2
    assert "Invalid size" in err
    code, _, _ = run(capsys, "models", "--min-context", "-5")
    assert code == 2


def test_validate_and_recommend(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "validate", "meta-llama/Llama-3.1-8B-Instruct", "--gpu-memory", "80GB"
    )
    assert code == 0
    assert "fits" in out
    assert "memory:" in out
    code, out, _ = run(
        capsys, "validate", "meta-llama/Llama-3.1-70B-Instruct", "--gpu-memory", "24GB", "--json"
    )
    assert code == 3
    doc = json.loads(out)
    assert doc["fit"] == "does-not-fit"
    assert doc["suggestions"]
    code, out, _ = run(
        capsys,
        "validate",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--for",
        "training",
        "--gpu-memory",
        "24GB",
        "--method",
        "qlora",
    )
    assert code == 0
    code, out, _ = run(
        capsys, "recommend", "--task", "chat", "--max-cost", "1", "--no-self-hosted", "--json"
    )
    picks = json.loads(out)
    assert code == 0
    assert picks
    assert all(p["model"]["source"] == "api" for p in picks)


def test_validate_method_gives_that_methods_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["validate", "meta-llama/Llama-3.1-8B-Instruct", "--for", "training"]
    for method, four_bit in (("qlora", True), ("lora", False)):
        code, out, _ = run(capsys, *args, "--gpu-memory", "24GB", "--method", method, "--json")
        assert code == 0
        defaults = json.loads(out)["defaults"]
        assert (defaults["method"], defaults["load_in_4bit"]) == (method, four_bit)


def test_validate_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "validate",
        "minilm",
        "--for",
        "training",
        "--set",
        "learning_rate=5e-5",
        "--set",
        "lr_scheduler=cosine",
        "--json",
    )
    assert code == 0
    defaults = json.loads(out)["defaults"]
    assert defaults["learning_rate"] == 5e-5
    assert defaults["lr_scheduler"] == "cosine"
    code, _, err = run(capsys, "validate", "minilm", "--set", "tensor_parallel=2")
    assert code == 2
    assert "Unknown InferenceDefaults setting(s): tensor_parallel" in err
    code, _, err = run(capsys, "validate", "minilm", "--set", "oops")
    assert code == 2
    assert "key=value" in err


def test_system_and_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "system", "--json")
    assert code == 0
    assert json.loads(out)["cpu_count"] >= 1
    code, out, _ = run(capsys, "system", "--gpu-memory", "24GB")
    assert "planned GPU" in out
    code, out, _ = run(capsys, "tasks", "--json")
    assert len(json.loads(out)) >= 40


def test_catalog_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "catalog", "schema")
    assert code == 0
    assert json.loads(out)["title"] == "modelport catalog"
    good = tmp_path / "good.json"
    good.write_text(dump_catalog([make_entry("acme/one")]))
    code, out, _ = run(capsys, "catalog", "validate", str(good))
    assert code == 0
    assert "valid, 1 entries" in out
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "entries": [
                    {
                        "id": "a/b",
                        "name": "b",
                        "provider": "a",
                        "source": "cloud",
                        "category": "text-llm",
                        "parameters": -1,
                    }
                ]
            }
        )
    )
    code, out, _ = run(capsys, "catalog", "validate", str(bad), "--json")
    assert code == 1
    problems = {p["path"] for p in json.loads(out)["problems"]}
    assert problems == {"$.entries[0].source", "$.entries[0].parameters"}
    code, _, err = run(capsys, "catalog", "import", str(bad))
    assert code == 1
    assert "catalog validate" in err
    code, out, _ = run(capsys, "catalog", "import", str(good))
    assert code == 0
    assert "Imported 1 new" in out
    exported = tmp_path / "out" / "export.json"
    code, _, _ = run(capsys, "catalog", "export", "--provider", "acme", "-o", str(exported))
    assert json.loads(exported.read_text())["entries"][0]["id"] == "acme/one"
    code, out, _ = run(capsys, "catalog", "stats", "--json")
    assert json.loads(out)["total"] >= 151
    code, out, _ = run(capsys, "catalog", "remove", "acme/one")
    assert code == 0
    code, _, err = run(capsys, "catalog", "update")
    assert code == 1
    assert "No remote catalogs" in err
    code, _, err = run(capsys, "catalog", "remote", "add", "Bad Name", "http://x")
    assert code == 2
    assert "Invalid source name" in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_DEBUG", "1")
    with pytest.raises(ModelNotFoundError):
        main(["show", "zzzz-not-a-model"])


@pytest.mark.parametrize(
    ("exc", "fragment", "code"),
    [
        (ModelNotFoundError("x", suggestions=["a/x"]), "Did you mean a/x?", 1),
        (AmbiguousModelError("x", suggestions=["a/x", "b/x"]), "a/x, b/x", 1),
        (InvalidReferenceError("@", "it is bad"), "Invalid model reference", 2),
        (CatalogValidationError("f.json", [("$.a", "bad"), ("$.b", "worse")]), "and 1 more", 1),
        (MissingExtraError("server", feature="serve"), "pip install 'modelport[server]'", 1),
        (PermissionError(13, "Permission denied", "/root/x"), "Cannot access /root/x", 1),
        (RuntimeError("boom"), "MODELPORT_DEBUG=1", 1),
    ],
)
def test_error_formatters(exc: BaseException, fragment: str, code: int) -> None:
    text, exit_code = format_error(exc)
    assert fragment in text
    assert "\n" not in text
    assert exit_code == code
