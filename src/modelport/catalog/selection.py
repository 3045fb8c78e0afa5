"""Choose models for a task and constraints, self-hosted and hosted API in one ranking."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from modelport.catalog.catalog import Catalog, CatalogQuery, _price
from modelport.catalog.entry import ModelEntry, Status
from modelport.catalog.tasks import canonical_task
from modelport.errors import InvalidValueError
from modelport.hardware import SystemInfo
from modelport.validation import FitLevel, ValidationResult, validate_model

__all__ = ["Selection", "select_models"]


@dataclass(frozen=True)
class Selection:
    """A candidate model, its score and the reasons for it."""

    entry: ModelEntry
    score: float
    reasons: tuple[str, ...]
    validation: ValidationResult | None = None
    #: API models: where a usable key is (``$OPENAI_API_KEY``, ``the key store``), or None
    #: when there is none here; self-hosted models: None.
    key: str | None = None


def select_models(
    catalog: Catalog,
    task: str,
    *,
    include_api: bool = True,
    include_self_hosted: bool = True,
    min_context: int | None = None,
    max_cost_per_1m: float | None = None,
    capabilities: Sequence[str] = (),
    fits_this_machine: bool = False,
    system: SystemInfo | None = None,
    purpose: str = "inference",
    limit: int = 10,
    key_of: Callable[[ModelEntry], tuple[str | None, str]] | None = None,
    usable_only: bool = False,
) -> list[Selection]:
    """Rank models for ``task`` under the constraints, best first, each with its reasons.

    ``key_of`` says where a usable key for an API model is (None: none here) and, when
    there is none, what to do about it; with it, API models that can be called here rank
    higher, and ``usable_only`` drops those that cannot.
    """
    task = canonical_task(task)
    if limit < 1:
        raise InvalidValueError(f"limit must be at least 1, got {limit}.")
    if not include_api and not include_self_hosted:
        raise InvalidValueError("Nothing to choose from: both API and self-hosted are excluded.")
    if fits_this_machine and system is None:
        from modelport.hardware import detect_system

        system = detect_system()
    sources = [s for s, on in (("api", include_api), ("self-hosted", include_self_hosted)) if on]
    pool: list[ModelEntry] = []
    for source in sources:
        pool.extend(
            catalog.query(
                CatalogQuery(
                    task=task,
                    source=source,
                    capabilities=tuple(capabilities),
                    min_context=min_context,
                    max_price=max_cost_per_1m if source == "api" else None,
                )
            )
        )
    picks: list[Selection] = []
    for entry in pool:
        reasons = [f"does {task}"]
        score = 50.0
        if entry.status is Status.DEPRECATED:
            score -= 30
            reasons.append("deprecated")
        elif entry.status is Status.EXPERIMENTAL:
            score -= 5
            reasons.append("experimental")
        if capabilities:
            reasons.append("supports " + ", ".join(capabilities))
        if entry.context_window:
            score += min(10.0, math.log2(max(entry.context_window, 1) / 2048 + 1) * 2)
            if min_context:
                reasons.append(f"context {entry.context_window:,} ≥ {min_context:,}")
        price = _price(entry)
        if entry.is_api:
            if price is not None:
                score += max(0.0, 10 - math.log1p(price) * 3)
                reasons.append(f"about ${price:.2f} per 1M tokens (3:1 input:output)")
            else:
                reasons.append("price unknown")
        else:
            score += 8
            reasons.append("self-hosted: no per-token cost")
        key = None
        if entry.is_api and key_of is not None:
            key, missing = key_of(entry)
            if key is not None:
                score += 5
                reasons.append(f"callable here (key: {key})")
            elif usable_only:
                continue
            else:
                score -= 5
                reasons.append(missing)
        usage = catalog.usage(entry.id)
        if usage:
            score += math.log1p(usage) * 2
            reasons.append(f"used {usage} time(s) here")
        verdict = None
        if fits_this_machine and system is not None:
            if entry.effective_parameters is None and not entry.is_api:
                continue
            try:
                verdict = validate_model(entry, system, purpose=purpose)  # type: ignore[arg-type]
            except InvalidValueError:
                continue
            if verdict.fit is FitLevel.DOES_NOT_FIT:
                continue
            if verdict.fit is FitLevel.TIGHT:
                score -= 10
            reasons.append(f"{verdict.fit.value} on this machine ({verdict.reasons[0]})")
        picks.append(Selection(entry, round(score, 2), tuple(reasons), verdict, key))
    picks.sort(key=lambda s: (-s.score, s.entry.id))
    return picks[:limit]
