"""The model layer of ``modelport serve``: models load on first request and stay loaded.

A request names a model; the pool loads it through the use-cases (pull → convert → load,
each step logged and visible in ``ps``), keeps it for its keep-alive after the last
request, and unloads the least recently used idle model when one more would pass
``MODELPORT_MAX_LOADED_MODELS`` or ``MODELPORT_MAX_MEMORY``. Every protocol router goes
through ``ModelPool.use``; none loads a model itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidValueError, ModelNotFoundError, ServerBusyError
from modelport.server.batching import BATCHED_TASKS, Batcher

if TYPE_CHECKING:
    from modelport.hubs.base import PullEvent
    from modelport.runtime.model import Model
    from modelport.runtime.text import TextTokenizer
    from modelport.settings import Settings

__all__ = ["Loading", "ModelPool", "ServedModel", "keep_alive_seconds"]

log = logging.getLogger("modelport.serve")


@dataclass
class Loading:
    """A model on its way in: what it is doing now, for ``ps`` and the log."""

    name: str
    started: float = field(default_factory=time.time)
    status: str = "resolving"
    completed: int = 0
    total: int = 0


@dataclass(eq=False)
class ServedModel:
    """A loaded model and what the pool knows of its use."""

    name: str
    key: str
    model: Model
    size: int
    loaded_at: float
    #: Spellings of the model that requests used (``minilm``, ``hf:…``): all reach this one.
    names: set[str]
    batcher: Batcher | None = None
    active: int = 0
    waiting: int = 0
    last_used: float = field(default_factory=time.monotonic)
    #: Monotonic time after which an idle model is unloaded; None keeps it forever.
    expires_at: float | None = None
    #: Generation streams that may run at once (the rest wait, bounded by the queue).
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(4))
    #: The store model behind it (registry, name), whose catalog usage requests count.
    stored: tuple[str, str] | None = None
    #: Requests answered since usage was last recorded.
    uses: int = 0

    @property
    def task(self) -> str:
        """The pipeline task the model runs."""
        return self.model.task

    @property
    def tokenizer(self) -> TextTokenizer:
        """The text model's tokenizer (a 400 for a model that reads no text)."""
        tokenizer = getattr(self.model.pipeline, "tokenizer", None)
        if tokenizer is None:
            raise InvalidValueError(f"{self.name} is a {self.task} model: it reads no text.")
        return tokenizer  # type: ignore[no-any-return]

    @property
    def folder(self) -> Path:
        """The converted model's folder."""
        return self.model.folder


def _model_bytes(folder: Path) -> int:
    """What a loaded model weighs in memory, estimated by its ONNX graph and weight files."""
    total = 0
    for path in folder.iterdir():
        if path.is_file() and (path.suffix in (".onnx", ".data") or path.name.endswith("_data")):
            total += path.stat().st_size
    return total


def keep_alive_seconds(value: str | float | None) -> float | None:
    """A request's keep-alive in seconds (``5m``, ``30``, ``0``, ``-1``), or None if unset."""
    if value is None:
        return None
    from modelport.settings import parse_keep_alive

    return parse_keep_alive(value)


#: Seconds between two records of the requests each model answered.
USAGE_EVERY_S = 30.0


def _stored_as(source: str) -> tuple[str, str] | None:
    """The store model a request's name reaches (registry, name), if it is one."""
    from modelport.api import stored_model
    from modelport.errors import ModelportError

    if Path(source).is_dir():
        return None
    try:
        stored = stored_model(source)
    except ModelportError:
        return None
    return stored.registry, stored.name


def _memory_budget(settings: Settings) -> int:
    if settings.max_memory is not None:
        return settings.max_memory
    from modelport.hardware import detect_system

    ram = detect_system(runtime=False).ram_gb or 8.0
    return int(ram * 1e9 * 0.75)


