"""The Catalog: a thread-safe, indexed collection of ``ModelEntry`` with events and usage."""

from __future__ import annotations

import contextlib
import gc
import heapq
import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelport.catalog.discovery import Match, NameIndex, normalize_id
from modelport.catalog.entry import CAPABILITY_NAMES, Category, ModelEntry, Source, Status
from modelport.catalog.tasks import canonical_task
from modelport.errors import DuplicateModelError, InvalidValueError, ModelNotFoundError

__all__ = ["Catalog", "CatalogQuery", "CatalogStats", "SearchHit", "paused_gc"]

#: Bulk registrations larger than this pause the cyclic garbage collector.
_GC_PAUSE_OVER = 1000


@contextlib.contextmanager
def paused_gc(*, freeze: bool = False) -> Iterator[None]:
    """Pause the cyclic garbage collector while building many long-lived objects.

    Indexing or unpickling a large catalog creates hundreds of thousands of containers
    and no garbage; the collector would scan them again every few hundred allocations
    (half the time of indexing 100k entries). With ``freeze``, what was built moves to
    the permanent generation (``gc.freeze``), so that the first collections afterwards
    do not scan it all again either (0.5 s after reading a 50k-entry name index);
    reference counting still frees it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


Listener = Callable[[ModelEntry], None]
AutoCreate = Callable[[str], ModelEntry | None]
SortKey = Literal["id", "name", "context", "price", "parameters", "usage", "release", "provider"]
SORT_KEYS: tuple[str, ...] = (
    "id",
    "name",
    "context",
    "price",
    "parameters",
    "usage",
    "release",
    "provider",
)


@dataclass(frozen=True)
class CatalogQuery:
    """Filters for ``Catalog.query``; every filter given must hold."""

    capabilities: tuple[str, ...] = ()
    provider: str | None = None
    category: str | None = None
    task: str | None = None
    tag: str | None = None
    status: str | None = None
    source: str | None = None
    min_context: int | None = None
    max_price: float | None = None
    max_vram_gb: float | None = None
    #: Only entries with these ids (a selection made elsewhere: the store, a fit check).
    ids: frozenset[str] | None = None
    sort: str = "id"
    descending: bool = False
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class SearchHit:
    """One ranked search result."""

    entry: ModelEntry
    score: float


@dataclass(frozen=True)
class CatalogStats:
    """Counts of what the catalog holds."""

    total: int
    by_source: dict[str, int]
    by_category: dict[str, int]
    by_provider: dict[str, int]
    by_status: dict[str, int]
    with_pricing: int
    with_requirements: int
    total_usage: int


@dataclass
class _Range:
    """A numeric index answering ``lo <= value <= hi``.

    Ids are bucketed by value, with the distinct values kept sorted (lazily, so a bulk
    load costs one sort): a range spanning few distinct values (context windows) is a
    handful of C-level set intersections; one spanning many (prices) checks values.
    """

    buckets: dict[float, set[str]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    _keys: list[float] | None = None

    #: Above this many distinct values in a range, check values one by one.
    MAX_BUCKETS = 64

    def add(self, value: float, model_id: str) -> None:
        bucket = self.buckets.get(value)
        if bucket is None:
            self.buckets[value] = {model_id}
            self._keys = None
        else:
            bucket.add(model_id)
        self.values[model_id] = value

    def remove(self, value: float, model_id: str) -> None:
        bucket = self.buckets.get(value)
        if bucket is not None:
            bucket.discard(model_id)
            if not bucket:
                del self.buckets[value]
                self._keys = None
        self.values.pop(model_id, None)

    def _span(self, lo: float | None, hi: float | None) -> list[float]:
        if self._keys is None:
            self._keys = sorted(self.buckets)
        start = 0 if lo is None else bisect_left(self._keys, lo)
        end = len(self._keys) if hi is None else bisect_right(self._keys, hi)
        return self._keys[start:end]

    def estimate(self, lo: float | None, hi: float | None) -> int:
        """About how many ids lie in the range (exact when it spans few values)."""
        span = self._span(lo, hi)
        if len(span) > self.MAX_BUCKETS:
            return len(self.values) * len(span) // max(len(self.buckets), 1)
        return sum(len(self.buckets[k]) for k in span)

    def ids(self, lo: float | None, hi: float | None) -> set[str]:
        return set().union(*(self.buckets[k] for k in self._span(lo, hi)))

    def filter(self, ids: set[str] | list[str], lo: float | None, hi: float | None) -> set[str]:
        """The ids among ``ids`` whose value lies in the range."""
        span = self._span(lo, hi)
        if len(span) <= self.MAX_BUCKETS and len(ids) > 4 * len(span):
            pool = ids if isinstance(ids, set) else set(ids)
            return set().union(*(pool & self.buckets[k] for k in span))
        values = self.values
        if hi is None:
            low = float("-inf") if lo is None else lo
            return {m for m in ids if values.get(m, float("-inf")) >= low}
        if lo is None:
            return {m for m in ids if values.get(m, float("inf")) <= hi}
        return {m for m in ids if lo <= values.get(m, float("nan")) <= hi}


def _price(entry: ModelEntry) -> float | None:
    return entry.pricing.blended_per_1m_tokens() if entry.pricing else None


class _neg:
    """Reverses string order inside a tuple key (for ties in descending sorts)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _neg) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _neg) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _vram(entry: ModelEntry) -> float | None:
    if entry.source is Source.API or entry.requirements is None:
        return None
    return entry.requirements.min_vram_gb


