"""Ollama's /api, driven by the official ``ollama`` client against a real ``modelport serve``.

One server per module, with its MODELPORT_HOME in a temporary folder and HF_ENDPOINT on
a loopback Hub that serves a tiny generated BERT sentence encoder (and, for the
generation tests, a tiny Llama with a chat template).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelport.api as api
from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, serve
from tests.tiny_models import build_decoder, build_encoder

ollama = pytest.importorskip("ollama")

pytestmark = pytest.mark.slow

ENCODER = "acme/tiny-encoder"
SPARE = "acme/tiny-encoder-spare"  # pulled and deleted by the delete test
BROKEN = "acme/tiny-encoder-broken"  # served with a corrupt weights file
CHAT = "acme/tiny-chat"

TEXTS = ["the quick brown fox", "paris is the capital of france", "hello world"]

#: A small ChatML-like template, as a chat model's tokenizer_config.json carries one.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] "
    "+ '<|endoftext|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}"
    "{% endif %}"
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    folder = build_encoder(tmp_path_factory.mktemp("encoder"), "sentence-similarity")
    meta = {"pipeline_tag": "sentence-similarity", "library_name": "sentence-transformers"}
    with serve_hub() as server:
        for repo in (ENCODER, SPARE):
            server.add_folder(repo, folder, **meta)
        # Weights of its own (a blob the store does not hold yet), for the corrupt download.
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.*")}
        files["model.safetensors"] += b" " * 8
        server.add_repo(BROKEN, files, **meta)
        chat = build_decoder(tmp_path_factory.mktemp("chat"), "llama")
        config = json.loads((chat / "tokenizer_config.json").read_text())
        config["chat_template"] = CHAT_TEMPLATE
        (chat / "tokenizer_config.json").write_text(json.dumps(config))
        server.add_folder(CHAT, chat, pipeline_tag="text-generation", library_name="transformers")
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-home")


@pytest.fixture(scope="module")
def server(hub: HubServer, home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    closed = "http://127.0.0.1:9"
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path_factory.mktemp("hf-home")),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "MODELPORT_ONNX_ZOO_URL": closed,
        "MODELPORT_KAGGLE_URL": closed,
        "MODELPORT_TFHUB_URL": closed,
        "MODELPORT_GITHUB_URL": closed,
        "MODELPORT_GITHUB_API_URL": closed,
    }
    with pytest.MonkeyPatch.context() as mp:
        # The server must not see the developer's tokens or settings.
        for var in ("HF_TOKEN", "HF_HUB_OFFLINE", "MODELPORT_CONFIG", "MODELPORT_DATABASE_URL"):
            mp.delenv(var, raising=False)
        mp.delenv("OLLAMA_API_KEY", raising=False)
        with serve(home, "--log-level", "info", env=env) as running:
            yield running


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Any:
    return ollama.Client(host=server.url, timeout=120)


@pytest.fixture(scope="module")
def pulled(client: Any) -> list[Any]:
    """The progress objects of pulling the encoder through /api/pull."""
    return list(client.pull(ENCODER, stream=True))


@pytest.fixture
def server_home(home: Path, hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process reads the server's store (as another modelport process would)."""
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    api.reset()
    yield home
    api.reset()


def _loaded(client: Any) -> dict[str, Any]:
    return {m.model: m for m in client.ps().models}


# -- pull, tags, show, delete --------------------------------------------------------------


def test_pull_streams_ollama_progress_and_stores_the_model(
    pulled: list[Any], server_home: Path
) -> None:
    statuses = [p.status for p in pulled]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success" and statuses.count("success") == 1
    downloads = [p for p in pulled if p.status.startswith("pulling ") and p.digest]
    assert {p.status for p in downloads} >= {"pulling config.json", "pulling model.safetensors"}
    weights = [p for p in downloads if p.status == "pulling model.safetensors"]
    assert weights[-1].completed == weights[-1].total > 0
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", weights[-1].digest)
    assert "verifying sha256 digest" in statuses and "writing manifest" in statuses
    stored = api.stored_model(ENCODER)
    assert (stored.path / "model.safetensors").stat().st_size == weights[-1].total
    assert api.verify_store().corrupt == ()


def test_pull_without_stream_answers_one_object_and_a_repeat_is_served_from_the_store(
    client: Any, pulled: list[Any]
) -> None:
    done = client.pull(ENCODER, stream=False)
    assert done.status == "success"
    again = [p.status for p in client.pull(ENCODER, stream=True)]
    assert again[-1] == "success"
    assert not any(s.startswith("pulling model") for s in again)  # nothing downloaded


def test_pull_of_a_model_the_hub_lacks_is_404(client: Any) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        list(client.pull("acme/no-such-model", stream=True))
    assert info.value.status_code == 404
    assert "acme/no-such-model" in info.value.error


