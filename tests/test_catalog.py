from __future__ import annotations

import threading

import pytest
from tests.conftest import make_entry

from modelport.catalog.catalog import Catalog, CatalogQuery
from modelport.catalog.entry import ModelEntry
from modelport.errors import (
    AmbiguousModelError,
    DuplicateModelError,
    InvalidValueError,
    ModelNotFoundError,
    UnknownTaskError,
)


@pytest.fixture
def catalog() -> Catalog:
    return Catalog(
        [
            make_entry(
                "openai/gpt-4o",
                source="api",
                category="vision-vlm",
                tasks=["text-generation", "image-text-to-text"],
                context_window=128000,
                capabilities={"chat": True, "vision": True, "tool_calling": True},
                pricing={"input_per_1m_tokens": 2.5, "output_per_1m_tokens": 10.0},
            ),
            make_entry(
                "openai/gpt-4o-mini",
                source="api",
                context_window=128000,
                capabilities={"chat": True, "tool_calling": True},
                pricing={"input_per_1m_tokens": 0.15, "output_per_1m_tokens": 0.6},
            ),
            make_entry(
                "anthropic/claude-haiku",
                source="api",
                context_window=200000,
                capabilities={"chat": True},
                tags=["fast"],
                pricing={"input_per_1m_tokens": 1.0, "output_per_1m_tokens": 5.0},
            ),
            make_entry(
                "meta-llama/Llama-3.1-8B-Instruct",
                provider="meta",
                context_window=131072,
                parameters=8_030_000_000,
                requirements={"min_vram_gb": 18},
                capabilities={"chat": True},
                aliases=["llama3.1-8b"],
            ),
            make_entry(
                "Qwen/Qwen2.5-0.5B-Instruct",
                provider="qwen",
                context_window=32768,
                parameters=494_000_000,
                requirements={"min_vram_gb": 1.7},
                capabilities={"chat": True},
            ),
            make_entry(
                "sentence-transformers/all-MiniLM-L6-v2",
                category="embedding",
                tasks=["feature-extraction"],
                aliases=["minilm"],
                parameters=22_700_000,
                requirements={"min_vram_gb": 0.6},
                capabilities={"embeddings": True},
            ),
            make_entry(
                "old/legacy-model",
                status="deprecated",
                deprecation={"message": "replaced"},
                context_window=4096,
            ),
        ]
    )


def test_dict_like_access(catalog: Catalog) -> None:
    assert len(catalog) == catalog.count() == 7
    assert "openai/gpt-4o" in catalog
    assert catalog["openai/gpt-4o"].id == "openai/gpt-4o"
    assert sorted(catalog) == sorted(catalog.keys())
    assert {e.id for e in catalog.values()} == set(catalog.keys())
    with pytest.raises(ModelNotFoundError):
        catalog["nope/nope"]
    with pytest.raises(KeyError):  # ModelNotFoundError is a KeyError too
        catalog["nope/nope"]


def test_register_refuses_duplicates_unless_replace(catalog: Catalog) -> None:
    with pytest.raises(DuplicateModelError):
        catalog.register(make_entry("openai/gpt-4o"))
    catalog.register(make_entry("openai/gpt-4o", description="new"), replace=True)
    assert catalog["openai/gpt-4o"].description == "new"
    assert catalog.query(capabilities=("vision",)) == []  # re-indexed


def test_register_bulk_is_all_or_nothing(catalog: Catalog) -> None:
    before = len(catalog)
    with pytest.raises(DuplicateModelError):
        catalog.register_bulk([make_entry("new/one"), make_entry("new/one")])
    with pytest.raises(DuplicateModelError):
        catalog.register_bulk([make_entry("new/two"), make_entry("openai/gpt-4o")])
    assert len(catalog) == before
    assert "new/two" not in catalog


def test_events(catalog: Catalog) -> None:
    added: list[str] = []
    removed: list[str] = []
    stop = catalog.on_added(lambda e: added.append(e.id))
    catalog.on_removed(lambda e: removed.append(e.id))
    catalog.register(make_entry("new/model"))
    catalog.remove("new/model")
    stop()
    catalog.register(make_entry("new/other"))
    assert added == ["new/model"]
    assert removed == ["new/model"]
    catalog.clear()
    assert len(catalog) == 0
    assert "openai/gpt-4o" in removed
    assert catalog.query(source="api") == []
    assert catalog.search("gpt") == []


def test_get_resolves_names(catalog: Catalog) -> None:
    assert catalog.get("minilm").id == "sentence-transformers/all-MiniLM-L6-v2"
    assert catalog.get("openai:gpt-4o").id == "openai/gpt-4o"
    assert catalog.get("GPT-4o").id == "openai/gpt-4o"
    assert catalog.get("llama 3.1 8b instruct").id == "meta-llama/Llama-3.1-8B-Instruct"
    assert catalog.exists("llama3.1-8b")
    assert not catalog.exists("llama 3.1 8b instruct")  # fuzzy is not existence
    with pytest.raises(ModelNotFoundError) as info:
        catalog.get("completely-unknown-zzz")
    assert not isinstance(info.value, AmbiguousModelError)


