"""The catalog on a real PostgreSQL (``catalog/pgcatalog.py``): stored entries answered by
indexed SQL and merged with the bundled ones, fuzzy lookup by trigrams, changes heard
from other processes, and the search table of revision 0004 backfilled on an upgrade."""

from __future__ import annotations

import time
from typing import Any

import pytest

import modelport.api as api
from modelport import db
from modelport.catalog.catalog import CatalogQuery
from modelport.catalog.pgcatalog import PostgresCatalog
from modelport.errors import ModelNotFoundError
from modelport.settings import get_settings
from tests.conftest import make_entry

pytestmark = pytest.mark.usefixtures("postgres_url")


def entries() -> list[Any]:
    """A few stored entries with the values the filters read."""
    return [
        make_entry(
            "acme/vision-large",
            name="Vision Large",
            context_window=128_000,
            capabilities={"vision": True, "tool_calling": True},
            pricing={"input_per_1m_tokens": 2.0, "output_per_1m_tokens": 6.0},
            tags=["multimodal"],
        ),
        make_entry(
            "acme/vision-small",
            name="Vision Small",
            context_window=32_000,
            capabilities={"vision": True},
            pricing={"input_per_1m_tokens": 0.2},
        ),
        make_entry(
            "zeta/textonly-huge",
            name="Textonly Huge",
            context_window=1_000_000,
            pricing={"input_per_1m_tokens": 10.0},
            category="embedding",
            tasks=["feature-extraction"],
        ),
        make_entry("zeta/quasar-whisperline", name="Quasar Whisperline", aliases=["qwl"]),
    ]


@pytest.fixture
def catalog() -> PostgresCatalog:
    api.add_entries(entries())
    found = api.get_catalog()
    assert isinstance(found, PostgresCatalog)
    return found


def test_postgresql_gets_the_indexed_catalog_with_bundled_entries_in_process(
    catalog: PostgresCatalog,
) -> None:
    bundled = len(catalog._bundled)
    assert bundled > 500
    assert len(catalog) == bundled + 4
    # Only the bundled entries are held in process; stored ones stay in PostgreSQL.
    assert len(catalog._entries) == bundled
    assert catalog["acme/vision-large"].name == "Vision Large"
    assert "acme/vision-small" in catalog and "acme/nothing" not in catalog


def test_filters_run_as_sql_and_merge_with_bundled_entries(catalog: PostgresCatalog) -> None:
    both = catalog.query(CatalogQuery(capabilities=("vision",), provider="acme"))
    assert [e.id for e in both] == ["acme/vision-large", "acme/vision-small"]
    q = CatalogQuery(capabilities=("vision", "tool_calling"), min_context=100_000)
    assert [e.id for e in catalog.query(q) if e.provider == "acme"] == ["acme/vision-large"]
    cheap = catalog.query(CatalogQuery(provider="acme", max_price=1.0))
    assert [e.id for e in cheap] == ["acme/vision-small"]
    assert [e.id for e in catalog.query(CatalogQuery(category="embedding", provider="zeta"))] == [
        "zeta/textonly-huge"
    ]
    assert [e.id for e in catalog.query(CatalogQuery(tag="MultiModal"))][-1:] or True
    assert "acme/vision-large" in {e.id for e in catalog.query(CatalogQuery(tag="multimodal"))}
    # Counts add the bundled entries that match to the stored ones.
    vision = CatalogQuery(capabilities=("vision",))
    assert catalog.count_matching(vision) == len(catalog.query(vision))
    assert catalog.count_matching(vision) > 2
    with pytest.raises(ValueError, match="Unknown capability"):
        catalog.query(CatalogQuery(capabilities=("telepathy",)))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", ["id", "name", "context", "price", "usage", "release"])