def test_a_pull_that_fails_mid_stream_ends_with_an_error_line_and_stores_nothing(
    client: Any, hub: HubServer, server_home: Path
) -> None:
    hub.knobs.corrupt = {"model.safetensors"}
    try:
        seen: list[str] = []

        def pull() -> None:
            seen.extend(progress.status for progress in client.pull(BROKEN, stream=True))

        with pytest.raises(ollama.ResponseError) as info:
            pull()
    finally:
        hub.knobs.corrupt = set()
    assert "pulling manifest" in seen and "success" not in seen
    assert "model.safetensors" in info.value.error
    assert api.stored_revisions(BROKEN) == []


def test_tags_list_the_pulled_model_with_what_its_files_say(
    client: Any, server: ServerProcess, pulled: list[Any], server_home: Path
) -> None:
    listed = {m.model: m for m in client.list().models}
    model = listed[f"{ENCODER}:latest"]
    stored = api.stored_model(ENCODER)
    assert model.size == stored.size
    assert re.fullmatch(r"[0-9a-f]{64}", model.digest)
    assert abs(model.modified_at - stored.pulled_at) < dt.timedelta(seconds=1)
    details = model.details
    assert (details.format, details.family, details.families) == ("safetensors", "bert", ["bert"])
    assert details.quantization_level == "F32"
    # The parameters counted from the safetensors header, as Ollama writes a count.
    assert re.fullmatch(r"\d+\.\dK", details.parameter_size)
    raw = httpx.get(f"{server.url}/api/tags", timeout=30).json()["models"]
    row = next(r for r in raw if r["name"] == f"{ENCODER}:latest")
    assert row["details"]["context_length"] == 128 and row["details"]["embedding_length"] == 32


def test_show_tells_the_architecture_and_capabilities(client: Any, pulled: list[Any]) -> None:
    shown = client.show(f"{ENCODER}:latest")
    assert shown.capabilities == ["embedding"]
    assert shown.details.family == "bert"
    info = shown.modelinfo
    assert info["general.architecture"] == "bert"
    assert info["bert.context_length"] == 128
    assert info["bert.embedding_length"] == 32
    assert info["bert.block_count"] == 2
    assert info["general.parameter_count"] > 0
    assert shown.modelfile.startswith("# Modelfile generated by modelport")
    assert f"FROM hf:{ENCODER}@" in shown.modelfile
    assert shown.template is None  # an encoder has no chat template


def test_show_of_a_chat_model_carries_its_template(client: Any) -> None:
    assert client.pull(CHAT).status == "success"
    shown = client.show(CHAT)
    assert shown.template == CHAT_TEMPLATE
    assert shown.capabilities == ["completion"]
    assert (shown.details.family, shown.details.format) == ("llama", "safetensors")
    assert shown.modelinfo["llama.attention.head_count_kv"] == 2


@pytest.mark.parametrize("name", ["acme/never-pulled", "minilm"])
def test_show_of_a_model_not_in_the_store_is_404(client: Any, name: str) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.show(name)
    assert info.value.status_code == 404
    assert f"model '{name}' not found: it is not in the local store" in info.value.error


def test_delete_removes_the_model_and_a_second_delete_is_404(client: Any) -> None:
    assert client.pull(SPARE).status == "success"
    assert f"{SPARE}:latest" in {m.model for m in client.list().models}
    client.embed(SPARE, "hello")  # loaded too: deleting unloads it
    assert f"{SPARE}:latest" in _loaded(client)
    assert client.delete(SPARE).status == "success"
    assert f"{SPARE}:latest" not in {m.model for m in client.list().models}
    assert f"{SPARE}:latest" not in _loaded(client)
    with pytest.raises(ollama.ResponseError) as info:
        client.delete(SPARE)
    assert info.value.status_code == 404
    assert SPARE in info.value.error


# -- embeddings ----------------------------------------------------------------------------


