from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.errors import InvalidReferenceError, ModelportError
from modelport.hubs.base import get_hub
from modelport.refs import Ref, parse_ref
from modelport.store.layout import StoreLayout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "hf:sentence-transformers/all-MiniLM-L6-v2@main",
            Ref("sentence-transformers/all-MiniLM-L6-v2", "hf", "main"),
        ),
        ("sentence-transformers/all-MiniLM-L6-v2", Ref("sentence-transformers/all-MiniLM-L6-v2")),
        ("onnx:resnet50", Ref("resnet50", "onnx")),
        (
            "tfhub:google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3",
            Ref("google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3", "tfhub"),
        ),
        ("torch:pytorch/vision:v0.10.0/resnet18", Ref("pytorch/vision:v0.10.0/resnet18", "torch")),
        ("openai:gpt-4o", Ref("gpt-4o", "openai")),
        ("anthropic:claude-3-5-sonnet", Ref("claude-3-5-sonnet", "anthropic")),
        ("llama 8b", Ref("llama 8b")),
        ("minilm", Ref("minilm")),
        (
            "ft:gpt-4o-mini-2024-07-18:acme:support:abc123",
            Ref("ft:gpt-4o-mini-2024-07-18:acme:support:abc123"),
        ),
        ("hf:org/model@refs/pr/1", Ref("org/model", "hf", "refs/pr/1")),
        ("hf:org/model@" + "a" * 40, Ref("org/model", "hf", "a" * 40)),
    ],
)
def test_parse_examples(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected
    assert parse_ref(str(expected)) == expected


def test_bare_org_name_means_hf() -> None:
    assert parse_ref("org/name").hub == "hf"
    assert parse_ref("minilm").hub is None
    assert parse_ref("openai:gpt-4o").hub is None
    assert parse_ref("onnx:resnet50").hub == "onnx"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5",
            Ref("google/imagenet/mobilenet_v2_100_224/classification/5", "tfhub"),
        ),
        (
            "https://www.kaggle.com/models/google/bert/tensorFlow2/en-uncased/3",
            Ref("google/bert/tensorFlow2/en-uncased/3", "tfhub"),
        ),
        ("https://huggingface.co/org/model/tree/v1", Ref("org/model", "hf", "v1")),
    ],
)
def test_urls_are_mapped(url: str, expected: Ref) -> None:
    assert parse_ref(url) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("hf:org/model@", "revision after '@' is empty"),
        ("hf:../etc/passwd", "not a Hugging Face repo id"),
        ("hf:a/b/c", "not a Hugging Face repo id"),
        ("hf:org/model@main@dev", "more than one '@'"),
        ("hf:org/model@../x", "not a valid revision"),
        ("torch:pytorch/vision@v1/resnet", "after ':'"),
        ("torch:resnet18", "not a PyTorch Hub reference"),
        ("model\x00name", "control characters"),
        ("https://example.com/model", "not model references"),
        ("https://[huggingface.co/org/model", "not a valid web address"),
        ("http://huggingface.co]/org/model", "not a valid web address"),
        ("x" * 600, "over 512"),
        ("name;rm -rf", "may hold only"),
    ],
)
def test_invalid_refs_get_a_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_ref(text)
    assert fragment in str(info.value)
    assert info.value.hint


# "--" is refused in a Hugging Face repo id (the Hub forbids it), so a valid one has none.
_segment = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,10}[A-Za-z0-9]", fullmatch=True).filter(
    lambda s: "--" not in s
)
_revision = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,12}", fullmatch=True)


@st.composite
def refs(draw: st.DrawFn) -> Ref:
    kind = draw(st.sampled_from(["hf", "bare-repo", "onnx", "api", "torch"]))
    revision = draw(st.none() | _revision)
    if kind == "hf":
        return Ref(f"{draw(_segment)}/{draw(_segment)}", "hf", revision)
    if kind == "bare-repo":
        return Ref(f"{draw(_segment)}/{draw(_segment)}", None, revision)
    if kind == "onnx":
        return Ref(draw(_segment), "onnx", revision)
    if kind == "api":
        provider = draw(st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True))
        return Ref(draw(_segment), provider, revision)
    ref = draw(st.none() | _revision)
    middle = f":{ref}" if ref else ""
    return Ref(f"{draw(_segment)}/{draw(_segment)}{middle}/{draw(_segment)}", "torch")


@given(refs())
def test_round_trip(ref: Ref) -> None:
    assert parse_ref(str(ref)) == ref


@settings(max_examples=400)
@given(st.text(max_size=80))
def test_any_string_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_ref(text)
    except InvalidReferenceError as e:
        assert e.message.startswith("Invalid model reference")
    else:
        assert parse_ref(str(ref)) == ref


# Reference-shaped text: registry prefixes, separators, web addresses, odd characters.
_FRAGMENTS = st.sampled_from(
    [
        *("hf:", "onnx:", "torch:", "tfhub:", "openai:", "ft:", "@", "/", ":", "::", "@@"),
        *("https://", "http://", "huggingface.co/", "tfhub.dev/", "kaggle.com/models/"),
        *("github.com/", "blob/", "tree/", "resolve/", "?x=1", "#f", "%2F", "%", "~", "\\"),
        *("..", ".", "//", " ", "\t", "-", "_", "+", "a", "Z", "9", "main", "v1.0", ".lock"),
        *("é", "\u202e", "0" * 40, "a" * 300),
    ]
) | st.text(max_size=6)


@settings(max_examples=int(os.environ.get("MODELPORT_FAULT_EXAMPLES", "400")))
@given(st.lists(_FRAGMENTS, max_size=12).map("".join) | st.text(min_size=500, max_size=700))
def test_reference_shaped_text_parses_or_is_one_sentence(text: str) -> None:
    try:
        ref = parse_ref(text)
    except InvalidReferenceError as e:
        assert "\n" not in e.one_line()
        return
    assert parse_ref(str(ref)) == ref
    if ref.hub is not None:
        # What the store would keep for it is a path inside the store, or a refusal.
        hub = get_hub(ref.hub)
        try:
            kept = hub.store_ref(Ref(ref.name, ref.hub, ref.revision))
        except ModelportError:
            return
        revision = kept.revision or hub.default_revision or "main"
        folder = StoreLayout(Path("/store")).model_dir(ref.hub, kept.name, revision)
        assert folder.is_relative_to("/store/models")