def test_get_or_create_uses_the_handler() -> None:
    made: list[str] = []

    def handler(name: str) -> ModelEntry | None:
        made.append(name)
        return make_entry(f"auto/{name}") if name.startswith("x") else None

    catalog = Catalog([make_entry("a/known")], auto_create=handler)
    assert catalog.get_or_create("a/known").id == "a/known"
    assert catalog.get_or_create("xmodel").id == "auto/xmodel"
    assert "auto/xmodel" in catalog
    with pytest.raises(ModelNotFoundError):
        catalog.get_or_create("nothing-alike")
    assert made == ["xmodel", "nothing-alike"]


def test_get_or_create_without_handler_raises() -> None:
    with pytest.raises(ModelNotFoundError):
        Catalog().get_or_create("anything")


def test_indexed_filters_combine(catalog: Catalog) -> None:
    ids = lambda **kw: [e.id for e in catalog.query(**kw)]  # noqa: E731
    assert ids(source="api", capabilities=("tool_calling",), max_price=1.0) == [
        "openai/gpt-4o-mini"
    ]
    assert ids(provider="openai") == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert ids(category="embedding") == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert ids(task="embeddings") == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert ids(tag="FAST") == ["anthropic/claude-haiku"]
    assert ids(status="deprecated") == ["old/legacy-model"]
    assert ids(min_context=150000) == ["anthropic/claude-haiku"]
    assert ids(max_vram_gb=2, source="self-hosted") == [
        "Qwen/Qwen2.5-0.5B-Instruct",
        "sentence-transformers/all-MiniLM-L6-v2",
    ]
    assert ids(capabilities=("chat", "vision"), min_context=100000) == ["openai/gpt-4o"]
    assert ids(provider="nobody") == []


def test_sort_and_paginate(catalog: Catalog) -> None:
    by_price = [e.id for e in catalog.query(source="api", sort="price")]
    assert by_price == ["openai/gpt-4o-mini", "anthropic/claude-haiku", "openai/gpt-4o"]
    top = catalog.query(sort="context", descending=True, limit=2)
    assert [e.id for e in top] == ["anthropic/claude-haiku", "meta-llama/Llama-3.1-8B-Instruct"]
    page = catalog.query(sort="id", limit=2, offset=2)
    assert [e.id for e in page] == sorted(catalog.keys(), key=str.lower)[2:4]
    assert catalog.count_matching(source="api") == 3


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"capabilities": ("telepathy",)}, InvalidValueError),
        ({"task": "nonsense-task"}, UnknownTaskError),
        ({"sort": "colour"}, InvalidValueError),
        ({"min_context": -1}, InvalidValueError),
        ({"max_price": float("nan")}, InvalidValueError),
        ({"limit": -1}, InvalidValueError),
    ],
)
def test_bad_filters(catalog: Catalog, kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        catalog.query(CatalogQuery(**kwargs))  # type: ignore[arg-type]


def test_search_ranks_and_usage_feeds_ranking(catalog: Catalog) -> None:
    hits = catalog.search("gpt-4o")
    assert hits[0].entry.id == "openai/gpt-4o"
    assert [h.entry.id for h in catalog.search("embedding")] == [
        "sentence-transformers/all-MiniLM-L6-v2"
    ]
    seen: list[tuple[str, int]] = []
    catalog.on_usage(lambda mid, n: seen.append((mid, n)))
    for _ in range(20):
        catalog.record_usage("openai/gpt-4o-mini")
    assert catalog.usage("openai/gpt-4o-mini") == 20
    assert catalog.search("gpt-4o")[0].entry.id == "openai/gpt-4o-mini"
    assert len(seen) == 20
    with pytest.raises(ModelNotFoundError):
        catalog.record_usage("nope/nope")
    with pytest.raises(InvalidValueError):
        catalog.search("x", limit=0)


def test_stats(catalog: Catalog) -> None:
    stats = catalog.stats()
    assert stats.total == 7
    assert stats.by_source == {"api": 3, "self-hosted": 4}
    assert stats.by_status["deprecated"] == 1
    assert stats.with_pricing == 3
    assert catalog.facet("provider")["openai"] == 2


def test_thread_safety_under_concurrent_writes_and_reads() -> None:
    catalog = Catalog()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(150):
                catalog.register(make_entry(f"w{n}/model-{i}", context_window=1000 + i))
                if i % 3 == 0:
                    catalog.remove(f"w{n}/model-{i}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(150):
                for entry in catalog.query(min_context=1050, limit=20):
                    assert entry.context_window is not None
                    assert entry.context_window >= 1050
                catalog.search("model 5", limit=5)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(catalog) == 4 * 100
    assert catalog.count_matching(min_context=0) == 400
