"""A store whose blobs live in a shared bucket, with this machine's folder as a cache.

With ``MODELPORT_STORE_URL`` the store is the bucket and the index (the database every
server shares): a model is in the store when the index has it; its blobs and manifest are
in the bucket, uploaded before its index row is written, so that a row never names what
is not there, and a pull killed half-way leaves neither. ``$MODELPORT_HOME/store`` keeps
what this machine used (blobs fetched from the bucket and hashed, the model folders linked
to them, their manifests) up to ``MODELPORT_STORE_CACHE_SIZE``: past it, the least
recently used models leave the cache, never the bucket.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from modelport.store.download import link_into_place

if TYPE_CHECKING:
    from modelport.store.remote import RemoteStore
    from modelport.store.store import Manifest, ManifestFile, RemovalPlan, Store

__all__ = [
    "bucket_lock",
    "complete",
    "fit_cache",
    "forget",
    "publish",
    "pull_lock",
    "small_files",
    "upload_blobs",
]

#: A model used this recently stays in the cache even past its size (it may be loading).
RECENT_S = 60.0
#: A blob no cached model names is left alone this long (a pull may be about to commit it).
ORPHAN_S = 3600.0


def _remote(store: Store) -> RemoteStore:
    assert store.remote is not None
    return store.remote


@contextlib.contextmanager
def pull_lock(store: Store, model: str, *, waiting: Callable[[], None] | None) -> Iterator[None]:
    """The lock of one revision's pull (see ``Store.pulling``)."""
    with _shared_lock(store, f"{_remote(store).url} pull {model}", "pull", waiting=waiting):
        yield


@contextlib.contextmanager
def bucket_lock(store: Store) -> Iterator[None]:
    """The lock between naming blobs in the index and deleting them from the bucket.

    A pull uploads its blobs before it takes this lock (an upload may take minutes); under
    it, the pull checks they are still there and writes its index rows, and a removal
    deletes only the blobs no index row names. Without it, a removal could delete a blob
    that a pull found in the bucket, and the pull's row would name what is gone.
    """
    with _shared_lock(store, f"{_remote(store).url} blobs", "blobs", waiting=None):
        yield


@contextlib.contextmanager
def _shared_lock(
    store: Store, name: str, kind: str, *, waiting: Callable[[], None] | None
) -> Iterator[None]:
    """A lock held among every server of the index: advisory on PostgreSQL, else a file."""
    if store.engine.dialect.name == "postgresql":
        from modelport.db import advisory_lock

        with advisory_lock(store.engine, name, waiting=waiting):
            yield
        return
    from filelock import Timeout

    # Beside a SQLite index, which every process sharing it reaches on one file system.
    database = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
    folder = (
        Path(f"{database}.locks")
        if database and database != ":memory:"
        else store.layout.root / "locks"
    )
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"{kind}-{hashlib.sha256(name.encode()).hexdigest()[:32]}"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if waiting is not None:
            waiting()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def complete(store: Store, registry: str, name: str, revision: str) -> Manifest | None:
    """The manifest if the shared store has the revision, its files now in this machine's
    cache (fetched from the bucket and hashed where missing or damaged); else None."""
    if not store.indexed(registry, name, revision):
        return None
    manifest = store.local_complete(registry, name, revision)
    if manifest is None:
        manifest = store.read_manifest(registry, name, revision)
        if manifest is None:
            return None
        remote = _remote(store)
        missing = False
        for f in manifest.files:
            blob = store.layout.blob(f.sha256)
            try:
                present = blob.stat().st_size == f.size
            except FileNotFoundError:
                present = False
            if present or remote.fetch_blob(f.sha256, blob, scratch=store.layout.tmp()):
                # Known by the hub's digest too: a pull finds it here and downloads it not.
                link_into_place(store.layout, f.sha256, f.digest_kind, f.digest)
            else:
                missing = True
        if missing:
            return None  # the pull fetches those from the hub, and its commit uploads them
        store.repair_folder(manifest)
        path = store.layout.manifest(registry, name, revision)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(manifest.to_json())
        os.replace(tmp, path)
        manifest = store.local_complete(registry, name, revision)
        if manifest is None:
            return None
    used(store, manifest)
    fit_cache(store, keep=manifest.key)
    return manifest


#: A file this small is brought from the bucket alone to read a model's facts.
SMALL_FILE = 1 << 20


def small_files(store: Store, files: list[ManifestFile], names: Collection[str]) -> dict[str, Path]:
    """Where this machine has these files of a stored model (by path), each at most
    ``SMALL_FILE``: its cached blob, fetched from the bucket if missing; a model listed by
    another server is described without bringing its weights here."""
    remote = _remote(store)
    found: dict[str, Path] = {}
    for f in files:
        if f.path not in names or f.size > SMALL_FILE:
            continue
        blob = store.layout.blob(f.sha256)
        if blob.exists() or remote.fetch_blob(f.sha256, blob, scratch=store.layout.tmp()):
            found[f.path] = blob
    return found


def used(store: Store, manifest: Manifest) -> None:
    """Mark a cached model as used now (the cache keeps the most recently used)."""
    folder = store.layout.model_dir(manifest.registry, manifest.name, manifest.revision)
    with contextlib.suppress(OSError):
        os.utime(folder)


