"""Store use-cases: pull into the local store, list, remove, prune, verify; search hubs.

The store is made here, once per process, and handed to the hub that pulls: hubs never
reach up for it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from modelport.api.catalog import get_catalog, record_use, resolve_model
from modelport.errors import InvalidValueError
from modelport.refs import parse_ref
from modelport.settings import get_settings, parse_size

if TYPE_CHECKING:
    from pathlib import Path

    from modelport.hubs.base import Hub, HubModel, ProgressCallback, PulledModel, PullEvent, Ref
    from modelport.store.artifacts import Artifact
    from modelport.store.remote import RemoteStore
    from modelport.store.store import (
        ManifestFile,
        RemovalPlan,
        Store,
        StoredModel,
        StoreStats,
        VerifyReport,
    )


_lock = threading.RLock()
_store: Store | None = None
#: The bucket of a shared store, by the settings that name it (boto3 clients are reused).
_remote: tuple[tuple[str, str | None, float], RemoteStore] | None = None


def get_store() -> Store:
    """The store of this process: ``$MODELPORT_HOME/store``, or with ``MODELPORT_STORE_URL``
    the bucket every server shares, that folder being this machine's cache of it."""
    global _store
    with _lock:
        if _store is None:
            from modelport.db import get_engine
            from modelport.store.store import Store

            settings = get_settings()
            _store = Store(
                settings.home / "store",
                get_engine(settings.database_url),
                remote=shared_store(),
                cache_limit=settings.store_cache_size,
            )
        return _store


def shared_store() -> RemoteStore | None:
    """The bucket behind the store (``MODELPORT_STORE_URL``), or None for a local store.

    Needs no database: a run that converts reads and writes converted models there."""
    global _remote
    settings = get_settings()
    if settings.store_url is None:
        return None
    named = (settings.store_url, settings.s3_endpoint_url, settings.http_timeout)
    with _lock:
        if _remote is None or _remote[0] != named:
            from modelport.store.remote import RemoteStore

            _remote = (
                named,
                RemoteStore(
                    settings.store_url,
                    endpoint_url=settings.s3_endpoint_url,
                    timeout=settings.http_timeout,
                ),
            )
        return _remote[1]


def hub_ref(text: str) -> Ref:
    """A reference to something pullable: explicit registry, ``org/name``, or a catalog name."""
    from modelport.hubs.base import Ref, get_hub

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
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> PulledModel:
    """Pull a model into the local store (verified, resumable).

    Setting ``cancel`` stops the pull at its next progress event with
    ``PullCancelledError``; what it had downloaded for the model and no stored model uses
    (partial files, finished blobs) is deleted, so a cancelled pull leaves nothing behind.
    """
    if cancel is None:
        return _pull(ref, revision, include, exclude, allow_pickle, progress)
    watch = _CancellablePull(cancel, progress)
    try:
        return _pull(ref, revision, include, exclude, allow_pickle, watch)
    except BaseException:
        # Cancelled, or failed while cancelling: either way nothing half-done stays.
        if cancel.is_set():
            watch.discard(get_store())
            from modelport.errors import PullCancelledError

            raise PullCancelledError(ref) from None
        raise


def _pull(
    ref: str,
    revision: str | None,
    include: Sequence[str],
    exclude: Sequence[str],
    allow_pickle: bool,
    progress: ProgressCallback | None,
) -> PulledModel:
    from modelport.hubs.base import PullEvent, PullOptions, get_hub

    target = hub_ref(ref)
    hub = get_hub(target.registry or "")
    store = get_store()
    model = None
    if progress is not None and not _complete_in_store(store, target, revision):
        warnings, model = _preflight(hub, target.with_revision(revision or target.revision))
        for warning in warnings:
            progress(PullEvent(f"warning: {warning}"))
    options = PullOptions(
        revision=revision,
        include=tuple(include),
        exclude=tuple(exclude),
        allow_pickle=allow_pickle,
        progress=progress,
        model=model,
    )
    pulled = hub.pull(target, store=store, options=options)
    record_use(pulled.hub, pulled.id)
    return pulled


class _Stop(Exception):
    """Raised from a cancelled pull's progress callback: it unwinds the hub's download."""


