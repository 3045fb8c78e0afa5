from __future__ import annotations

import pytest

from modelport.catalog.catalog import Catalog
from modelport.catalog.discovery import NameIndex, normalize_id, short_name, tokens
from modelport.catalog.ids import infer_traits, parse_model_id
from modelport.catalog.loader import load_bundled_entries
from modelport.errors import AmbiguousModelError, ModelNotFoundError
from tests.conftest import make_entry


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Meta-Llama/Llama_3.1 8B", "meta-llama-llama-3.1-8b"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("llama3:latest", "llama3"),
        ("  GPT-4o  ", "gpt-4o"),
        ("org/model.v2", "org-model-v2"),
    ],
)
def test_normalize(text: str, normal: str) -> None:
    assert normalize_id(text) == normal


@pytest.fixture
def index() -> NameIndex:
    idx = NameIndex()
    idx.add("openai/gpt-4o", name="GPT-4o", provider="openai", aliases=["gpt4o"])
    idx.add("openai/gpt-4o-mini", name="GPT-4o mini", provider="openai", aliases=[])
    idx.add("groq/llama-3.1-8b-instant", name="Llama 3.1 8B Instant", provider="groq", aliases=[])
    idx.add(
        "meta-llama/Llama-3.1-8B-Instruct",
        name="Llama 3.1 8B Instruct",
        provider="meta",
        aliases=[],
    )
    idx.add(
        "meta-llama/Llama-3.2-1B-Instruct",
        name="Llama 3.2 1B Instruct",
        provider="meta",
        aliases=[],
    )
    idx.add(
        "sentence-transformers/all-MiniLM-L6-v2",
        name="all-MiniLM-L6-v2",
        provider="sentence-transformers",
        aliases=["minilm"],
    )
    return idx


def test_lookup_order(index: NameIndex) -> None:
    assert index.resolve("openai/gpt-4o").method == "exact"
    assert index.resolve("OPENAI/GPT-4O").method == "exact"
    assert index.resolve("gpt4o").method == "alias"
    match = index.resolve("openai:gpt-4o-mini")
    assert (match.id, match.method) == ("openai/gpt-4o-mini", "provider")
    match = index.resolve("all_minilm_l6_v2")
    assert (match.id, match.method) == ("sentence-transformers/all-MiniLM-L6-v2", "normalized")
    match = index.resolve("llama 3.2 1b instrct")
    assert (match.id, match.method) == ("meta-llama/Llama-3.2-1B-Instruct", "fuzzy")
    assert 0.7 < match.confidence <= 1.0


def test_ambiguous_and_unknown_names_suggest(index: NameIndex) -> None:
    with pytest.raises(AmbiguousModelError) as info:
        index.resolve("llama 3.1 8b")
    assert "meta-llama/Llama-3.1-8B-Instruct" in info.value.suggestions
    assert "groq/llama-3.1-8b-instant" in info.value.suggestions
    assert "Did you mean" in info.value.one_line()
    with pytest.raises(ModelNotFoundError) as missing:
        index.resolve("qqqqqqqq")
    assert "modelport search" in missing.value.one_line()
    with pytest.raises(ModelNotFoundError):
        index.resolve("   ")


def test_rank_breaks_ties(index: NameIndex) -> None:
    rank = {"groq/llama-3.1-8b-instant": 5.0}
    match = index.resolve("llama 3.1 8b", rank=lambda i: rank.get(i, 0.0))
    assert match.id == "groq/llama-3.1-8b-instant"


def test_remove_forgets_every_key(index: NameIndex) -> None:
    index.remove("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ModelNotFoundError):
        index.resolve("minilm")
    assert len(index) == 5


def test_parse_openai_finetune() -> None:
    parsed = parse_model_id("ft:gpt-4o-mini-2024-07-18:acme:support-bot:9xYz")
    assert parsed.kind == "openai-finetune"
    assert parsed.base == "gpt-4o-mini-2024-07-18"
    assert parsed.organization == "acme"
    assert parsed.suffix == "support-bot"
    assert parsed.job_id == "9xYz"


@pytest.mark.parametrize(
    ("model_id", "kind", "base"),
    [
        ("someone/Llama-3.1-8B-Instruct-lora-sql", "adapter", "Llama-3.1-8B-Instruct-sql"),
        ("someone/qlora-mistral-7b", "adapter", "mistral-7b"),
        ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "quantized", "Mistral-7B-Instruct-v0.2"),
        ("unsloth/Llama-3.2-1B-Instruct-bnb-4bit", "quantized", "Llama-3.2-1B-Instruct"),
        ("meta-llama/Llama-3.1-8B", "plain", None),
    ],
)
def test_parse_adapter_and_quantized_ids(model_id: str, kind: str, base: str | None) -> None:
    parsed = parse_model_id(model_id)
    assert parsed.kind == kind
    assert parsed.base == base


