"""The catalog on PostgreSQL: user and remote entries answered by indexed SQL.

A ``PostgresCatalog`` is a ``Catalog`` whose in-process part holds only the bundled
entries (a few hundred, shipped with modelport, not worth a round trip) that no stored
entry replaces; every stored entry stays in PostgreSQL's ``catalog_search`` table
(revision 0004) and is read by the page. Each call merges the two: a query takes the first
``offset + limit`` of each side in the same order; counts and facets add up. What the
process keeps (parsed entries, counts, facets, which bundled ids are replaced) is dropped
when a ``NOTIFY modelport_catalog`` says it changed (``catalog/pglisten.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine, text

from modelport.catalog.catalog import Catalog, CatalogQuery, CatalogStats, SearchHit
from modelport.catalog.discovery import Match, normalize_id, tokens
from modelport.catalog.entry import ModelEntry
from modelport.catalog.pgnames import StoredNames, score, stored_rank
from modelport.catalog.pgquery import SORT_COLUMNS, order_key, where_clause
from modelport.catalog.search_rows import fuzzy_key
from modelport.errors import AmbiguousModelError, InvalidValueError, ModelNotFoundError

if TYPE_CHECKING:
    from modelport.catalog.pglisten import CatalogListener

__all__ = ["PostgresCatalog"]

_STAGES = {"exact": 0, "alias": 1, "provider": 2, "normalized": 3, "fuzzy": 4}
_FULL_ID = re.compile(r"^[a-z0-9_.-]+/[a-z0-9_.-]+", re.IGNORECASE)
#: Stored candidates a fuzzy lookup weighs.
_FUZZY_POOL = 12
#: A fuzzy lookup answers with a stored entry scoring at least this (0–100).
_FUZZY_MATCH = 80.0


def _best_score(near: list[tuple[str, float, float]]) -> float:
    """The score a stored candidate needs to tie with an ambiguous bundled name."""
    return max((score for _, score, _ in near), default=100.0)


class PostgresCatalog(Catalog):
    """The bundled entries in process, the stored ones in PostgreSQL, merged per call."""

    #: Parsed stored entries kept in process (dropped when their row changes).
    CACHE_SIZE = 20_000
    #: Counts and facets kept in process (all dropped at any change).
    MAX_COUNTED = 1024

    def __init__(self, engine: Engine, bundled: Iterable[ModelEntry] = ()) -> None:
        super().__init__()
        self.engine = engine
        self._bundled = {entry.id: entry for entry in bundled}
        self._cache: OrderedDict[str, ModelEntry] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._counted: dict[str, Any] = {}
        self._generation = 0
        self._listener: CatalogListener | None = None
        self._names_sql = StoredNames(engine)
        self._overlay(set(self._bundled))

    def listen(self) -> None:
        """Hear every replica's changes (``NOTIFY``) from now on, in a thread."""
        from modelport.catalog.pglisten import CatalogListener

        if self._listener is None:
            self._listener = CatalogListener(self.engine.url, self.changed).start()
            self._listener.listening.wait(timeout=5)

    def close(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    # ------------------------------------------------------------- freshness

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params or {}).all())

    def _overlay(self, ids: set[str]) -> None:
        """Show exactly the bundled entries among ``ids`` that no stored entry replaces."""
        ids &= set(self._bundled)
        if not ids:
            return
        stored = {
            r[0]
            for r in self._rows(
                "SELECT id FROM catalog_search WHERE id = ANY(:ids)", {"ids": list(ids)}
            )
        }
        with self._lock:
            for model_id in ids:
                if model_id in stored and model_id in self._entries:
                    super().remove(model_id)
                elif model_id not in stored and model_id not in self._entries:
                    # Not ``register``: that is this class's note of a stored entry.
                    Catalog.register_bulk(self, [self._bundled[model_id]])

    def changed(self, ids: Sequence[str] | None) -> None:
        """Forget what the process kept of these stored ids (None: of every one)."""
        with self._cache_lock:
            self._generation += 1
            self._counted = {}
            if ids is None:
                self._cache.clear()
                self._names_sql.forget_common_words()
            else:
                for model_id in ids:
                    self._cache.pop(model_id, None)
        self._overlay(set(self._bundled) if ids is None else set(ids))

    def refresh(self) -> None:
        """Read everything again (after a change this process made or missed)."""
        self.changed(None)

    def _cached(self, key: str, compute: Any) -> Any:
        with self._cache_lock:
            if key in self._counted:
                return self._counted[key]
            generation = self._generation
        value = compute()
        with self._cache_lock:
            if generation == self._generation:
                if len(self._counted) >= self.MAX_COUNTED:
                    self._counted.clear()  # many distinct filters: start again
                self._counted[key] = value
        return value

    # ------------------------------------------------------------- entries

    def _fetch(self, ids: Iterable[str]) -> dict[str, ModelEntry]:
        """Stored entries by id (from the process's cache where it has them)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, ModelEntry] = {}
        with self._cache_lock:
            for model_id in wanted:
                entry = self._cache.get(model_id)
                if entry is not None:
                    self._cache.move_to_end(model_id)
                    found[model_id] = entry
            generation = self._generation
        missing = [i for i in wanted if i not in found]
        if missing:
            rows = self._rows(
                "SELECT id, data FROM catalog_entries WHERE id = ANY(:ids)", {"ids": missing}
            )
            parsed = {}
            for model_id, data in rows:
                try:
                    parsed[model_id] = ModelEntry.model_validate_json(data)
                except ValidationError:
                    continue  # said once, when the catalog computed its search row
            found.update(parsed)
            with self._cache_lock:
                if generation == self._generation:
                    self._cache.update(parsed)
                    while len(self._cache) > self.CACHE_SIZE:
                        self._cache.popitem(last=False)
        return found

    def _stored(self, model_id: str) -> ModelEntry | None:
        if model_id in self._entries:
            return None
        return self._fetch([model_id]).get(model_id)

    def __len__(self) -> int:
        return len(self._entries) + self._total()

    def _total(self) -> int:
        return int(
            self._cached("total", lambda: self._rows("SELECT count(*) FROM catalog_search")[0][0])
        )

    def __contains__(self, model_id: object) -> bool:
        if not isinstance(model_id, str):
            return False
        return model_id in self._entries or self._stored(model_id) is not None

    def __getitem__(self, model_id: str) -> ModelEntry:
        entry = self._entries.get(model_id) or self._stored(model_id)
        if entry is None:
            raise ModelNotFoundError(model_id)
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        """Every id (reads every stored id: for small catalogs and exports)."""
        stored = self._rows("SELECT id FROM catalog_search ORDER BY id")
        return [*super().keys(), *(r[0] for r in stored)]

    def values(self) -> list[ModelEntry]:
        """Every entry (parses every stored one: for small catalogs and exports)."""
        rows = self._rows("SELECT data FROM catalog_entries ORDER BY id")
        stored = []
        for (data,) in rows:
            try:
                stored.append(ModelEntry.model_validate_json(data))
            except ValidationError:
                continue
        return [*super().values(), *stored]

    def items(self) -> list[tuple[str, ModelEntry]]:
        """Every (id, entry) pair (see ``values``)."""
        return [(e.id, e) for e in self.values()]

    def count(self) -> int:
        """How many entries the catalog holds."""
        return len(self)

    def register_bulk(self, entries: Iterable[ModelEntry], *, replace: bool = False) -> int:
        """Take note of entries the repository stored (the rows are written already)."""
        batch = list(entries)
        self.changed([e.id for e in batch])
        for entry in batch:
            for listener in list(self._added):
                listener(entry)
        return len(batch)

    def remove(self, model_id: str) -> ModelEntry:
        """Take note of an entry the repository deleted; returns what this process had."""
        with self._cache_lock:
            entry = self._cache.get(model_id)
        entry = entry or self._entries.get(model_id) or self._bundled.get(model_id)
        self.changed([model_id])
        if entry is None:
            raise ModelNotFoundError(model_id)
        for listener in list(self._removed):
            listener(entry)
        return entry

    # ------------------------------------------------------------- lookup

    def exists(self, name: str) -> bool:
        """Whether ``name`` is an id or an alias (no fuzzy matching)."""
        if name in self:
            return True
        try:
            return self.resolve(name).method in ("exact", "alias")
        except ModelNotFoundError:
            return False

    def get(self, name: str) -> ModelEntry:
        """The entry for an id or any name that resolves to one model."""
        entry = self._entries.get(name) or self._stored(name)  # an id: one round trip
        return entry if entry is not None else self[self.resolve(name).id]

    def _near(self, words: list[str], limit: int) -> list[tuple[str, float, float]]:
        """Stored (id, score 0–100, rank) near the words, best first."""
        found = self._names_sql.candidates(words, limit=limit)
        return [(c.id, c.score, c.rank) for c in found]

    def resolve(self, name: str) -> Match:
        """How ``name`` resolves to an id; raises ``ModelNotFoundError`` with suggestions."""
        q = name.strip()
        if not q:
            raise ModelNotFoundError(name, message="An empty name matches no model.")
        if q in self._entries:
            return Match(q, "exact", 1.0, name)
        stored = self._names_sql.stage(q)
        if stored is not None and stored[0] == "exact":
            return Match(stored[1][0], "exact", 1.0, name)
        local: Match | None = None
        local_error: ModelNotFoundError | None = None
        try:
            local = super().resolve(q)
        except ModelNotFoundError as e:
            local_error = e
        confidence = {"exact": 1.0, "alias": 0.99, "provider": 0.97, "normalized": 0.95}
        if stored is not None:
            method, ids = stored
            if local is not None and local.method == method:
                ids = [local.id, *ids]
            if local is None or _STAGES[method] < _STAGES[local.method] or local.method == method:
                if len(ids) == 1:
                    return Match(ids[0], method, confidence[method], name)  # type: ignore[arg-type]
                raise AmbiguousModelError(name, suggestions=ids[:8])
        if local is not None and local.method != "fuzzy":
            return local
        words = " ".join(tokens(q))
        near = self._near(tokens(q), _FUZZY_POOL)
        if local is not None:
            mine = score(words, fuzzy_key(local.id, self._entries[local.id].name))
            if not near or near[0][1] <= mine or near[0][1] < _FUZZY_MATCH:
                return local
        if (
            near
            and near[0][1] >= _FUZZY_MATCH
            and not _FULL_ID.match(q)
            and not isinstance(local_error, AmbiguousModelError)
        ):
            return Match(near[0][0], "fuzzy", round(near[0][1] / 100, 3), name)
        if isinstance(local_error, AmbiguousModelError):
            tied = [*local_error.suggestions, *(i for i, sc, _ in near if sc >= _best_score(near))]
            raise AmbiguousModelError(name, suggestions=list(dict.fromkeys(tied))[:8])
        # Both sides' candidates, closest first by the same score.
        scored = {i: sc for i, sc, _ in near if sc >= 50}
        for model_id in local_error.suggestions if local_error else ():
            if model_id in self._entries:
                scored[model_id] = score(words, fuzzy_key(model_id, self._entries[model_id].name))
        ranked = sorted(scored, key=lambda i: (-scored[i], i))
        raise ModelNotFoundError(name, suggestions=ranked[:8])

    def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        """Entries ranked by how well their names match ``query``, then by usage."""
        ranked = self.search_ids(query, limit=limit)
        stored = self._fetch(i for i, _ in ranked if i not in self._entries)
        out = []
        for model_id, found in ranked:
            entry = self._entries.get(model_id) or stored.get(model_id)
            if entry is not None:
                out.append(SearchHit(entry, found))
        return out

    def search_ids(self, query: str, *, limit: int = 20) -> list[tuple[str, float]]:
        """``search``'s (id, score) pairs, ranked from the search table's rows: no stored
        entry is read (a listing shows fifty of up to a thousand hits)."""
        local = super().search_ids(query, limit=limit)
        words = " ".join(tokens(query))
        if not words:
            return local
        hits: dict[str, tuple[float, float]] = {
            model_id: (score, self._rank(model_id)) for model_id, score in local
        }
        for model_id, found, rank in self._near(tokens(query), max(limit * 3, 30)):
            if found >= self.SEARCH_CUTOFF:
                hits[model_id] = (found, rank)
        norm = normalize_id(query)
        picked = sorted({norm, *norm.split("-")})
        rows = self._rows(
            "SELECT id, rank, usage FROM catalog_search WHERE tasks && CAST(:w AS text[]) "
            "OR tags && CAST(:w AS text[]) OR category = ANY(:w) OR provider = ANY(:w) LIMIT 500",
            {"w": picked},
        )
        for r in rows:
            if r.id not in hits:
                hits[r.id] = (60.0, stored_rank(r.rank, r.usage))
        ranked = sorted(hits.items(), key=lambda item: (-(item[1][0] + 5 * item[1][1]), item[0]))
        return [(model_id, round(found, 1)) for model_id, (found, _) in ranked[:limit]]

    def spelling(self, text: str) -> str | None:
        """``text`` spelt with the words of the bundled entries' names (stored names are
        not read into a vocabulary)."""
        return super().spelling(text)

    # ------------------------------------------------------------- usage

    def record_usage(self, model_id: str, count: int = 1) -> int:
        """Count a use of a model; the listener writes it (and the search row's usage)."""
        if count < 1:
            raise InvalidValueError(f"Usage count must be positive, got {count}.")
        if model_id in self._entries:
            return super().record_usage(model_id, count)
        rows = self._rows("SELECT usage FROM catalog_search WHERE id = :id", {"id": model_id})
        if not rows:
            raise ModelNotFoundError(model_id)
        for listener in list(self._used):
            listener(model_id, count)
        return int(rows[0][0]) + count

    def usage(self, model_id: str) -> int:
        """How often a model was used."""
        if model_id in self._entries:
            return super().usage(model_id)
        rows = self._rows("SELECT usage FROM catalog_search WHERE id = :id", {"id": model_id})
        return int(rows[0][0]) if rows else 0

    # ------------------------------------------------------------- queries

    def _where(self, q: CatalogQuery) -> tuple[str, dict[str, Any]]:
        self._candidate_sets(q)  # the same validation, the same messages
        return where_clause(q)

    def query(self, q: CatalogQuery | None = None, /, **filters: Any) -> list[ModelEntry]:
        """Entries matching every filter, sorted, paginated: an indexed query merged with
        the bundled entries' own page."""
        q = q or CatalogQuery(**filters)
        if (q.limit is not None and q.limit < 0) or q.offset < 0:
            raise InvalidValueError("limit and offset must not be negative.")
        value = self._sort_value(q.sort)  # refuses an unknown sort key
        column = SORT_COLUMNS[q.sort]
        wanted = None if q.limit is None else q.offset + q.limit
        where, params = self._where(q)
        direction = "DESC" if q.descending else "ASC"
        sql = (
            f"SELECT id, {column} AS value FROM catalog_search WHERE {where} "
            f"ORDER BY {column} {direction} NULLS LAST, id"
        )
        if wanted is not None:
            sql += " LIMIT :wanted"
            params["wanted"] = wanted
        rows = self._rows(sql, params)
        local = super().query(CatalogQuery(**{**q.__dict__, "limit": wanted, "offset": 0}))
        keyed: list[tuple[tuple[Any, ...], str, ModelEntry | None]] = []
        for entry in local:
            v = entry.id.lower() if q.sort == "id" else value(entry)
            keyed.append((order_key(v, entry.id, descending=q.descending), entry.id, entry))
        for r in rows:
            v = r.value
            if isinstance(v, dt.datetime):
                v = v.date()
            keyed.append((order_key(v, r.id, descending=q.descending), r.id, None))
        keyed.sort(key=lambda k: k[0])
        page = keyed[q.offset : wanted]
        stored = self._fetch(model_id for _, model_id, entry in page if entry is None)
        return [
            entry or stored[model_id] for _, model_id, entry in page if entry or model_id in stored
        ]

    def matching_ids(self, q: CatalogQuery | None = None, /, **filters: Any) -> set[str] | None:
        """The ids matching the filters; None without filters (every id: not read)."""
        q = q or CatalogQuery(**filters)
        local = super().matching_ids(q)
        where, params = self._where(q)
        if where == "NOT pending":
            return None
        rows = self._rows(f"SELECT id FROM catalog_search WHERE {where}", params)
        return (set(self._entries) if local is None else local) | {r[0] for r in rows}

    def count_matching(self, q: CatalogQuery | None = None, /, **filters: Any) -> int:
        """How many entries match the filters (ignores sort and pagination)."""
        q = q or CatalogQuery(**filters)
        where, params = self._where(q)
        if where == "NOT pending":
            return len(self)
        # An exact count scans every matching row (40 ms for a broad filter at a million
        # entries, where the page itself takes 1 ms); remembered until the next change,
        # as the facets are, so paging through a listing counts once.
        key = "count:" + where + json.dumps(params, sort_keys=True, default=str)
        stored = self._cached(
            key,
            lambda: self._rows(f"SELECT count(*) FROM catalog_search WHERE {where}", params)[0][0],
        )
        return super().count_matching(q) + int(stored)

    def facet(
        self, dim: Literal["provider", "category", "task", "tag", "status", "source"]
    ) -> dict[str, int]:
        """Counts of entries by one indexed dimension."""
        expression = {"task": "unnest(tasks)", "tag": "unnest(tags)"}.get(dim, dim)
        if expression == dim and dim not in ("provider", "category", "status", "source"):
            raise InvalidValueError(f"Cannot count by {dim!r}.")

        def compute() -> dict[str, int]:
            sql = (
                f"SELECT v, count(*) FROM (SELECT {expression} AS v FROM catalog_search) t "
                "GROUP BY v"
            )
            return {str(v): int(n) for v, n in self._rows(sql) if v is not None}

        counts = dict(self._cached(f"facet:{dim}", compute))
        for key, n in super().facet(dim).items():
            counts[key] = counts.get(key, 0) + n
        return dict(sorted(counts.items()))

    def providers(self) -> list[str]:
        """Every provider name."""
        return list(self.facet("provider"))

    def stats(self) -> CatalogStats:
        """Counts by source, category, provider and status."""
        local = super().stats()

        def compute() -> tuple[int, int, int]:
            row = self._rows(
                "SELECT count(*) FILTER (WHERE has_pricing), "
                "count(*) FILTER (WHERE has_requirements), coalesce(sum(usage), 0) "
                "FROM catalog_search"
            )[0]
            return int(row[0]), int(row[1]), int(row[2])

        pricing, requirements, usage = self._cached("stats", compute)
        return CatalogStats(
            total=len(self),
            by_source=self.facet("source"),
            by_category=self.facet("category"),
            by_provider=self.facet("provider"),
            by_status=self.facet("status"),
            with_pricing=local.with_pricing + pricing,
            with_requirements=local.with_requirements + requirements,
            total_usage=local.total_usage + usage,
        )
