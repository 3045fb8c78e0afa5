"""Find a model by any name: normalization, lookup order, matching by words, suggestions.

Lookup order (``NameIndex.resolve``): exact id → alias → provider-prefixed →
normalized → by words. Each step answers with a ``Match`` that says how it matched and
how sure it is; an ambiguous or unknown name raises ``ModelNotFoundError`` (or
``AmbiguousModelError``) carrying "did you mean" suggestions.

A full id (``org/name``, ``provider:name``) is never answered with another model: when
none of the first four steps finds it, it is not found, and the closest ids are
suggestions.

A bare name resolves **by words**, one rule: the model whose id or display name holds
every word of the name (a word may be the start of a longer word; numbers, versions and
quantization words only exactly) and the fewest other words; a model quantized when the
name says no quantization never qualifies. Equal counts are broken by ``rank`` (the
catalog's: usage, then an original before its derivatives, a deprecated model last), else
the name is ambiguous. So ``llama 8b`` → ``Llama-3.1-8B`` and the more specific
``llama 3.1 8b`` resolves to the same model: every word added to a name removes one
"other" word from the winner and at most one from any rival. Before matching, a word
the catalog does not know is split into words it does (``gpt4turbo`` → ``gpt 4 turbo``)
or, failing that, corrected to the known word a typo away (``minlm`` → ``minilm``).
A name no model covers is not found, with the nearest fuzzy matches as suggestions.
"""

from __future__ import annotations

import heapq
import re
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from modelport.catalog.ids import QUANT_WORDS
from modelport.errors import AmbiguousModelError, ModelNotFoundError

__all__ = ["Match", "NameIndex", "normalize_id", "short_name", "tokens"]

MatchMethod = Literal["exact", "alias", "provider", "normalized", "fuzzy"]

#: ``org/name``, with or without a registry prefix (``hf:org/name``).
_FULL_ID = re.compile(r"^(?:[a-z0-9_.-]+:)?[^\s/:]+/\S+$", re.IGNORECASE)
_NUMERIC = re.compile(r"[0-9.]")
#: The words ``tokens`` makes of each quantization word ``QUANT_WORDS`` knows
#: (``exl2`` → ``exl 2``, ``int4`` → ``int 4``, ``q4_k_m`` → ``q 4 k m``).
_QUANT_WORD_PARTS = (
    "awq",
    "gptq",
    "gguf",
    "exl",
    "mlx",
    "bnb",
    "4bit",
    "8bit",
    "int",
    "fp",
    "nf",
    "q",
)


def _inside_number(word: str, cut: int) -> bool:
    """Whether cutting ``word`` before position ``cut`` would split a number."""
    return bool(_NUMERIC.match(word[cut - 1]) and _NUMERIC.match(word[cut]))


_SEPARATORS = re.compile(r"[\s_:/]+|(?<![0-9])\.|\.(?![0-9])")


def normalize_id(text: str) -> str:
    """One normal form for ids and names: lowercase, ``-`` for separators, no noise.

    ``"Meta-Llama/Llama_3.1 8B"`` → ``"meta-llama-llama-3.1-8b"``. Dots between
    digits stay (``3.1`` is not ``31``); ``models/`` prefixes and ``:latest`` go.
    """
    text = text.strip().lower()
    if text.startswith("models/"):
        text = text[7:]
    if text.endswith("latest"):
        text = re.sub(r"[:@]latest$", "", text)
    text = _SEPARATORS.sub("-", text)
    if "--" in text:
        text = re.sub(r"-{2,}", "-", text)
    return text.strip("-")


def _words(normal: str) -> list[str]:
    """The words of an already normalized name, letters split from digits."""
    return _LETTER_DIGIT.sub(" ", normal.replace("-", " ")).split()


_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")


def tokens(text: str) -> list[str]:
    """The search tokens of a name: normalized, letters split from digits."""
    return _words(normalize_id(text))


def short_name(model_id: str) -> str:
    """The part of an id after its last ``/``."""
    return model_id.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Match:
    """How a name resolved to an id."""

    id: str
    method: MatchMethod
    confidence: float
    query: str


