"""Search use-cases across sources: the catalog and every hub at once, and hub candidates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelport.api.catalog import get_catalog, system_info

if TYPE_CHECKING:
    from modelport.hubs.search import FederatedSearch, HubCandidate

__all__ = ["hub_candidates", "search_everywhere"]


def search_everywhere(
    query: str,
    *,
    sources: Sequence[str] | None = None,
    task: str | None = None,
    limit: int = 20,
    timeout: float = 5.0,
    category: str | None = None,
    format: str | None = None,
    max_size: int | None = None,
) -> FederatedSearch:
    """Search the catalog and every hub in parallel, ranked and merged; each source gets
    ``timeout`` seconds, and one that fails leaves its reason in ``failures``."""
    from modelport.hubs.search import search_everywhere as federated

    return federated(
        query,
        catalog=get_catalog,
        sources=sources,
        task=task,
        limit=limit,
        timeout=timeout,
        category=category,
        format=format,
        max_size=max_size,
    )


def hub_candidates(
    task: str,
    *,
    exclude: Sequence[str] = (),
    gpu_memory: str | float | None = None,
    limit: int = 5,
    timeout: float = 5.0,
) -> tuple[list[HubCandidate], dict[str, str]]:
    """The most downloaded models for a task on every hub, checked against this machine."""
    from modelport.hubs.search import hub_candidates as candidates

    return candidates(
        task,
        exclude=exclude,
        system=system_info(gpu_memory=gpu_memory),
        limit=limit,
        timeout=timeout,
    )
