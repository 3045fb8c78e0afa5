"""The ``Hub`` interface every registry implements, its data types, and the hub registry.

Hubs register through the ``modelport.hubs`` entry point group, the built-in ones
exactly like a third-party package would::

    [project.entry-points."modelport.hubs"]
    hf = "modelport.hubs.huggingface:HuggingFaceHub"

A hub is a strategy: ``Hub.pull`` is one template (resolve → served from the store? →
fetch files → commit) and each hub supplies its steps. The store is handed in; no hub
reaches up for it. What is particular to a registry (its name rules, how it names
stored models, whether anything can be pulled from it, the entry points of code hubs)
is asked of the hub, never hard-coded by its callers.
"""

from __future__ import annotations

import abc
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from modelport.errors import InvalidReferenceError, OfflineError, UnknownHubError
from modelport.hubconf import EntryPoint

if TYPE_CHECKING:
    from pathlib import Path

    from modelport.store.store import Manifest, ManifestFile, Store

__all__ = [
    "EntryPoint",
    "Fetched",
    "Hub",
    "HubFile",
    "HubModel",
    "ProgressCallback",
    "PullEvent",
    "PullOptions",
    "PullTarget",
    "PulledModel",
    "Ref",
    "commit_pull",
    "get_hub",
    "hub_names",
    "offline_mode",
    "register_hub",
    "reset_hubs",
    "served_from_store",
    "store_folder",
    "unregister_hub",
]

_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
#: A Hugging Face-shaped ``org/name``: what a bare reference without a registry names.
REPO_ID_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})?")
_API_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.:/+-]*[A-Za-z0-9_.+])?")
#: The hub a bare ``org/name`` reference is pulled from.
DEFAULT_HUB = "hf"


@dataclass(frozen=True, order=True)
class Ref:
    """A parsed model reference: ``[registry:]name[@revision]`` (see ``modelport.refs``)."""

    name: str
    registry: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}:{self.name}" if self.registry else self.name
        if self.revision:
            text += f"@{self.revision}"
        return text

    @property
    def is_repo_id(self) -> bool:
        """Whether the name has the ``org/name`` shape of a Hugging Face repo id."""
        return REPO_ID_RE.fullmatch(self.name) is not None and "/" in self.name

    @property
    def hub(self) -> str | None:
        """The hub to pull from: a registered hub's registry, or the default for ``org/name``."""
        if self.registry is not None:
            return self.registry if self.registry in _load_factories() else None
        return DEFAULT_HUB if self.is_repo_id else None

    def with_revision(self, revision: str | None) -> Ref:
        """The same reference at another revision."""
        return Ref(name=self.name, registry=self.registry, revision=revision)


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
class PullOptions:
    """What the user asked of one pull, beyond the reference."""

    revision: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_pickle: bool = False
    progress: ProgressCallback | None = None
    #: What a preflight already learnt of the model: the pull does not ask the hub again.
    model: HubModel | None = None

    @property
    def selects_files(self) -> bool:
        """Whether the user chose files (a stored revision with other files is fetched again)."""
        return bool(self.include or self.exclude or self.allow_pickle)


@dataclass(frozen=True)
class PullTarget:
    """What a hub resolved a reference to: the stored name and revision, and what to record."""

    name: str
    revision: str
    ref: str
    requested: str | None = None
    #: Names (branch, tag, ``latest``, opset) the store remembers for this revision.
    refs: tuple[str, ...] = ()
    #: What the hub says of the model: files, task, library, tags, license.
    model: HubModel | None = None
    #: The files a fetch would store, when the hub knows them before fetching.
    files: tuple[HubFile, ...] | None = None
    #: Hub-specific facts a fetch needs (an archive address, a mirrored repository…).
    extra: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        """One of the ``extra`` facts."""
        return dict(self.extra).get(key)