def upload_blobs(store: Store, manifest: Manifest) -> None:
    """Put a verified revision's blobs the bucket lacks into it."""
    remote = _remote(store)
    done: set[str] = set()
    for f in manifest.files:
        if f.sha256 in done:
            continue
        done.add(f.sha256)
        if not remote.has_blob(f.sha256, f.size):
            remote.put_blob(f.sha256, store.layout.blob(f.sha256))


def publish(store: Store, manifest: Manifest) -> None:
    """Put a verified revision's blobs, then its manifest, into the bucket."""
    upload_blobs(store, manifest)
    remote = _remote(store)
    relative = store.layout.manifest(manifest.registry, manifest.name, manifest.revision)
    key = remote.manifest_key(relative.relative_to(store.layout.root / "manifests").as_posix())
    remote.write_text(key, manifest.to_json())


def remote_manifest(store: Store, registry: str, name: str, revision: str) -> str | None:
    """A revision's manifest document as the bucket holds it, or None."""
    remote = _remote(store)
    relative = store.layout.manifest(registry, name, revision)
    key = remote.manifest_key(relative.relative_to(store.layout.root / "manifests").as_posix())
    return remote.read_text(key)


def forget(store: Store, plan: RemovalPlan, *, kept: Collection[str] = ()) -> None:
    """Delete from the bucket the manifests of removed models and their blobs but ``kept``
    (those another model's index rows name); under ``bucket_lock``."""
    remote = _remote(store)
    keys = []
    for m in plan.models:
        relative = store.layout.manifest(m.registry, m.name, m.revision)
        keys.append(
            remote.manifest_key(relative.relative_to(store.layout.root / "manifests").as_posix())
        )
    keys += [remote.blob_key(sha) for sha, _ in plan.blobs if sha not in kept]
    if keys:
        remote.delete(keys)


@dataclass(frozen=True)
class _Cached:
    manifest: Manifest
    used: float


def _cached_models(store: Store) -> list[_Cached]:
    from modelport.errors import ModelportError

    found = []
    root = store.layout.root / "manifests"
    for path in root.rglob("*.json") if root.exists() else ():
        parts = path.relative_to(root).parts
        if len(parts) < 3:
            continue
        registry, name, revision = parts[0], "/".join(parts[1:-1]), path.stem
        try:
            manifest = store.read_manifest(registry, name, revision)
            folder = store.layout.model_dir(registry, name, revision)
            when = folder.stat().st_mtime if folder.exists() else path.stat().st_mtime
        except (OSError, ValueError, ModelportError):
            continue
        if manifest is not None:
            found.append(_Cached(manifest, when))
    return found


def fit_cache(store: Store, *, keep: str | None = None) -> int:
    """Make the cache fit ``MODELPORT_STORE_CACHE_SIZE``: blobs no cached model names, then
    the least recently used models leave it (never the bucket). Returns the bytes freed."""
    limit = store.cache_limit
    if limit is None:
        return 0
    blobs_dir = store.layout.root / "blobs" / "sha256"
    sizes: dict[str, tuple[int, float]] = {}
    for entry in os.scandir(blobs_dir) if blobs_dir.exists() else ():
        if not entry.name.startswith("."):
            with contextlib.suppress(OSError):
                st = entry.stat()
                sizes[entry.name] = (st.st_size, st.st_mtime)
    total = sum(size for size, _ in sizes.values())
    if total <= limit:
        return 0
    models = sorted(_cached_models(store), key=lambda c: c.used)
    named = {f.sha256 for c in models for f in c.manifest.files}
    now = time.time()
    freed = 0

    def drop(sha: str) -> None:
        nonlocal total, freed
        size, _ = sizes.pop(sha)
        store.discard_blob(sha)
        total -= size
        freed += size

    for sha, (_size, modified) in sorted(sizes.items(), key=lambda item: item[1][1]):
        if total <= limit:
            return freed
        if sha not in named and now - modified > ORPHAN_S:
            drop(sha)
    staying = list(models)
    for cached in models:
        if total <= limit:
            break
        m = cached.manifest
        if m.key == keep or now - cached.used < RECENT_S:
            continue
        lock = store.layout.lock(f"manifest-{m.registry}-{m.revision}")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock)):
            store.layout.manifest(m.registry, m.name, m.revision).unlink(missing_ok=True)
            _remove_tree(store.layout.model_dir(m.registry, m.name, m.revision))
        staying.remove(cached)
        still = {f.sha256 for c in staying for f in c.manifest.files}
        for f in m.files:
            if f.sha256 in sizes and f.sha256 not in still:
                drop(f.sha256)
                if f.digest_kind != "sha256":
                    store.layout.alias(f.digest_kind, f.digest).unlink(missing_ok=True)
    return freed


def _remove_tree(folder: Path) -> None:
    """Remove a model folder by renaming it away first, so that no reader sees half of it."""
    if not folder.exists():
        return
    gone = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.gone")
    try:
        os.replace(folder, gone)
    except OSError:
        return
    shutil.rmtree(gone, ignore_errors=True)


def converted_name(lookup: str) -> str:
    """The bucket's name of a converted model, by its conversion lookup key."""
    return f"converted/{lookup}"
