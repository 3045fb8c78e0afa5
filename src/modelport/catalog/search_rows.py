"""The row of PostgreSQL's ``catalog_search`` table for an entry: what filters, sorts and
fuzzy lookups read, computed by the same code the in-process catalog indexes with."""

from __future__ import annotations

from typing import Any

from modelport.catalog.discovery import normalize_id, short_name, tokens
from modelport.catalog.entry import ModelEntry, Source, Status

__all__ = ["SEARCH_COLUMNS", "fuzzy_key", "rank_bonus", "search_row"]

#: The columns ``search_row`` fills, in the table's order (``pending`` and ``usage`` aside).
SEARCH_COLUMNS = (
    "id",
    "lower_id",
    "name_key",
    "provider",
    "category",
    "source",
    "status",
    "tasks",
    "tags",
    "capabilities",
    "alias_keys",
    "name_keys",
    "words",
    "fuzzy",
    "context",
    "price",
    "vram",
    "parameters",
    "release",
    "has_pricing",
    "has_requirements",
    "rank",
)


def fuzzy_key(model_id: str, name: str) -> str:
    """The words a fuzzy lookup compares: the id's last part, then the name's other words
    (as ``NameIndex`` builds its fuzzy keys)."""
    short = tokens(short_name(model_id))
    seen = set(short)
    return " ".join([*short, *(w for w in tokens(name) if w not in seen)])


def rank_bonus(entry: ModelEntry) -> float:
    """What ranking adds besides usage: an original outranks its fine-tunes, a deprecated
    model comes after others (as ``Catalog._rank``)."""
    score = 0.0
    if entry.status is Status.DEPRECATED:
        score -= 0.5
    if entry.lineage is None or entry.lineage.parent is None:
        score += 0.1
    return score


def search_row(entry: ModelEntry) -> dict[str, Any]:
    """The search row of one entry (``pending`` false: computed)."""
    keys = {
        normalize_id(entry.id),
        normalize_id(short_name(entry.id)),
        normalize_id(entry.name),
        *(normalize_id(a) for a in entry.aliases),
    }
    keys.discard("")
    vram = None
    if entry.source is not Source.API and entry.requirements is not None:
        vram = entry.requirements.min_vram_gb
    return {
        "id": entry.id,
        "lower_id": entry.id.lower(),
        "name_key": entry.name.lower(),
        "provider": entry.provider,
        "category": entry.category.value,
        "source": entry.source.value,
        "status": entry.status.value,
        "tasks": list(entry.tasks),
        "tags": list(entry.tags),
        "capabilities": entry.capabilities.supported(),
        "alias_keys": sorted({a.lower() for a in entry.aliases}),
        "name_keys": sorted(keys),
        "words": sorted(set(tokens(entry.id)) | set(tokens(entry.name))),
        "fuzzy": fuzzy_key(entry.id, entry.name),
        "context": entry.context_window,
        "price": entry.pricing.blended_per_1m_tokens() if entry.pricing else None,
        "vram": vram,
        "parameters": entry.effective_parameters,
        "release": entry.release_date,
        "has_pricing": entry.pricing is not None,
        "has_requirements": entry.requirements is not None,
        "rank": rank_bonus(entry),
    }
