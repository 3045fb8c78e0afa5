"""The built catalog kept on disk, so that a command starts without re-validating and re-indexing.

A snapshot is modelport's own cache file, ``$MODELPORT_HOME/catalog.snapshot``, written
atomically (temporary name, then rename) after a catalog is built. Its key digests
everything the built catalog depends on, and a snapshot whose key differs is ignored:

- the snapshot format, modelport's, Python's and pydantic's versions, and the source of
  the catalog package (a change in how entries are indexed changes the key);
- the content of the bundled data files, and whether they are loaded;
- the database file and its catalog stamp, which SQLite triggers change in the same
  transaction as every write to catalog entries (user entries, remote catalog updates), by
  any process; it is read with the standard library's ``sqlite3``, not SQLAlchemy.

Any other database (PostgreSQL, an in-memory SQLite) bypasses the snapshot: the catalog
is built from the database each time, as before.

Layout: ``MAGIC``, a 4-byte header length, the header (JSON: format, key, and each
section's offset, length and CRC-32), then the sections:

- ``spots``: id → where the entry's own pickle lies (and its CRC-32), in catalog order;
  read when the snapshot is opened;
- ``entries``: every entry pickled on its own; one is unpickled the first time it is used
  (``show`` reads one of 50,000, and only its pages of the mapped file). Unpickling a
  pydantic model does not validate it, so the hot path never builds the validators
  either (``defer_build`` in ``entry.py``);
- ``names``, ``fuzzy``, ``index`` and ``sorts``: the name index without and with the parts
  only fuzzy matching reads, the filter and ranking indexes, and the values sorting reads
  that no other index holds, each read on first use.

A snapshot that is truncated, fails a checksum or does not unpickle is never used: found
at open, the catalog is built from its sources instead; found later (an index section or
an entry read on first use), the catalog is rebuilt and takes the rebuilt tables. Either
way the file is removed so that the next process writes a good one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import pickle
import sqlite3
import sys
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.catalog.catalog import Catalog, paused_gc
from modelport.catalog.discovery import Match, NameIndex
from modelport.catalog.entry import ModelEntry

if TYPE_CHECKING:
    from modelport.settings import Settings

__all__ = [
    "FORMAT",
    "LazyEntries",
    "catalog_key",
    "database_file",
    "read_snapshot",
    "read_usage",
    "snapshot_path",
    "write_snapshot",
]

log = logging.getLogger(__name__)

MAGIC = b"MPCATSNP"
#: Bump when the layout or the meaning of a section changes.
FORMAT = 1
#: Catalog attributes that live in the ``names``, ``index`` and ``sorts`` sections.
NAMES = ("_names",)
INDEXES = ("_index", "_context", "_price", "_vram", "_derived")
#: Read apart: only sorting by a value no other index holds needs them (a third of the
#: indexes' bytes).
SORTS = ("_sort_values",)
#: Each section of catalog attributes read on first use, with the attributes it holds.
_DEFERRED = {"index": INDEXES, "sorts": SORTS}
#: Parts of ``NameIndex`` that only fuzzy matching and search read: the ``fuzzy``
#: section, read on first use. A part not named here (a new one) goes to ``names``.
FUZZY = (
    "_token_ids",
    "_sorted_tokens",
    "_vocabulary",
    "_fuzzy_keys",
    "_scan_ids",
    "_scan_keys",
    "_scan_pos",
)
_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))
#: Sections larger than this (about 10,000 entries' worth) are frozen after reading.
_FREEZE_OVER = 4 * 1024 * 1024


# -------------------------------------------------------------------- the key


def snapshot_path(settings: Settings) -> Path:
    """Where the snapshot of this home's catalog lives."""
    return settings.home / "catalog.snapshot"


def database_file(settings: Settings) -> Path | None:
    """The SQLite file a snapshot can be keyed by, or None (another kind of database)."""
    path = settings.database_path
    if path is None or "?" in settings.database_url or str(path) in ("", ":memory:"):
        return None
    return path.absolute()


_code_digest: str | None = None


def _package_digest() -> str:
    """A digest of the catalog package's code and bundled data (computed once a process)."""
    global _code_digest
    if _code_digest is None:
        digest = hashlib.blake2b(digest_size=16)
        package = resources.files("modelport.catalog")
        for folder, suffix in ((package, ".py"), (package / "data", ".json")):
            for item in sorted(folder.iterdir(), key=lambda i: i.name):
                if item.name.endswith(suffix):
                    data = item.read_bytes()
                    digest.update(f"{item.name}\0{len(data)}\0".encode())
                    digest.update(data)
        _code_digest = digest.hexdigest()
    return _code_digest