class ModelPool:
    """Loaded models by name, with keep-alive, an LRU budget and per-model queues."""

    def __init__(
        self,
        settings: Settings,
        *,
        metrics: Any = None,
    ) -> None:
        self.settings = settings
        self.max_loaded = settings.max_loaded_models
        self.default_keep_alive = settings.keep_alive
        self.metrics = metrics
        self.models: dict[str, ServedModel] = {}  # by key (the converted folder)
        self.names: dict[str, str] = {}  # a requested name → key
        self.loading: dict[str, Loading] = {}
        self._loads: dict[str, asyncio.Future[ServedModel]] = {}
        self._reaper: asyncio.Task[None] | None = None
        #: Names the operator served by folder (``modelport serve ./my-model``): the only
        #: folders a request can reach.
        self.folders: dict[str, str] = {}
        self._dropped: list[ServedModel] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @functools.cached_property
    def max_memory(self) -> int:
        """Bytes the loaded models may weigh together (the machine is asked on first need)."""
        return _memory_budget(self.settings)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start unloading expired models (call inside the server's event loop)."""
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close(self) -> None:
        """Unload every model and stop the reaper."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await self._record_usage()
        for served in list(self.models.values()):
            self._drop(served, "the server stops")

    async def _reap(self) -> None:
        last_count = time.monotonic()
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            if now - last_count > USAGE_EVERY_S:
                last_count = now
                await self._record_usage()
            for served in list(self.models.values()):
                if (
                    served.active == 0
                    and served.expires_at is not None
                    and now >= served.expires_at
                ):
                    self._drop(served, "its keep-alive ended")

    # -- names -----------------------------------------------------------------------------

    def register_folder(self, name: str, folder: str) -> None:
        """Let requests reach an operator-chosen model folder by ``name``."""
        self.folders[name] = folder

    def _source(self, name: str) -> str:
        """What to load for a requested name; a request never names a folder itself."""
        from modelport.refs import is_path

        if name in self.folders:
            return self.folders[name]
        if not name or not name.strip():
            raise InvalidValueError("The request names no model.", param="model")
        if is_path(name) or Path(name).is_absolute() or "\\" in name or "\x00" in name:
            raise ModelNotFoundError(
                name,
                message=f"{name!r} is not a model name: a request cannot name a folder.",
                hint="Name a model (e.g. `minilm` or `hf:org/name`), or start the server "
                "with the folder: `modelport serve ./my-model`.",
            )
        from modelport.refs import parse_ref

        parse_ref(name.strip())  # a name that is no reference is a 400 before anything runs
        return name.strip()

    def find(self, name: str) -> ServedModel | None:
        """The loaded model a name reaches, if it is loaded."""
        key = self.names.get(name)
        if key is None:
            folder = self.folders.get(name)
            key = str(Path(folder).resolve()) if folder else None
        return self.models.get(key) if key else None

    # -- loading ---------------------------------------------------------------------------

    async def get(self, name: str, *, keep_alive: float | None = None) -> ServedModel:
        """The loaded model for a name, loading it (once, however many ask) if needed."""
        served = self.find(name)
        if served is not None:
            served.last_used = time.monotonic()
            self._expire_later(served, keep_alive)
            return served
        pending = self._loads.get(name)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._loads[name] = pending
            try:
                served = await self._load_one(name)
            except BaseException as e:
                pending.set_exception(e)
                pending.exception()  # retrieved: no "never retrieved" warning for one caller
                raise
            else:
                pending.set_result(served)
            finally:
                self._loads.pop(name, None)
        else:
            served = await asyncio.shield(pending)
        self._expire_later(served, keep_alive)
        return served

    async def _load_one(self, name: str) -> ServedModel:
        from anyio import to_thread

        source = self._source(name)
        state = Loading(name)
        self.loading[name] = state
        started = time.monotonic()
        log.info("loading %s", name)

        def progress(event: PullEvent) -> None:
            if event.file is not None and event.total:
                state.status = f"pulling {event.file}"
                state.total = max(state.total, event.total)
                state.completed = event.completed or 0
            elif not event.status.startswith("warning: "):
                state.status = event.status
            else:
                log.warning("%s: %s", name, event.status.removeprefix("warning: "))

        def load() -> tuple[Model, tuple[str, str] | None]:
            from modelport.api import load_model

            model = load_model(source, progress=progress)
            return model, _stored_as(source)

        try:
            state.status = "loading"
            model, stored = await to_thread.run_sync(load)
        except Exception as e:
            log.warning("cannot load %s: %s", name, e)
            raise
        finally:
            self.loading.pop(name, None)
        key = str(model.folder.resolve())
        existing = self.models.get(key)
        if existing is not None:  # another spelling of a model that is loaded already
            existing.names.add(name)
            self.names[name] = key
            return existing
        served = ServedModel(
            name=name,
            key=key,
            model=model,
            size=_model_bytes(model.folder),
            loaded_at=time.time(),
            names={name},
            stored=stored,
        )
        if model.task in BATCHED_TASKS:
            served.batcher = Batcher(
                name,
                model,
                max_batch_tokens=self.settings.max_batch_tokens,
                wait_s=self.settings.batch_wait_ms / 1000,
                max_queue=self.settings.max_queue,
                metrics=self.metrics,
            )
        self._make_room(served)
        self.models[key] = served
        self.names[name] = key
        log.info(
            "loaded %s (%s, %s, %.1f MB) in %.1f s",
            name,
            model.task,
            model.provider,
            served.size / 1e6,
            time.monotonic() - started,
        )
        self._observe()
        return served

    async def _record_usage(self) -> None:
        """Count the requests each model answered in the catalog's usage (ranking reads it)."""
        from anyio import to_thread

        from modelport.api import record_use

        counts: list[tuple[str, str, int]] = []
        for served in [*self.models.values(), *self._dropped]:
            if served.stored is not None and served.uses:
                counts.append((*served.stored, served.uses))
            served.uses = 0
        self._dropped.clear()
        for registry, name, count in counts:
            try:
                await to_thread.run_sync(record_use, registry, name, count)
            except Exception as e:  # usage is a ranking hint: never fail serving for it
                log.warning("cannot record the use of %s: %s", name, e)

    def _make_room(self, incoming: ServedModel) -> None:
        """Unload idle models, least recently used first, until the newcomer fits."""
        idle = sorted((m for m in self.models.values() if m.active == 0), key=lambda m: m.last_used)
        while idle and (
            len(self.models) + 1 > self.max_loaded
            or sum(m.size for m in self.models.values()) + incoming.size > self.max_memory
        ):
            victim = idle.pop(0)
            reason = (
                f"MODELPORT_MAX_LOADED_MODELS is {self.max_loaded}"
                if len(self.models) + 1 > self.max_loaded
                else f"MODELPORT_MAX_MEMORY is {self.max_memory / 1e9:.2f} GB"
            )
            self._drop(victim, f"{incoming.name} needs room ({reason})")

    def _expire_later(self, served: ServedModel, keep_alive: float | None) -> None:
        seconds = self.default_keep_alive if keep_alive is None else keep_alive
        served.expires_at = None if seconds < 0 else time.monotonic() + seconds

    def unload(self, name: str) -> bool:
        """Unload a model now (once its running requests end); False if it is not loaded."""
        served = self.find(name)
        if served is None:
            return False
        if served.active:
            served.expires_at = time.monotonic()  # the reaper unloads it once idle
        else:
            self._drop(served, "it was asked to stop")
        return True

    def _drop(self, served: ServedModel, why: str) -> None:
        if self.models.get(served.key) is not served:
            return
        del self.models[served.key]
        for name in served.names:
            if self.names.get(name) == served.key:
                del self.names[name]
        if served.batcher is not None:
            served.batcher.close()
        if served.uses:
            self._dropped.append(served)  # its uses are counted now, not at the next round
            with contextlib.suppress(RuntimeError):  # no running loop: close() counts them
                task = asyncio.get_running_loop().create_task(self._record_usage())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        from modelport.api import unload_model

        unload_model(served.model)
        log.info("unloaded %s: %s", served.name, why)
        self._observe()

    def _observe(self) -> None:
        if self.metrics is not None:
            self.metrics.loaded(len(self.models), sum(m.size for m in self.models.values()))

    # -- use -------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def use(
        self, name: str, *, keep_alive: float | None = None
    ) -> AsyncIterator[ServedModel]:
        """A loaded model for the length of one request; its keep-alive restarts after it."""
        served = await self.get(name, keep_alive=keep_alive)
        served.active += 1
        served.uses += 1
        try:
            yield served
        finally:
            served.active -= 1
            served.last_used = time.monotonic()
            self._expire_later(served, keep_alive)
            expires = served.expires_at
            if served.active == 0 and expires is not None and expires <= time.monotonic():
                self._drop(served, "its keep-alive is 0")

    async def run(self, served: ServedModel, call: Callable[[], Any], *, inputs: int = 1) -> Any:
        """Run a blocking call on the model in a worker thread, within its queue bound."""
        from anyio import to_thread

        if served.waiting + inputs > self.settings.max_queue and served.waiting:
            raise ServerBusyError(served.name, served.waiting)
        served.waiting += inputs
        if self.metrics is not None:
            self.metrics.queue(served.name, served.waiting)
        try:
            return await to_thread.run_sync(call)
        finally:
            served.waiting -= inputs
            if self.metrics is not None:
                self.metrics.queue(served.name, served.waiting)

    def describe(self) -> list[dict[str, Any]]:
        """Loaded and loading models, for ``ps``: name, task, size, expiry, state (safe to
        call from a worker thread: it reads copies)."""
        now, wall = time.monotonic(), time.time()
        rows: list[dict[str, Any]] = []
        for served in sorted(self.models.values(), key=lambda m: -m.last_used):
            expires = None
            if served.expires_at is not None:
                expires = wall + max(0.0, served.expires_at - now)
            rows.append(
                {
                    "name": served.name,
                    "names": sorted(served.names),
                    "task": served.task,
                    "provider": served.model.provider,
                    "folder": str(served.folder),
                    "size": served.size,
                    "loaded_at": served.loaded_at,
                    "expires_at": expires,
                    "active": served.active,
                    "waiting": served.waiting + (served.batcher.waiting if served.batcher else 0),
                    "state": "loaded",
                }
            )
        for state in list(self.loading.values()):
            rows.append(
                {
                    "name": state.name,
                    "names": [state.name],
                    "task": None,
                    "provider": None,
                    "folder": None,
                    "size": state.total,
                    "loaded_at": None,
                    "expires_at": None,
                    "active": 0,
                    "waiting": 0,
                    "state": state.status,
                    "completed": state.completed,
                    "total": state.total,
                }
            )
        return rows