def test_infer_traits() -> None:
    t = infer_traits("meta-llama/Llama-3.1-8B-Instruct")
    assert t.parameters == 8_000_000_000
    assert t.instruct
    assert t.chat
    assert not t.moe
    t = infer_traits("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert t.moe
    assert t.num_experts == 8
    assert t.parameters == 46_700_000_000  # experts share attention: not 8 × 7B
    t = infer_traits("someone/Mixtral-4x7B-merge")
    assert (t.num_experts, t.parameters) == (4, 28_000_000_000)
    t = infer_traits("Qwen/Qwen3-30B-A3B")
    assert t.moe
    assert t.parameters == 30_000_000_000
    assert t.active_parameters == 3_000_000_000
    t = infer_traits("Qwen/Qwen2.5-VL-7B-Instruct")
    assert t.vision
    assert t.parameters == 7_000_000_000
    t = infer_traits("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    assert t.reasoning
    assert t.parameters == 1_500_000_000
    assert infer_traits("TheBloke/Llama-2-7B-GPTQ").quantization == "gptq"
    assert infer_traits("unsloth/gemma-2-9b-it-bnb-4bit").quantization_bits == 4
    assert infer_traits("some/model-Q4_K_M").quantization == "gguf"
    assert infer_traits("google/gemma-2-9b-it").instruct
    assert infer_traits("HuggingFaceTB/SmolLM2-135M-Instruct").parameters == 135_000_000
    assert infer_traits("Qwen/Qwen2.5-Coder-7B-Instruct").code
    assert infer_traits("BAAI/bge-small-en-v1.5").embedding


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return Catalog(load_bundled_entries())


@pytest.mark.parametrize(
    ("model_id", "closest"),
    [
        ("meta-llama/Meta-Llama-3.1-70B-Instruct", "meta-llama/Llama-3.1-70B-Instruct"),
        ("meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct"),
        ("unsloth/Meta-Llama-3.1-70B-Instruct-bnb-4bit", "meta-llama/Llama-3.1-70B-Instruct"),
        ("Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-Instruct-v0.3"),
        ("meta-llama/Llama-3.2-3B-Instruct-GGUF", "meta-llama/Llama-3.2-3B-Instruct"),
        ("sentence-transformers/all-MiniLM-L12-v1", "sentence-transformers/all-MiniLM-L12-v2"),
        ("anthropic:gpt-4o", "openai/gpt-4o"),
        ("hf:meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct"),
        ("openai/gpt-3.5-turbo-0613", "openai/gpt-3.5-turbo"),
        ("TheBloke/Mistral-7B-Instruct-v0.3-AWQ", "mistralai/Mistral-7B-Instruct-v0.3"),
    ],
)
def test_a_full_id_not_in_the_catalog_is_not_found(
    bundled: Catalog, model_id: str, closest: str
) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        bundled.resolve(model_id)
    assert type(info.value) is ModelNotFoundError
    assert info.value.suggestions[0] == closest  # the model it differs from least
    assert "Did you mean" in info.value.one_line()


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("mistral 7b instruct v0.2", "mistralai/Mistral-7B-Instruct-v0.3"),
        ("qwen2.5 7b instruct awq", "Qwen/Qwen2.5-7B-Instruct"),
        ("llama 3.2 3b instruct gguf", "meta-llama/Llama-3.2-3B-Instruct"),
        ("all minilm l12 v1", "sentence-transformers/all-MiniLM-L12-v2"),
        ("qwen2.5 73b", "Qwen/Qwen2.5-72B-Instruct"),
        ("llama 3.2 8b", "meta-llama/Llama-3.2-3B-Instruct"),
    ],
)
def test_fuzzy_names_never_cross_numbers_or_quantization(
    bundled: Catalog, name: str, closest: str
) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        bundled.resolve(name)
    assert closest in info.value.suggestions