class _CancellablePull:
    """A progress callback that stops the pull once ``cancel`` is set, remembering which
    downloads the pull began and which blobs it wrote, so that they can be discarded."""

    def __init__(self, cancel: threading.Event, forward: ProgressCallback | None) -> None:
        self.cancel = cancel
        self.forward = forward
        self.lock = threading.Lock()
        #: ``(kind, digest)`` of every download begun (its partial file's name).
        self.begun: set[tuple[str, str]] = set()
        #: Files that received bytes from the hub, and the blobs they became.
        self.receiving: set[str] = set()
        self.written: set[str] = set()

    def __call__(self, event: PullEvent) -> None:
        with self.lock:
            kind, _, digest = (event.digest or "").partition(":")
            if event.status == "downloading" and digest:
                self.begun.add((kind, digest))
                if event.completed and event.file:
                    self.receiving.add(event.file)
            elif (
                event.status.startswith("verifying")
                and kind == "sha256"
                and event.file in self.receiving  # downloaded by this pull, not found
            ):
                self.written.add(digest)
        # "success" comes after the commit: the model is stored, there is nothing to stop.
        if self.cancel.is_set() and event.status != "success":
            raise _Stop
        if self.forward is not None:
            self.forward(event)

    def discard(self, store: Store) -> None:
        """Delete the partial files of this pull's downloads and the blobs it wrote that no
        stored model uses (a download another process holds is left to it)."""
        from modelport.store.store import RemovalPlan

        layout = store.layout
        used = {f.sha256 for m in store.list_models() for f in store.files(m)}
        partials = []
        for kind, digest in sorted(self.begun):
            try:
                path = layout.partial(kind, digest)
            except ValueError:
                continue
            if path.exists():
                partials.append((path.name, path.stat().st_size))
        # Partial files go as a prune's do: under their lock, unless a download holds it.
        store.execute(RemovalPlan(models=(), blobs=(), partials=tuple(partials)))
        # Blobs only from this machine: with a shared store, the bucket's copy may be
        # another server's pull about to commit.
        gone = {sha for sha in self.written - used if layout.blob(sha).exists()}
        for sha in gone:
            store.discard_blob(sha)
        for kind, digest in self.begun:
            if kind == "sha256":
                continue
            try:
                alias = layout.alias(kind, digest)
                if alias.read_text().strip() in gone:
                    alias.unlink(missing_ok=True)
            except (ValueError, OSError):
                continue


def stored_artifacts(models: Sequence[StoredModel]) -> dict[str, list[Artifact]]:
    """What the store derived from each of these models (converted ONNX models, PyTorch
    Hub weights, optimized graphs of those), by the model's key."""
    from pathlib import Path

    from modelport.store.artifacts import find_artifacts
    from modelport.store.layout import tree_digest

    store = get_store()
    found = find_artifacts(store.layout.root)
    if not found:
        return {m.key: [] for m in models}
    root = store.layout.root.resolve()
    result: dict[str, list[Artifact]] = {}
    for model in models:
        digest = tree_digest((f.path, f.sha256) for f in store.files(model))
        owned = [a for a in found if a.kind != "ort-cache" and a.belongs_to(digest)]
        folders = [(root / a.path).resolve() for a in owned]
        graphs = [
            a
            for a in found
            if a.kind == "ort-cache"
            and a.made_from
            and any(Path(a.made_from).is_relative_to(f) for f in folders)
        ]
        result[model.key] = owned + graphs
    return result


def pinned_ref(ref: str, model: PulledModel) -> str:
    """A reference to exactly the revision pulled for ``ref``; a reference naming a code
    hub's entry point stays as it is (its entry point is part of what it means)."""
    from modelport.hubs.base import get_hub

    entrypoint, _ = get_hub(model.hub).entry_call(parse_ref(ref))
    if entrypoint is not None:
        return ref
    return f"{model.hub}:{model.id}@{model.revision}"


def _complete_in_store(store: Store, target: Ref, revision: str | None) -> bool:
    from modelport.errors import NotInStoreError

    try:
        store.get(target.registry or "", target.name, revision or target.revision)
    except NotInStoreError:
        return False
    return True


