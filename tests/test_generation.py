"""Streaming generation on converted chat decoders, compared with transformers."""

from __future__ import annotations

import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

import modelport.api as api
from modelport.errors import InvalidValueError
from modelport.runtime import generation
from modelport.runtime.generation import GenerationDelta
from modelport.runtime.pipelines import TextGeneration
from tests import tiny_models
from tests.test_chat_template import CONVERSATIONS, WEATHER_TOOL

pytestmark = pytest.mark.slow

SCRIPT_PROMPT = "the quick brown fox"
#: What the scripted model answers: an emoji (4 byte-tokens) and two CJK characters (3 each).
SCRIPT = " jumps 😀世界 over the lazy dog"


@pytest.fixture(scope="session")
def chat_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat")
    built = {
        "chat": tiny_models.build_chat_decoder(root / "chat"),
        "script": tiny_models.build_scripted_decoder(root / "script", SCRIPT_PROMPT, SCRIPT),
    }
    for folder in built.values():
        api.convert(str(folder))
    return built


def _pipeline(folder: Path) -> TextGeneration:
    pipeline = api.load_model(str(folder)).pipeline
    assert isinstance(pipeline, TextGeneration)
    return pipeline


@pytest.fixture(scope="session")
def chat(chat_models: dict[str, Path]) -> TextGeneration:
    return _pipeline(chat_models["chat"])


@pytest.fixture(scope="session")
def script(chat_models: dict[str, Path]) -> TextGeneration:
    return _pipeline(chat_models["script"])


def _tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def _joined(deltas: list[GenerationDelta]) -> tuple[str, list[int]]:
    return "".join(d.text for d in deltas), [t for d in deltas for t in d.token_ids]


def test_conversion_carries_the_chat_template_and_generation_config(
    chat_models: dict[str, Path], chat: TextGeneration
) -> None:
    folder = Path(api.convert(str(chat_models["chat"])).path)
    assert (folder / "chat_template.jinja").exists()
    assert (folder / "generation_config.json").exists()
    tokenizer = _tokenizer(chat_models["chat"])
    both = {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    assert chat.generator.eos_ids == both  # generation_config's list, not only config.json's
    assert chat.context_length == 512


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_rendered_prompt_equals_apply_chat_template(
    chat_models: dict[str, Path], chat: TextGeneration, index: int
) -> None:
    tokenizer = _tokenizer(chat_models["chat"])
    messages = CONVERSATIONS[index]
    for tools in (None, [WEATHER_TOOL]):
        expected = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=True
        )
        ours = chat.render_chat(messages, tools=tools)
        assert ours == expected
        ids = tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True)
        assert chat.count_tokens(ours, add_special_tokens=False) == len(ids)