def _connect(db_file: Path) -> sqlite3.Connection:
    # A plain read; the writer's WAL journal lets it proceed while another process writes.
    return sqlite3.connect(db_file, timeout=10.0, check_same_thread=False)


def catalog_key(settings: Settings) -> str | None:
    """The key a snapshot of the current catalog has, or None where no snapshot applies.

    None when snapshots are off, for a database other than a SQLite file, and for a
    database that does not yet have the catalog stamp (it gets one when SQLAlchemy
    first opens it).
    """
    if not settings.catalog_snapshot:
        return None
    db_file = database_file(settings)
    if db_file is None or not db_file.is_file():
        return None
    try:
        with contextlib.closing(_connect(db_file)) as conn:
            row = conn.execute("SELECT stamp FROM catalog_state WHERE id = 1").fetchone()
    except sqlite3.Error:
        return None
    if row is None:
        return None
    import pydantic_core
    from pydantic.version import VERSION as pydantic_version

    from modelport import __version__

    parts = [
        f"format={FORMAT}",
        f"modelport={__version__}",
        f"python={sys.version}",
        # Entries are pickled pydantic models: another pydantic may lay them out differently.
        f"pydantic={pydantic_version}/{pydantic_core.__version__}",
        f"package={_package_digest()}",
        f"bundled={settings.bundled_catalog}",
        f"database={db_file}",
        f"stamp={row[0]}",
    ]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def read_usage(settings: Settings) -> dict[str, int] | None:
    """Usage counts read with ``sqlite3`` (None if that fails: ask SQLAlchemy instead)."""
    db_file = database_file(settings)
    if db_file is None:
        return None
    try:
        with contextlib.closing(_connect(db_file)) as conn:
            rows = conn.execute("SELECT id, count FROM model_usage").fetchall()
    except sqlite3.Error:
        return None
    return {str(model_id): int(count) for model_id, count in rows}


# -------------------------------------------------------------------- entries


_MISSING: Any = object()
#: Where one entry's pickle lies in the ``blobs`` section: start, end, CRC-32.
Spot = tuple[int, int, int]


class LazyEntries(dict[str, ModelEntry]):
    """id → entry, where an entry is unpickled from the snapshot the first time it is read.

    Every read goes through a method here, so a caller never sees where an entry lies:
    iteration is over ids, and ``values``/``items`` unpickle what is left first.
    Overriding ``__iter__`` also sends ``dict(table)`` and ``{**table}`` through ``keys``
    and ``__getitem__``.
    """

    __slots__ = ("_complete", "_sections")

    def __init__(self, spots: Mapping[str, Spot], sections: _Sections) -> None:
        super().__init__(spots)  # type: ignore[arg-type]
        # Only the entries given here are ever spots, so once all were read, none is.
        self._complete = not spots
        self._sections = sections

    def _unpickle(self, key: str, spot: Spot) -> ModelEntry:
        entry = self._sections.entry(spot)
        if entry is None:  # damaged: the catalog was rebuilt, ask its new table
            return self._sections.rebuilt_entry(key)
        # Another thread may have read it meanwhile: keep the first, one object per id.
        current: Any = dict.get(self, key, _MISSING)
        if current is spot:
            dict.__setitem__(self, key, entry)
            return entry
        return entry if current is _MISSING or type(current) is tuple else current

    def __getitem__(self, key: str) -> ModelEntry:
        value: Any = dict.__getitem__(self, key)
        return self._unpickle(key, value) if type(value) is tuple else value

    def get(self, key: str, default: Any = None) -> Any:
        """The entry for ``key``, or ``default``."""
        value: Any = dict.get(self, key, _MISSING)
        if value is _MISSING:
            return default
        return self._unpickle(key, value) if type(value) is tuple else value

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self)

    def _current(self) -> dict[str, ModelEntry]:
        """The catalog's table: this one, or the one rebuilt after damage was found."""
        catalog = self._sections.catalog
        return self if catalog is None else catalog._entries

    def load_all(self) -> dict[str, ModelEntry]:
        """Unpickle every entry not read yet; returns the table that now holds them all."""
        if self._complete:
            return self
        with self._sections.lock, paused_gc(freeze=len(self) > 10_000):
            pairs: list[tuple[str, Any]] = list(dict.items(self))
            for key, value in pairs:
                if type(value) is tuple:
                    self._unpickle(key, value)
                    if self._current() is not self:
                        return self._current()
            self._complete = True
        return self

    def values(self) -> Any:
        """Every entry."""
        table = self.load_all()
        return dict.values(self) if table is self else table.values()

    def items(self) -> Any:
        """Every (id, entry) pair."""
        table = self.load_all()
        return dict.items(self) if table is self else table.items()

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        """Remove ``key`` and return its entry (or ``default``)."""
        if key not in self:
            if default is _MISSING:
                raise KeyError(key)
            return default
        entry = self[key]
        current = self._current()
        if current is not self:  # reading it found damage: the catalog has a new table
            return current.pop(key, default)
        dict.pop(self, key, None)
        return entry

    def popitem(self) -> tuple[str, ModelEntry]:
        """Remove and return the last (id, entry) pair."""
        key = next(reversed(self.keys()))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """The entry for ``key``, set to ``default`` first if missing."""
        if key in self:
            return self[key]
        self[key] = default
        return default

    def copy(self) -> dict[str, ModelEntry]:
        """A plain dict of every entry."""
        return dict(self.items())

    def __reduce__(self) -> Any:
        return (dict, (self.copy(),))

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == other

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __or__(self, other: Any) -> Any:
        return self.copy() | other

    def __ror__(self, other: Any) -> Any:
        return other | self.copy()

    def __repr__(self) -> str:
        return f"LazyEntries({len(self)} entries)"


