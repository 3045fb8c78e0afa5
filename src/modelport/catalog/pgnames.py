"""Name lookups of the stored entries on PostgreSQL: exact, alias and normalized names by
index, and fuzzy candidates by rare words and trigrams, scored as ``NameIndex`` scores.

A fuzzy lookup never ranks a million names by trigram distance (their trigrams are
shared by most of them; see revision 0004). It reads which words are common from
PostgreSQL's own statistics of ``catalog_search.words`` (``ANALYZE``, kept current by
autovacuum), corrects a misspelt common word against them, fetches the names holding
the query's rare words (short GIN postings), and only for a rare word no name holds (a
typo in it) asks the trigram index for names with a similar word (``word <% fuzzy``).
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from modelport.catalog.discovery import normalize_id

__all__ = ["Candidate", "StoredNames", "score"]

_PREFIXED = re.compile(r"^([a-z0-9_.-]+)[:/](.+)$", re.IGNORECASE)
#: Candidates fetched for one fuzzy lookup, at most (scored in process).
_POOL = 400


def score(query_words: str, key: str) -> float:
    """How well a key matches the query's words, 0–100 (as ``NameIndex`` scores)."""
    from rapidfuzz import fuzz

    return 0.6 * fuzz.token_set_ratio(query_words, key) + 0.4 * fuzz.token_sort_ratio(
        query_words, key
    )


@dataclass(frozen=True)
class Candidate:
    """A stored entry a fuzzy lookup found, with its score (0–100) and rank."""

    id: str
    score: float
    rank: float


def stored_rank(rank: float, usage: int) -> float:
    """Ranking of a stored entry: its usage and its rank bonus (as ``Catalog._rank``)."""
    return math.log1p(usage) + rank


class StoredNames:
    """Name lookups in ``catalog_search``."""

    #: How long the common words read from the statistics are kept (seconds).
    COMMON_TTL = 60.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._common: dict[str, float] = {}
        self._common_at = -math.inf
        self._lock = threading.Lock()

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())

    def stage(self, q: str) -> tuple[str, list[str]] | None:
        """The earliest non-fuzzy way ``q`` names stored entries (``exact``, ``alias``,
        ``provider``, ``normalized``), with their ids, best ranked first."""
        lq, norm = q.lower(), normalize_id(q)
        prefixed = _PREFIXED.match(q)
        rest = normalize_id(prefixed.group(2)) if prefixed else norm
        # Materialized: a LIMIT on the OR of four indexed conditions made the planner scan.
        rows = self._rows(
            "WITH hits AS MATERIALIZED (SELECT id, lower_id, provider, alias_keys, "
            "name_keys, rank, usage FROM catalog_search WHERE NOT pending AND (id = :q "
            "OR lower_id = :lq OR alias_keys @> ARRAY[CAST(:lq AS text)] "
            "OR name_keys && ARRAY[CAST(:norm AS text), CAST(:rest AS text)])) "
            "SELECT * FROM hits LIMIT 64",
            {"q": q, "lq": lq, "norm": norm, "rest": rest},
        )
        ranks = {r.id: stored_rank(r.rank, r.usage) for r in rows}
        if any(r.id == q for r in rows):
            return "exact", [q]
        lowered = [r.id for r in rows if r.lower_id == lq]
        if len(lowered) == 1:
            return "exact", lowered
        stages: list[tuple[str, list[str]]] = [
            ("alias", [r.id for r in rows if lq in r.alias_keys]),
        ]
        if prefixed:
            provider = prefixed.group(1).lower()
            stages.append(
                (
                    "provider",
                    [
                        r.id
                        for r in rows
                        if rest in r.name_keys
                        and (r.provider == provider or r.lower_id.startswith(provider + "/"))
                    ],
                )
            )
        stages.append(("normalized", [r.id for r in rows if norm in r.name_keys]))
        for method, ids in stages:
            if ids:
                return method, sorted(ids, key=lambda i: (-ranks[i], len(i), i))
        return None

    def common_words(self) -> dict[str, float]:
        """The words many names hold, with about how many names hold each (from the
        table's statistics; empty before the first ``ANALYZE``)."""
        with self._lock:
            if time.monotonic() - self._common_at < self.COMMON_TTL:
                return self._common
        rows = self._rows(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
            "FROM pg_stats s JOIN pg_class c ON c.relname = s.tablename "
            "WHERE s.tablename = 'catalog_search' AND s.attname = 'words'",
            {},
        )
        common: dict[str, float] = {}
        if rows and rows[0][0] is not None:
            total = max(float(rows[0][2]), 0.0)
            common = {w: f * total for w, f in zip(rows[0][0], rows[0][1], strict=False)}
        with self._lock:
            self._common, self._common_at = common, time.monotonic()
        return common

    def forget_common_words(self) -> None:
        """Read the common words again at the next lookup."""
        with self._lock:
            self._common_at = -math.inf

    def candidates(self, query_words: list[str], *, limit: int) -> list[Candidate]:
        """Stored entries near the query's words, best first (score, then rank).

        A word fewer than ``_POOL`` names hold (or one the statistics do not know) fetches
        those names itself; a word like no known one is also read as the common word it
        likely misspells; a rare word no name holds asks the trigram index.
        """
        from rapidfuzz import fuzz, process

        if not query_words:
            return []
        common = self.common_words()
        vocabulary = [w for w, n in common.items() if n > _POOL and w.isalpha() and len(w) >= 3]
        words: list[str] = []  # common words (corrected ones too): for scoring
        rare: list[str] = []  # fetched by their own postings
        fixed: set[str] = set()
        for word in dict.fromkeys(query_words):
            if common.get(word, 0.0) > _POOL:
                words.append(word)
                continue
            rare.append(word)
            if word in common or not word.isalpha() or len(word) < 3:
                continue
            near = process.extractOne(
                word, vocabulary, scorer=fuzz.ratio, score_cutoff=80, processor=None
            )
            if near is not None:
                words.append(near[0])  # likely a misspelt common word
                fixed.add(word)
        columns = "SELECT id, fuzzy, words, rank, usage FROM catalog_search"
        rows: list[Any] = []
        if rare:
            # One bounded scan of each word's postings: a frequent one cannot crowd out
            # the rare word that names the model.
            each = " UNION ALL ".join(
                f"({columns} WHERE words @> ARRAY[CAST(:w{i} AS text)] LIMIT {_POOL // 4})"
                for i in range(len(rare))
            )
            rows = self._rows(each, {f"w{i}": w for i, w in enumerate(rare)})
            held = {w for r in rows for w in r.words}
            for word in rare:
                if word not in held and word not in fixed and len(word) >= 3:
                    rows += self._rows(
                        f"{columns} WHERE :word <% fuzzy LIMIT {_POOL // 4}", {"word": word}
                    )
        if not rows and words:
            rows = self._rows(
                f"{columns} WHERE words @> CAST(:words AS text[]) LIMIT {_POOL}", {"words": words}
            )
        wanted = " ".join(dict.fromkeys([*words, *(w for w in rare if w not in fixed)]))
        seen: dict[str, Candidate] = {}
        for r in rows:
            if r.id not in seen:
                seen[r.id] = Candidate(
                    r.id,
                    max(score(wanted, r.fuzzy or ""), score(" ".join(query_words), r.fuzzy or "")),
                    stored_rank(r.rank, r.usage),
                )
        ranked = sorted(seen.values(), key=lambda c: (-(c.score + 5 * c.rank), c.id))
        return ranked[:limit]
