"""Catalog use-cases: resolve, search, query, validate and select models; edit the catalog."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import (
    CatalogError,
    CatalogShrinkError,
    InvalidValueError,
    ModelNotFoundError,
)
from modelport.refs import hub_registries, parse_ref
from modelport.settings import get_settings, parse_size

if TYPE_CHECKING:
    from modelport.catalog.catalog import Catalog, CatalogQuery, SearchHit
    from modelport.catalog.discovery import Match
    from modelport.catalog.entry import ModelEntry
    from modelport.catalog.persistence import RemoteSource
    from modelport.catalog.selection import Selection
    from modelport.catalog.versions import EntryVersion
    from modelport.hardware import SystemInfo
    from modelport.validation import ValidationResult


#: A remote update may drop at most this share of a source's entries unless forced.
MAX_SHRINK = 0.20

_lock = threading.RLock()
_catalog: Catalog | None = None


def _repository() -> Any:
    from modelport.catalog.persistence import CatalogRepository
    from modelport.db import get_engine

    return CatalogRepository(get_engine(get_settings().database_url))


def get_catalog(*, reload: bool = False) -> Catalog:
    """The catalog of this process: bundled entries, then remote and user entries, with usage.

    Read from the catalog snapshot when it is current (no SQLAlchemy, no validation, no
    indexing); otherwise built from the bundled files and the database, and the snapshot
    written for the next process (see ``catalog/snapshot.py``).
    """
    global _catalog
    with _lock:
        if _catalog is not None and not reload:
            return _catalog
        settings = get_settings()
        if settings.database_url.startswith("postgresql"):
            _catalog = _postgres_catalog(_catalog)
            return _catalog
        from modelport.catalog import snapshot

        key = snapshot.catalog_key(settings)
        catalog = None
        if key is not None:
            catalog = snapshot.read_snapshot(
                settings, key, rebuild=lambda: _build_catalog(_repository())
            )
        if catalog is None:
            repo = _repository()  # creates the database and its catalog stamp if missing
            if key is None:
                # Read before the entries: a write in between makes the snapshot stale,
                # never wrong.
                key = snapshot.catalog_key(settings)
            catalog = _build_catalog(repo)
            if key is not None:
                snapshot.write_snapshot(settings, key, catalog)
        usage = None
        if (settings.home / USAGE_JOURNAL).exists():
            _fold_usage_journal(_repository(), settings.home)
        else:
            usage = snapshot.read_usage(settings)  # without SQLAlchemy
        catalog.load_usage(_repository().usage() if usage is None else usage)
        catalog.on_usage(lambda model_id, count: _repository().add_usage(model_id, count))
        _catalog = catalog
        return catalog


def _postgres_catalog(loaded: Catalog | None) -> Catalog:
    """The catalog on PostgreSQL: stored entries stay there, answered by indexed SQL
    (``catalog/pgcatalog.py``); this process keeps the bundled ones and hears every
    replica's changes. A reload reads again what it kept."""
    from modelport.catalog.loader import load_bundled_entries
    from modelport.catalog.pgcatalog import PostgresCatalog

    if isinstance(loaded, PostgresCatalog):
        loaded.refresh()
        return loaded
    repo = _repository()
    repo.fill_search()  # rows stored before revision 0004 get their search columns
    bundled = load_bundled_entries() if get_settings().bundled_catalog else []
    home = get_settings().home
    if (home / USAGE_JOURNAL).exists():
        _fold_usage_journal(repo, home)
    catalog = PostgresCatalog(repo.engine, bundled)
    catalog.load_usage(repo.usage(ids=[e.id for e in bundled]))
    catalog.on_usage(lambda model_id, count: _repository().add_usage(model_id, count))
    catalog.listen()
    return catalog


def _build_catalog(repo: Any) -> Catalog:
    """The catalog from the bundled files and the database rows."""
    from modelport.catalog.catalog import Catalog
    from modelport.catalog.loader import load_bundled_entries

    catalog = Catalog(load_bundled_entries() if get_settings().bundled_catalog else ())
    # One row per id (remote updates never take a user's id): they replace bundled ones.
    catalog.register_bulk((entry for _origin, entry in repo.entries()), replace=True)
    return catalog


