"""The use-cases of modelport; the CLI, the server and Python callers all go through these."""

from __future__ import annotations

import re
import sys
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
from modelport.refs import HUB_REGISTRIES, parse_ref
from modelport.settings import get_settings, parse_size

# The catalog (pydantic models) loads only when a use-case needs it: `run` of a model it
# resolved before starts without it.
if TYPE_CHECKING:
    from modelport.catalog.catalog import Catalog, CatalogQuery, SearchHit
    from modelport.catalog.discovery import Match
    from modelport.catalog.entry import ModelEntry
    from modelport.catalog.selection import Selection
    from modelport.hardware import SystemInfo
    from modelport.validation import ValidationResult

__all__ = [
    "ImportReport",
    "UpdateReport",
    "add_entries",
    "add_remote_catalog",
    "convert",
    "export_catalog",
    "get_catalog",
    "get_store",
    "hub_ref",
    "import_catalog",
    "list_models",
    "load_model",
    "model_source",
    "parse_duration",
    "plan_prune",
    "plan_remove",
    "pull",
    "query_models",
    "recommend",
    "remove",
    "remove_entry",
    "remove_remote_catalog",
    "reset",
    "resolve_model",
    "run",
    "search_hub",
    "search_models",
    "select_models",
    "show_model",
    "stored_model",
    "system_info",
    "update_catalogs",
    "validate_model",
    "verify_store",
]

#: A remote update may drop at most this share of a source's entries unless forced.
MAX_SHRINK = 0.20

_lock = threading.RLock()
_catalog: Catalog | None = None


def _repository() -> Any:
    from modelport.catalog.persistence import CatalogRepository
    from modelport.db import get_engine

    return CatalogRepository(get_engine(get_settings().database_url))


def get_catalog(*, reload: bool = False) -> Catalog:
    """The catalog of this process: bundled entries, then remote and user entries, with usage."""
    global _catalog
    with _lock:
        if _catalog is not None and not reload:
            return _catalog
        from modelport.catalog.catalog import Catalog
        from modelport.catalog.loader import load_bundled_entries

        settings = get_settings()
        catalog = Catalog(load_bundled_entries() if settings.bundled_catalog else ())
        repo = _repository()
        # One row per id (remote updates never take a user's id): they replace bundled ones.
        catalog.register_bulk((entry for _origin, entry in repo.entries()), replace=True)
        catalog.load_usage(repo.usage())
        catalog.on_usage(lambda model_id, count: repo.add_usage(model_id, count))
        _catalog = catalog
        return catalog


def reset() -> None:
    """Forget the loaded catalog and settings (the next call reads them again)."""
    global _catalog, _store
    from modelport.settings import reset_settings

    with _lock:
        _catalog = None
        _store = None
        _loaded.clear()
        reset_settings()
        if "modelport.hubs.base" in sys.modules:
            from modelport.hubs.base import reset_hubs

            reset_hubs()
        if "modelport.db" in sys.modules:
            from modelport.db import dispose_engines

            dispose_engines()


def resolve_model(name: str) -> Match:
    """How a name or reference resolves to one catalog id."""
    ref = parse_ref(name)
    catalog = get_catalog()
    if ref.registry in HUB_REGISTRIES:
        return catalog.resolve(ref.name)
    text = str(ref.with_revision(None))
    try:
        return catalog.resolve(text)
    except ModelNotFoundError:
        if ref.registry is not None:
            return catalog.resolve(ref.name)
        raise


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
) -> list[Selection]:
    """Rank self-hosted and API models for a task under constraints, with reasons."""
    from modelport.catalog.selection import select_models as _select

    system = system_info(gpu_memory=gpu_memory) if fits_this_machine else None
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
    repo.delete(model_id)
    entry = catalog.remove(model_id)
    _forget_runs()
    get_catalog(reload=True)  # a bundled entry it had replaced comes back
    return entry


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
    import re

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


def remote_catalogs() -> list[Any]:
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


# -------------------------------------------------------------------- the store

_store: Any = None


def get_store() -> Any:
    """The local store of this process (``$MODELPORT_HOME/store``)."""
    global _store
    with _lock:
        if _store is None:
            from modelport.db import get_engine
            from modelport.store.store import Store

            settings = get_settings()
            _store = Store(settings.home / "store", get_engine(settings.database_url))
        return _store