@dataclass(frozen=True)
class Fetched:
    """Files a hub fetched into the store's blobs, and what it learnt while fetching."""

    files: tuple[ManifestFile, ...]
    downloaded: int
    library: str | None = None
    tags: tuple[str, ...] = ()


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
    """A model registry: search it, describe a model, pull one into the store it is handed."""

    #: The registry prefix of references (``hf`` in ``hf:org/name``).
    name: str = ""
    #: The revision a pull without ``@rev`` means (remembered per model for offline pulls).
    default_revision: str = "latest"
    #: Which of ``include``, ``exclude``, ``allow_pickle`` this hub honours; others are refused.
    pull_options: frozenset[str] = frozenset()
    #: Why the options this hub does not honour cannot apply (the refusal's sentence).
    options_refusal: str = "it stores each model whole"
    #: Whether its models and another registry's of the same name are one model in a
    #: federated search (the ONNX Model Zoo lives on the Hugging Face Hub).
    mirrored_by_name: bool = False

    # ------------------------------------------------------------ names

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """Raise ``InvalidReferenceError`` unless ``name`` (and ``revision``) suit this hub."""
        if not _API_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid {self.name} model name")

    def from_address(self, host: str, path: str) -> Ref | None:
        """The reference a web address of this registry means, or None if it is not one."""
        return None

    def store_name(self, name: str) -> str:
        """The form of a model name the store keeps (hubs with loose names normalize it)."""
        return name

    def store_ref(self, ref: Ref) -> Ref:
        """The reference the store keeps for ``ref``: its stored name and revision."""
        return Ref(self.store_name(ref.name), ref.registry, ref.revision)

    def pinned(self, name: str, revision: str | None) -> str | None:
        """``revision`` when it names one fixed revision (a commit, a version), else None."""
        return None

    def described(self, options: PullOptions, name: str) -> HubModel | None:
        """What a preflight already learnt of the model ``name``, so the pull need not ask."""
        model = options.model
        if (
            model is not None
            and model.hub == self.name
            and self.store_name(model.id) == self.store_name(name)
        ):
            return model
        return None

    def entrypoints(
        self, ref: Ref, *, store: Store
    ) -> tuple[str, list[EntryPoint], list[str]] | None:
        """For code hubs: the commit, entry points and dependencies of ``ref``; else None."""
        return None

    def entry_call(self, ref: Ref) -> tuple[str | None, tuple[tuple[str, object], ...]]:
        """For code hubs: the entry point a reference names, and its keyword arguments."""
        return None, ()

    def close(self) -> None:  # noqa: B027 (most hubs hold nothing open)
        """Let go of what the hub holds open (connections); it reopens on next use."""

    # ------------------------------------------------------------ metadata

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
    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The model at ``ref`` (its revision resolved to a commit), with its files."""

    # ------------------------------------------------------------ pulling

    def pull(self, ref: Ref, *, store: Store, options: PullOptions | None = None) -> PulledModel:
        """Pull ``ref`` into ``store`` (verified, resumable) and return it.

        The one template every hub follows: what the store can answer without the network
        is served from it; offline, anything else is refused in one sentence; otherwise the
        hub resolves the reference, and fetches and commits only what the store lacks.
        """
        options = options or PullOptions()
        emit = options.progress or _quiet
        self.check_options(options)
        emit(PullEvent("pulling manifest"))
        name = self.store_name(ref.name)
        requested = options.revision or self.store_ref(ref).revision
        revision = self.pinned(name, requested)
        offline = offline_mode()
        if revision is None and offline:
            revision = store.resolve_ref(self.name, name, requested or self.default_revision)
        if revision is not None and not options.selects_files:
            manifest = store.complete(self.name, name, revision)
            if manifest is not None:
                return served_from_store(store, manifest, emit)
        if offline:
            label = f"{self.name}:{name}" + (f"@{requested}" if requested else "")
            raise OfflineError(
                f"{label} is not complete in the store and offline mode is on.",
                hint="Pull it once online, or unset MODELPORT_OFFLINE and HF_HUB_OFFLINE.",
            )
        asked = options
        stored = revision or store.resolve_ref(self.name, name, requested or self.default_revision)
        options = _recorded_selection(store, self.name, name, stored, options)
        target = self.resolve(ref, store=store, options=options)
        if options is not asked and target.revision != stored:
            # The reference moved on: what was chosen for the old revision does not apply.
            options = replace(asked, model=target.model)
            target = self.resolve(ref, store=store, options=options)
        # Servers sharing a store pull a revision one at a time: the first fetches it, the
        # others find it complete when they get the lock.
        with store.pulling(
            self.name,
            target.name,
            target.revision,
            waiting=lambda: emit(PullEvent("waiting for another server's pull of it")),
        ):
            manifest = store.complete(self.name, target.name, target.revision)
            if manifest is not None and (
                not options.selects_files
                or (
                    target.files is not None
                    and {f.path for f in manifest.files} == {f.path for f in target.files}
                )
            ):
                for known in target.refs:
                    store.remember_ref(self.name, target.name, known, target.revision)
                return served_from_store(store, manifest, emit)
            fetched = self.fetch(target, store=store, options=options, emit=emit)
            manifest = self._build_manifest(target, fetched, options)
            return commit_pull(store, manifest, fetched, target, emit=emit)

    def check_options(self, options: PullOptions) -> None:
        """Refuse, in one sentence, the options this hub cannot honour."""
        from modelport.errors import InvalidValueError

        asked = {
            "include": bool(options.include),
            "exclude": bool(options.exclude),
            "allow_pickle": options.allow_pickle,
        }
        refused = [k for k, on in asked.items() if on and k not in self.pull_options]
        if refused:
            flags = " and ".join("--" + k.replace("_", "-") for k in refused)
            raise InvalidValueError(
                f"{flags} cannot apply to {self.name}: models: {self.options_refusal}.",
                hint=f"Pull it without {flags}.",
            )

    @abc.abstractmethod
    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """Ask the hub which revision ``ref`` is now, and what a pull of it would store."""

    @abc.abstractmethod
    def fetch(
        self, target: PullTarget, *, store: Store, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """Download the target's files into the store's blobs, each verified."""

    def _build_manifest(
        self, target: PullTarget, fetched: Fetched, options: PullOptions
    ) -> Manifest:
        import datetime as dt

        from modelport.store.store import Manifest, Selection

        model = target.model
        return Manifest(
            registry=self.name,
            name=target.name,
            revision=target.revision,
            ref=target.ref,
            requested=target.requested,
            files=fetched.files,
            pulled_at=dt.datetime.now(dt.UTC).isoformat(),
            task=model.task if model else None,
            library=fetched.library or (model.library if model else None),
            tags=(*(model.tags if model else ()), *fetched.tags),
            license=model.license if model else None,
            selection=Selection(options.include, options.exclude, options.allow_pickle),
        )


def _recorded_selection(
    store: Store, registry: str, name: str, revision: str | None, options: PullOptions
) -> PullOptions:
    """``options`` with the files a stored revision was pulled with, unless the user chose.

    A revision keeps its selection when the store fetches some of its files again.
    """
    if options.selects_files or revision is None:
        return options
    recorded = store.read_manifest(registry, name, revision)
    chosen = recorded.selection if recorded is not None else None
    if chosen is None or not (chosen.include or chosen.exclude or chosen.allow_pickle):
        return options
    return replace(
        options, include=chosen.include, exclude=chosen.exclude, allow_pickle=chosen.allow_pickle
    )


def _quiet(event: PullEvent) -> None:
    """A progress callback that ignores every event."""


def served_from_store(store: Store, manifest: Manifest, emit: ProgressCallback) -> PulledModel:
    """Finish a pull that the store already answered."""
    store.count("pull.hit")
    emit(PullEvent("success"))
    return _pulled(store, manifest, downloaded=0, from_store=True)


def commit_pull(
    store: Store,
    manifest: Manifest,
    fetched: Fetched,
    target: PullTarget,
    *,
    emit: ProgressCallback,
) -> PulledModel:
    """Finish a pull whose files are verified: make it visible, remember its refs."""
    emit(PullEvent("writing manifest"))
    store.commit(manifest)
    for known in target.refs:
        store.remember_ref(manifest.registry, manifest.name, known, manifest.revision)
    store.count("pull.miss")
    emit(PullEvent("success"))
    return _pulled(store, manifest, downloaded=fetched.downloaded, from_store=False)


def store_folder(
    store: Store, folder: Path, files: Sequence[str], *, emit: ProgressCallback
) -> tuple[ManifestFile, ...]:
    """Keep the files of an unpacked download in the store's blobs (content-addressed)."""
    from dataclasses import replace

    emit(PullEvent("verifying sha256 digests"))
    return tuple(replace(store.add_file(folder / path), path=path) for path in sorted(files))


def offline_mode() -> bool:
    """Whether the user asked for no network (``MODELPORT_OFFLINE`` or ``HF_HUB_OFFLINE``)."""
    import os

    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("MODELPORT_OFFLINE", "HF_HUB_OFFLINE")
    )


def _pulled(store: Store, manifest: Manifest, *, downloaded: int, from_store: bool) -> PulledModel:
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
            from importlib.metadata import entry_points

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


def reset_hubs(*, rescan: bool = False) -> None:
    """Forget hub instances (their settings are read again on next use).

    With ``rescan``, the entry points are read again too (a package installed since).
    """
    global _factories
    with _lock:
        for hub in _instances.values():
            hub.close()
        _instances.clear()
        if rescan:
            _factories = None