#: Uses recorded while no catalog was loaded, one line each, folded in by ``get_catalog``.
USAGE_JOURNAL = "catalog-usage.log"


def record_use(registry: str, name: str, count: int = 1) -> None:
    """Count uses of a model (runs, pulls, served requests): search ranks by them."""
    from modelport.store.runs import record_use as journal_use

    model_id = name if registry == "hf" else f"{registry}:{name}"  # catalog ids are hub ids
    with _lock:
        catalog = _catalog
    if catalog is not None and model_id in catalog:
        catalog.record_usage(model_id, count)  # its listener writes the count to the database
        return
    # A warm run opens neither the catalog nor the database: one appended line instead.
    for _ in range(count):
        journal_use(get_settings().home, model_id, journal=USAGE_JOURNAL)


def _fold_usage_journal(repo: Any, home: Path) -> None:
    from collections import Counter

    from modelport.store.runs import drain_uses

    for model_id, count in Counter(drain_uses(home, journal=USAGE_JOURNAL)).items():
        repo.add_usage(model_id, count)


def resolve_model(name: str) -> Match:
    """How a name or reference resolves to one catalog id."""
    ref = parse_ref(name)
    catalog = get_catalog()
    # Asked now, not at import: a hub registered later is a hub too.
    if ref.registry in hub_registries():
        # Catalog ids are hub ids: ``org/name`` for hf:, ``registry:name`` for the others.
        hub_id = ref.name if ref.registry == "hf" else f"{ref.registry}:{ref.name}"
        if hub_id in catalog and _is_hub_model(catalog[hub_id], ref.registry):
            from modelport.catalog.discovery import Match

            return Match(hub_id, "exact", 1.0, name)
        match = catalog.resolve(ref.name)
        if match.method == "fuzzy" or not _is_hub_model(catalog[match.id], ref.registry):
            # A hub reference names that hub's model (``onnx:resnet-50`` is the zoo's, not
            # microsoft/resnet-50): a catalog entry merely named alike is another model.
            raise ModelNotFoundError(name, suggestions=[match.id])
        return match
    text = str(ref.with_revision(None))
    try:
        return catalog.resolve(text)
    except ModelNotFoundError:
        # ``ollama:llama3`` names no catalog provider: look the name up alone. A provider
        # the catalog knows (``anthropic:gpt-4o``) is part of the id, never dropped.
        if ref.registry is not None and ref.registry not in catalog.providers():
            return catalog.resolve(ref.name)
        raise


def _is_hub_model(entry: ModelEntry, registry: str) -> bool:
    """Whether a catalog entry is a model of that hub (an API model is no hub's)."""
    from modelport.catalog.entry import Source

    if registry == "hf":
        return entry.hugging_face_id is not None or (
            entry.source is Source.SELF_HOSTED and ":" not in entry.id
        )
    return entry.id.startswith(f"{registry}:")


def show_model(name: str) -> ModelEntry:
    """The catalog entry for a name, id or reference (fuzzy)."""
    return get_catalog()[resolve_model(name).id]


def search_models(query: str, *, limit: int = 20) -> list[SearchHit]:
    """Catalog entries ranked by how well they match ``query``."""
    return get_catalog().search(query, limit=limit)


def query_models(query: CatalogQuery | None = None, /, **filters: Any) -> list[ModelEntry]:
    """Catalog entries matching every filter (see ``CatalogQuery``)."""
    return get_catalog().query(query, **filters)


def _gpu_memory(gpu_memory: str | float | None) -> float | None:
    if gpu_memory is None:
        return get_settings().gpu_memory_gb
    if isinstance(gpu_memory, int | float):
        if gpu_memory < 0:
            raise InvalidValueError(f"GPU memory must not be negative, got {gpu_memory}.")
        return float(gpu_memory)
    return parse_size(gpu_memory, default_unit="gb") / 1e9


def system_info(*, gpu_memory: str | float | None = None) -> SystemInfo:
    """This machine, or this machine with one GPU of ``gpu_memory`` for planning."""
    from modelport.hardware import detect_system

    return detect_system(gpu_memory_gb=_gpu_memory(gpu_memory))