def hub_ref(text: str) -> Any:
    """A reference to something pullable: explicit registry, ``org/name``, or a catalog name."""
    from modelport.hubs.base import get_hub
    from modelport.refs import Ref

    ref = parse_ref(text)
    if ref.hub is not None:
        return get_hub(ref.hub).store_ref(Ref(ref.name, ref.hub, ref.revision))
    if ref.registry is not None:
        raise InvalidValueError(
            f"{text} is a hosted API model: there is nothing to pull.",
            hint="Pull a model from a hub, e.g. hf:org/name.",
        )
    entry = get_catalog()[resolve_model(ref.name).id]
    if entry.hugging_face_id:
        return Ref(entry.hugging_face_id, "hf", ref.revision)
    raise InvalidValueError(
        f"{entry.id} has no published weights to pull.",
        hint="Only self-hosted models with a hub id can be pulled.",
    )


def pull(
    ref: str,
    *,
    revision: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    allow_pickle: bool = False,
    progress: Any = None,
) -> Any:
    """Pull a model into the local store (verified, resumable); returns a ``PulledModel``."""
    from modelport.hubs.base import PullEvent, get_hub

    target = hub_ref(ref)
    hub = get_hub(target.registry)
    if progress is not None and not _complete_in_store(target):
        for warning in preflight(ref):
            progress(PullEvent(f"warning: {warning}"))
    return hub.pull(
        target,
        revision=revision,
        allow_patterns=include,
        ignore_patterns=exclude,
        allow_pickle=allow_pickle,
        progress=progress,
    )


def _complete_in_store(target: Any) -> bool:
    from modelport.errors import NotInStoreError

    try:
        get_store().get(target.registry, target.name, target.revision)
    except NotInStoreError:
        return False
    return True


def preflight(ref: str) -> list[str]:
    """What to know before downloading: an opset this runtime lacks, a tight or failed fit.

    Hubs that cannot answer (offline, unreachable) leave it to the pull to say so.
    """
    from modelport.errors import ModelportError
    from modelport.hubs.base import get_hub

    target = hub_ref(ref)
    try:
        model = get_hub(target.registry).info(target)
    except ModelportError:
        return []
    warnings = []
    opsets = [int(t.split(":", 1)[1]) for t in model.tags if re.fullmatch(r"opset:\d+", t)]
    if opsets:
        try:
            from modelport.runtime.compat import check_opset

            if (problem := check_opset(max(opsets))) is not None:
                warnings.append(f"{problem}; it will not run here")
        except ImportError:
            pass
    if model.size:
        from modelport.validation import fit_by_size

        level, need = fit_by_size(model.size, system_info())
        if level.value == "does-not-fit":
            warnings.append(
                f"it needs about {need:.1f} GB of memory to run, more than this machine has"
            )
        elif level.value == "tight":
            warnings.append(f"memory will be tight: it needs about {need:.1f} GB to run")
    return warnings


def check_runnable(path: Path, *, provider: str | None = None) -> Any:
    """Refuse a model this machine cannot run (opset, operators, memory), with the reason."""
    from modelport.errors import IncompatibleModelError
    from modelport.runtime.compat import check_model
    from modelport.runtime.providers import onnxruntime, provider_order

    model_file = path / "model.onnx" if path.is_dir() else path
    if not model_file.exists():
        return None
    result = check_model(
        model_file,
        providers=provider_order(onnxruntime().get_available_providers(), provider),
        system=system_info(),
    )
    if not result.ok:
        raise IncompatibleModelError(
            f"{path.name} cannot run here: " + "; ".join(result.problems) + ".",
            hint="See `modelport compare` for models that fit this machine.",
        )
    return result


def list_models(
    *, registry: str | None = None, name: str | None = None, task: str | None = None
) -> list[Any]:
    """The models in the local store, newest pull first."""
    return list(get_store().list_models(registry=registry, name_contains=name, task=task))


def stored_model(ref: str) -> Any:
    """The stored revision a reference names (the latest pulled one without ``@rev``)."""
    target = hub_ref(ref)
    return get_store().get(target.registry, target.name, target.revision)


def plan_remove(ref: str) -> Any:
    """What ``remove(ref)`` would delete: every stored revision, or only ``@rev``."""
    from modelport.errors import NotInStoreError

    target = hub_ref(ref)
    store = get_store()
    found = store.find(target.registry, target.name, target.revision)
    if not found:
        raise NotInStoreError(str(target))
    return store.plan_remove(found, reason="removed by request")


def remove(ref: str) -> Any:
    """Remove a model (or one revision) from the store; blobs other models use stay."""
    plan = plan_remove(ref)
    get_store().execute(plan)
    return plan


