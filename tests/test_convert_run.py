"""Convert tiny models of every supported task and compare with the reference libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

import modelport.api as api
from modelport.errors import InvalidValueError
from tests import tiny_models

pytestmark = pytest.mark.slow

TEXTS = ["the quick brown fox jumps over the lazy dog near the river bank today", "hello world"]


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    built = {
        task: tiny_models.build_encoder(root / task, task)
        for task in (
            "sentence-similarity",
            "text-classification",
            "token-classification",
            "question-answering",
            "fill-mask",
        )
    }
    built["gpt2"] = tiny_models.build_decoder(root / "gpt2", "gpt2")
    built["llama"] = tiny_models.build_decoder(root / "llama", "llama")
    built["vit"] = tiny_models.build_vit(root / "vit")
    return built


def test_sentence_embeddings_equal_sentence_transformers(models: dict[str, Path]) -> None:
    from sentence_transformers import SentenceTransformer

    result = api.convert(str(models["sentence-similarity"]))
    assert result.task == "sentence-similarity"
    assert result.max_abs_diff < 1e-4
    ours = api.run(str(models["sentence-similarity"]), TEXTS)
    ref = SentenceTransformer(str(models["sentence-similarity"]), device="cpu").encode(TEXTS)
    assert ours.shape == ref.shape == (2, 32)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)  # Normalize module applied
    again = api.convert(str(models["sentence-similarity"]))
    assert again.cached and again.path == result.path


def test_text_classification_matches_transformers(models: dict[str, Path]) -> None:
    from transformers import pipeline

    ours = api.run(str(models["text-classification"]), TEXTS, top_k=None)
    ref = pipeline(
        "text-classification", model=str(models["text-classification"]), top_k=None, device="cpu"
    )(TEXTS)
    for mine, theirs in zip(ours, ref, strict=True):
        assert [r["label"] for r in mine] == [r["label"] for r in theirs]
        np.testing.assert_allclose(
            [r["score"] for r in mine], [r["score"] for r in theirs], atol=1e-5
        )


def test_token_classification_matches_transformers(models: dict[str, Path]) -> None:
    from transformers import pipeline

    text = "ada lovelace lives in london near the river"
    ours = api.run(str(models["token-classification"]), text, aggregation="none")
    ref = pipeline(
        "token-classification",
        model=str(models["token-classification"]),
        aggregation_strategy="none",
        device="cpu",
    )(text)
    # transformers leaves out "O" tokens; so do we once compared.
    mine = [t for t in ours if t["entity"] != "O"]
    assert [(t["entity"], t["start"], t["end"]) for t in mine] == [
        (t["entity"], t["start"], t["end"]) for t in ref
    ]
    np.testing.assert_allclose([t["score"] for t in mine], [t["score"] for t in ref], atol=1e-5)
    grouped = api.run(str(models["token-classification"]), text)
    for entity in grouped:
        assert text[entity["start"] : entity["end"]] == entity["word"]
        assert entity["entity_group"] in ("PER", "LOC")


def test_question_answering_matches_transformers(models: dict[str, Path]) -> None:
    from transformers import pipeline

    question = {
        "question": "who wrote this book",
        "context": "ada lovelace wrote this book in london",
    }
    ours = api.run(str(models["question-answering"]), question)
    ref = pipeline("question-answering", model=str(models["question-answering"]), device="cpu")(
        **question
    )
    assert (ours["start"], ours["end"], ours["answer"]) == (ref["start"], ref["end"], ref["answer"])
    assert ours["score"] == pytest.approx(ref["score"], abs=1e-4)
    with pytest.raises(InvalidValueError, match="question"):
        api.run(str(models["question-answering"]), "no context")


def test_fill_mask_matches_transformers(models: dict[str, Path]) -> None:
    from transformers import pipeline

    text = "paris is the [MASK] of france"
    ours = api.run(str(models["fill-mask"]), text, top_k=5)
    ref = pipeline("fill-mask", model=str(models["fill-mask"]), top_k=5, device="cpu")(text)
    assert [r["token"] for r in ours] == [r["token"] for r in ref]
    np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=1e-5)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_greedy_generation_with_kv_cache_matches_transformers(
    models: dict[str, Path], kind: str
) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = models[kind]
    model = api.load_model(str(folder))
    assert model.pipeline.past_inputs, "the export must take past_key_values"
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    prompt = tokenizer("the quick brown fox", return_tensors="pt")
    reference = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        expected = reference.generate(
            **prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    new = expected[0, prompt["input_ids"].shape[1] :].tolist()
    eos = tokenizer.eos_token_id
    if eos in new:
        new = new[: new.index(eos)]
    ours = model.pipeline.generate_ids(prompt["input_ids"][0].tolist(), 12)
    assert ours == new
    text = model("the quick brown fox", max_new_tokens=5)
    assert text["generated_text"].startswith("the quick brown fox")
    sampled = model("the quick brown fox", max_new_tokens=5, do_sample=True, seed=1)
    assert sampled == model("the quick brown fox", max_new_tokens=5, do_sample=True, seed=1)


def test_image_classification_matches_transformers(models: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image
    from transformers import pipeline

    rng = np.random.default_rng(0)
    image = tmp_path / "cat.png"
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(image)
    ours = api.run(str(models["vit"]), str(image), top_k=4)
    ref = pipeline("image-classification", model=str(models["vit"]), top_k=4, device="cpu")(
        str(image)
    )
    assert [r["label"] for r in ours] == [r["label"] for r in ref]
    np.testing.assert_allclose([r["score"] for r in ours], [r["score"] for r in ref], atol=1e-4)


def test_optimized_and_int8_artifacts_are_checked_and_cached_separately(
    models: dict[str, Path],
) -> None:
    plain = api.convert(str(models["text-classification"]))
    optimized = api.convert(str(models["text-classification"]), optimize=True)
    quantized = api.convert(str(models["text-classification"]), quantize="int8")
    assert len({plain.path, optimized.path, quantized.path}) == 3
    assert optimized.max_abs_diff < 1e-3
    assert quantized.cosine >= 0.98
    spec = (quantized.path / "modelport.yml").read_text()
    assert "quantize: int8" in spec
    assert "opset: 18" in spec


def test_runtime_imports_no_torch_or_transformers(models: dict[str, Path]) -> None:
    result = api.convert(str(models["text-classification"]))
    code = (
        "import sys\nfrom modelport.runtime.model import Model\n"
        f"m = Model.load({str(result.path)!r})\nprint(m('hello world'))\n"
        "print('LOADED', [n for n in ('torch', 'transformers', 'optimum') if n in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED []" in done.stdout


def test_missing_extra_gives_the_install_hint(models: dict[str, Path]) -> None:
    result = api.convert(str(models["text-classification"]))
    code = (
        "import sys\nsys.modules['onnxruntime'] = None\n"
        "from modelport.cli import main\n"
        f"main(['run', {str(result.path)!r}, '--text', 'hi'])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'modelport[run]'" in done.stderr


def test_unsupported_architecture_is_refused_clearly(tmp_path: Path) -> None:
    folder = tmp_path / "sam"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps({"architectures": ["SamModel"], "model_type": "sam"})
    )
    with pytest.raises(InvalidValueError) as info:
        api.convert(str(folder))
    text = info.value.one_line()
    assert "mask-generation" in text
    assert "text-classification" in text  # names what is supported


def test_a_hand_written_gpux_spec_runs(models: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    result = api.convert(str(models["text-classification"]))
    folder = tmp_path / "gpux"
    folder.mkdir()
    for name in (
        "model.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ):
        shutil.copy2(result.path / name, folder / name)
    (folder / "gpux.yml").write_text(
        "name: sentiment\nversion: 1.0.0\nmodel:\n  source: model.onnx\n  format: onnx\n"
        "inputs:\n  - {name: input_ids, type: int64, shape: [1, -1]}\n"
        "  - {name: attention_mask, type: int64, shape: [1, -1]}\n"
        "  - {name: token_type_ids, type: int64, shape: [1, -1]}\n"
        "outputs:\n  - {name: logits, type: float32, shape: [1, 3], "
        "labels: [negative, neutral, positive]}\n"
        "runtime:\n  gpu: {memory: 1GB, backend: auto}\n"
        "preprocessing:\n  tokenizer: tokenizer.json\n  max_length: 64\n"
    )
    answer = api.run(str(folder), "hello world", top_k=None)
    assert {r["label"] for r in answer} == {"negative", "neutral", "positive"}


def test_cli_convert_and_run(models: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from tests.test_cli import run as cli

    folder = str(models["text-classification"])
    code, out, _ = cli(capsys, "convert", folder, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["task"] == "text-classification"
    assert doc["max_abs_diff"] < 1e-3
    code, out, _ = cli(capsys, "run", folder, "--text", "hello world", "--json", "--top-k", "3")
    assert code == 0
    result = json.loads(out)
    assert result["provider"] == "CPUExecutionProvider"
    assert len(result["result"]) == 3
    code, out, _ = cli(capsys, "run", folder, "--text", "hello", "--benchmark", "--runs", "5")
    assert code == 0
    assert "p50" in out
    code, _, err = cli(capsys, "run", folder)
    assert code == 2
    assert "exactly one kind of input" in err
    code, _, err = cli(capsys, "run", folder, "--text", "x", "--provider", "warp-drive")
    assert code == 2
    assert "Unknown execution provider" in err
    qa = str(models["question-answering"])
    code, out, _ = cli(
        capsys, "run", qa, "--input", '{"question": "who wrote it", "context": "ada wrote it"}'
    )
    assert code == 0
    assert "score" in out


def test_a_conversion_over_tolerance_fails_and_leaves_nothing(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.convert import export

    converted = api.get_store().layout.root / "converted"
    before = sorted(converted.iterdir()) if converted.exists() else []
    monkeypatch.setattr(export, "FP32_TOLERANCE", 0.0)
    with pytest.raises(export.ConversionError) as info:
        api.convert(str(models["fill-mask"]), opset=17)
    assert "differs from PyTorch by" in info.value.one_line()
    after = sorted(converted.iterdir()) if converted.exists() else []
    assert after == before  # neither the artifact nor its staging folder is left


def test_torch_onnx_export_fallback_for_encoders(models: dict[str, Path], tmp_path: Path) -> None:
    from modelport.convert.export import _torch_export
    from modelport.convert.parity import parity

    out = tmp_path / "plain"
    out.mkdir()
    _torch_export(models["text-classification"], out, "text-classification", 17)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (out / name).write_bytes((models["text-classification"] / name).read_bytes())
    max_diff, cosine = parity(models["text-classification"], out, "text-classification")
    assert max_diff < 1e-4
    assert cosine > 0.9999


def test_tokenizer_json_is_written_when_the_repo_lacks_one(tmp_path: Path) -> None:
    folder = tiny_models.build_encoder(tmp_path / "no-tokenizer-json", "text-classification")
    (folder / "tokenizer.json").unlink()
    result = api.convert(str(folder))
    assert (result.path / "tokenizer.json").exists()
    assert api.run(str(folder), "hello world")[0]["label"] in ("negative", "neutral", "positive")


def test_provider_order() -> None:
    from modelport.runtime.providers import provider_order

    available = [
        "CPUExecutionProvider",
        "CUDAExecutionProvider",
        "AzureExecutionProvider",
        "TensorrtExecutionProvider",
    ]
    assert provider_order(available) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert provider_order(available, "cuda")[0] == "CUDAExecutionProvider"
    assert provider_order(["CPUExecutionProvider"], "cpu") == ["CPUExecutionProvider"]
    with pytest.raises(InvalidValueError, match="not available"):
        provider_order(["CPUExecutionProvider"], "coreml")


def test_pull_convert_run_from_the_hub(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.hf_server import serve_hub
    from tests.test_cli import run as cli

    with serve_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        api.reset()
        hub.add_folder(
            "acme/tiny-sentiment",
            models["text-classification"],
            pipeline_tag="text-classification",
            library_name="transformers",
        )
        code, out, _ = cli(capsys, "pull", "hf:acme/tiny-sentiment", "--convert", "-q")
        assert code == 0
        assert Path(out.strip(), "modelport.yml").exists()
        hub.reset_counts()
        answer = api.run("hf:acme/tiny-sentiment", "hello world")
        assert answer[0]["label"] in ("negative", "neutral", "positive")
        stats = api.get_store().stats()
        assert stats.run_hits >= 1


def test_a_remembered_run_skips_the_catalog_and_database_until_something_changes(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tests.hf_server import serve_hub

    with serve_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        api.reset()
        repo = hub.add_folder(
            "acme/tiny-sentiment", models["text-classification"], pipeline_tag="text-classification"
        )
        first = api.run("hf:acme/tiny-sentiment", "hello world")
        code = (
            "import sys, modelport.api as api\n"
            "print(api.run('hf:acme/tiny-sentiment', 'hello world'))\n"
            "print('HEAVY', [m for m in ('sqlalchemy', 'rapidfuzz', 'torch') if m in sys.modules])"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=dict(os.environ),
        )
        assert "HEAVY []" in done.stdout
        assert first[0]["label"] in done.stdout
        api.reset()
        stats = api.get_store().stats()  # folds the use the fast run journaled
        assert (stats.run_hits, stats.run_misses) == (1, 1)
        # A new commit on main: the next pull forgets the remembered run.
        files = {
            p.relative_to(models["text-classification"]).as_posix(): p.read_bytes()
            for p in models["text-classification"].rglob("*")
            if p.is_file()
        }
        files["README.md"] = b"# v2\n"
        new_commit = repo.commit(files)
        api.pull("hf:acme/tiny-sentiment")
        api.reset()
        from modelport.store import runs

        root = api.get_store().layout.root
        options = "task=None;optimize=False;quantize=None"
        assert runs.lookup(root, "hf:acme/tiny-sentiment", options) is None
        api.run("hf:acme/tiny-sentiment", "hello world")
        remembered = runs.lookup(root, "hf:acme/tiny-sentiment", options)
        assert remembered is not None
        assert remembered.model_key.endswith(new_commit)