# -------------------------------------------------------------------- names


class _DeferredNames:
    """Stands for the name index until something needs more than an exact id.

    ``Catalog.resolve`` of an exact id is what ``show ID`` asks; the name index answers
    it with ``Match(id, "exact", 1.0, query)`` as its first step, and so does this,
    without reading the index. Anything else reads the index and hands over to it.
    """

    def __init__(self, catalog: Catalog, sections: _Sections) -> None:
        self._catalog = catalog
        self._sections = sections

    def _real(self) -> NameIndex:
        names: NameIndex = self._sections.load(self._catalog, "_names")
        return names

    def resolve(self, query: str, **kwargs: Any) -> Match:
        """``NameIndex.resolve``, answering an exact id without reading the index."""
        q = query.strip()
        if q and q in self._catalog._entries:
            return Match(q, "exact", 1.0, query)
        return self._real().resolve(query, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __len__(self) -> int:
        return len(self._real())

    def __contains__(self, item: object) -> bool:
        return item in self._real()  # type: ignore[operator]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._real())  # type: ignore[call-overload, no-any-return]


class _PartialNameIndex(NameIndex):
    """A name index read without its fuzzy-matching parts, which it reads on first use.

    ``show NAME`` resolves by id, alias or normalized name, which never touch the token
    and scan tables: at 50,000 entries they are half of what the index takes to read.
    """

    def __getattr__(self, name: str) -> Any:
        # Only called for an attribute this object lacks: one of the fuzzy parts.
        sections = self.__dict__.get("_snapshot")
        if sections is None or name not in FUZZY:
            raise AttributeError(f"'NameIndex' object has no attribute {name!r}")
        return sections.load_fuzzy(self, name)


# -------------------------------------------------------------------- file


def _state(obj: Any) -> dict[str, Any]:
    """An object's attributes without its locks (a restored object gets fresh ones)."""
    return {
        k: v for k, v in vars(obj).items() if not isinstance(v, _LOCK_TYPES) and k != "_snapshot"
    }


def _sections_of(catalog: Catalog) -> dict[str, bytes]:
    """Every section of a catalog's snapshot, in file order."""
    names = _state(catalog._names)
    fuzzy = {name: names.pop(name) for name in FUZZY if name in names}
    spots: dict[str, Spot] = {}
    parts: list[bytes] = []
    at = 0
    for mid, entry in catalog._entries.items():
        blob = pickle.dumps(entry, protocol=5)
        spots[mid] = (at, at + len(blob), zlib.crc32(blob))
        parts.append(blob)
        at += len(blob)
    return {
        "spots": pickle.dumps(spots, protocol=5),
        "entries": b"".join(parts),
        "names": pickle.dumps(names, protocol=5),
        "fuzzy": pickle.dumps(fuzzy, protocol=5),
        **{
            section: pickle.dumps({name: getattr(catalog, name) for name in names}, protocol=5)
            for section, names in _DEFERRED.items()
        },
    }


def write_snapshot(settings: Settings, key: str, catalog: Catalog) -> bool:
    """Write the snapshot of a catalog just built; whether it was written."""
    path = snapshot_path(settings)
    try:
        blobs = _sections_of(catalog)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        # Something in an index cannot be pickled (a new kind of cache, say): no snapshot.
        log.debug("catalog snapshot not written: %s", e)
        return False
    table: dict[str, Any] = {}
    offset = 0
    for name, blob in blobs.items():
        # Each entry has its own CRC: checking 80 MB at open would cost what it saves.
        crc = None if name == "entries" else zlib.crc32(blob)
        table[name] = {"offset": offset, "length": len(blob), "crc32": crc}
        offset += len(blob)
    header = json.dumps({"format": FORMAT, "key": key, "sections": table}).encode()
    import tempfile
    import time

    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A process killed while writing leaves its temporary file: clear old ones.
        for old in path.parent.glob(".catalog.snapshot.*.tmp"):
            with contextlib.suppress(OSError):
                if old.stat().st_mtime < time.time() - 3600:
                    old.unlink()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".catalog.snapshot.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(header).to_bytes(4, "big") + header)
            for blob in blobs.values():
                f.write(blob)
        os.replace(tmp, path)
        tmp = None
        return True
    except OSError as e:
        # A read-only home or a full disk costs speed, not correctness.
        log.debug("catalog snapshot not written to %s: %s", path, e)
        return False
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


class _Damaged(ValueError):
    """A snapshot section or entry is not what was written."""


def _discard(path: Path, why: str) -> None:
    log.debug("catalog snapshot %s ignored: %s", path, why)
    with contextlib.suppress(OSError):
        path.unlink()


class _Sections:
    """The sections of one open snapshot file, read on first use.

    Damage found after the catalog was handed out (an index section or an entry that
    fails its CRC) rebuilds the catalog from its sources and moves the rebuilt tables
    into it, so that no caller ever sees what the damaged file held.
    """

    def __init__(
        self,
        path: Path,
        data: mmap.mmap,
        start: int,
        table: dict[str, Any],
        rebuild: Callable[[], Catalog],
    ) -> None:
        self.path = path
        self.data = data
        self.start = start
        self.table = table
        self.rebuild = rebuild
        self.catalog: Catalog | None = None
        # The catalog's own lock once it exists: one lock, so no two can deadlock.
        self.lock: Any = threading.RLock()

    def _view(self, name: str, begin: int = 0, end: int | None = None) -> memoryview:
        spec = self.table[name]
        first = self.start + int(spec["offset"])
        last = first + int(spec["length"])
        return memoryview(self.data)[first + begin : last if end is None else first + end]

    def read(self, name: str) -> Any:
        """Unpickle one section after checking its CRC; raises ``_Damaged``."""
        view = self._view(name)
        try:
            if zlib.crc32(view) != self.table[name]["crc32"]:
                raise _Damaged(f"section {name!r} fails its checksum")
            with paused_gc(freeze=len(view) > _FREEZE_OVER):
                return pickle.loads(view)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as e:
            raise _Damaged(f"section {name!r} does not unpickle: {e}") from None
        finally:
            view.release()

    def entry(self, spot: Spot) -> ModelEntry | None:
        """The entry at a spot of the ``entries`` section (None: damaged, catalog rebuilt)."""
        begin, end, crc = spot
        view = self._view("entries", begin, end)
        try:
            if zlib.crc32(view) != crc:
                raise _Damaged(f"the entry at {begin} fails its checksum")
            try:
                entry = pickle.loads(view)
            except Exception as e:  # a damaged pickle can raise almost anything
                raise _Damaged(f"the entry at {begin} does not unpickle: {e}") from None
            if not isinstance(entry, ModelEntry):
                raise _Damaged(f"the entry at {begin} is not an entry")
            return entry
        except _Damaged as e:
            self.damaged(str(e))
            return None
        finally:
            view.release()

    def rebuilt_entry(self, model_id: str) -> ModelEntry:
        """An entry from the rebuilt catalog (KeyError if the rebuilt one lacks it)."""
        assert self.catalog is not None
        return self.catalog._entries[model_id]

    def damaged(self, why: str) -> None:
        """Forget the file and give the catalog freshly built tables."""
        catalog = self.catalog
        assert catalog is not None
        with self.lock:
            if catalog.__dict__.get("_deferred") is not self:
                return  # another thread did it already
            _discard(self.path, why)
            rebuilt = self.rebuild()
            for name in ("_entries", *NAMES, *INDEXES, *SORTS):
                catalog.__dict__[name] = rebuilt.__dict__[name]
            del catalog.__dict__["_deferred"]

    def load_fuzzy(self, names: NameIndex, attribute: str) -> Any:
        """Give a name index its fuzzy-matching parts (those it does not have yet)."""
        with self.lock:
            have = names.__dict__
            if attribute in have:
                return have[attribute]
            try:
                state = self.read("fuzzy")
                if not isinstance(state, dict):
                    raise _Damaged("section 'fuzzy' is not part of a name index")
            except _Damaged as e:
                self.damaged(str(e))
                assert self.catalog is not None
                return getattr(self.catalog._names, attribute)
            for name, value in state.items():
                # One the index set itself since (an emptied cache) is newer: keep it.
                have.setdefault(name, value)
            del have["_snapshot"]
            if attribute not in have:
                raise AttributeError(attribute)
            return have[attribute]

    def load(self, catalog: Catalog, attribute: str) -> Any:
        """Put a deferred attribute (and the rest of its section) on the catalog."""
        if attribute not in NAMES + INDEXES + SORTS:
            raise AttributeError(attribute)
        with self.lock:
            have = catalog.__dict__
            if attribute not in NAMES and attribute in have:
                return have[attribute]
            if attribute in NAMES and not isinstance(have.get("_names"), _DeferredNames):
                return have["_names"]
            try:
                if attribute in NAMES:
                    state = self.read("names")
                    if not isinstance(state, dict):
                        raise _Damaged("section 'names' is not a name index")
                    names = _PartialNameIndex()
                    for name in FUZZY:
                        names.__dict__.pop(name, None)
                    names.__dict__.update(state)
                    names.__dict__["_snapshot"] = self
                    have["_names"] = names
                else:
                    section = "index" if attribute in INDEXES else "sorts"
                    index = self.read(section)
                    if not isinstance(index, dict) or set(index) != set(_DEFERRED[section]):
                        raise _Damaged(f"section {section!r} is not the catalog's indexes")
                    have.update(index)
            except _Damaged as e:
                self.damaged(str(e))
            return have[attribute]


def read_snapshot(
    settings: Settings, key: str, *, rebuild: Callable[[], Catalog]
) -> Catalog | None:
    """The catalog from a snapshot with this key, or None (none there, stale, or damaged).

    ``rebuild`` builds the catalog from its sources, for damage found later on.
    """
    path = snapshot_path(settings)
    try:
        with open(path, "rb") as f:
            # The mapping keeps this file's content even if another process replaces it.
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None  # none yet (ValueError: an empty file cannot be mapped)
    try:
        if data[: len(MAGIC)] != MAGIC:
            raise _Damaged("not a catalog snapshot")
        size = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
        start = len(MAGIC) + 4 + size
        header = json.loads(data[len(MAGIC) + 4 : start])
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _Damaged("another snapshot format")
        if header.get("key") != key:
            data.close()
            return None  # stale: the catalog changed since (this build replaces it)
        table = header["sections"]
        if set(table) != {"spots", "entries", "names", "fuzzy", *_DEFERRED}:
            raise _Damaged("sections missing")
        end = max(int(s["offset"]) + int(s["length"]) for s in table.values())
        if start + end != len(data):
            raise _Damaged(f"{len(data)} bytes where the header says {start + end}")
        sections = _Sections(path, data, start, table, rebuild)
        spots = sections.read("spots")
        if not isinstance(spots, dict):
            raise _Damaged("section 'spots' is not id → spot")
    except (ValueError, KeyError, TypeError) as e:  # _Damaged, JSON and UTF-8 errors
        data.close()
        _discard(path, str(e))
        return None
    catalog = Catalog()
    have = catalog.__dict__
    for name in (*INDEXES, *SORTS):
        del have[name]
    have["_entries"] = LazyEntries(spots, sections)
    have["_names"] = _DeferredNames(catalog, sections)
    have["_deferred"] = sections
    sections.catalog = catalog
    sections.lock = catalog._lock
    return catalog
