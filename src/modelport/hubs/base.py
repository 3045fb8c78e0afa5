"""The ``Hub`` interface every registry implements, its data types, and the hub registry.

Hubs register through the ``modelport.hubs`` entry point group, the built-in ones
exactly like a third-party package would::

    [project.entry-points."modelport.hubs"]
    hf = "modelport.hubs.huggingface:HuggingFaceHub"
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

from modelport.errors import UnknownHubError
from modelport.refs import Ref

__all__ = [
    "Hub",
    "HubFile",
    "HubModel",
    "ProgressCallback",
    "PullEvent",
    "PulledModel",
    "commit_folder",
    "commit_pull",
    "get_hub",
    "hub_names",
    "offline_mode",
    "register_hub",
    "served_from_store",
    "unregister_hub",
]

DigestKind = Literal["sha256", "git-sha1"]


@dataclass(frozen=True)
class HubFile:
    """One file of a model as the hub lists it."""

    path: str
    size: int | None
    digest: str | None
    digest_kind: DigestKind | None
    lfs: bool = False


@dataclass(frozen=True)
class HubModel:
    """What a hub says about one model at one revision."""

    hub: str
    id: str
    revision: str
    files: tuple[HubFile, ...] = ()
    task: str | None = None
    library: str | None = None
    tags: tuple[str, ...] = ()
    license: str | None = None
    downloads: int | None = None
    likes: int | None = None
    gated: bool = False
    private: bool = False
    card_summary: str | None = None
    last_modified: str | None = None

    @property
    def size(self) -> int:
        """Bytes of every listed file whose size is known."""
        return sum(f.size or 0 for f in self.files)

    @property
    def opset(self) -> int | None:
        """The ONNX opset its ``opset:N`` tag names (zoo models), or None."""
        found = [int(t[6:]) for t in self.tags if t.startswith("opset:") and t[6:].isdigit()]
        return max(found, default=None)

    @property
    def format(self) -> str | None:
        """The weights format: onnx, safetensors, pytorch, tensorflow, gguf… (None: unknown)."""
        for suffix, name in _FILE_FORMATS:
            if any(f.path.endswith(suffix) for f in self.files):
                return name
        tags = {t.lower() for t in self.tags}
        for tag in ("onnx", "gguf", "safetensors"):
            if tag in tags:
                return tag
        if self.hub == "onnx":
            return "onnx"
        return _LIBRARY_FORMATS.get((self.library or "").lower())


_FILE_FORMATS = (
    (".onnx", "onnx"),
    (".gguf", "gguf"),
    (".safetensors", "safetensors"),
    ("saved_model.pb", "tensorflow"),
    (".tflite", "tflite"),
    (".h5", "tensorflow"),
    (".keras", "tensorflow"),
    (".bin", "pytorch (pickle)"),
    (".pt", "pytorch (pickle)"),
    (".pth", "pytorch (pickle)"),
    (".msgpack", "flax"),
)
_LIBRARY_FORMATS = {
    "onnx": "onnx",
    "gguf": "gguf",
    "tensorflow2": "tensorflow",
    "tensorflow1": "tensorflow",
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "keras": "tensorflow",
    "tflite": "tflite",
    "pytorch": "pytorch",
    "transformers": "safetensors",
    "sentence-transformers": "safetensors",
}


@dataclass(frozen=True)
class PullEvent:
    """A progress event, shaped like Ollama's ``/api/pull`` stream."""

    status: str
    digest: str | None = None
    file: str | None = None
    total: int | None = None
    completed: int | None = None


ProgressCallback = Callable[[PullEvent], None]


@dataclass(frozen=True)
class PulledModel:
    """A model complete in the local store."""

    hub: str
    id: str
    revision: str
    ref: str
    path: str
    files: tuple[tuple[str, str, int], ...] = field(default_factory=tuple)
    task: str | None = None
    library: str | None = None
    downloaded_bytes: int = 0
    from_store: bool = False

    @property
    def size(self) -> int:
        """Bytes of the model's files."""
        return sum(size for _, _, size in self.files)


class Hub(abc.ABC):
    """A model registry: search it, describe a model, pull one into the store."""

    #: The registry prefix of references (``hf`` in ``hf:org/name``).
    name: str = ""

    def store_name(self, name: str) -> str:
        """The form of a model name the store keeps (hubs with loose names normalize it)."""
        return name

    def store_ref(self, ref: Ref) -> Ref:
        """The reference the store keeps for ``ref``: its stored name and revision."""
        return Ref(self.store_name(ref.name), ref.registry, ref.revision)

    @abc.abstractmethod
    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
    ) -> list[HubModel]:
        """Models matching a query, most relevant (or by ``sort``) first."""

    @abc.abstractmethod
    def info(self, ref: Ref) -> HubModel:
        """The model at ``ref`` (its revision resolved to a commit), with its files."""

    @abc.abstractmethod
    def pull(
        self,
        ref: Ref,
        *,
        revision: str | None = None,
        allow_patterns: Sequence[str] = (),
        ignore_patterns: Sequence[str] = (),
        allow_pickle: bool = False,
        progress: ProgressCallback | None = None,
    ) -> PulledModel:
        """Download the model into the store (verified, resumable) and return it."""


