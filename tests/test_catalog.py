from __future__ import annotations

import threading

import pytest

from modelport.catalog.catalog import Catalog, CatalogQuery
from modelport.catalog.entry import ModelEntry
from modelport.errors import (
    AmbiguousModelError,
    DuplicateModelError,
    InvalidValueError,
    ModelNotFoundError,
    UnknownTaskError,
)
from tests.catalog_backends import MakeCatalog, memory_only
from tests.conftest import make_entry


@pytest.fixture
def catalog(catalog_backend: MakeCatalog) -> Catalog:
    return catalog_backend(
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


@memory_only
def test_register_refuses_duplicates_unless_replace(catalog: Catalog) -> None:
    with pytest.raises(DuplicateModelError):
        catalog.register(make_entry("openai/gpt-4o"))
    catalog.register(make_entry("openai/gpt-4o", description="new"), replace=True)
    assert catalog["openai/gpt-4o"].description == "new"
    assert catalog.query(capabilities=("vision",)) == []  # re-indexed


@memory_only
def test_register_bulk_is_all_or_nothing(catalog: Catalog) -> None:
    before = len(catalog)
    with pytest.raises(DuplicateModelError):
        catalog.register_bulk([make_entry("new/one"), make_entry("new/one")])
    with pytest.raises(DuplicateModelError):
        catalog.register_bulk([make_entry("new/two"), make_entry("openai/gpt-4o")])
    assert len(catalog) == before
    assert "new/two" not in catalog


@memory_only
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


def test_get_or_create_looks_up_the_exact_id_first() -> None:
    catalog = Catalog([make_entry("model-3-large")], auto_create=lambda name: make_entry(name))
    barrier = threading.Barrier(10)
    made: dict[int, str] = {}

    def create(i: int) -> None:
        barrier.wait()
        made[i] = catalog.get_or_create(f"model-{i}").id
        assert catalog.get_or_create(f"model-{i}").id == f"model-{i}"

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == {i: f"model-{i}" for i in range(10)}
    assert len(catalog) == 11
    # A fuzzy match is another model: the name is created, not answered by a neighbour.
    assert catalog.get_or_create("model-large").id == "model-large"


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
        ({"source": "cloud"}, InvalidValueError),
        ({"category": "robots"}, InvalidValueError),
        ({"status": "retired"}, InvalidValueError),
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


def test_every_sort_orders_by_the_entries_own_values() -> None:
    # Sorting reads indexes, not entries: the order must be the one the entries' own values
    # give (unknown last either way, ties by id), through replacements and removals.
    from modelport.catalog.catalog import SORT_KEYS
    from modelport.catalog.loader import load_bundled_entries

    catalog = Catalog(load_bundled_entries())
    catalog.record_usage("openai/gpt-4o", 3)
    catalog.record_usage("openai/gpt-4o-mini", 3)
    gone = catalog.remove("meta-llama/Llama-3.1-8B")
    catalog.register(make_entry(gone.id, name="Zz Llama", parameters=7), replace=True)
    of = {
        "id": lambda e: e.id.lower(),
        "name": lambda e: e.name.lower(),
        "provider": lambda e: e.provider,
        "context": lambda e: e.context_window,
        "price": lambda e: e.pricing.blended_per_1m_tokens() if e.pricing else None,
        "parameters": lambda e: e.effective_parameters,
        "usage": lambda e: catalog.usage(e.id),
        "release": lambda e: e.release_date,
    }
    assert set(of) == set(SORT_KEYS)
    entries = catalog.values()
    for key, value in of.items():
        known = [e for e in entries if value(e) is not None]
        unknown = sorted((e for e in entries if value(e) is None), key=lambda e: e.id)
        for descending in (False, True):
            known.sort(key=lambda e: e.id)
            known.sort(key=value, reverse=descending)
            expected = [e.id for e in known + unknown]
            if key == "id":
                expected = sorted((e.id for e in entries), key=str.lower, reverse=descending)
            got = catalog.query(sort=key, descending=descending)
            assert [e.id for e in got] == expected, (key, descending)
            page = catalog.query(sort=key, descending=descending, limit=7, offset=5)
            assert [e.id for e in page] == expected[5:12], (key, descending)
            api = catalog.query(sort=key, descending=descending, source="api", limit=4)
            assert [e.id for e in api] == [i for i in expected if catalog[i].is_api][:4]


def test_ranking_follows_status_and_lineage_as_entries_change() -> None:
    # Names tie (ties then go by id): an original leads its fine-tune, a deprecated model
    # comes after, and a replaced entry is ranked by what it is now.
    catalog = Catalog(
        [
            make_entry("aaa/zebra-coder", lineage={"parent": "zzz/zebra-coder"}),
            make_entry("zzz/zebra-coder"),
        ]
    )

    def ranked() -> list[str]:
        return [h.entry.id for h in catalog.search("zebra coder")]

    assert ranked() == ["zzz/zebra-coder", "aaa/zebra-coder"]
    catalog.register(make_entry("aaa/zebra-coder"), replace=True)
    assert ranked() == ["aaa/zebra-coder", "zzz/zebra-coder"]
    old = {"status": "deprecated", "deprecation": {"message": "replaced"}}
    catalog.register(make_entry("aaa/zebra-coder", **old), replace=True)
    assert ranked() == ["zzz/zebra-coder", "aaa/zebra-coder"]
    catalog.remove("aaa/zebra-coder")
    catalog.register(make_entry("aaa/zebra-coder"))
    assert ranked() == ["aaa/zebra-coder", "zzz/zebra-coder"]
    catalog.clear()
    catalog.register_bulk([make_entry("aaa/zebra-coder"), make_entry("zzz/zebra-coder", **old)])
    assert ranked() == ["aaa/zebra-coder", "zzz/zebra-coder"]


def test_search_ids_rank_like_search(catalog: Catalog) -> None:
    for text in ("gpt-4o", "embedding", "llama", "nothing-like-this"):
        hits = catalog.search(text, limit=7)
        assert catalog.search_ids(text, limit=7) == [(h.entry.id, h.score) for h in hits]
    with pytest.raises(InvalidValueError):
        catalog.search_ids("x", limit=0)


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


def _brute_force(entries: list[ModelEntry], q: CatalogQuery) -> list[str]:
    def price(e: ModelEntry) -> float | None:
        return e.pricing.blended_per_1m_tokens() if e.pricing else None

    def vram(e: ModelEntry) -> float | None:
        if e.source.value == "api" or e.requirements is None:
            return None
        return e.requirements.min_vram_gb

    out = []
    for e in entries:
        if any(getattr(e.capabilities, c) is not True for c in q.capabilities):
            continue
        if q.source and e.source.value != q.source:
            continue
        if q.provider and e.provider != q.provider:
            continue
        if q.min_context is not None and (
            e.context_window is None or e.context_window < q.min_context
        ):
            continue
        if q.max_price is not None and ((p := price(e)) is None or p > q.max_price):
            continue
        if q.max_vram_gb is not None and ((v := vram(e)) is None or v > q.max_vram_gb):
            continue
        out.append(e.id)
    return sorted(out, key=str.lower)


def test_indexed_queries_agree_with_a_brute_force_scan(catalog_backend: MakeCatalog) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    rng = __import__("random").Random(3)
    entries = []
    for i in range(400):
        api = rng.random() < 0.5
        entries.append(
            make_entry(
                f"p{i % 7}/m-{i}",
                source="api" if api else "self-hosted",
                context_window=rng.choice([None, 2048, 8192, 32768, 131072, 10**6]),
                capabilities={"chat": rng.random() < 0.6, "vision": rng.random() < 0.3},
                # Many distinct prices and VRAM needs exercise the value-by-value path.
                pricing={
                    "input_per_1m_tokens": rng.uniform(0, 20),
                    "output_per_1m_tokens": rng.uniform(0, 60),
                }
                if api and rng.random() < 0.9
                else None,
                requirements=None if api else {"min_vram_gb": round(rng.uniform(0.1, 200), 2)},
            )
        )
    catalog = catalog_backend(entries)

    @settings(max_examples=150, deadline=None)
    @given(
        caps=st.lists(st.sampled_from(["chat", "vision"]), unique=True),
        source=st.none() | st.sampled_from(["api", "self-hosted"]),
        provider=st.none() | st.sampled_from([f"p{i}" for i in range(8)]),
        min_context=st.none() | st.sampled_from([0, 2048, 5000, 131072, 2 * 10**6]),
        max_price=st.none() | st.floats(0, 50),
        max_vram=st.none() | st.floats(0, 250),
    )
    def check(caps, source, provider, min_context, max_price, max_vram) -> None:  # type: ignore[no-untyped-def]
        q = CatalogQuery(
            capabilities=tuple(caps),
            source=source,
            provider=provider,
            min_context=min_context,
            max_price=max_price,
            max_vram_gb=max_vram,
        )
        assert [e.id for e in catalog.query(q)] == _brute_force(entries, q)
        assert catalog.count_matching(q) == len(_brute_force(entries, q))

    check()
