"""Search the catalog and every hub at once: parallel, bounded in time, ranked, merged.

Each source answers within its own time limit; a source that fails or is offline leaves
its reason in ``failures`` and the others' results stand. Results are ranked by how well
their names match the query, then by popularity, and the same model published in several
places (a zoo model also on the Hub, a catalog entry with its Hugging Face id) is one
result that lists every reference.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from modelport.errors import ModelportError

if TYPE_CHECKING:
    from modelport.catalog.catalog import Catalog
    from modelport.hardware import SystemInfo

__all__ = ["FederatedResult", "FederatedSearch", "search_everywhere"]


@dataclass(frozen=True)
class FederatedResult:
    """One model, possibly found in several places."""

    ref: str
    source: str
    name: str
    task: str | None
    score: float
    downloads: int | None = None
    likes: int | None = None
    also: tuple[str, ...] = ()
    format: str | None = None
    size: int | None = None
    #: Every format the merged sources publish it in (``format`` is the leading one's).
    formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class FederatedSearch:
    """Ranked results, and what each source did."""

    query: str
    results: tuple[FederatedResult, ...]
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _key(name: str) -> str:
    """What makes two listings the same model: the last path part, letters and digits,
    without an ``_opset17``-style suffix (zoo models on the Hub carry one)."""
    short = re.sub(r"[-_.]?opset\d+$", "", name.rsplit("/", 1)[-1].lower())
    return re.sub(r"[^a-z0-9]+", "", short)


def _relevance(query: str, name: str) -> float:
    from rapidfuzz import fuzz

    if not query:
        return 50.0
    return float(fuzz.WRatio(query.lower(), name.lower()))


def _from_catalog(
    catalog: Callable[[], Catalog], query: str, task: str | None, limit: int
) -> list[FederatedResult]:
    hits = catalog().search(query, limit=limit) if query else []
    out = []
    for hit in hits:
        entry = hit.entry
        if task and task not in entry.tasks:
            continue
        also = (f"hf:{entry.hugging_face_id}",) if entry.hugging_face_id else ()
        out.append(
            FederatedResult(
                f"catalog:{entry.id}",
                "catalog",
                entry.id,
                entry.tasks[0] if entry.tasks else None,
                hit.score,
                also=also,
                format="api" if entry.source.value == "api" else None,
                # What a download weighs: a quantized model at its own bits, not 16.
                size=entry.weights_bytes,
            )
        )
    return out


def _from_hub(name: str, query: str, task: str | None, limit: int) -> list[FederatedResult]:
    from modelport.hubs.base import get_hub

    found = get_hub(name).search(query, task=task, limit=limit)
    return [
        FederatedResult(
            f"{m.hub}:{m.id}",
            m.hub,
            m.id,
            m.task,
            _relevance(query, m.id),
            downloads=m.downloads,
            likes=m.likes,
            format=m.format,
            size=m.size or None,
        )
        for m in found
    ]


T = TypeVar("T")


def _fan_out(
    names: Sequence[str], work: Callable[[str], list[T]], timeout: float
) -> tuple[list[T], dict[str, str], dict[str, float]]:
    """Run ``work(name)`` for every source in parallel; each gets ``timeout`` seconds.

    Returns every result, why each failing or silent source gave none, and each source's
    own time (a snapshot: a source still running keeps writing its time).
    """
    seconds: dict[str, float] = {}

    def timed(name: str) -> list[T]:
        start = time.perf_counter()
        try:
            return work(name)
        finally:
            seconds[name] = round(time.perf_counter() - start, 3)

    pool = ThreadPoolExecutor(max_workers=max(1, len(names)))
    futures = {pool.submit(timed, name): name for name in names}
    done, pending = wait(futures, timeout=timeout)
    results: list[T] = []
    failures: dict[str, str] = {}
    for future in done:
        error = future.exception()
        if error is None:
            results.extend(future.result())
        elif isinstance(error, ModelportError):
            failures[futures[future]] = error.one_line()
        else:
            failures[futures[future]] = f"{type(error).__name__}: {error}"
    for future in pending:
        failures[futures[future]] = f"no answer within {timeout:g} s"
    pool.shutdown(wait=False, cancel_futures=True)
    return results, failures, {name: seconds.get(name, timeout) for name in names}


def _keep(r: FederatedResult, category: str | None, fmt: str | None, max_size: int | None) -> bool:
    if category:
        from modelport.catalog.tasks import get_task
        from modelport.errors import UnknownTaskError

        try:
            if r.task is None or get_task(r.task).category.value != category:
                return False
        except UnknownTaskError:
            return False
    if fmt and fmt not in _formats(r):
        return False
    # A model of unknown size is kept: nothing says it is too big.
    return not (max_size is not None and r.size is not None and r.size > max_size)


def search_everywhere(
    query: str,
    *,
    catalog: Callable[[], Catalog] | None = None,
    sources: Sequence[str] | None = None,
    task: str | None = None,
    limit: int = 20,
    timeout: float = 5.0,
    category: str | None = None,
    format: str | None = None,
    max_size: int | None = None,
) -> FederatedSearch:
    """Search the catalog and hubs in parallel; each gets ``timeout`` seconds.

    ``catalog`` gives the catalog to search (it is loaded in its own thread, beside the
    hubs); without it only the hubs are searched. ``category`` (text, vision, audio, …),
    ``format`` (onnx, safetensors, pytorch, tensorflow, gguf, api) and ``max_size``
    (bytes) filter the merged results.
    """
    from modelport.hubs.base import get_hub, hub_names

    def one(name: str) -> list[FederatedResult]:
        if name == "catalog":
            assert catalog is not None
            return _from_catalog(catalog, query, task, limit)
        return _from_hub(name, query, task, limit)

    everything = [*(["catalog"] if catalog is not None else []), *hub_names()]
    names = [n for n in sources if n != "catalog" or catalog is not None] if sources else everything
    results, failures, seconds = _fan_out(names, one, timeout)
    known = set(hub_names())
    by_name = {"catalog", *(n for n in names if n in known and get_hub(n).mirrored_by_name)}
    merged = _merge_and_rank(results, by_name)
    ranked = [r for r in merged if _keep(r, category, format, max_size)]
    return FederatedSearch(query, tuple(ranked[:limit]), failures, seconds)


def _merge_and_rank(results: list[FederatedResult], by_name: set[str]) -> list[FederatedResult]:
    merged: dict[str, FederatedResult] = {}
    refs_seen: dict[str, str] = {}
    for r in results:
        # Name-alike models merge only where one registry mirrors another (the zoo on the
        # Hub, catalog entries of Hub repos); a PyTorch Hub repo or a Kaggle model is its own.
        key = _key(r.name) if r.source in by_name else r.ref
        # A catalog entry and the hub listing of its Hugging Face id are one model.
        for ref in (r.ref, *r.also):
            if ref in refs_seen:
                key = refs_seen[ref]
        current = merged.get(key)
        if current is None:
            merged[key] = r
        else:
            # The catalog's entry says the most about a model: it leads a merged result.
            if "catalog" in (current.source, r.source):
                best, other = (current, r) if current.source == "catalog" else (r, current)
            else:
                best, other = (current, r) if _rank(current) >= _rank(r) else (r, current)
            also = tuple(
                ref
                for ref in dict.fromkeys((*best.also, other.ref, *other.also))
                if ref != best.ref
            )
            merged[key] = FederatedResult(
                best.ref,
                best.source,
                best.name,
                best.task or other.task,
                max(best.score, other.score),
                max(best.downloads or 0, other.downloads or 0) or None,
                max(best.likes or 0, other.likes or 0) or None,
                also,
                best.format or other.format,
                best.size or other.size,
                # Each source keeps its format: the Hub's safetensors beside the zoo's ONNX.
                tuple(dict.fromkeys((*_formats(best), *_formats(other)))),
            )
        for ref in (r.ref, *r.also):
            refs_seen[ref] = key
    return sorted(merged.values(), key=lambda r: (-_rank(r), r.ref))


def _formats(r: FederatedResult) -> tuple[str, ...]:
    return r.formats or ((r.format,) if r.format else ())


def _rank(r: FederatedResult) -> float:
    popularity = math.log10((r.downloads or 0) + 1) * 2 + math.log10((r.likes or 0) + 1)
    return r.score + popularity + (5 if r.source == "catalog" else 0)


def describe(search: FederatedSearch) -> list[dict[str, Any]]:
    """The results as JSON-ready rows."""
    return [
        {
            "ref": r.ref,
            "source": r.source,
            "name": r.name,
            "task": r.task,
            "score": round(r.score, 1),
            "downloads": r.downloads,
            "likes": r.likes,
            "also": list(r.also),
            "format": r.format,
            "formats": list(_formats(r)),
            "size": r.size,
        }
        for r in search.results
    ]


@dataclass(frozen=True)
class HubCandidate:
    """A model a hub offers for a task, with why it is a candidate here."""

    ref: str
    score: float
    reasons: tuple[str, ...]
    fit: str | None


def hub_candidates(
    task: str,
    *,
    exclude: Sequence[str] = (),
    system: SystemInfo | None = None,
    limit: int = 5,
    timeout: float = 5.0,
) -> tuple[list[HubCandidate], dict[str, str]]:
    """The most downloaded models for a task on every hub, checked against this machine."""
    from modelport.hubs.base import get_hub, hub_names

    names = hub_names()
    skip = set(exclude)

    def one(hub_name: str) -> list[HubCandidate]:
        hub = get_hub(hub_name)
        found = [
            m
            for m in hub.search("", task=task, limit=limit * 2, sort="downloads")
            if f"{m.hub}:{m.id}" not in skip
        ][:limit]
        out = []
        for m in found:
            reasons = [f"does {task} on {m.hub}"]
            if m.downloads:
                reasons.append(f"{m.downloads:,} downloads")
            fit = None
            size = m.size
            if not size:
                from modelport.hubs.base import Ref

                try:
                    size = hub.info(Ref(m.id, m.hub)).size
                except ModelportError:
                    size = 0
            if size and system is not None:
                from modelport.validation import fit_by_size

                level, need = fit_by_size(size, system)
                fit = level.value
                reasons.append(f"{fit} here (about {need:.1f} GB)")
            score = (
                40 + 3 * math.log10((m.downloads or 0) + 1) - (30 if fit == "does-not-fit" else 0)
            )
            out.append(HubCandidate(f"{m.hub}:{m.id}", round(score, 2), tuple(reasons), fit))
        return out

    found, failures, _ = _fan_out(names, one, timeout)
    return sorted(found, key=lambda c: -c.score), failures
