"""Store use-cases: pull into the local store, list, remove, prune, verify; search hubs."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelport.api.catalog import get_catalog, record_use, resolve_model, system_info
from modelport.errors import (
    InvalidValueError,
)
from modelport.refs import parse_ref
from modelport.settings import get_settings, parse_size

if TYPE_CHECKING:
    pass


_lock = threading.RLock()
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
    pulled = hub.pull(
        target,
        revision=revision,
        allow_patterns=include,
        ignore_patterns=exclude,
        allow_pickle=allow_pickle,
        progress=progress,
    )
    record_use(target.registry, target.name)
    return pulled


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
    if model.opset is not None:
        try:
            from modelport.runtime.compat import check_opset

            if (problem := check_opset(model.opset)) is not None:
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

    from modelport.settings import parse_seconds

    return dt.timedelta(seconds=parse_seconds(text, default_unit=None))


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