@dataclass
class _Names:
    aliases: list[str]
    provider: str
    search: str
    keys: list[str] = field(default_factory=list)
    toks: list[str] = field(default_factory=list)


class NameIndex:
    """Name → id lookups for a catalog, kept up to date as entries come and go."""

    #: At most this many candidates get the expensive scorer.
    MAX_CANDIDATES = 1500

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._names: dict[str, _Names] = {}
        self._lower_ids: dict[str, set[str]] = {}
        self._aliases: dict[str, set[str]] = {}
        self._normalized: dict[str, set[str]] = {}
        self._token_ids: dict[str, set[str]] = {}
        self._sorted_tokens: list[str] | None = None
        self._vocabulary: list[str] | None = None
        self._fuzzy_keys: dict[str, str] = {}
        self._providers: set[str] | None = None
        self._quantized_ids: set[str] | None = None
        # Parallel lists for C-speed scans; a removed id leaves None until compaction.
        self._scan_ids: list[str | None] = []
        self._scan_keys: list[str | None] = []
        self._scan_pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._names)

    def add(self, model_id: str, *, name: str, provider: str, aliases: Iterable[str]) -> None:
        """Index an id with its display name, provider and aliases."""
        with self._lock:
            if model_id in self._names:
                self.remove(model_id)
            alias_list = list(aliases)
            n_id = normalize_id(model_id)
            n_short = normalize_id(short_name(model_id))
            n_name = normalize_id(name)
            keys = {n_id, n_short, n_name, *(normalize_id(a) for a in alias_list)}
            keys.discard("")
            short_words = _words(n_short)
            name_words = _words(n_name)
            names = _Names(
                aliases=alias_list,
                provider=provider,
                search=" ".join(short_words),
                keys=sorted(keys),
                toks=sorted(set(_words(n_id)) | set(name_words)),
            )
            self._names[model_id] = names
            self._providers = None
            self._quantized_ids = None
            self._lower_ids.setdefault(model_id.lower(), set()).add(model_id)
            for alias in alias_list:
                self._aliases.setdefault(alias.lower(), set()).add(model_id)
            for key in keys:
                self._normalized.setdefault(key, set()).add(model_id)
            for tok in names.toks:
                self._token_ids.setdefault(tok, set()).add(model_id)
            self._sorted_tokens = None
            self._vocabulary = None
            seen = set(short_words)
            fuzzy_key = " ".join([*short_words, *(w for w in name_words if w not in seen)])
            self._fuzzy_keys[model_id] = fuzzy_key
            self._scan_pos[model_id] = len(self._scan_ids)
            self._scan_ids.append(model_id)
            self._scan_keys.append(fuzzy_key)

    def remove(self, model_id: str) -> None:
        """Forget an id."""
        with self._lock:
            names = self._names.pop(model_id, None)
            if names is None:
                return

            def drop(index: dict[str, set[str]], key: str) -> None:
                ids = index.get(key)
                if ids is not None:
                    ids.discard(model_id)
                    if not ids:
                        del index[key]

            drop(self._lower_ids, model_id.lower())
            self._providers = None
            self._quantized_ids = None
            for alias in names.aliases:
                drop(self._aliases, alias.lower())
            for key in names.keys:
                drop(self._normalized, key)
            for tok in names.toks:
                drop(self._token_ids, tok)
            self._sorted_tokens = None
            self._vocabulary = None
            self._fuzzy_keys.pop(model_id, None)
            pos = self._scan_pos.pop(model_id, None)
            if pos is not None:
                self._scan_ids[pos] = None
                self._scan_keys[pos] = None
            if len(self._scan_ids) > 64 and len(self._scan_pos) < len(self._scan_ids) // 2:
                self._compact()

    def _compact(self) -> None:
        live = [(i, k) for i, k in zip(self._scan_ids, self._scan_keys, strict=True) if i]
        self._scan_ids = [i for i, _ in live]
        self._scan_keys = [k for _, k in live]
        self._scan_pos = {i: n for n, i in enumerate(self._scan_ids) if i is not None}

    def clear(self) -> None:
        """Forget every id."""
        with self._lock:
            self.__init__()  # type: ignore[misc]

    # ------------------------------------------------------------------ lookups

    def resolve(
        self,
        query: str,
        *,
        rank: Callable[[str], float] | None = None,
    ) -> Match:
        """Resolve a name to one id, or raise with suggestions.

        ``rank`` scores ids (e.g. by usage) to break ties among equal matches.
        """
        q = query.strip()
        if not q:
            raise ModelNotFoundError(query, message="An empty name matches no model.")
        with self._lock:
            if q in self._names:
                return Match(q, "exact", 1.0, query)
            ids = self._lower_ids.get(q.lower())
            if ids and len(ids) == 1:
                return Match(next(iter(ids)), "exact", 1.0, query)
            ids = self._aliases.get(q.lower())
            if ids:
                return self._pick(query, ids, "alias", 0.99, rank)
            provider_match = self._provider_prefixed(q)
            if provider_match:
                return self._pick(query, provider_match, "provider", 0.97, rank)
            ids = self._normalized.get(normalize_id(q))
            if ids:
                return self._pick(query, ids, "normalized", 0.95, rank)
            if self._is_full_id(q):
                # An explicit id names one model: a near one is a suggestion, never the answer.
                bare = re.sub(r"^[a-z0-9_.-]+:(?=[^/]+/)", "", q, flags=re.IGNORECASE)
                raise ModelNotFoundError(query, suggestions=self._suggestions(bare))
            return self._by_words(query, rank)

    def _is_full_id(self, q: str) -> bool:
        """Whether ``q`` names one model explicitly: ``org/name`` or ``provider:name``."""
        if _FULL_ID.match(q):
            return True
        head, sep, rest = q.partition(":")
        if not (sep and rest):
            return False
        if self._providers is None:
            self._providers = {n.provider for n in self._names.values()}
        return head.lower() in self._providers

    def _provider_prefixed(self, q: str) -> set[str]:
        match = re.match(r"^([a-z0-9_.-]+)[:/](.+)$", q, re.IGNORECASE)
        if not match:
            return set()
        provider, rest = match.group(1).lower(), match.group(2)
        wanted = normalize_id(rest)
        found: set[str] = set()
        for model_id in self._normalized.get(wanted, set()):
            names = self._names[model_id]
            if names.provider == provider or model_id.lower().startswith(provider + "/"):
                found.add(model_id)
        return found

    def _pick(
        self,
        query: str,
        ids: set[str],
        method: MatchMethod,
        confidence: float,
        rank: Callable[[str], float] | None,
    ) -> Match:
        if len(ids) == 1:
            return Match(next(iter(ids)), method, confidence, query)
        ordered = sorted(ids, key=lambda i: (-(rank(i) if rank else 0.0), len(i), i))
        raise AmbiguousModelError(query, suggestions=ordered[:8])

    def _similar_words(self, word: str) -> list[str]:
        """Indexed words within a typo or two of ``word`` (alphabetic words only)."""
        from rapidfuzz import fuzz, process

        if self._vocabulary is None:
            self._vocabulary = sorted(t for t in self._token_ids if t.isalpha() and len(t) >= 3)
        found = process.extract(
            word, self._vocabulary, scorer=fuzz.ratio, limit=5, score_cutoff=75, processor=None
        )
        return [w for w, _, _ in found]

    def _typo_fix(self, word: str) -> str | None:
        """The one indexed word a typo away from ``word`` (two for words of 8+ letters)."""
        from rapidfuzz import process
        from rapidfuzz.distance import OSA

        if self._vocabulary is None:
            self._vocabulary = sorted(t for t in self._token_ids if t.isalpha() and len(t) >= 3)
        most = 1 if len(word) < 8 else 2
        found = process.extract(
            word, self._vocabulary, scorer=OSA.distance, limit=2, score_cutoff=most, processor=None
        )
        if not found or (len(found) > 1 and found[1][1] == found[0][1]):
            return None  # no near word, or two equally near: no guessing
        return str(found[0][0])

    def candidates(self, query: str) -> set[str]:
        """Ids sharing words, word prefixes or near-words with the query, for fuzzy scoring.

        Each query word selects the ids holding it, a word it starts, or (for a typo) a
        close word; the selections are intersected rarest first for as long as they
        overlap. The result may be large; ``fuzzy_scores`` narrows it further.
        """
        q_tokens = tokens(query)
        if not q_tokens:
            return set()
        if self._sorted_tokens is None:
            self._sorted_tokens = sorted(self._token_ids)
        per_token: list[set[str]] = []
        for tok in dict.fromkeys(q_tokens):
            postings = [self._token_ids[tok]] if tok in self._token_ids else []
            if len(tok) >= 3:
                start = bisect_left(self._sorted_tokens, tok)
                for other in self._sorted_tokens[start : start + 50]:
                    if not other.startswith(tok):
                        break
                    if other != tok:
                        postings.append(self._token_ids[other])
            if tok.isalpha() and len(tok) >= 4 and tok not in self._token_ids:
                postings.extend(self._token_ids[w] for w in self._similar_words(tok))
            if postings:
                per_token.append(postings[0] if len(postings) == 1 else set().union(*postings))
        if not per_token:
            return set()
        per_token.sort(key=len)
        result = per_token[0]
        for hits in per_token[1:]:
            if len(result) <= self.MAX_CANDIDATES // 10:
                break
            narrowed = result & hits
            if not narrowed:
                break
            result = narrowed
        return set(result)

    def fuzzy_scores(self, query: str, *, limit: int = 10) -> list[tuple[str, float]]:
        """The best fuzzy matches of a query as (id, score 0–100), best first.

        The score weighs word overlap (token set) against word order and extra words
        (token sort), so ``llama 8b`` prefers ``Llama-3.1-8B`` to a longer derivative.
        A query with run-together words or a typo (``gpt4turbo``, ``minlm``) is also
        scored as repaired, and each id keeps its better score.
        """
        with self._lock:
            repaired = " ".join(self._query_words(query)[0])
        scores = self._fuzzy_scores(query, limit=limit)
        if repaired and repaired != " ".join(tokens(query)):
            best = dict(scores)
            for model_id, score in self._fuzzy_scores(repaired, limit=limit):
                best[model_id] = max(score, best.get(model_id, 0.0))
            scores = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return scores

    def spelling(self, query: str) -> str | None:
        """The query with its misspelt words corrected (``clade sonet`` → ``claude sonnet``),
        or None when no word needed a correction."""
        with self._lock:
            words, corrected = self._query_words(query)
        return " ".join(words) if corrected else None

    def _fuzzy_scores(self, query: str, *, limit: int) -> list[tuple[str, float]]:
        from rapidfuzz import fuzz, process

        q = " ".join(tokens(query))
        if not q:
            return []
        with self._lock:
            pool = self.candidates(query)
            if len(pool) > self.MAX_CANDIDATES:
                ids = list(pool)
                # ``map`` gathers the keys in C: a common word's pool holds a sixth of a
                # 100k catalog, and a Python loop over it took a third of a search.
                pre = process.extract(
                    q,
                    list(map(self._fuzzy_keys.__getitem__, ids)),
                    scorer=fuzz.QRatio,
                    limit=self.MAX_CANDIDATES,
                    processor=None,
                )
                pool = {ids[index] for _, _, index in pre}
            elif not pool:
                # Nothing shares a word: scan every name once, in C.
                typo = process.extract(
                    q, self._scan_keys, scorer=fuzz.QRatio, limit=25, processor=None
                )
                pool = {i for _, _, n in typo if (i := self._scan_ids[n]) is not None}
            ids = list(pool)
            keys = list(map(self._fuzzy_keys.__getitem__, ids))
        set_scores = process.extract(
            q, keys, scorer=fuzz.token_set_ratio, limit=None, processor=None
        )
        sort_scores = {
            n: sc
            for _, sc, n in process.extract(
                q, keys, scorer=fuzz.token_sort_ratio, limit=None, processor=None
            )
        }
        scored = sorted(
            ((ids[n], 0.6 * sc + 0.4 * sort_scores[n]) for _, sc, n in set_scores),
            key=lambda item: (-item[1], item[0]),
        )
        return [(model_id, round(score, 2)) for model_id, score in scored[:limit]]

    def _suggestions(self, query: str, *, first: Iterable[str] = ()) -> list[str]:
        """Ids worth offering for a name that did not resolve, closest first.

        First the models holding all of its words but one (``v0.2`` → the ``v0.3``, the
        AWQ id → the model it quantizes), fewest other words first; then fuzzy matches.
        """
        found = dict.fromkeys(first)
        words = list(dict.fromkeys(self._query_words(query)[0]))
        if 1 < len(words) <= 12:
            # Ranked by what differs: each other word costs 1, a missing word 1, a missing
            # number 2 (another size or version is further than another quantization, whose
            # words go as one). A model holding every word leads one that lacks words.
            quant = {w for w in words if QUANT_WORDS.search(w)}
            drops = [
                ({w}, 2 if any(c.isdigit() for c in w) else 1) for w in words if w not in quant
            ]
            if quant:
                drops.append((quant, 1))
            # A quantized copy's org is its quantizer's (``unsloth/…-bnb-4bit``): its base
            # is under another org, so the org goes with the quantization words.
            org = set(tokens(query.rpartition("/")[0])) if "/" in query else set()
            if quant and org:
                drops.append((quant | org, 2))
            holders: dict[str, tuple[set[str], list[str]]] = {}
            near = [
                (extra, 0, i)
                for extra, i in self._fewest_others(words, quantized=True, holders=holders)
            ]
            for drop, cost in drops:
                rest = [w for w in words if w not in drop]
                near.extend(
                    (extra + cost, 1, i)
                    for extra, i in self._fewest_others(rest, quantized=True, holders=holders)
                )
            for *_, model_id in heapq.nsmallest(4, near):
                found.setdefault(model_id)
        for model_id, score in self.fuzzy_scores(query, limit=8):
            if score >= 50:
                found.setdefault(model_id)
        return list(found)[:8]

    def _known_prefix(self, word: str) -> bool:
        """Whether an alphabetic ``word`` starts some indexed word."""
        if self._sorted_tokens is None:
            self._sorted_tokens = sorted(self._token_ids)
        start = bisect_left(self._sorted_tokens, word)
        return start < len(self._sorted_tokens) and self._sorted_tokens[start].startswith(word)

    def _split(self, word: str) -> list[str] | None:
        """``word`` as two or more indexed words (``4turbo`` → ``4 turbo``), fewest first.

        A number is never cut (``73b`` is not ``7`` + ``3b``): cuts fall only where a digit
        or dot does not meet a digit.
        """
        n = len(word)
        if n > 40:
            return None
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for i in range(n):
            head = best[i]
            if head is None or (i > 0 and _inside_number(word, i)):
                continue
            for j in range(i + 1, n + 1):
                if j < n and _inside_number(word, j):
                    continue
                piece = word[i:j]
                if (len(piece) >= 2 or piece.isdigit()) and piece in self._token_ids:
                    known = best[j]
                    if known is None or len(head) + 1 < len(known):
                        best[j] = [*head, piece]
        found = best[n]
        return found if found is not None and len(found) > 1 else None

    def _query_words(self, query: str) -> tuple[list[str], int]:
        """The words of a name mapped onto indexed words, and how many were typo-corrected."""
        words: list[str] = []
        corrected = 0
        for word in tokens(query):
            if word in self._token_ids or (
                word.isalpha() and len(word) >= 3 and self._known_prefix(word)
            ):
                words.append(word)
                continue
            parts = self._split(word)
            if parts:
                words.extend(parts)
                continue
            if word.isalpha() and len(word) >= 4 and not QUANT_WORDS.search(word):
                fixed = self._typo_fix(word)
                if fixed:
                    words.append(fixed)
                    corrected += 1
                    continue
            words.append(word)  # no indexed word: no model covers the name
        return words, corrected

    def _expansions(self, word: str) -> list[str]:
        """The indexed words ``word`` stands for: itself, and (for a word of three letters
        or more, not a quantization word) the longer words it starts."""
        found = [word] if word in self._token_ids else []
        if not (word.isalpha() and len(word) >= 3) or QUANT_WORDS.search(word):
            return found
        if self._sorted_tokens is None:
            self._sorted_tokens = sorted(self._token_ids)
        start = bisect_left(self._sorted_tokens, word)
        for other in self._sorted_tokens[start : start + 200]:
            if not other.startswith(word):
                break
            if other != word:
                found.append(other)
        return found

    def _quantized(self) -> set[str]:
        """Ids whose short name carries a quantization word."""
        if self._quantized_ids is None:
            # Only ids holding a word a quantization word splits into are worth the regex.
            pool = set().union(*(self._token_ids.get(t, ()) for t in _QUANT_WORD_PARTS))
            self._quantized_ids = {i for i in pool if QUANT_WORDS.search(short_name(i))}
        return self._quantized_ids

    def _holders(self, word: str) -> tuple[set[str], list[str]]:
        """Ids holding ``word`` (or a word it starts), and those indexed words."""
        expansions = self._expansions(word)
        if len(expansions) == 1:
            return self._token_ids[expansions[0]], expansions  # the index's own set: no copy
        return set().union(*(self._token_ids[t] for t in expansions)), expansions

    def _fewest_others(
        self,
        words: list[str],
        *,
        quantized: bool,
        holders: dict[str, tuple[set[str], list[str]]] | None = None,
    ) -> list[tuple[int, str]]:
        """(other words, id) of each model holding every one of ``words``, in no order.

        A quantized model qualifies only when the name is ``quantized`` too. ``holders``
        caches ``_holders`` across calls for the same words.
        """
        holders = {} if holders is None else holders
        sets: list[set[str]] = []
        held: set[str] = set()
        for word in words:
            if word not in holders:
                holders[word] = self._holders(word)
            ids, expansions = holders[word]
            if not ids:
                return []
            sets.append(ids)
            held.update(expansions)
        if not sets:
            return []
        sets.sort(key=len)
        covering = sets[0].intersection(*sets[1:])
        if not quantized:
            covering -= self._quantized()
        names = self._names
        # Other words: those of the model that none of the name's words stands for. When
        # each word stands only for itself, every candidate holds exactly those.
        if len(held) == len(set(words)):
            found = [(len(names[i].toks) - len(held), i) for i in covering]
        else:
            found = [
                (len(names[i].toks) - len(held.intersection(names[i].toks)), i) for i in covering
            ]
        return found

    def _by_words(self, query: str, rank: Callable[[str], float] | None) -> Match:
        """Resolve a bare name by the one rule of the module docstring."""
        words, corrected = self._query_words(query)
        if not words:
            raise ModelNotFoundError(query, suggestions=self._suggestions(query))
        if corrected or len(words) != len(tokens(query)):
            # The repaired name may be a name or alias as it stands (``minlm`` → ``minilm``).
            ids = self._normalized.get("-".join(words))
            if ids and len(ids) == 1:
                return Match(next(iter(ids)), "fuzzy", 0.9 - 0.05 * corrected, query)
        wanted = list(dict.fromkeys(words))
        quantized = QUANT_WORDS.search(normalize_id(query)) is not None
        others = self._fewest_others(wanted, quantized=quantized)
        repaired = " ".join(words)
        if not others:
            raise ModelNotFoundError(query, suggestions=self._suggestions(repaired))
        fewest = min(extra for extra, _ in others)
        tied = sorted(
            (model_id for extra, model_id in others if extra == fewest), key=lambda i: (len(i), i)
        )
        chosen: str | None = tied[0] if len(tied) == 1 else None
        if chosen is None and rank is not None:
            ranked = sorted(tied, key=lambda i: -rank(i))
            if rank(ranked[0]) > rank(ranked[1]):
                chosen = ranked[0]
        if chosen is None:
            raise AmbiguousModelError(query, suggestions=self._suggestions(repaired, first=tied))
        share = len(wanted) / (len(wanted) + fewest)
        confidence = 0.5 + 0.5 * share - 0.05 * corrected
        return Match(chosen, "fuzzy", round(max(confidence, 0.3), 3), query)