def plan_prune(*, max_size: str | int | None = None, older_than: str | None = None) -> Any:
    """Which models ``cache prune`` would remove, and what it would free."""
    if max_size is None and older_than is None:
        raise InvalidValueError(
            "Nothing to prune by.",
            hint="Give --max-size (e.g. 20GB) and/or --older-than (e.g. 30d).",
        )
    size = parse_size(max_size) if max_size is not None else None
    age = parse_duration(older_than) if older_than is not None else None
    return get_store().plan_prune(max_size=size, older_than=age)


def parse_duration(text: str) -> Any:
    """``30d``, ``12h``, ``90m``, ``2w`` → a timedelta."""
    import datetime as dt
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text.lower())
    if not match:
        raise InvalidValueError(
            f"Invalid duration {text!r}.", hint="Use a number and a unit: 30d, 12h, 90m, 2w."
        )
    value = float(match.group(1))
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return dt.timedelta(seconds=value * unit)


def verify_store(*, repair: bool = False, progress: Any = None) -> Any:
    """Re-hash every blob; with ``repair``, fetch corrupt ones again from their hub."""
    from dataclasses import replace

    store = get_store()
    report = store.verify()
    if not repair or not report.corrupt:
        return report
    for sha in report.corrupt:
        store.discard_blob(sha)
    repaired = []
    for key in report.affected:
        registry, _, rest = key.partition("/")
        name, _, revision = rest.rpartition("@")
        pull(f"{registry}:{name}@{revision}", progress=progress, allow_pickle=True)
        repaired.append(key)
    return replace(report, repaired=tuple(repaired))


def search_hub(
    query: str,
    *,
    hub: str = "hf",
    task: str | None = None,
    library: str | None = None,
    sort: str | None = None,
    limit: int = 20,
) -> list[Any]:
    """Search one hub's models."""
    from modelport.hubs.base import get_hub

    return get_hub(hub).search(query, task=task, library=library, sort=sort, limit=limit)


def hub_info(ref: str) -> dict[str, Any]:
    """What a hub says about a model, without pulling it (entry points for PyTorch Hub)."""
    from dataclasses import asdict

    from modelport.hubs.base import get_hub
    from modelport.refs import Ref

    parsed = parse_ref(ref)
    if parsed.hub is None:
        raise InvalidValueError(
            f"{ref} does not name a hub model.", hint="Use hf:, onnx:, tfhub: or torch:."
        )
    hub = get_hub(parsed.hub)
    target = Ref(parsed.name, parsed.hub, parsed.revision)
    if parsed.hub == "torch":
        from modelport.hubs.torchhub import TorchHub
        from modelport.trust import is_trusted

        assert isinstance(hub, TorchHub)
        commit, entries, dependencies = hub.entrypoints(target)
        repo = hub.store_name(parsed.name)
        return {
            "ref": f"torch:{repo}",
            "hub": "torch",
            "id": repo,
            "revision": commit,
            "trusted": is_trusted(repo),
            "entrypoints": [asdict(e) for e in entries],
            "dependencies": dependencies,
        }
    model = hub.info(target)
    data = asdict(model)
    data["ref"] = f"{model.hub}:{model.id}"
    data["size"] = model.size
    return data


# -------------------------------------------------------------------- convert and run

_loaded: dict[tuple[str, str | None, bool, str | None, str | None], Any] = {}


@dataclass(frozen=True)
class ModelSource:
    """A model folder to convert, and how to identify its content cheaply."""

    folder: Path
    digest: str
    name: str
    task: str | None
    stored: Any = None
    pulled: bool = False
    #: For a PyTorch Hub repository: which entry point, with which keyword arguments.
    entrypoint: str | None = None
    entry_kwargs: tuple[tuple[str, object], ...] = ()


def model_source(ref: str, *, pull_missing: bool = True, progress: Any = None) -> ModelSource:
    """A local folder, or a store model (pulled first when ``pull_missing``)."""
    import hashlib

    from modelport.errors import NotInStoreError

    path = Path(ref).expanduser()
    if path.is_dir():
        from modelport.convert.export import source_digest

        return ModelSource(path, source_digest(path), path.name, None)
    store = get_store()
    pulled = False
    try:
        stored = stored_model(ref)
    except NotInStoreError:
        if not pull_missing:
            raise
        pull(ref, progress=progress)
        stored = stored_model(ref)
        pulled = True
    digest = hashlib.sha256()
    for f in store.files(stored):
        digest.update(f"{f.path}\0{f.sha256}\n".encode())
    entrypoint, entry_kwargs = _torch_entry(ref)
    return ModelSource(
        stored.path,
        digest.hexdigest(),
        stored.name,
        stored.task,
        stored,
        pulled,
        entrypoint,
        entry_kwargs,
    )