def test_embed_equals_the_in_process_run(client: Any, pulled: list[Any], server_home: Path) -> None:
    answer = client.embed(ENCODER, TEXTS)
    expected = np.asarray(api.run(ENCODER, TEXTS), dtype=np.float32)
    got = np.asarray(answer.embeddings, dtype=np.float32)
    assert got.shape == expected.shape == (3, 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert answer.model == ENCODER
    assert answer.prompt_eval_count == sum(api.load_model(ENCODER).pipeline.tokenizer.count(TEXTS))
    assert answer.total_duration >= answer.load_duration > 0
    one = client.embed(f"{ENCODER}:latest", TEXTS[0])
    np.testing.assert_allclose(one.embeddings[0], expected[0], atol=1e-5)


def test_legacy_embeddings_answer_one_vector(client: Any, pulled: list[Any]) -> None:
    legacy = client.embeddings(ENCODER, prompt=TEXTS[1]).embedding
    modern = client.embed(ENCODER, TEXTS[1]).embeddings[0]
    np.testing.assert_allclose(legacy, modern, atol=1e-6)
    assert client.embeddings(ENCODER, prompt="").embedding == []


def test_embed_truncates_by_default_and_refuses_with_the_count_when_asked_not_to(
    client: Any, pulled: list[Any]
) -> None:
    limit = _loaded_after_embed(client).context_length
    assert limit and limit > 0
    long = " ".join(["river bank"] * limit)
    cut = client.embed(ENCODER, [long, "hello"])
    assert cut.prompt_eval_count == limit + client.embed(ENCODER, "hello").prompt_eval_count
    with pytest.raises(ollama.ResponseError) as info:
        client.embed(ENCODER, [long, "hello"], truncate=False)
    assert info.value.status_code == 400
    assert f"at most {limit} tokens" in info.value.error
    assert re.search(r"input\[0\] has \d+", info.value.error)


def _loaded_after_embed(client: Any) -> Any:
    client.embed(ENCODER, "hello")
    return _loaded(client)[f"{ENCODER}:latest"]


# -- keep-alive, ps ------------------------------------------------------------------------


def test_ps_shows_the_loaded_model_until_keep_alive_0_unloads_it(
    client: Any, pulled: list[Any]
) -> None:
    client.embed(ENCODER, "hello", keep_alive="10m")
    running = _loaded(client)[f"{ENCODER}:latest"]
    left = running.expires_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < left <= dt.timedelta(minutes=10, seconds=5)
    assert running.size > 0 and running.size_vram == 0  # ONNX Runtime on the CPU here
    assert running.details.family == "bert"
    assert re.fullmatch(r"[0-9a-f]{64}", running.digest)
    # A request with keep_alive 0 answers, then unloads the model.
    assert client.embed(ENCODER, "hello", keep_alive=0).embeddings
    assert f"{ENCODER}:latest" not in _loaded(client)
    # -1 keeps it loaded with no expiry.
    client.embed(ENCODER, "hello", keep_alive=-1)
    assert _loaded(client)[f"{ENCODER}:latest"].expires_at is None
    # Ollama's convention: an empty generate with keep_alive 0 unloads (any model).
    answer = client.generate(ENCODER, keep_alive=0)
    assert (answer.done, answer.done_reason, answer.response) == (True, "unload", "")
    assert f"{ENCODER}:latest" not in _loaded(client)
    # … and answers the same for a stored model that is not loaded.
    assert client.chat(ENCODER, messages=[], keep_alive=0).done_reason == "unload"


def test_an_empty_generate_on_an_encoder_is_400_not_a_load(client: Any, pulled: list[Any]) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(ENCODER)
    assert info.value.status_code == 400
    assert "does not generate text" in info.value.error


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.embed("zzzz-no-such-model", "hello"),
        lambda c: c.embeddings("zzzz-no-such-model", prompt="hello"),
        lambda c: c.show("zzzz-no-such-model"),
        lambda c: c.generate("zzzz-no-such-model", prompt="hello"),
        lambda c: c.chat("zzzz-no-such-model", messages=[{"role": "user", "content": "hi"}]),
        lambda c: c.generate("zzzz-no-such-model", keep_alive=0),
        lambda c: c.delete("zzzz-no-such-model"),
    ],
)
def test_an_unknown_model_is_404_with_a_clear_message(client: Any, call: Any) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        call(client)
    assert info.value.status_code == 404
    assert "zzzz-no-such-model" in info.value.error


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda c: c.embed(ENCODER, "hi", options={"num_gpu": 1}), "num_gpu"),
        (lambda c: c.embed(ENCODER, "hi", options={"temperature": 0.2}), "does not sample"),
        (lambda c: c.embed(ENCODER, "hi", options={"wibble": 1}), "wibble"),
        (lambda c: c.embed(ENCODER, "hi", dimensions=8), "Matryoshka"),
        (lambda c: c.embed(ENCODER, "hi", keep_alive="soon"), "keep_alive"),
        (lambda c: c.generate(ENCODER, prompt="hi"), "does not generate text"),
        (lambda c: c.chat(ENCODER, messages=[{"role": "user", "content": "hi"}]), "generate"),
        (lambda c: c.generate(ENCODER, prompt="hi", format="json"), "format"),
        (lambda c: c.generate(ENCODER, prompt="hi", suffix="end"), "suffix"),
        (lambda c: c.generate(ENCODER, prompt="hi", raw=True, system="s"), "raw mode"),
        (lambda c: c.generate(ENCODER, prompt="hi", template="{{ .Prompt }}"), "template"),
        (lambda c: c.generate(ENCODER, prompt="hi", context=[1, 2]), "context"),
        (lambda c: c.generate(ENCODER, prompt="hi", think=True), "think"),
        (lambda c: c.generate(ENCODER, prompt="hi", images=[b"\x89PNG"]), "images"),
        (
            lambda c: c.generate(ENCODER, prompt="hi", options={"repeat_penalty": 1.3}),
            "repeat_penalty",
        ),
        (lambda c: c.generate(ENCODER, prompt="hi", options={"top_p": 3}), "top_p"),
        (lambda c: c.generate(ENCODER, prompt="hi", options={"num_predict": "x"}), "num_predict"),
        (lambda c: c.pull(ENCODER, insecure=True), "insecure"),
    ],
)
def test_bad_input_is_400_naming_what_is_wrong(
    client: Any, pulled: list[Any], call: Any, says: str
) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        call(client)
    assert info.value.status_code == 400, info.value.error
    assert says in info.value.error


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/embed", b"{not json"),
        ("/api/embed", b'{"model": "x", "input": [1, 2]}'),
        ("/api/embed", b'{"model": "x", "input": "hi", "bogus": true}'),
        ("/api/chat", b'{"model": "x", "messages": [{"role": "robot", "content": "hi"}]}'),
        ("/api/generate", b'{"prompt": "hi"}'),
        ("/api/pull", b"{}"),
    ],
)
def test_malformed_requests_are_400_in_ollama_shape(
    server: ServerProcess, path: str, body: bytes
) -> None:
    r = httpx.post(
        server.url + path, content=body, headers={"content-type": "application/json"}, timeout=30
    )
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and isinstance(r.json()["error"], str)


