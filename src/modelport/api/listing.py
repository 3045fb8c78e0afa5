"""Listing use-case: one page of catalog models by every filter, for the CLI, the server and
the web UI."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelport.api.catalog import get_catalog, system_info

if TYPE_CHECKING:
    from modelport.catalog.catalog import Catalog
    from modelport.catalog.entry import ModelEntry
    from modelport.hardware import SystemInfo
    from modelport.validation import FitLevel

__all__ = [
    "CatalogFacets",
    "DidYouMean",
    "ModelPage",
    "catalog_facets",
    "did_you_mean",
    "list_catalog",
    "stored_catalog_ids",
    "warm_catalog",
]


@dataclass(frozen=True)
class ModelPage:
    """One page of matching catalog models, and how many match in all.

    With search text: ``spelling`` is the text with misspelt words corrected (None when
    every word was known), and ``suggestions`` are the ids of the models it most likely
    names ("did you mean"), given when asked for and a word was corrected or nothing
    matched.
    """

    models: tuple[ModelEntry, ...]
    total: int
    offset: int
    limit: int | None
    suggestions: tuple[str, ...] = ()
    spelling: str | None = None


@dataclass(frozen=True)
class CatalogFacets:
    """The values each filter of the catalog can take, with how many models have each."""

    total: int
    sources: dict[str, int]
    providers: dict[str, int]
    categories: dict[str, int]
    tasks: dict[str, int]
    statuses: dict[str, int]
    capabilities: tuple[str, ...]
    sort_keys: tuple[str, ...]


#: A search lists at most this many of its best hits.
SEARCH_HITS = 1000


def list_catalog(
    *,
    text: str | None = None,
    provider: str | None = None,
    source: str | None = None,
    category: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    capabilities: Sequence[str] = (),
    min_context: int | None = None,
    max_price: float | None = None,
    max_vram: float | None = None,
    stored: bool = False,
    fits: bool = False,
    gpu_memory: str | float | None = None,
    sort: str = "id",
    descending: bool = False,
    rank: bool = True,
    suggest: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> ModelPage:
    """Catalog models matching every filter, sorted; with ``text``, ranked by relevance
    (unless ``rank`` is false: then the matches are sorted by ``sort`` too).

    ``stored`` keeps the models pulled into the local store; ``fits`` those that fit this
    machine for inference (or a GPU of ``gpu_memory``), as ``validate`` judges them: fits
    or tight. With ``suggest``, a text with a misspelt word or no match gets the models it
    most likely meant (``did_you_mean``, which costs a name lookup).
    """
    from modelport.catalog.catalog import SORT_KEYS, CatalogQuery
    from modelport.errors import InvalidValueError

    if sort not in SORT_KEYS:  # said even when relevance orders the page
        raise InvalidValueError(
            f"Cannot sort by {sort!r}.", hint="Sort by one of: " + ", ".join(SORT_KEYS) + "."
        )
    catalog = get_catalog()
    query = CatalogQuery(
        capabilities=tuple(capabilities),
        provider=provider,
        category=category,
        task=task,
        tag=tag,
        status=status,
        source=source,
        min_context=min_context,
        max_price=max_price,
        max_vram_gb=max_vram,
        sort=sort,
        descending=descending,
    )
    end = None if limit is None else offset + limit
    if stored or fits:
        # Narrowed by the cheap filters first: the fit check weighs each remaining model.
        ids = catalog.matching_ids(query)
        if ids is None:
            ids = set(catalog.keys())
        if stored:
            ids &= stored_catalog_ids()
        if fits:
            ids = _fitting(catalog, ids, system_info(gpu_memory=gpu_memory))
        query = CatalogQuery(**{**query.__dict__, "ids": frozenset(ids)})
    if text:
        matching = catalog.matching_ids(query)
        # Ranked by ids: only the page's entries are read (from a snapshot, each one read
        # is unpickled; a search has up to a thousand hits and shows fifty).
        hits = [
            mid
            for mid, _ in catalog.search_ids(text, limit=SEARCH_HITS)
            if matching is None or mid in matching
        ]
        spelling = catalog.spelling(text)
        suggestions: tuple[str, ...] = ()
        if suggest and (spelling is not None or not hits):
            suggestions = did_you_mean(text).models
        if not rank and hits:
            ordered = CatalogQuery(
                **{**query.__dict__, "ids": frozenset(hits), "limit": limit, "offset": offset}
            )
            models = catalog.query(ordered)
        else:
            models = [catalog[mid] for mid in hits[offset:end] if mid in catalog]
        return ModelPage(tuple(models), len(hits), offset, limit, suggestions, spelling)
    page = catalog.query(CatalogQuery(**{**query.__dict__, "limit": limit, "offset": offset}))
    return ModelPage(tuple(page), catalog.count_matching(query), offset, limit)


@dataclass(frozen=True)
class DidYouMean:
    """What a search text most likely meant: the text spelt right (None when every word
    was known), and the ids of the models it most likely names."""

    spelling: str | None
    models: tuple[str, ...]


#: Shorter texts are still being typed: nothing to correct yet.
SUGGEST_FROM = 3


def did_you_mean(text: str) -> DidYouMean:
    """The spelling and the models a search text most likely meant: the model it resolves
    to as a name, or the suggestions a name that resolves to none gets."""
    from modelport.errors import ModelNotFoundError

    text = text.strip()
    if len(text) < SUGGEST_FROM:
        return DidYouMean(None, ())
    catalog = get_catalog()
    spelling = catalog.spelling(text)
    try:
        models: tuple[str, ...] = (catalog.resolve(text).id,)
    except ModelNotFoundError as e:  # ambiguous too: its suggestions are the candidates
        models = tuple(e.suggestions[:5])
    return DidYouMean(spelling, models)


def warm_catalog() -> None:
    """Load the catalog and what its searches read (the name index, the spelling, the
    facets, the store's index that marks the stored models of a page) now, so that the
    first search does not wait for them; ``serve`` calls it in a background thread as it
    starts."""
    catalog_facets()
    list_catalog(text="warm up", limit=1)
    did_you_mean("warm up")
    stored_catalog_ids(())


def catalog_facets() -> CatalogFacets:
    """Every source, provider, category, task and status with its model count, the
    capabilities and the sort keys: what the filters of a listing can be."""
    from modelport.catalog.catalog import SORT_KEYS
    from modelport.catalog.entry import CAPABILITY_NAMES

    catalog = get_catalog()
    return CatalogFacets(
        total=len(catalog),
        sources=catalog.facet("source"),
        providers=catalog.facet("provider"),
        categories=catalog.facet("category"),
        tasks=catalog.facet("task"),
        statuses=catalog.facet("status"),
        capabilities=CAPABILITY_NAMES,
        sort_keys=SORT_KEYS,
    )


def stored_catalog_ids(among: Iterable[ModelEntry] | None = None) -> frozenset[str]:
    """The ids of the catalog models that have a revision in the local store (of those in
    ``among`` when given: a page of a listing, without a pass over the whole catalog)."""
    from modelport.api.store import list_models
    from modelport.catalog.entry import Source

    pulled = {m.name if m.registry == "hf" else f"{m.registry}:{m.name}" for m in list_models()}
    if not pulled:
        return frozenset()
    entries = get_catalog().values() if among is None else among
    # An entry under another id (a provider's name for an open model) names its Hub repo.
    return frozenset(
        entry.id
        for entry in entries
        if entry.id in pulled
        or (entry.source is Source.SELF_HOSTED and entry.hugging_face_id in pulled)
    )


# Verdicts already reached, per machine: a model's fit does not change while neither the
# entry (frozen: a replaced entry is another object) nor the machine does.
_fit_lock = threading.Lock()
_fit_memo: dict[tuple[object, ...], dict[str, tuple[ModelEntry, FitLevel | None]]] = {}


def _fitting(catalog: Catalog, ids: set[str], system: SystemInfo) -> set[str]:
    """Those of ``ids`` that fit ``system`` for inference (fits or tight); a model of
    unknown size is not known to fit."""
    from modelport.errors import ModelportError
    from modelport.validation import FitLevel, validate_model

    machine = (system.ram_gb, tuple((g.memory_gb, g.compute_capability) for g in system.gpus))
    with _fit_lock:
        memo = _fit_memo.setdefault(machine, {})
        if len(_fit_memo) > 8:  # planned GPU sizes come and go: keep a few machines
            for other in list(_fit_memo)[:-8]:
                del _fit_memo[other]
    found: set[str] = set()
    for model_id in ids:
        entry = catalog[model_id]
        known = memo.get(model_id)
        if known is not None and known[0] is entry:
            level = known[1]
        else:
            level = None
            if entry.is_api or entry.effective_parameters is not None:
                try:
                    level = validate_model(entry, system).fit
                except ModelportError:
                    level = None
            memo[model_id] = (entry, level)
        if level is not None and level is not FitLevel.DOES_NOT_FIT:
            found.add(model_id)
    return found