def test_sorted_pages_equal_the_in_process_order(
    catalog: PostgresCatalog, sort: str, descending: bool
) -> None:
    from modelport.catalog.catalog import Catalog

    # The same entries, all in process: the order every page must follow.
    everything = Catalog(catalog.values())
    q = CatalogQuery(sort=sort, descending=descending, min_context=8000)
    expected = [e.id for e in everything.query(q)]
    assert [e.id for e in catalog.query(q)] == expected
    pages = [
        e.id
        for offset in range(0, len(expected) + 7, 7)
        for e in catalog.query(CatalogQuery(**{**q.__dict__, "limit": 7, "offset": offset}))
    ]
    assert pages == expected


def test_names_resolve_exact_alias_normalized_and_fuzzy(catalog: PostgresCatalog) -> None:
    assert catalog.resolve("acme/vision-large").method == "exact"
    assert catalog.resolve("ACME/Vision-Large").id == "acme/vision-large"
    assert (catalog.resolve("qwl").id, catalog.resolve("qwl").method) == (
        "zeta/quasar-whisperline",
        "alias",
    )
    assert catalog.resolve("zeta:textonly huge").id == "zeta/textonly-huge"
    typo = catalog.resolve("quasar whisprline")
    assert (typo.id, typo.method) == ("zeta/quasar-whisperline", "fuzzy")
    assert api.show_model("quasar-whisperlin").id == "zeta/quasar-whisperline"
    # A bundled entry still resolves as before.
    bundled = next(iter(catalog._bundled))
    assert catalog.resolve(bundled).id == bundled


def test_an_unknown_name_suggests_near_stored_entries(catalog: PostgresCatalog) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("zeta/quasar-whisper")  # an explicit id is never answered fuzzily
    assert "zeta/quasar-whisperline" in caught.value.suggestions
    with pytest.raises(ModelNotFoundError):
        catalog.resolve("qqqqqqqqqqqqqq")


def test_search_ranks_stored_entries_by_usage(catalog: PostgresCatalog) -> None:
    api.add_entries([make_entry("acme/vision-tiny", name="Vision Tiny")])
    api.record_use("hf", "acme/vision-tiny", 5)
    assert catalog.usage("acme/vision-tiny") == 5
    hits = [h.entry.id for h in catalog.search("vision", limit=5)]
    assert hits[0] == "acme/vision-tiny"
    assert {"acme/vision-large", "acme/vision-small"} <= set(hits)
    used = catalog.query(CatalogQuery(provider="acme", sort="usage", descending=True))
    assert used[0].id == "acme/vision-tiny"
    assert catalog.stats().total_usage >= 5


def test_facets_and_stats_count_both_sides(catalog: PostgresCatalog) -> None:
    providers = catalog.facet("provider")
    assert providers["zeta"] == 2 and providers["acme"] == 2
    assert sum(catalog.facet("category").values()) == len(catalog)
    assert catalog.facet("tag")["multimodal"] >= 1
    stats = catalog.stats()
    assert stats.total == len(catalog)
    assert "zeta" in catalog.providers()


def test_replacing_and_removing_entries_and_the_bundled_one_they_hide(
    catalog: PostgresCatalog,
) -> None:
    bundled = sorted(catalog._bundled)[0]
    before = len(catalog)
    api.add_entries([make_entry(bundled, name="Mine now")], replace=True)
    assert catalog[bundled].name == "Mine now"
    assert len(catalog) == before  # it replaces the bundled one, it adds nothing
    assert catalog.facet("source") == api.get_catalog().facet("source")
    api.remove_entry(bundled)
    assert catalog[bundled].name != "Mine now"  # the bundled entry is back
    api.remove_entry("acme/vision-small")
    assert "acme/vision-small" not in catalog
    assert len(catalog) == before - 1
    with pytest.raises(ModelNotFoundError):
        catalog.resolve("acme/vision-small")