def preflight(ref: str) -> list[str]:
    """What to know before downloading: an opset this runtime lacks, a tight or failed fit.

    Hubs that cannot answer (offline, unreachable) leave it to the pull to say so.
    """
    from modelport.hubs.base import get_hub

    target = hub_ref(ref)
    return _preflight(get_hub(target.registry or ""), target)[0]


def _preflight(hub: Hub, target: Ref) -> tuple[list[str], HubModel | None]:
    """The warnings, and the model the hub described (the pull does not ask again)."""
    from modelport.errors import ModelportError
    from modelport.hubs.base import offline_mode

    if offline_mode():
        return [], None  # the pull answers from the store or refuses, without the network
    try:
        model = hub.info(target)
    except ModelportError:
        return [], None
    warnings = []
    if model.opset is not None:
        # The kernel registry (onnxruntime) is read only for a model that names an opset.
        try:
            from modelport.runtime.compat import check_opset

            if (problem := check_opset(model.opset)) is not None:
                warnings.append(f"{problem}; it will not run here")
        except ImportError:
            pass
    if model.size:
        from modelport.hardware import detect_system
        from modelport.validation import fit_by_size

        # Only memory is weighed: ONNX Runtime is not imported for a pull.
        here = detect_system(gpu_memory_gb=get_settings().gpu_memory_gb, runtime=False)
        level, need = fit_by_size(model.size, here)
        if level.value == "does-not-fit":
            warnings.append(
                f"it needs about {need:.1f} GB of memory to run, more than this machine has"
            )
        elif level.value == "tight":
            warnings.append(f"memory will be tight: it needs about {need:.1f} GB to run")
    return warnings, model


def list_models(
    *, registry: str | None = None, name: str | None = None, task: str | None = None
) -> list[StoredModel]:
    """The models in the local store, newest pull first."""
    return list(get_store().list_models(registry=registry, name_contains=name, task=task))


def stored_model(ref: str) -> StoredModel:
    """The stored revision a reference names (the latest pulled one without ``@rev``)."""
    target = hub_ref(ref)
    return get_store().get(target.registry or "", target.name, target.revision)


def stored_files(model: StoredModel) -> list[ManifestFile]:
    """The files of a stored model, with their blobs and published digests."""
    return get_store().files(model)


def stored_small_files(
    model: StoredModel, names: Collection[str], files: list[ManifestFile] | None = None
) -> dict[str, Path]:
    """Local paths of a stored model's small files (configs, templates), by their path in
    the model: from its folder, or from a shared store's bucket when this machine has not
    used the model yet (``files``: its files, when the caller has them already)."""
    if model.path.exists():
        return {name: model.path / name for name in names if (model.path / name).is_file()}
    store = get_store()
    if store.remote is None:
        return {}
    from modelport.store.shared import small_files

    return small_files(store, store.files(model) if files is None else files, names)


def read_stored_file(model: StoredModel, file: ManifestFile, start: int, length: int) -> bytes:
    """Up to ``length`` bytes of one of a stored model's files from ``start`` (a weights
    file's header, say), read where they are: its folder, this machine's blobs, or the
    bucket."""
    local = model.path / file.path
    if not local.is_file():
        store = get_store()
        local = store.layout.blob(file.sha256)
        if not local.is_file():
            if store.remote is None:
                return b""
            return store.remote.read_range(store.remote.blob_key(file.sha256), start, length) or b""
    with local.open("rb") as fh:
        fh.seek(start)
        return fh.read(length)


def stored_revisions(ref: str) -> list[StoredModel]:
    """Every stored revision of a model (newest first); empty when none is stored."""
    target = hub_ref(ref)
    return get_store().find(target.registry or "", target.name, target.revision)


def store_stats() -> StoreStats:
    """Size of the store, its models, and how often pulls and runs were served from it."""
    return get_store().stats()


def plan_remove(ref: str) -> RemovalPlan:
    """What ``remove(ref)`` would delete: every stored revision, or only ``@rev``."""
    from modelport.errors import NotInStoreError

    target = hub_ref(ref)
    store = get_store()
    found = store.find(target.registry or "", target.name, target.revision)
    if not found:
        raise NotInStoreError(str(target))
    return store.plan_remove(found, reason="removed by request")