def validate_model(
    name: str,
    *,
    purpose: str = "inference",
    gpu_memory: str | float | None = None,
    dtype: str | None = None,
    context: int | None = None,
    method: str | None = None,
    overrides: dict[str, Any] | None = None,
    system: SystemInfo | None = None,
) -> ValidationResult:
    """Whether a model can be trained or served on this machine, with reasons and fixes."""
    from modelport.validation import validate_model as _validate

    entry = show_model(name)
    system = system or system_info(gpu_memory=gpu_memory)
    return _validate(
        entry,
        system,
        purpose=purpose,  # type: ignore[arg-type]
        dtype=dtype,
        context=context,
        method=method,
        overrides=overrides,
    )


def select_models(
    task: str,
    *,
    include_api: bool = True,
    include_self_hosted: bool = True,
    min_context: int | None = None,
    max_cost_per_1m: float | None = None,
    capabilities: Sequence[str] = (),
    fits_this_machine: bool = False,
    gpu_memory: str | float | None = None,
    purpose: str = "inference",
    limit: int = 10,
    usable_only: bool = False,
) -> list[Selection]:
    """Rank self-hosted and API models for a task under constraints, with reasons; API
    models say whether a key for them is here (``usable_only`` keeps only those)."""
    from modelport.api.keys import key_status
    from modelport.catalog.selection import select_models as _select
    from modelport.providers.base import provider_for_catalog

    system = system_info(gpu_memory=gpu_memory) if fits_this_machine else None
    keys: dict[str, tuple[str | None, str]] = {}

    def key_of(entry: ModelEntry) -> tuple[str | None, str]:
        if entry.provider not in keys:
            name = provider_for_catalog(entry.provider)
            if name is None:
                keys[entry.provider] = (None, f"no provider here calls {entry.provider}'s API")
            else:
                keys[entry.provider] = (
                    key_status(name),
                    f"no key here: `modelport keys set {name}`",
                )
        return keys[entry.provider]

    return _select(
        get_catalog(),
        task,
        include_api=include_api,
        include_self_hosted=include_self_hosted,
        min_context=min_context,
        max_cost_per_1m=max_cost_per_1m,
        capabilities=capabilities,
        fits_this_machine=fits_this_machine,
        system=system,
        purpose=purpose,
        limit=limit,
        key_of=key_of if include_api else None,
        usable_only=usable_only,
    )


recommend = select_models


# -------------------------------------------------------------------- editing


@dataclass(frozen=True)
class ImportReport:
    """What an import added and replaced."""

    source: str
    added: int
    replaced: int


def add_entries(entries: Iterable[ModelEntry], *, replace: bool = False) -> ImportReport:
    """Add user entries to the catalog and the database, all or none."""
    batch = list(entries)
    catalog = get_catalog()
    existing = [e.id for e in batch if e.id in catalog]
    if existing and not replace:
        from modelport.errors import DuplicateModelError

        raise DuplicateModelError(existing[0], where="the catalog")
    _repository().save(batch, origin="user")
    catalog.register_bulk(batch, replace=True)
    _forget_runs()
    return ImportReport(source="api", added=len(batch) - len(existing), replaced=len(existing))


def import_catalog(
    path: str | Path, *, format: str = "modelport", replace: bool = False
) -> ImportReport:
    """Import a catalog file (modelport JSON or a LiteLLM map) as user entries."""
    from modelport.catalog.loader import read_catalog_bytes
    from modelport.catalog.remote import parse_catalog_text

    entries = parse_catalog_text(read_catalog_bytes(path), source=str(path), format=format)
    report = add_entries(entries, replace=replace)
    return ImportReport(source=str(path), added=report.added, replaced=report.replaced)