def test_numbers_and_quantization_pick_the_member(bundled: Catalog) -> None:
    assert bundled.resolve("qwen 7b").id == "Qwen/Qwen2.5-7B-Instruct"
    assert bundled.resolve("qwen 72b").id == "Qwen/Qwen2.5-72B-Instruct"
    # Not quantized unless the name says so.
    assert bundled.resolve("llama 3.2 3b").id == "meta-llama/Llama-3.2-3B-Instruct"
    assert bundled.resolve("llama 3.2 3b bnb 4bit").id == "unsloth/Llama-3.2-3B-Instruct-bnb-4bit"


def test_concatenated_names_and_one_letter_typos(bundled: Catalog) -> None:
    assert bundled.resolve("gpt4turbo").id == "openai/gpt-4-turbo"
    assert bundled.resolve("gpt4omini").id == "openai/gpt-4o-mini"
    match = bundled.resolve("minlm")
    assert (match.id, match.method) == ("sentence-transformers/all-MiniLM-L6-v2", "fuzzy")
    # A number is never cut to make words: 73b is not 7 + 3b.
    with pytest.raises(ModelNotFoundError):
        bundled.resolve("qwen73b")


@pytest.mark.parametrize(
    "name",
    [
        "llama 8b",
        "qwen 7b",
        "llama 3.2 1b",
        "gemma 2 9b",
        "mistral 7b",
        "gpt 4",
        "phi 3.5 mini",
        "tinyllama",
    ],
)
def test_a_more_specific_name_resolves_to_the_same_model(bundled: Catalog, name: str) -> None:
    """Adding any word of the chosen model to the name keeps the choice (the one rule)."""
    chosen = bundled.resolve(name).id
    words = set(name.split())
    for word in tokens(chosen) + tokens(bundled[chosen].name):
        if word not in words:
            assert bundled.resolve(f"{name} {word}").id == chosen, word


def test_llama_8b_and_llama_3_1_8b_agree(bundled: Catalog) -> None:
    assert bundled.resolve("llama 8b").id == "meta-llama/Llama-3.1-8B"
    assert bundled.resolve("llama 3.1 8b").id == "meta-llama/Llama-3.1-8B"
    assert bundled.resolve("llama 3.1 8b instruct").id == "meta-llama/Llama-3.1-8B-Instruct"


def test_no_alias_names_another_bundled_model(bundled: Catalog) -> None:
    own: dict[str, set[str]] = {}
    for entry in bundled.values():
        for key in {normalize_id(entry.id), normalize_id(short_name(entry.id))}:
            own.setdefault(key, set()).add(entry.id)
    for entry in bundled.values():
        for alias in entry.aliases:
            others = own.get(normalize_id(alias), set()) - {entry.id}
            # The same weights served by Groq share the name; another model may not.
            assert all(o.startswith("groq/") for o in others), (entry.id, alias, others)


def test_compare_never_shows_a_neighbour_for_a_missing_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelport.api import compare_models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub is not asked; the catalog answers
    missing, known = compare_models(
        ["meta-llama/Meta-Llama-3.1-70B-Instruct", "minilm"], gpu_memory="80GB"
    )
    assert (missing.parameters, missing.fit, missing.license) == (None, None, None)
    assert any("Did you mean meta-llama/Llama-3.1-70B-Instruct" in e for e in missing.errors)
    assert known.parameters is not None