def _torch_entry(ref: str) -> tuple[str | None, tuple[tuple[str, object], ...]]:
    from modelport.refs import parse_torch_name

    parsed = parse_ref(ref)
    if parsed.registry != "torch":
        return None, ()
    parts = parse_torch_name(parsed.name)
    return parts.entrypoint, parts.kwargs


def _check_trusted(source: ModelSource, trust: bool) -> None:
    """Running a PyTorch Hub repository's code needs the user's trust in it."""
    from modelport.errors import UntrustedCodeError
    from modelport.trust import is_trusted

    if source.stored is None or source.stored.registry != "torch" or trust:
        return
    if not is_trusted(source.stored.name):
        ref = f"torch:{source.stored.name}" + (f"/{source.entrypoint}" if source.entrypoint else "")
        raise UntrustedCodeError(ref, source.stored.name)


def convert(
    ref: str,
    *,
    task: str | None = None,
    optimize: bool = False,
    quantize: str | None = None,
    opset: int | None = None,
    progress: Any = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
) -> Any:
    """Convert a stored model (pulled if missing) or a local folder to ONNX, cached."""
    source = model_source(ref, progress=progress)
    return _convert_source(
        source,
        task=task,
        optimize=optimize,
        quantize=quantize,
        opset=opset,
        trust=trust,
        input_shapes=input_shapes,
    )


def _convert_source(
    source: ModelSource,
    *,
    task: str | None,
    optimize: bool,
    quantize: str | None,
    opset: int | None = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
) -> Any:
    from modelport.catalog.tasks import canonical_task
    from modelport.convert.export import DEFAULT_OPSET, convert_folder

    return convert_folder(
        source.folder,
        out_root=get_store().layout.root / "converted",
        task=canonical_task(task) if task else None,
        card_task=source.task,
        source=source.digest,
        name=source.name,
        opset=opset or DEFAULT_OPSET,
        optimize=optimize,
        quantize=quantize,
        entrypoint=source.entrypoint,
        entry_kwargs=dict(source.entry_kwargs),
        input_shapes=input_shapes,
        before_code_runs=lambda: _check_trusted(source, trust),
    )


def load_model(
    ref: str,
    *,
    provider: str | None = None,
    optimize: bool = False,
    quantize: str | None = None,
    task: str | None = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
) -> Any:
    """A loaded ``Model`` for repeated calls: a spec folder, or pull → convert → load."""
    from modelport.runtime.model import Model
    from modelport.store import runs

    key = (ref, provider, optimize, quantize, task)
    if key in _loaded:
        return _loaded[key]
    path = Path(ref).expanduser()
    if path.is_dir() and ((path / "modelport.yml").exists() or (path / "gpux.yml").exists()):
        model = Model.load(path, provider=provider)
        _loaded[key] = model
        return model
    root = get_settings().home / "store"
    options = f"task={task};optimize={optimize};quantize={quantize}"
    if input_shapes:
        options += ";shapes=" + ",".join(input_shapes)
    # A run resolved before starts without the catalog or the database.
    remembered = None if path.is_dir() else runs.lookup(root, ref, options)
    if remembered is not None:
        model = Model.load(remembered.path, provider=provider)
        runs.record_use(root, remembered.model_key)
    else:
        source = model_source(ref)
        result = _convert_source(
            source,
            task=task,
            optimize=optimize,
            quantize=quantize,
            trust=trust,
            input_shapes=input_shapes,
        )
        check_runnable(result.path, provider=provider)
        model = Model.load(result.path, provider=provider)
        if source.stored is not None:
            store = get_store()
            store.count("run.miss" if source.pulled else "run.hit")
            store.touch(source.stored.key)
            runs.remember(
                root,
                ref,
                options,
                registry=source.stored.registry,
                name=source.stored.name,
                revision=source.stored.revision,
                converted=result.path.name,
            )
    _loaded[key] = model
    return model


def run(ref: str, inputs: Any, *, provider: str | None = None, **options: Any) -> Any:
    """Run a model on inputs: resolve → pull if missing → convert if missing → load → infer."""
    return load_model(ref, provider=provider)(inputs, **options)