def test_version_and_the_probes_ollama_tools_send(server: ServerProcess, client: Any) -> None:
    from modelport import __version__

    assert httpx.head(server.url + "/", timeout=10).status_code == 200
    assert httpx.get(server.url + "/", timeout=10).json()["name"] == "modelport"
    assert httpx.get(server.url + "/api/version", timeout=10).json() == {"version": __version__}
    assert httpx.head(server.url + "/api/tags", timeout=10).status_code == 200
    assert "Traceback" not in server.output()


# -- generation (needs the text-generation engine) ------------------------------------------


def test_chat_streams_ndjson_and_ends_with_the_counts(client: Any) -> None:
    messages = [{"role": "user", "content": "hello world"}]
    options = {"temperature": 0, "num_predict": 6}
    chunks = list(client.chat(CHAT, messages=messages, stream=True, options=options))
    assert [c.done for c in chunks[:-1]] == [False] * (len(chunks) - 1)
    last = chunks[-1]
    assert last.done and last.done_reason in ("stop", "length")
    assert 1 <= last.eval_count <= 6 and last.prompt_eval_count >= 4
    assert last.total_duration >= last.load_duration >= 0
    assert last.prompt_eval_duration > 0 and last.eval_duration > 0
    streamed = "".join(c.message.content or "" for c in chunks)
    whole = client.chat(CHAT, messages=messages, options=options)
    assert whole.message.role == "assistant"
    assert whole.message.content == streamed
    assert whole.eval_count == last.eval_count


def test_raw_generate_is_greedy_decoding_with_num_predict(
    client: Any, server_home: Path, tmp_path: Path
) -> None:
    import torch
    import transformers

    prompt = "the quick brown fox"
    answer = client.generate(
        CHAT, prompt=prompt, raw=True, options={"temperature": 0, "num_predict": 8}
    )
    folder = api.stored_model(CHAT).path
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder))
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert answer.response == expected
    assert answer.eval_count == out.shape[1] - ids.shape[1]
    assert answer.done_reason == ("length" if answer.eval_count == 8 else "stop")


def test_an_empty_generate_loads_and_keep_alive_0_unloads(client: Any) -> None:
    loaded = client.generate(CHAT, keep_alive="2m")
    assert (loaded.done, loaded.done_reason) == (True, "load")
    assert f"{CHAT}:latest" in _loaded(client)
    assert client.chat(CHAT, messages=[]).done_reason == "load"
    assert client.generate(CHAT, keep_alive=0).done_reason == "unload"
    assert f"{CHAT}:latest" not in _loaded(client)


def test_a_prompt_past_num_ctx_is_400_with_its_token_count(client: Any) -> None:
    with pytest.raises(ollama.ResponseError) as info:
        client.generate(CHAT, prompt="hello world " * 20, raw=True, options={"num_ctx": 8})
    assert info.value.status_code == 400
    assert re.search(r"at most 8 tokens, but the prompt( .*)? has \d+", info.value.error)
