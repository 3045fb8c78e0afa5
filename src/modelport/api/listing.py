"""Listing use-case: one page of catalog models by every filter, for the CLI and the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelport.api.catalog import get_catalog

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry

__all__ = ["ModelPage", "list_catalog"]


@dataclass(frozen=True)
class ModelPage:
    """One page of matching catalog models, and how many match in all."""

    models: tuple[ModelEntry, ...]
    total: int
    offset: int
    limit: int | None


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
    sort: str = "id",
    descending: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> ModelPage:
    """Catalog models matching every filter, sorted (by relevance to ``text`` when given)."""
    from modelport.catalog.catalog import CatalogQuery

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
    if text:
        matching = {e.id for e in catalog.query(query)}
        hits = [h.entry for h in catalog.search(text, limit=1000) if h.entry.id in matching]
        end = None if limit is None else offset + limit
        return ModelPage(tuple(hits[offset:end]), len(hits), offset, limit)
    page = catalog.query(CatalogQuery(**{**query.__dict__, "limit": limit, "offset": offset}))
    return ModelPage(tuple(page), catalog.count_matching(query), offset, limit)