#: Sort keys whose values only the entry has, each with how to read it (None: unknown).
#: The others come from indexes kept anyway: context and price from the range indexes,
#: usage from the counts, id from the ids themselves.
_FIELD_SORTS: dict[str, Callable[[ModelEntry], Any]] = {
    "name": lambda e: e.name.lower(),
    "provider": lambda e: e.provider,
    "parameters": lambda e: e.effective_parameters,
    "release": lambda e: e.release_date,
}


class Catalog:
    """Every known model, indexed for fast filtered queries, fuzzy lookup and ranking.

    Dict-like: ``catalog[id]``, ``id in catalog``, ``len(catalog)``, iteration over ids.
    ``get`` resolves any name (exact id, alias, provider-prefixed, normalized, fuzzy).
    """

    #: Fuzzy matches below this score (0–100) are not search results.
    SEARCH_CUTOFF = 60.0

    def __init__(
        self,
        entries: Iterable[ModelEntry] = (),
        *,
        auto_create: AutoCreate | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, ModelEntry] = {}
        self._names = NameIndex()
        self._index: dict[str, dict[str, set[str]]] = {
            dim: {} for dim in ("provider", "category", "task", "tag", "status", "source", "cap")
        }
        self._context = _Range()
        self._price = _Range()
        self._vram = _Range()
        # Ids with a lineage parent (fine-tunes, quantizations): ranking reads this, not
        # the entries, so that ranking search hits never unpickles a snapshot's entries.
        self._derived: set[str] = set()
        # id → sort value of the sort keys no other index holds (known values only): a
        # query sorts ids by these and reads only the entries of its page.
        self._sort_values: dict[str, dict[str, Any]] = {k: {} for k in _FIELD_SORTS}
        self._usage: dict[str, int] = {}
        self._added: list[Listener] = []
        self._removed: list[Listener] = []
        self._used: list[Callable[[str, int], None]] = []
        self._auto_create = auto_create
        if entries:
            self.register_bulk(entries)

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # Only a catalog restored from a snapshot lacks an index attribute: it reads
            # that index from the snapshot the first time it is needed.
            deferred = self.__dict__.get("_deferred")
            if deferred is None:
                raise AttributeError(f"'Catalog' object has no attribute {name!r}")
            return deferred.load(self, name)

    # ---------------------------------------------------------------- dict-like

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._entries))

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._entries

    def __getitem__(self, model_id: str) -> ModelEntry:
        try:
            return self._entries[model_id]
        except KeyError:
            raise ModelNotFoundError(model_id) from None

    def keys(self) -> list[str]:
        """Every id."""
        with self._lock:
            return list(self._entries)

    def values(self) -> list[ModelEntry]:
        """Every entry."""
        with self._lock:
            return list(self._entries.values())

    def items(self) -> list[tuple[str, ModelEntry]]:
        """Every (id, entry) pair."""
        with self._lock:
            return list(self._entries.items())

    # ---------------------------------------------------------------- events

    def on_added(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(entry)`` after each registration; returns an unsubscribe function."""
        self._added.append(listener)
        return lambda: self._added.remove(listener)

    def on_removed(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(entry)`` after each removal; returns an unsubscribe function."""
        self._removed.append(listener)
        return lambda: self._removed.remove(listener)

    def on_usage(self, listener: Callable[[str, int], None]) -> Callable[[], None]:
        """Call ``listener(id, count)`` after each ``record_usage``."""
        self._used.append(listener)
        return lambda: self._used.remove(listener)

    def set_auto_create(self, handler: AutoCreate | None) -> None:
        """Set the handler ``get_or_create`` calls for an unknown name."""
        self._auto_create = handler

    # ---------------------------------------------------------------- mutation

    def _index_entry(self, entry: ModelEntry) -> None:
        idx = self._index
        mid = entry.id
        idx["provider"].setdefault(entry.provider, set()).add(mid)
        idx["category"].setdefault(entry.category.value, set()).add(mid)
        idx["status"].setdefault(entry.status.value, set()).add(mid)
        idx["source"].setdefault(entry.source.value, set()).add(mid)
        for task in entry.tasks:
            idx["task"].setdefault(task, set()).add(mid)
        for tag in entry.tags:
            idx["tag"].setdefault(tag, set()).add(mid)
        for cap in entry.capabilities.supported():
            idx["cap"].setdefault(cap, set()).add(mid)
        if entry.context_window is not None:
            self._context.add(entry.context_window, mid)
        if (price := _price(entry)) is not None:
            self._price.add(price, mid)
        if (vram := _vram(entry)) is not None:
            self._vram.add(vram, mid)
        if entry.lineage is not None and entry.lineage.parent is not None:
            self._derived.add(mid)
        for key, value_of in _FIELD_SORTS.items():
            if (value := value_of(entry)) is not None:
                self._sort_values[key][mid] = value
        self._names.add(mid, name=entry.name, provider=entry.provider, aliases=entry.aliases)

    def _unindex_entry(self, entry: ModelEntry) -> None:
        mid = entry.id
        for dim in self._index.values():
            for value in [
                entry.provider,
                entry.category.value,
                entry.status.value,
                entry.source.value,
                *entry.tasks,
                *entry.tags,
                *entry.capabilities.supported(),
            ]:
                ids = dim.get(value)
                if ids is not None and mid in ids:
                    ids.discard(mid)
                    if not ids:
                        del dim[value]
        if entry.context_window is not None:
            self._context.remove(entry.context_window, mid)
        if (price := _price(entry)) is not None:
            self._price.remove(price, mid)
        if (vram := _vram(entry)) is not None:
            self._vram.remove(vram, mid)
        self._derived.discard(mid)
        for values in self._sort_values.values():
            values.pop(mid, None)
        self._names.remove(mid)

    def register(self, entry: ModelEntry, *, replace: bool = False) -> None:
        """Add an entry; an existing id raises ``DuplicateModelError`` unless ``replace``."""
        self.register_bulk([entry], replace=replace)

    def register_bulk(self, entries: Iterable[ModelEntry], *, replace: bool = False) -> int:
        """Add many entries at once, all or none; returns how many were added."""
        batch = list(entries)
        with self._lock:
            seen: set[str] = set()
            for entry in batch:
                if entry.id in seen or (not replace and entry.id in self._entries):
                    raise DuplicateModelError(entry.id)
                seen.add(entry.id)
            with (
                paused_gc(freeze=True) if len(batch) > _GC_PAUSE_OVER else contextlib.nullcontext()
            ):
                for entry in batch:
                    old = self._entries.get(entry.id)
                    if old is not None:
                        self._unindex_entry(old)
                    self._entries[entry.id] = entry
                    self._index_entry(entry)
        for entry in batch:
            for listener in list(self._added):
                listener(entry)
        return len(batch)

    def remove(self, model_id: str) -> ModelEntry:
        """Remove an entry by exact id and return it."""
        with self._lock:
            entry = self._entries.pop(model_id, None)
            if entry is None:
                raise ModelNotFoundError(model_id)
            self._unindex_entry(entry)
            self._usage.pop(model_id, None)
        for listener in list(self._removed):
            listener(entry)
        return entry

    def clear(self) -> None:
        """Remove every entry (listeners are called for each)."""
        with self._lock:
            removed = list(self._entries.values())
            self._entries.clear()
            self._names.clear()
            for dim in self._index.values():
                dim.clear()
            self._context, self._price, self._vram = _Range(), _Range(), _Range()
            self._derived = set()
            self._sort_values = {k: {} for k in _FIELD_SORTS}
            self._usage.clear()
        for entry in removed:
            for listener in list(self._removed):
                listener(entry)

    # ---------------------------------------------------------------- lookup

    def count(self) -> int:
        """How many entries the catalog holds."""
        return len(self._entries)

    def exists(self, name: str) -> bool:
        """Whether ``name`` is an id or an alias (no fuzzy matching)."""
        if name in self._entries:
            return True
        try:
            match = self._names.resolve(name)
        except ModelNotFoundError:
            return False
        return match.method in ("exact", "alias")

    def resolve(self, name: str) -> Match:
        """How ``name`` resolves to an id; raises ``ModelNotFoundError`` with suggestions."""
        return self._names.resolve(name, rank=self._rank)

    def get(self, name: str) -> ModelEntry:
        """The entry for an id or any name that resolves to one model."""
        if name in self._entries:
            return self._entries[name]
        return self._entries[self.resolve(name).id]

    def get_or_create(self, name: str) -> ModelEntry:
        """The entry with this id (or alias, or normalized name), else one built and registered.

        Only a lookup that names the model itself counts: a fuzzy match is another model,
        so ``model-3`` is created beside ``model-3-large`` rather than answered by it.
        """
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        missing: ModelNotFoundError | None = None
        try:
            match = self.resolve(name)
        except ModelNotFoundError as e:
            if self._auto_create is None:
                raise
            missing = e
        else:
            if match.method != "fuzzy" or self._auto_create is None:
                return self._entries[match.id]
        made = self._auto_create(name)
        if made is None:
            raise missing or ModelNotFoundError(name)
        with self._lock:
            # Another thread may have created the same id meanwhile: one entry, shared.
            existing = self._entries.get(made.id)
            if existing is not None:
                return existing
            self.register(made)
        return made

    def _rank(self, model_id: str) -> float:
        # From the indexes alone: a search ranks up to thousands of hits, and reading each
        # entry would unpickle it from a snapshot (most of a search's time at 100k entries).
        if model_id not in self._entries:
            return 0.0
        score = math.log1p(self._usage.get(model_id, 0))
        if model_id in self._index["status"].get(Status.DEPRECATED.value, ()):
            score -= 0.5
        # An original outranks its fine-tunes and quantizations when names tie.
        if model_id not in self._derived:
            score += 0.1
        return score

    # ---------------------------------------------------------------- usage

    def record_usage(self, model_id: str, count: int = 1) -> int:
        """Count a use of a model (feeds ranking); returns the new total."""
        if count < 1:
            raise InvalidValueError(f"Usage count must be positive, got {count}.")
        with self._lock:
            if model_id not in self._entries:
                raise ModelNotFoundError(model_id)
            total = self._usage.get(model_id, 0) + count
            self._usage[model_id] = total
        for listener in list(self._used):
            listener(model_id, count)
        return total

    def usage(self, model_id: str) -> int:
        """How often a model was used."""
        return self._usage.get(model_id, 0)

    def load_usage(self, counts: dict[str, int]) -> None:
        """Set usage counts read from storage (ids unknown here are kept for later)."""
        with self._lock:
            self._usage.update(counts)

    # ---------------------------------------------------------------- queries

    def _candidate_sets(
        self, q: CatalogQuery
    ) -> tuple[list[set[str]], list[tuple[_Range, float | None, float | None]]]:
        sets: list[set[str]] = []
        ranges: list[tuple[_Range, float | None, float | None]] = []
        empty: set[str] = set()
        for cap in q.capabilities:
            if cap not in CAPABILITY_NAMES:
                raise InvalidValueError(
                    f"Unknown capability {cap!r}.",
                    hint="Known capabilities: " + ", ".join(CAPABILITY_NAMES) + ".",
                )
            sets.append(self._index["cap"].get(cap, empty))
        allowed: tuple[tuple[str, str | None, list[str]], ...] = (
            ("category", q.category, [m.value for m in Category]),
            ("status", q.status, [m.value for m in Status]),
            ("source", q.source, [m.value for m in Source]),
        )
        for label, given, choices in allowed:
            if given and given not in choices:
                raise InvalidValueError(
                    f"Unknown {label} {given!r}.", hint=f"Use one of: {', '.join(choices)}."
                )
        if q.provider:
            sets.append(self._index["provider"].get(q.provider.lower(), empty))
        if q.category:
            sets.append(self._index["category"].get(q.category, empty))
        if q.task:
            sets.append(self._index["task"].get(canonical_task(q.task), empty))
        if q.tag:
            sets.append(self._index["tag"].get(q.tag.lower(), empty))
        if q.status:
            sets.append(self._index["status"].get(q.status, empty))
        if q.source:
            sets.append(self._index["source"].get(q.source, empty))
        if q.ids is not None:
            sets.append(set(q.ids))
        bounds: tuple[tuple[str, float | None], ...] = (
            ("min_context", q.min_context),
            ("max_price", q.max_price),
            ("max_vram_gb", q.max_vram_gb),
        )
        for name, bound in bounds:
            if bound is not None and (bound < 0 or bound != bound):
                raise InvalidValueError(f"{name} must be a non-negative number, got {bound}.")
        if q.min_context is not None:
            ranges.append((self._context, float(q.min_context), None))
        if q.max_price is not None:
            ranges.append((self._price, None, float(q.max_price)))
        if q.max_vram_gb is not None:
            ranges.append((self._vram, None, float(q.max_vram_gb)))
        return sets, ranges

    def _matching_ids(self, q: CatalogQuery) -> set[str] | None:
        """Ids matching every filter, or None when no filter is given (all ids)."""
        sets, ranges = self._candidate_sets(q)
        if not sets and not ranges:
            return None
        if sets:
            # One C-level intersection, smallest set first.
            ordered = sorted(sets, key=len)
            result: set[str] = ordered[0].intersection(*ordered[1:])
            if not result:
                return result
        else:
            # Only ranges: materialize the narrowest, filter it by the others.
            narrowest = min(ranges, key=lambda r: r[0].estimate(r[1], r[2]))
            ranges = [r for r in ranges if r is not narrowest]
            result = narrowest[0].ids(narrowest[1], narrowest[2])
        for rng, lo, hi in sorted(ranges, key=lambda r: r[0].estimate(r[1], r[2])):
            if not result:
                break
            result = rng.filter(result, lo, hi)
        return result

    def _sort_value(self, sort: str) -> Callable[[ModelEntry], Any]:
        """entry → its value for ``sort`` (None: unknown); refuses an unknown sort key."""
        values: dict[str, Callable[[ModelEntry], Any]] = {
            "id": lambda e: e.id.lower(),
            "context": lambda e: e.context_window,
            "price": _price,
            "usage": lambda e: self._usage.get(e.id, 0),
            **_FIELD_SORTS,
        }
        if sort not in values:
            raise InvalidValueError(
                f"Cannot sort by {sort!r}.", hint="Sort by one of: " + ", ".join(SORT_KEYS) + "."
            )
        return values[sort]

    def _indexed_sort_value(self, sort: str) -> Callable[[str], Any]:
        """id → its value for ``sort`` (None: unknown), read from indexes, not entries (any
        key but ``id``, which sorts the ids themselves)."""
        if sort == "usage":
            usage = self._usage
            return lambda mid: usage.get(mid, 0)
        if sort == "context":
            return self._context.values.get
        if sort == "price":
            return self._price.values.get
        return self._sort_values[sort].get

    def query(self, q: CatalogQuery | None = None, /, **filters: Any) -> list[ModelEntry]:
        """Entries matching every filter, sorted, paginated (answered from indexes).

        Entries whose sort value is unknown come last in either direction; ties break by id.
        Ids are sorted by values the indexes hold; only the page's entries are read.
        """
        q = q or CatalogQuery(**filters)
        if (q.limit is not None and q.limit < 0) or q.offset < 0:
            raise InvalidValueError("limit and offset must not be negative.")
        self._sort_value(q.sort)  # refuses an unknown sort key
        value = None if q.sort == "id" else self._indexed_sort_value(q.sort)
        wanted = None if q.limit is None else q.offset + q.limit
        with self._lock:
            ids = self._matching_ids(q)
            pool = list(self._entries) if ids is None else list(ids)
            if value is None:
                # Sort the id strings themselves: C-speed keys.
                if wanted is not None and wanted < len(pool):
                    picker = heapq.nlargest if q.descending else heapq.nsmallest
                    chosen = picker(wanted, pool, key=str.lower)
                else:
                    chosen = sorted(pool, key=str.lower, reverse=q.descending)
                return [self._entries[i] for i in chosen[q.offset : wanted]]
            known = [(v, mid) for mid in pool if (v := value(mid)) is not None]
            if len(known) < len(pool):
                unknown = sorted(mid for mid in pool if value(mid) is None)
            else:
                unknown = []
            if q.descending:
                # Larger values first, ties by id ascending: sort by id, then stable by value.
                if wanted is not None and wanted < len(known):
                    known = heapq.nlargest(wanted, known, key=lambda item: (item[0], _neg(item[1])))
                else:
                    known.sort(key=lambda item: item[1])
                    known.sort(key=lambda item: item[0], reverse=True)
            elif wanted is not None and wanted < len(known):
                known = heapq.nsmallest(wanted, known)
            else:
                known.sort()
            ordered = [mid for _, mid in known] + unknown
            return [self._entries[mid] for mid in ordered[q.offset : wanted]]

    def matching_ids(self, q: CatalogQuery | None = None, /, **filters: Any) -> set[str] | None:
        """The ids of the entries matching the filters, in no order; None when no filter is
        given (every id: not copied)."""
        q = q or CatalogQuery(**filters)
        with self._lock:
            return self._matching_ids(q)

    def spelling(self, text: str) -> str | None:
        """``text`` with misspelt words corrected to words of the catalog's names, or None
        when every word is known (for "did you mean")."""
        return self._names.spelling(text) if text.strip() else None

    def count_matching(self, q: CatalogQuery | None = None, /, **filters: Any) -> int:
        """How many entries match the filters (ignores sort and pagination)."""
        q = q or CatalogQuery(**filters)
        with self._lock:
            ids = self._matching_ids(q)
            return len(self._entries) if ids is None else len(ids)

    def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Entries ranked by how well their names match ``query``, then by usage."""
        ranked = Catalog._ranked_ids(self, query, limit=limit)
        with self._lock:
            entries = self._entries
            return [SearchHit(entries[mid], score) for mid, score in ranked if mid in entries]

    def search_ids(self, query: str, *, limit: int = 20) -> list[tuple[str, float]]:
        """The (id, score) pairs of ``search``, ranked alike, without reading any entry: a
        caller showing one page of many hits reads only that page's entries.

        A catalog that answers ``search`` its own way answers this too."""
        return self._ranked_ids(query, limit=limit)

    def _ranked_ids(self, query: str, *, limit: int) -> list[tuple[str, float]]:
        """What ``search`` and ``search_ids`` of the entries in process answer."""
        if limit < 1:
            raise InvalidValueError(f"limit must be at least 1, got {limit}.")
        text = query.strip()
        if not text:
            return []
        hits: dict[str, float] = {}
        for mid, score in self._names.fuzzy_scores(text, limit=max(limit * 3, 30)):
            if score >= self.SEARCH_CUTOFF:
                hits[mid] = score
        # Words that name a task, tag, category or provider select by index too.
        norm = normalize_id(text)
        with self._lock:
            for word in {norm, *norm.split("-")}:
                for dim in ("task", "tag", "category", "provider"):
                    for mid in list(self._index[dim].get(word, ()))[:500]:
                        hits[mid] = max(hits.get(mid, 0.0), 60.0)
            ranked = sorted(
                hits.items(),
                key=lambda item: (-(item[1] + 5 * self._rank(item[0])), item[0]),
            )
            return [(mid, round(score, 1)) for mid, score in ranked[:limit] if mid in self._entries]

    def stats(self) -> CatalogStats:
        """Counts by source, category, provider and status."""
        with self._lock:

            def counts(dim: str) -> dict[str, int]:
                return dict(sorted((k, len(v)) for k, v in self._index[dim].items()))

            values = list(self._entries.values())
            return CatalogStats(
                total=len(values),
                by_source=counts("source"),
                by_category=counts("category"),
                by_provider=counts("provider"),
                by_status=counts("status"),
                with_pricing=sum(1 for e in values if e.pricing is not None),
                with_requirements=sum(1 for e in values if e.requirements is not None),
                total_usage=sum(self._usage.get(e.id, 0) for e in values),
            )

    def providers(self) -> list[str]:
        """Every provider name."""
        with self._lock:
            return sorted(self._index["provider"])

    def facet(
        self, dim: Literal["provider", "category", "task", "tag", "status", "source"]
    ) -> dict[str, int]:
        """Counts of entries by one indexed dimension."""
        with self._lock:
            return {k: len(v) for k, v in sorted(self._index[dim].items())}
