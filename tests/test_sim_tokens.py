"""Simulated OpenAI models count tokens as OpenAI does: checked against tiktoken itself,
loaded offline from the same BPE files (verified by tiktoken's own hashes)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelport
import modelport.api as api
from modelport.providers.base import register_provider, reset_providers
from modelport.providers.sim import SimProvider
from modelport.providers.sim_tokens import APPROXIMATE, token_rule

TEXTS = [
    "Hello world, this is a test of tokenization!",
    "  leading and trailing spaces  ",
    "naïve café — déjà vu; 東京は大きい 🚀🚀",
    "def f(x):\n    return x ** 2  # squares\n",
    "1234567890 3.14159 1e-9",
    "",
]


@pytest.fixture
def tiktoken_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """tiktoken reading OpenAI's BPE files from bpe-openai's wheel instead of the internet."""
    import bpe_openai
    import tiktoken.load
    import tiktoken_ext.openai_public as public

    data = Path(bpe_openai.__file__).parent / "data"

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        name = url.rsplit("/", 1)[1]
        local = tmp_path / name
        local.write_bytes(gzip.decompress((data / f"{name}.gz").read_bytes()))
        return tiktoken.load.load_tiktoken_bpe(str(local), expected_hash=expected_hash)

    monkeypatch.setattr(public, "load_tiktoken_bpe", load)
    return public


@pytest.fixture(autouse=True)
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MODELPORT_SIM_SPEED", "instant")
    api.reset()
    register_provider("sim", SimProvider)
    yield
    reset_providers(rescan=True)  # the installed providers again, as other tests expect


def test_openai_models_count_with_openais_encodings(tiktoken_offline: Any) -> None:
    import tiktoken

    catalog = api.get_catalog()
    for model, encoding in (
        ("openai/gpt-4o", "o200k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("openai/text-embedding-3-small", "cl100k_base"),
    ):
        rule = token_rule(catalog[model])
        assert rule.name == f"openai:{encoding}"
        constructor = tiktoken_offline.ENCODING_CONSTRUCTORS[encoding]
        real = tiktoken.Encoding(**constructor())
        for text in TEXTS:
            assert rule.count(text) == len(real.encode_ordinary(text)), (model, text)
            pieces = rule.pieces(text)
            assert "".join(pieces) == text
            assert len(pieces) <= len(real.encode_ordinary(text))
        ascii_text = TEXTS[0]
        assert rule.pieces(ascii_text) == [
            real.decode([t]) for t in real.encode_ordinary(ascii_text)
        ]
    # Other providers keep the documented approximation.
    assert token_rule(catalog["anthropic/claude-sonnet-4-5"]) is APPROXIMATE


def test_a_simulated_openai_call_reports_openais_usage(tiktoken_offline: Any) -> None:
    import tiktoken

    real = tiktoken.Encoding(**tiktoken_offline.ENCODING_CONSTRUCTORS["o200k_base"]())
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name three rivers of Europe, please."},
    ]
    response = modelport.prompt(
        "sim:openai:gpt-4o", messages[1]["content"], system=messages[0]["content"], seed=5
    )
    text = response.text()
    # OpenAI's guide: 3 per message, its role and content, and 3 priming the answer.
    expected_prompt = 3 + sum(
        3 + len(real.encode(m["role"])) + len(real.encode(m["content"])) for m in messages
    )
    assert response.usage is not None
    assert response.usage.input_tokens == expected_prompt
    assert response.usage.output_tokens == len(real.encode(text))


def test_embeddings_count_input_tokens_with_the_encoding() -> None:
    import asyncio

    import bpe_openai

    texts = ["a cat sat on the mat", "tokenization is fun"]
    done = asyncio.run(api.embed_texts("sim:openai:text-embedding-3-small", texts))
    encoding = bpe_openai.get_encoding("cl100k_base")
    assert done.usage.input_tokens == sum(len(encoding.encode_ordinary(t)) for t in texts)


def _word_tokenizer() -> bytes:
    """A real tokenizer.json: one token per word or punctuation mark."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = [
        "hello",
        "there",
        "friend",
        "how",
        "are",
        "you",
        "today",
        "?",
        ",",
        ".",
        "!",
        "lorem",
        "ipsum",
        "dolor",
        "sit",
        "amet",
    ]
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    return tokenizer.to_str().encode()


def test_a_model_whose_tokenizer_is_in_the_store_counts_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.conftest import make_entry
    from tests.hf_server import serve_hub

    with serve_hub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        api.reset()
        register_provider("sim", SimProvider)
        hub.add_repo(
            "acme/wordy",
            {"config.json": b'{"model_type": "gpt2"}', "tokenizer.json": _word_tokenizer()},
        )
        entry = make_entry(
            "acme/wordy-chat",
            category="text-llm",
            capabilities={"chat": True},
            hugging_face_id="acme/wordy",
        )
        api.add_entries([entry])
        before = modelport.prompt("sim:acme/wordy-chat", "hello there, friend!", seed=1)
        before.text()
        assert before.usage is not None
        assert before.usage.input_tokens == 4 + 2 + 2 + 2  # the rule: ceil(len / 4) per word
        api.pull("hf:acme/wordy")
        import modelport.api.targets as targets

        targets._TOKENIZERS.clear()  # the store lookup is remembered for a few seconds
        after = modelport.prompt("sim:acme/wordy-chat", "hello there, friend!", seed=1)
        text = after.text()
    assert after.usage is not None
    assert after.usage.input_tokens == 4 + 5  # hello there , friend !
    words_and_marks = len(text.replace(",", " , ").replace(".", " . ").split())
    assert after.usage.output_tokens == words_and_marks
    assert "".join(list(modelport.prompt("sim:acme/wordy-chat", "hi", seed=1, stream=True)))