@pytest.mark.parametrize("chunk", [generation.PREFILL_CHUNK, 16])
@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_greedy_stream_equals_transformers_generate(
    chat_models: dict[str, Path],
    chat: TextGeneration,
    index: int,
    chunk: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    # With chunks of 16, each prompt (34 to 180 tokens) goes in by several prefill passes.
    monkeypatch.setattr(generation, "PREFILL_CHUNK", chunk)

    tokenizer = _tokenizer(chat_models["chat"])
    reference = AutoModelForCausalLM.from_pretrained(str(chat_models["chat"])).eval()
    prompt = tokenizer.apply_chat_template(
        CONVERSATIONS[index], add_generation_prompt=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = reference.generate(
            prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24, do_sample=False
        )
    expected = out[0, prompt.shape[1] :].tolist()
    deltas = list(
        chat.stream(
            chat.render_chat(CONVERSATIONS[index]),
            max_new_tokens=24,
            temperature=0,
            add_special_tokens=False,
        )
    )
    text, ids = _joined(deltas)
    assert ids == expected  # token for token, an end-of-turn id included
    last = deltas[-1]
    assert last.prompt_tokens == prompt.shape[1]
    assert last.completion_tokens == len(expected)
    assert last.finish_reason == ("stop" if expected[-1] in chat.generator.eos_ids else "length")
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert text == tokenizer.decode(expected, skip_special_tokens=True)
    whole = chat.complete(
        chat.render_chat(CONVERSATIONS[index]),
        max_new_tokens=24,
        temperature=0,
        add_special_tokens=False,
    )
    assert (whole.text, list(whole.token_ids)) == (text, ids)
    assert whole.finish_reason == last.finish_reason


def test_multibyte_characters_are_never_split(script: TextGeneration) -> None:
    deltas = list(script.stream(SCRIPT_PROMPT, max_new_tokens=40, temperature=0))
    text, _ = _joined(deltas)
    assert text == SCRIPT
    assert deltas[-1].finish_reason == "stop"  # <|im_end|> after the script
    assert not any("\ufffd" in d.text for d in deltas)
    pieces = {d.text: len(d.token_ids) for d in deltas}
    # Each character arrives whole, in the delta of its last byte-token.
    assert pieces["😀"] == 4
    assert pieces["世"] == pieces["界"] == 3


@pytest.mark.parametrize(
    ("stop", "text"),
    [
        (["lazy d"], " jumps 😀世界 over the "),  # spans several tokens
        (["界"], " jumps 😀世"),  # spans the three byte-tokens of one character
        (["zzz", "over", " 😀"], " jumps"),  # the earliest of several
        (["dogs"], SCRIPT),  # held back as "dog" until the end of turn settles it
    ],
)
def test_stop_sequences_end_the_text_before_them(
    script: TextGeneration, stop: list[str], text: str
) -> None:
    deltas = list(script.stream(SCRIPT_PROMPT, max_new_tokens=40, temperature=0, stop=stop))
    joined, ids = _joined(deltas)
    assert joined == text
    assert deltas[-1].finish_reason == "stop"
    assert deltas[-1].completion_tokens == len(ids)
    assert script.complete(SCRIPT_PROMPT, max_new_tokens=40, temperature=0, stop=stop).text == text


def test_length_ends_with_the_held_back_text(script: TextGeneration) -> None:
    full = script.complete(SCRIPT_PROMPT, max_new_tokens=40, temperature=0)
    for n in (1, 5, 9):
        cut = script.complete(SCRIPT_PROMPT, max_new_tokens=n, temperature=0, stop=["jumps!"])
        assert cut.finish_reason == "length"
        assert cut.completion_tokens == n
        assert cut.token_ids == full.token_ids[:n]
        # Even "jumps" (a prefix of the stop string) is handed out once nothing follows;
        # a character cut in its middle ends as U+FFFD, as transformers decodes it.
        assert cut.text == _tokenizer(script.folder).decode(list(cut.token_ids))


def test_cancellation_stops_after_the_flag_flips(chat: TextGeneration) -> None:
    prompt = chat.render_chat(CONVERSATIONS[0])
    asked = 0

    def cancelled() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3  # asked before each token: three tokens, then stop

    deltas = list(
        chat.stream(
            prompt, max_new_tokens=50, temperature=0, add_special_tokens=False, cancelled=cancelled
        )
    )
    assert deltas[-1].finish_reason == "cancelled"
    assert deltas[-1].completion_tokens == 3
    assert len(_joined(deltas)[1]) == 3

    flag = threading.Event()
    received = []
    for delta in chat.stream(
        prompt, max_new_tokens=50, temperature=0, add_special_tokens=False, cancelled=flag.is_set
    ):
        received.append(delta)
        flag.set()  # the client went away after the first piece of text
    assert received[-1].finish_reason == "cancelled"
    assert received[-1].completion_tokens == len(received[0].token_ids)


def test_seeds_reproduce_samples(chat: TextGeneration) -> None:
    prompt = chat.render_chat(CONVERSATIONS[1])

    def sample(seed: int, **options: Any) -> tuple[int, ...]:
        return chat.complete(
            prompt, max_new_tokens=16, seed=seed, add_special_tokens=False, **options
        ).token_ids

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)
    assert sample(7, top_k=5, top_p=0.9, temperature=0.7) == sample(
        7, top_k=5, top_p=0.9, temperature=0.7
    )


def test_concurrent_streams_equal_sequential_ones(chat: TextGeneration) -> None:
    jobs: list[dict[str, Any]] = [
        {"prompt": chat.render_chat(c), "temperature": 0} for c in CONVERSATIONS
    ] + [{"prompt": chat.render_chat(CONVERSATIONS[0]), "temperature": 1.0, "seed": 3}]

    def run(job: dict[str, Any]) -> tuple[str, list[int]]:
        return _joined(
            list(chat.stream(max_new_tokens=20, add_special_tokens=False, stop=["a"], **job))
        )

    sequential = [run(job) for job in jobs]
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(run, jobs)) == sequential


def test_prompt_beyond_the_context_names_the_token_counts(chat: TextGeneration) -> None:
    prompt = "the quick brown fox " * 30
    tokens = chat.count_tokens(prompt)
    with pytest.raises(InvalidValueError, match=f"context is 512 tokens.*has {tokens}.*500"):
        chat.stream(prompt, max_new_tokens=500)  # refused before any token is made
    assert chat.complete(prompt, max_new_tokens=512 - tokens, temperature=0).completion_tokens


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"stop": "dog"}, "stop"),
        ({"prompt": ""}, "empty"),
        ({"prompt": [5, 100_000]}, "100000 is outside"),
    ],
)
def test_bad_values_are_refused(
    script: TextGeneration, options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"prompt": SCRIPT_PROMPT, "max_new_tokens": 4, **options}
    with pytest.raises(InvalidValueError, match=message):
        script.stream(**arguments)


def test_token_ids_are_a_prompt_too(script: TextGeneration) -> None:
    ids = _tokenizer(script.folder)(SCRIPT_PROMPT)["input_ids"]
    assert script.complete(ids, max_new_tokens=40, temperature=0).text == SCRIPT


def test_a_graph_without_a_cache_generates_the_same(
    chat_models: dict[str, Path], chat: TextGeneration, tmp_path: Path
) -> None:
    import onnxruntime
    from optimum.exporters.onnx import main_export

    from modelport.runtime.generation import TextGenerator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's, as conversion keeps them quiet
        main_export(
            str(chat_models["chat"]),
            output=str(tmp_path),
            task="text-generation",  # no past_key_values in or present out
            device="cpu",
            do_validation=False,
            library_name="transformers",
        )
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"))
    plain = TextGenerator(session, tmp_path)
    assert not plain.past_inputs
    prompt = chat.render_chat(CONVERSATIONS[1])
    options: dict[str, Any] = {"max_new_tokens": 12, "temperature": 0, "add_special_tokens": False}
    assert plain.complete(prompt, **options) == chat.complete(prompt, **options)