def test_traits_know_the_moe_families_of_the_catalog() -> None:
    t = infer_traits("openai/gpt-oss-120b")
    assert (t.moe, t.reasoning, t.num_experts) == (True, True, 128)
    assert (t.parameters, t.active_parameters) == (117_000_000_000, 5_100_000_000)
    assert infer_traits("unsloth/gpt-oss-20b-GGUF").active_parameters == 3_600_000_000
    assert infer_traits("deepseek-ai/DeepSeek-V2-Lite").parameters == 15_700_000_000
    assert infer_traits("deepseek-ai/DeepSeek-V2.5").num_experts == 160
    assert infer_traits("deepseek-ai/DeepSeek-V3.1").active_parameters == 37_000_000_000
    assert not infer_traits("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B").moe
    scout = infer_traits("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    assert (scout.parameters, scout.active_parameters, scout.num_experts) == (
        109_000_000_000,
        17_000_000_000,
        16,
    )
    # 17B-16E of a family we do not know: 17B runs per token, the total is unknown.
    other = infer_traits("someone/Thing-17B-16E")
    assert (other.parameters, other.active_parameters, other.num_experts) == (
        None,
        17_000_000_000,
        16,
    )
    for entry in load_bundled_entries():
        if entry.moe is None:
            continue
        traits = infer_traits(entry.id)
        assert traits.moe, entry.id
        if traits.num_experts is not None:
            assert traits.num_experts == entry.moe.num_experts, entry.id
        if traits.parameters is not None and entry.moe.total_parameters:
            assert traits.parameters == pytest.approx(entry.moe.total_parameters, rel=0.03)


def test_search_repairs_run_together_words_and_typos(bundled: Catalog) -> None:
    assert bundled.search("gpt4turbo", limit=1)[0].entry.id == "openai/gpt-4-turbo"
    top = [h.entry.id for h in bundled.search("minlm", limit=3)]
    assert "sentence-transformers/all-MiniLM-L6-v2" in top


def test_another_hubs_model_is_not_a_catalog_namesake() -> None:
    from modelport import api

    with pytest.raises(ModelNotFoundError) as info:
        api.show_model("onnx:resnet50")  # the zoo's ResNet-50 is not microsoft/resnet-50
    assert "microsoft/resnet-50" in info.value.suggestions
    assert api.show_model("hf:microsoft/resnet-50").id == "microsoft/resnet-50"


@pytest.mark.parametrize(
    ("ref", "other"),
    [
        ("onnx:resnet-50", "microsoft/resnet-50"),  # a normalized name, not a fuzzy one
        ("onnx:minilm", "sentence-transformers/all-MiniLM-L6-v2"),  # an alias
        ("onnx:gpt-4o", "openai/gpt-4o"),
        ("hf:openai/gpt-4o", "openai/gpt-4o"),  # an API model is no hub's
    ],
)
def test_a_hub_reference_is_never_answered_by_another_registrys_model(ref: str, other: str) -> None:
    from modelport import api

    with pytest.raises(ModelNotFoundError) as info:
        api.resolve_model(ref)
    assert info.value.suggestions == [other]


def test_a_hub_reference_finds_that_hubs_own_catalog_entry() -> None:
    from modelport import api

    api.add_entries(
        [make_entry("onnx:resnet50", category="vision", tasks=["image-classification"])]
    )
    assert api.resolve_model("onnx:resnet50").id == "onnx:resnet50"
    assert api.resolve_model("hf:minilm").id == "sentence-transformers/all-MiniLM-L6-v2"


def test_adding_a_word_of_the_chosen_model_never_changes_the_choice(bundled: Catalog) -> None:
    """The one rule, swept over the bundled catalog: names made of some words of an id."""
    import random

    rng = random.Random(9)
    checked = 0
    for entry in rng.sample(bundled.values(), 50):
        words = tokens(short_name(entry.id))
        for k in range(1, len(words)):
            name = " ".join(rng.sample(words, k))
            try:
                chosen = bundled.resolve(name)
            except ModelNotFoundError:
                continue
            if chosen.method != "fuzzy":
                continue
            held = tokens(chosen.id) + tokens(bundled[chosen.id].name)
            for word in set(held) - set(name.split()):
                assert bundled.resolve(f"{name} {word}").id == chosen.id, (name, word)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    "suffix", ["AWQ", "GPTQ", "GGUF", "exl2", "MLX", "bnb-4bit", "8bit", "int4", "fp8", "Q4_K_M"]
)
def test_a_name_without_quantization_never_resolves_to_a_quantized_model(suffix: str) -> None:
    idx = NameIndex()
    idx.add(f"someone/Model-7B-{suffix}", name=f"Model 7B {suffix}", provider="x", aliases=[])
    with pytest.raises(ModelNotFoundError) as info:
        idx.resolve("model 7b")
    assert info.value.suggestions == [f"someone/Model-7B-{suffix}"]
    assert idx.resolve(f"model 7b {suffix}").id == f"someone/Model-7B-{suffix}"