def execute_plan(plan: RemovalPlan) -> int:
    """Carry out a removal or prune plan; returns the bytes freed."""
    return get_store().execute(plan)


def remove(ref: str) -> RemovalPlan:
    """Remove a model (or one revision) from the store; blobs other models use stay."""
    plan = plan_remove(ref)
    execute_plan(plan)
    return plan


def plan_prune(*, max_size: str | int | None = None, older_than: str | None = None) -> RemovalPlan:
    """Which models ``cache prune`` would remove, and what it would free."""
    if max_size is None and older_than is None:
        raise InvalidValueError(
            "Nothing to prune by.",
            hint="Give --max-size (e.g. 20GB) and/or --older-than (e.g. 30d).",
        )
    size = parse_size(max_size) if max_size is not None else None
    age = parse_duration(older_than) if older_than is not None else None
    return get_store().plan_prune(max_size=size, older_than=age)


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` → a timedelta."""
    from modelport.settings import parse_seconds

    return dt.timedelta(seconds=parse_seconds(text, default_unit=None))


def verify_store(*, repair: bool = False, progress: ProgressCallback | None = None) -> VerifyReport:
    """Re-hash every blob and check every alias and folder file; with ``repair``, mend
    what needs no download and pull the rest again with the files it was pulled with."""
    from dataclasses import replace

    from modelport.hubs.base import get_hub
    from modelport.hubs.files import is_pickle
    from modelport.store.store import Selection

    store = get_store()
    report = store.verify()
    if not repair or report.ok:
        return report
    done = set(store.repair_locally(report))
    for key in report.affected:
        registry, _, rest = key.partition("/")
        name, _, revision = rest.rpartition("@")
        manifest = store.read_manifest(registry, name, revision)
        if key in done or manifest is None:
            continue
        # The recorded selection; a manifest from before it was recorded kept its pickles
        # (where the hub fetches pickles at all).
        chosen = manifest.selection or Selection(
            allow_pickle="allow_pickle" in get_hub(registry).pull_options
            and any(is_pickle(f.path) for f in manifest.files)
        )
        pull(
            f"{registry}:{name}@{revision}",
            progress=progress,
            include=chosen.include,
            exclude=chosen.exclude,
            allow_pickle=chosen.allow_pickle,
        )
        done.add(key)
    return replace(report, repaired=tuple(k for k in report.affected if k in done))


def search_hub(
    query: str,
    *,
    hub: str = "hf",
    task: str | None = None,
    library: str | None = None,
    sort: str | None = None,
    limit: int = 20,
) -> list[HubModel]:
    """Search one hub's models."""
    from modelport.hubs.base import get_hub

    return get_hub(hub).search(query, task=task, library=library, sort=sort, limit=limit)


def hub_info(ref: str) -> dict[str, Any]:
    """What a hub says about a model, without pulling it (entry points for code hubs)."""
    from dataclasses import asdict

    from modelport.hubs.base import Ref, get_hub

    parsed = parse_ref(ref)
    if parsed.hub is None:
        raise InvalidValueError(
            f"{ref} does not name a hub model.",
            hint="Use one of the hubs' prefixes: " + ", ".join(f"{h}:" for h in _hubs()) + ".",
        )
    hub = get_hub(parsed.hub)
    target = Ref(parsed.name, parsed.hub, parsed.revision)
    store = get_store()
    code = hub.entrypoints(target, store=store)
    if code is not None:
        from modelport.trust import is_trusted

        commit, entries, dependencies = code
        repo = hub.store_name(parsed.name)
        return {
            "ref": f"{hub.name}:{repo}",
            "hub": hub.name,
            "id": repo,
            "revision": commit,
            "trusted": is_trusted(repo),
            "entrypoints": [asdict(e) for e in entries],
            "dependencies": dependencies,
        }
    model = hub.info(target, store=store)
    data = asdict(model)
    data["ref"] = f"{model.hub}:{model.id}"
    data["size"] = model.size
    return data


def _hubs() -> list[str]:
    from modelport.hubs.base import hub_names

    return hub_names()