def served_from_store(store: Any, manifest: Any, emit: ProgressCallback) -> PulledModel:
    """Finish a pull that the store already answered."""
    store.count("pull.hit")
    emit(PullEvent("success"))
    return _pulled(store, manifest, downloaded=0, from_store=True)


def commit_pull(
    store: Any,
    manifest: Any,
    *,
    downloaded: int,
    emit: ProgressCallback,
    refs: Sequence[str] = (),
) -> PulledModel:
    """Finish a pull whose files are verified: make it visible, remember its refs."""
    emit(PullEvent("writing manifest"))
    store.commit(manifest)
    for ref in refs:
        store.remember_ref(manifest.registry, manifest.name, ref, manifest.revision)
    store.count("pull.miss")
    emit(PullEvent("success"))
    return _pulled(store, manifest, downloaded=downloaded, from_store=False)


def commit_folder(
    store: Any,
    folder: Any,
    files: Sequence[str],
    *,
    registry: str,
    name: str,
    revision: str,
    ref: str,
    emit: ProgressCallback,
    downloaded: int,
    requested: str | None = None,
    task: str | None = None,
    library: str | None = None,
    tags: Sequence[str] = (),
    refs: Sequence[str] = (),
) -> PulledModel:
    """Store the files of an unpacked download (content-addressed) and commit them."""
    import datetime as dt
    from pathlib import Path

    from modelport.store.store import Manifest

    emit(PullEvent("verifying sha256 digests"))
    entries = []
    for path in sorted(files):
        added = store.add_file(Path(folder) / path)
        entries.append(type(added)(path, added.sha256, added.size, added.digest_kind, added.digest))
    manifest = Manifest(
        registry=registry,
        name=name,
        revision=revision,
        ref=ref,
        requested=requested,
        files=tuple(entries),
        pulled_at=dt.datetime.now(dt.UTC).isoformat(),
        task=task,
        library=library,
        tags=tuple(tags),
    )
    return commit_pull(store, manifest, downloaded=downloaded, emit=emit, refs=refs)


def offline_mode() -> bool:
    """Whether the user asked for no network (``MODELPORT_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    import os

    return any(
        os.environ.get(var, "").lower() in ("1", "true", "yes", "on")
        for var in ("MODELPORT_OFFLINE", "HF_HUB_OFFLINE")
    )


def _pulled(store: Any, manifest: Any, *, downloaded: int, from_store: bool) -> PulledModel:
    return PulledModel(
        hub=manifest.registry,
        id=manifest.name,
        revision=manifest.revision,
        ref=manifest.ref,
        path=str(store.layout.model_dir(manifest.registry, manifest.name, manifest.revision)),
        files=tuple((f.path, f.sha256, f.size) for f in manifest.files),
        task=manifest.task,
        library=manifest.library,
        downloaded_bytes=downloaded,
        from_store=from_store,
    )


_lock = threading.Lock()
_factories: dict[str, Callable[[], Hub]] | None = None
_instances: dict[str, Hub] = {}


def _load_factories() -> dict[str, Callable[[], Hub]]:
    global _factories
    with _lock:
        if _factories is None:
            found: dict[str, Callable[[], Hub]] = {}
            for ep in entry_points(group="modelport.hubs"):
                found.setdefault(ep.name, _lazy(ep))
            _factories = found
        return _factories


def _lazy(ep: Any) -> Callable[[], Hub]:
    def make() -> Hub:
        factory = ep.load()
        hub = factory()
        if not isinstance(hub, Hub):
            raise TypeError(f"entry point {ep.name!r} did not produce a Hub")
        return hub

    return make


def register_hub(name: str, factory: Callable[[], Hub]) -> None:
    """Register a hub under a name (entry points do this for installed packages)."""
    factories = _load_factories()
    with _lock:
        factories[name] = factory
        _instances.pop(name, None)


def unregister_hub(name: str) -> None:
    """Remove a registered hub (tests and plugins that unload)."""
    factories = _load_factories()
    with _lock:
        factories.pop(name, None)
        _instances.pop(name, None)


def hub_names() -> list[str]:
    """Names of every registered hub."""
    return sorted(_load_factories())


def get_hub(name: str) -> Hub:
    """The hub registered under ``name`` (created once per process)."""
    factories = _load_factories()
    with _lock:
        if name in _instances:
            return _instances[name]
        if name not in factories:
            raise UnknownHubError(name, list(factories))
        hub = factories[name]()
        _instances[name] = hub
        return hub


def reset_hubs() -> None:
    """Forget hub instances (their settings are read again on next use)."""
    with _lock:
        _instances.clear()