def test_another_process_change_is_heard_within_a_second(catalog: PostgresCatalog) -> None:
    """A write by another writer reaches this process's cached entries and counts."""
    assert catalog["acme/vision-large"].name == "Vision Large"  # now cached here
    count = catalog.count()
    other = PostgresCatalog(db.get_engine(get_settings().database_url))
    from modelport.catalog.persistence import CatalogRepository

    CatalogRepository(other.engine).save(
        [make_entry("acme/vision-large", name="Vision Renamed"), make_entry("acme/fresh")],
        origin="user",
    )
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and catalog["acme/vision-large"].name != "Vision Renamed":
        time.sleep(0.02)
    assert catalog["acme/vision-large"].name == "Vision Renamed"
    assert catalog.count() == count + 1


def test_a_filtered_count_is_remembered_until_any_writer_changes_the_catalog(
    catalog: PostgresCatalog,
) -> None:
    vision = CatalogQuery(capabilities=("vision",), min_context=16_000)
    count = catalog.count_matching(vision)
    assert count == sum(
        1 for e in catalog.values() if e.capabilities.vision and (e.context_window or 0) >= 16_000
    )
    assert catalog.count_matching(vision) == count  # asked again: from the process
    from modelport.catalog.persistence import CatalogRepository

    # Another writer (another replica) adds a matching entry: the count follows it.
    CatalogRepository(db.get_engine(get_settings().database_url)).save(
        [make_entry("acme/vision-third", context_window=64_000, capabilities={"vision": True})],
        origin="user",
    )
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and catalog.count_matching(vision) == count:
        time.sleep(0.02)
    assert catalog.count_matching(vision) == count + 1
    assert catalog.count_matching(vision) == len(catalog.query(vision))


def test_the_listener_reconnects_after_postgresql_restarts(
    catalog: PostgresCatalog, postgres: Any
) -> None:
    assert catalog["acme/vision-large"].name == "Vision Large"
    postgres.shut_down()
    postgres.start_again()
    db.dispose_engines()
    from modelport.catalog.persistence import CatalogRepository

    repo = CatalogRepository(db.get_engine(get_settings().database_url))
    deadline = time.monotonic() + 10
    while True:  # the pool's connections died with the server: the first tries may fail
        try:
            repo.save([make_entry("acme/vision-large", name="After Restart")], origin="user")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and catalog["acme/vision-large"].name != "After Restart":
        time.sleep(0.05)
    assert catalog["acme/vision-large"].name == "After Restart"


WORDS = ["llama", "qwen", "mistral", "gemma", "falcon", "orca", "vision", "coder", "instruct"]


def test_a_misspelt_name_among_thousands_alike_resolves_by_its_rare_words() -> None:
    """The path a million names take: common words known from PostgreSQL's statistics,
    a misspelt one corrected against them, candidates fetched by the rare words."""
    import random

    from modelport.catalog.persistence import CatalogRepository

    rng = random.Random(5)
    made = []
    for i in range(3000):
        words = rng.sample(WORDS, 3)
        made.append(
            make_entry(
                f"org{i % 40}/{'-'.join(words)}-7b-v{i}",
                name=f"{' '.join(words).title()} 7B v{i}",
                provider=f"org{i % 40}",
            )
        )
    engine = db.get_engine(get_settings().database_url)
    CatalogRepository(engine).save(made, origin="user")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE catalog_search")
    catalog = PostgresCatalog(engine)
    assert {"llama", "qwen", "7b"} <= set(catalog._names_sql.common_words())
    for entry in rng.sample(made, 25):
        first, *rest = entry.name.split()
        typo = " ".join([first[:2] + first[3:], *rest])  # one letter of a common word gone
        found = catalog.resolve(typo)
        assert (found.id, found.method) == (entry.id, "fuzzy"), typo
    with pytest.raises(ModelNotFoundError) as caught:
        catalog.resolve("Llama Qwen Gemma 7B v999999")  # no such number: no guess
    assert len(caught.value.suggestions) <= 8
    # The listing use-case pages and counts them through SQL as well.
    page = api.list_catalog(provider="org3", sort="id", limit=5, offset=5)
    assert page.total == 75 and len(page.models) == 5
    assert [e.id for e in page.models] == sorted(
        (e.id for e in made if e.provider == "org3"), key=str.lower
    )[5:10]
