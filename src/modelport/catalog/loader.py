"""Read catalog files: parse, validate every entry, report problems with JSON paths."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelport.catalog.entry import SCHEMA_VERSION, ModelEntry
from modelport.errors import CatalogError, CatalogValidationError

__all__ = [
    "CatalogFile",
    "bundled_catalog_files",
    "dump_catalog",
    "load_bundled_entries",
    "parse_catalog",
    "read_catalog_bytes",
    "read_catalog_file",
    "validate_catalog",
]

MAX_CATALOG_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class CatalogFile:
    """The entries of one catalog document, with where they came from."""

    source: str
    entries: tuple[ModelEntry, ...]


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key(name: str) -> str:
    """A key as a JSON path step: ``.name``, or ``["…"]`` quoted when it is not a plain
    word (a key from the file may hold a newline, which must not break the one-line error)."""
    return f".{name}" if _PLAIN_KEY.fullmatch(name) else f"[{json.dumps(name)}]"


def _path(prefix: str, loc: Sequence[int | str]) -> str:
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else _key(part)
    return text


def validate_catalog(data: Any) -> tuple[list[ModelEntry], list[tuple[str, str]]]:
    """Validate parsed catalog JSON; return the valid entries and every (path, problem)."""
    problems: list[tuple[str, str]] = []
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"schema_version", "provider", "source", "as_of", "entries"})
        for key in unknown:
            problems.append((_path("$", [key]), "unknown top-level key"))
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            problems.append(
                ("$.schema_version", f"unsupported schema version {version!r}, expected 1")
            )
        if "entries" not in data:
            problems.append(("$", "missing 'entries' list"))
            return [], problems
        items, prefix = data["entries"], "$.entries"
    elif isinstance(data, list):
        items, prefix = data, "$"
    else:
        return [], [("$", "a catalog is a list of entries or an object with 'entries'")]
    if not isinstance(items, list):
        return [], [(prefix, "must be a list of entries")]

    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        here = f"{prefix}[{index}]"
        if not isinstance(item, dict):
            problems.append((here, "an entry must be an object"))
            continue
        try:
            entry = ModelEntry.model_validate(item)
        except ValidationError as e:
            for err in e.errors(include_url=False):
                problems.append((_path(here, err["loc"]), err["msg"]))
            continue
        if entry.id in seen:
            problems.append(
                (f"{here}.id", f"duplicate id {entry.id!r} (first at {prefix}[{seen[entry.id]}])")
            )
            continue
        seen[entry.id] = index
        entries.append(entry)
    return entries, problems


class _NotFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    # json accepts NaN and Infinity, which JSON does not; a catalog number must be finite.
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    # 1e400 parses as infinity, which would be written back out as the non-JSON Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def parse_catalog(text: str | bytes, *, source: str) -> CatalogFile:
    """Parse and validate catalog JSON text; raise ``CatalogValidationError`` on any problem."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as e:
        raise CatalogValidationError(
            source, [("$", f"{e.args[0]} is not a JSON number; use a finite value")]
        ) from None
    except RecursionError:
        raise CatalogValidationError(
            source, [("$", "nested too deeply; a catalog is at most a few levels deep")]
        ) from None
    except json.JSONDecodeError as e:
        raise CatalogValidationError(
            source, [(f"line {e.lineno} column {e.colno}", f"not valid JSON: {e.msg}")]
        ) from None
    except UnicodeDecodeError:
        raise CatalogValidationError(source, [("$", "not UTF-8 text")]) from None
    except ValueError as e:
        # int() refuses integers over sys.get_int_max_str_digits() digits.
        raise CatalogValidationError(source, [("$", f"not a usable number: {e}")]) from None
    entries, problems = validate_catalog(data)
    if problems:
        raise CatalogValidationError(source, problems)
    return CatalogFile(source=source, entries=tuple(entries))


def read_catalog_bytes(path: str | Path) -> bytes:
    """The bytes of a catalog file, or one clear ``CatalogError``."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_CATALOG_BYTES:
            raise CatalogError(f"{p} is {size} bytes; catalog files are limited to 256 MiB.")
        return p.read_bytes()
    except FileNotFoundError:
        raise CatalogError(f"Catalog file {p} does not exist.") from None
    except IsADirectoryError:
        raise CatalogError(f"{p} is a folder, not a catalog file.") from None
    except OSError as e:
        raise CatalogError(f"Catalog file {p} cannot be read: {e.strerror}.") from None


def read_catalog_file(path: str | Path) -> CatalogFile:
    """Read and validate a catalog JSON file."""
    return parse_catalog(read_catalog_bytes(path), source=str(path))


def dump_catalog(entries: Iterable[ModelEntry], **meta: Any) -> str:
    """Serialize entries as a catalog JSON document."""
    doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **meta}
    doc["entries"] = [e.to_json_dict() for e in entries]
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def bundled_catalog_files() -> list[str]:
    """Names of the catalog files shipped in ``modelport/catalog/data``."""
    data = resources.files("modelport.catalog") / "data"
    return sorted(
        item.name
        for item in data.iterdir()
        if item.name.endswith(".json") and item.name != "schema.json"
    )


_bundled_cache: tuple[ModelEntry, ...] | None = None


def load_bundled_entries() -> tuple[ModelEntry, ...]:
    """Every bundled entry, validated; ids must be unique across files."""
    global _bundled_cache
    if _bundled_cache is not None:
        return _bundled_cache
    from modelport.catalog.catalog import paused_gc

    data = resources.files("modelport.catalog") / "data"
    entries: list[ModelEntry] = []
    where: dict[str, str] = {}
    for name in bundled_catalog_files():
        with paused_gc():
            parsed = parse_catalog((data / name).read_bytes(), source=f"bundled {name}")
        for entry in parsed.entries:
            if entry.id in where:
                raise CatalogValidationError(
                    f"bundled {name}",
                    [("$.entries", f"duplicate id {entry.id!r}, also in {where[entry.id]}")],
                )
            where[entry.id] = name
            entries.append(entry)
    _bundled_cache = tuple(entries)
    return _bundled_cache