def remove_entry(model_id: str) -> ModelEntry:
    """Remove a user-added entry by exact id (bundled entries cannot be removed)."""
    catalog = get_catalog()
    repo = _repository()
    origin = repo.origin_of(model_id)
    if origin is None:
        if model_id in catalog:
            raise CatalogError(
                f"{model_id} is a bundled entry and cannot be removed.",
                hint="Override it by importing an entry with the same id and --replace.",
            )
        raise ModelNotFoundError(model_id)
    if origin != "user":
        raise CatalogError(
            f"{model_id} comes from the remote catalog {origin.removeprefix('remote:')!r}.",
            hint="Remove that source with `modelport catalog remote rm NAME`.",
        )
    entry = catalog[model_id]
    repo.delete(model_id)
    catalog.remove(model_id)
    _forget_runs()
    get_catalog(reload=True)  # a bundled entry it had replaced comes back
    return entry


def entry_history(model_id: str) -> list[EntryVersion]:
    """Every version of a user or remote entry by exact id, newest first: the current one,
    then each one a change ended (replaced or removed; by what, by whom and when).

    A bundled entry has none (an empty list); an id never in the catalog is
    ``ModelNotFoundError``.
    """
    versions: list[EntryVersion] = _repository().history(model_id)
    if not versions and model_id not in get_catalog():
        raise ModelNotFoundError(model_id)
    return versions


def export_catalog(query: CatalogQuery | None = None, /, **filters: Any) -> str:
    """The matching entries as a catalog JSON document."""
    from modelport.catalog.loader import dump_catalog

    return dump_catalog(query_models(query, **filters))


# -------------------------------------------------------------------- remotes


@dataclass(frozen=True)
class UpdateReport:
    """The outcome of refreshing one remote catalog."""

    name: str
    url: str
    before: int
    after: int
    kept_local: tuple[str, ...] = ()


def add_remote_catalog(name: str, url: str, *, format: str = "modelport") -> None:
    """Subscribe to a remote catalog (fetched by ``update_catalogs``)."""

    from modelport.catalog.remote import FORMATS

    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", name):
        raise InvalidValueError(
            f"Invalid source name {name!r}.", hint="Use lowercase letters, digits, - _ and ."
        )
    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"{url!r} is not an http(s) URL.")
    if format not in FORMATS:
        raise InvalidValueError(
            f"Unknown catalog format {format!r}.", hint="Use one of: " + ", ".join(FORMATS) + "."
        )
    _repository().add_source(name, url, format=format)


def _forget_runs() -> None:
    """Names may resolve differently now: forget what `run` remembered."""
    from modelport.store.runs import forget

    forget(get_settings().home / "store")


def remove_remote_catalog(name: str) -> None:
    """Unsubscribe from a remote catalog and drop its entries."""
    if not _repository().remove_source(name):
        raise CatalogError(
            f"No remote catalog named {name!r}.",
            hint="List them with `modelport catalog remote ls`.",
        )
    get_catalog(reload=True)
    _forget_runs()


def remote_catalogs() -> list[RemoteSource]:
    """Every remote catalog source."""
    return list(_repository().sources())


def update_catalogs(name: str | None = None, *, force: bool = False) -> list[UpdateReport]:
    """Refresh remote catalogs; refuse one that shrinks by more than 20% unless ``force``."""
    from modelport.catalog.remote import fetch_remote_catalog

    repo = _repository()
    sources = repo.sources()
    if name is not None:
        sources = [s for s in sources if s.name == name]
        if not sources:
            raise CatalogError(
                f"No remote catalog named {name!r}.",
                hint="Add one with `modelport catalog remote add NAME URL`.",
            )
    if not sources:
        raise CatalogError(
            "No remote catalogs to update.",
            hint="Add one with `modelport catalog remote add NAME URL`.",
        )
    timeout = get_settings().http_timeout
    reports = []
    for source in sources:
        fetched = fetch_remote_catalog(source.url, format=source.format, timeout=timeout)
        before = len(repo.entries(origin=f"remote:{source.name}"))
        after = len(fetched.entries)
        if not force and before and after < before * (1 - MAX_SHRINK):
            raise CatalogShrinkError(source.name, before, after)
        skipped = repo.replace_origin(f"remote:{source.name}", fetched.entries)
        repo.mark_refreshed(source.name, entry_count=after, etag=fetched.etag)
        reports.append(UpdateReport(source.name, source.url, before, after, tuple(skipped)))
    get_catalog(reload=True)
    _forget_runs()
    return reports
