"""The Store: manifests and model folders over verified blobs, with an index in the database."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from filelock import FileLock
from sqlalchemy import Engine, delete, func, select, update

from modelport.db import store_counters, store_files, store_models, store_refs, upsert
from modelport.errors import IntegrityError, NotInStoreError, UnsafeFileError
from modelport.store.artifacts import Artifact, find_artifacts, remove_artifact
from modelport.store.integrity import VerifyReport, sha256_of
from modelport.store.layout import StoreLayout, safe_relative_path, tree_conflict, tree_digest

if TYPE_CHECKING:
    from modelport.store.remote import RemoteStore

__all__ = [
    "Manifest",
    "ManifestFile",
    "RemovalPlan",
    "Selection",
    "Store",
    "StoreStats",
    "StoredModel",
    "VerifyReport",
]

# 2: the manifest records the user's file selection and pickle consent.
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class ManifestFile:
    """One file of a stored model: its path, blob and the digest the hub published."""

    path: str
    sha256: str
    size: int
    digest_kind: str
    digest: str


@dataclass(frozen=True)
class Selection:
    """What the user chose when pulling: file globs and consent to pickles.

    A repair pulls again with exactly this, so it restores the same files.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_pickle: bool = False


@dataclass(frozen=True)
class Manifest:
    """Everything needed to rebuild one model revision from blobs."""

    registry: str
    name: str
    revision: str
    ref: str
    files: tuple[ManifestFile, ...]
    pulled_at: str
    requested: str | None = None
    task: str | None = None
    library: str | None = None
    tags: tuple[str, ...] = ()
    license: str | None = None
    #: None for manifests written before the selection was recorded.
    selection: Selection | None = None

    @property
    def key(self) -> str:
        """The index key: ``registry/name@revision``."""
        return f"{self.registry}/{self.name}@{self.revision}"

    @property
    def size(self) -> int:
        """Bytes of every file."""
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        """The manifest document."""
        data = asdict(self)
        data["schema_version"] = MANIFEST_VERSION
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Read a manifest document."""
        data = json.loads(text)
        data.pop("schema_version", None)
        data["files"] = tuple(ManifestFile(**f) for f in data["files"])
        data["tags"] = tuple(data.get("tags") or ())
        chosen = data.get("selection")
        if chosen is not None:
            data["selection"] = Selection(
                include=tuple(chosen.get("include") or ()),
                exclude=tuple(chosen.get("exclude") or ()),
                allow_pickle=bool(chosen.get("allow_pickle")),
            )
        return cls(**data)


@dataclass(frozen=True)
class StoredModel:
    """A model revision in the store, as the index records it."""

    registry: str
    name: str
    revision: str
    ref: str
    requested: str | None
    size: int
    file_count: int
    task: str | None
    library: str | None
    pulled_at: dt.datetime
    last_used: dt.datetime | None
    use_count: int
    path: Path

    @property
    def key(self) -> str:
        """The index key: ``registry/name@revision``."""
        return f"{self.registry}/{self.name}@{self.revision}"


@dataclass(frozen=True)
class RemovalPlan:
    """What a removal would delete, and the bytes it would free, before it runs."""

    models: tuple[StoredModel, ...]
    blobs: tuple[tuple[str, int], ...]
    reasons: dict[str, str] = field(default_factory=dict)
    partials: tuple[tuple[str, int], ...] = ()
    #: Converted models, PyTorch Hub weights and optimized graphs that go with them (or,
    #: for a prune, that no stored model owns and nobody used for longest).
    artifacts: tuple[Artifact, ...] = ()

    @property
    def freed_bytes(self) -> int:
        """Bytes of the blobs no other model uses, their artifacts, and abandoned partials."""
        return (
            sum(size for _, size in self.blobs)
            + sum(size for _, size in self.partials)
            + sum(a.size for a in self.artifacts)
        )


@dataclass(frozen=True)
class StoreStats:
    """How big the store is and how often it served a request without the network."""

    models: int
    blobs: int
    size: int
    logical_size: int
    pull_hits: int
    pull_misses: int
    run_hits: int
    run_misses: int
    root: Path
    #: Converted ONNX artifacts: how many, and their bytes.
    converted: int = 0
    converted_size: int = 0
    #: Weights PyTorch Hub entry points downloaded, and ONNX Runtime's optimized graphs.
    torch_hub_size: int = 0
    graph_cache_size: int = 0

    @property
    def total_size(self) -> int:
        """Bytes on disk: blobs and everything derived from them."""
        return self.size + self.converted_size + self.torch_hub_size + self.graph_cache_size

    @property
    def pull_hit_rate(self) -> float | None:
        """Share of pulls answered from the store."""
        total = self.pull_hits + self.pull_misses
        return self.pull_hits / total if total else None

    @property
    def run_hit_rate(self) -> float | None:
        """Share of runs whose model was already in the store."""
        total = self.run_hits + self.run_misses
        return self.run_hits / total if total else None


def _clear_way(folder: Path, relative: PurePosixPath) -> None:
    """Remove what stands where a model file or its folders belong: a file or a link where
    a folder goes (a link would lead the repair out of the store), a folder where the file
    goes. The model folder is the store's: what stands there is damage."""
    here = folder
    for part in relative.parts[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            here.unlink()
    target = folder / relative
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


class Store:
    """Verified blobs, manifests and model folders under ``root``, indexed in a database.

    With ``remote`` (a bucket every server shares) ``root`` is this machine's cache of it,
    holding at most ``cache_limit`` bytes of blobs: see ``modelport.store.shared``.
    """

    def __init__(
        self,
        root: Path,
        engine: Engine,
        *,
        remote: RemoteStore | None = None,
        cache_limit: int | None = None,
    ) -> None:
        self.layout = StoreLayout(root, remote=remote)
        self.engine = engine
        self.remote = remote
        self.cache_limit = cache_limit
        self._links: bool | None = None

    # ---------------------------------------------------------------- sharing

    def pulling(
        self, registry: str, name: str, revision: str, *, waiting: Callable[[], None] | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the lock of one revision's pull among every server sharing this store, so
        that one fetches it from the hub and the others find it done (``waiting`` is called
        if another holds it first): a PostgreSQL advisory lock when the index is in
        PostgreSQL, else a file lock beside the SQLite index. A store of one machine needs
        none (its per-blob file locks let concurrent pulls share each download)."""
        if self.remote is None:
            return contextlib.nullcontext()
        from modelport.store.shared import pull_lock

        return pull_lock(self, f"{registry}/{name}@{revision}", waiting=waiting)

    def indexed(self, registry: str, name: str, revision: str) -> bool:
        """Whether the index has this revision (complete in the shared store)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(store_models.c.key).where(
                    store_models.c.key == f"{registry}/{name}@{revision}"
                )
            ).first()
        return found is not None

    def materialize(self, model: StoredModel) -> bool:
        """Whether a stored model's folder is on this machine, fetched from the shared
        store's bucket into the cache when it was not (False: the bucket lacks some of its
        files, which a pull fetches again). A store of one machine has it already."""
        if self.remote is None:
            return True
        return self.complete(model.registry, model.name, model.revision) is not None

    # ---------------------------------------------------------------- manifests

    def read_manifest(self, registry: str, name: str, revision: str) -> Manifest | None:
        """The manifest of a revision (this machine's, else the shared store's), or None."""
        path = self.layout.manifest(registry, name, revision)
        try:
            return Manifest.from_json(path.read_text())
        except FileNotFoundError:
            if self.remote is None:
                return None
            from modelport.store.shared import remote_manifest

            text = remote_manifest(self, registry, name, revision)
            try:
                return Manifest.from_json(text) if text is not None else None
            except (ValueError, TypeError, KeyError):
                return None  # not a manifest this modelport wrote: the pull writes it again
        except (ValueError, TypeError, KeyError) as e:
            raise IntegrityError(
                f"The manifest {path} is damaged: {e}.",
                hint=f"Remove it with `modelport rm {registry}:{name}@{revision}` and pull again.",
            ) from None

    def complete(self, registry: str, name: str, revision: str) -> Manifest | None:
        """The manifest if the revision is complete and sound in the store, else None.

        Cheap checks only (``stat``): every blob has its size, and one written after the
        manifest is hashed again; every folder file is its blob. A wrong blob is discarded
        (the pull fetches it again, and only it); a wrong folder file is linked again here.
        A shared store answers from its index, and brings the files into this machine's
        cache from the bucket first.
        """
        if self.remote is not None:
            from modelport.store import shared

            return shared.complete(self, registry, name, revision)
        return self.local_complete(registry, name, revision)

    def local_complete(self, registry: str, name: str, revision: str) -> Manifest | None:
        """``complete`` for the files on this machine only."""
        path = self.layout.manifest(registry, name, revision)
        manifest: Manifest | None
        try:
            manifest = Manifest.from_json(path.read_text())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            manifest = self.read_manifest(registry, name, revision)  # its one sentence
        if manifest is None:
            return None
        folder = self.layout.model_dir(registry, name, revision)
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        relink = rehashed = missing = False
        for f in manifest.files:
            blob = self.layout.blob(f.sha256)
            try:
                st = blob.stat()
            except FileNotFoundError:
                missing = True
                continue
            # A blob is written once, before the manifest: a later change is damage.
            changed = st.st_mtime_ns > stamp
            if st.st_size != f.size or (changed and sha256_of(blob) != f.sha256):
                self.discard_blob(f.sha256)
                missing = True
                continue
            rehashed |= changed
            try:
                linked = (folder / safe_relative_path(f.path)).stat()
            except (FileNotFoundError, NotADirectoryError):
                relink = True
                continue
            if (linked.st_ino, linked.st_dev) != (st.st_ino, st.st_dev) and (
                self._hard_links() or linked.st_size != f.size or linked.st_mtime_ns > stamp
            ):
                relink = True
        if missing:
            return None  # every wrong blob is discarded: the pull fetches exactly those
        if relink:
            self.repair_folder(manifest)
        if rehashed:
            with contextlib.suppress(OSError):  # a read-only store hashes again next time
                os.utime(path)  # checked: no need to hash those blobs again next time
        return manifest

    def _hard_links(self) -> bool:
        """Whether the store's file system links folder files to blobs (else it copies)."""
        if self._links is None:
            tmp = self.layout.tmp()
            tmp.mkdir(parents=True, exist_ok=True)
            probe = tmp / f".probe.{uuid.uuid4().hex}"
            probe.touch()
            try:
                os.link(probe, probe.with_name(probe.name + ".link"))
                self._links = True
            except OSError:
                self._links = False
            finally:
                probe.unlink(missing_ok=True)
                probe.with_name(probe.name + ".link").unlink(missing_ok=True)
        return self._links

    def repair_folder(self, manifest: Manifest) -> None:
        """Link a model folder's files to their blobs again (a file was replaced or lost)."""
        lock = self.layout.lock(f"manifest-{manifest.registry}-{manifest.revision}")
        lock.parent.mkdir(parents=True, exist_ok=True)
        folder = self.layout.model_dir(manifest.registry, manifest.name, manifest.revision)
        with FileLock(str(lock)):
            if folder.exists():
                self._relink(manifest, folder)
            else:
                self._materialize(manifest, folder)

    def commit(self, manifest: Manifest) -> Path:
        """Make a verified revision visible: its folder, then its manifest, then the index."""
        for f in manifest.files:
            safe_relative_path(f.path)
        # Whatever hub listed them: a tree that cannot exist is refused before any of it shows.
        conflict = tree_conflict(f.path for f in manifest.files)
        if conflict is not None:
            raise UnsafeFileError(manifest.ref, conflict[0], reason=conflict[1])
        for f in manifest.files:
            if not self.layout.blob(f.sha256).exists():
                raise IntegrityError(f"Blob {f.sha256[:12]}… of {f.path} is missing.")
        naming: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self.remote is not None:
            from modelport.store import shared

            # The bucket holds every blob and the manifest before the index names them:
            # uploaded first, then checked again under the lock a removal takes to delete.
            shared.upload_blobs(self, manifest)
            naming = shared.bucket_lock(self)
        lock = self.layout.lock(f"manifest-{manifest.registry}-{manifest.revision}")
        lock.parent.mkdir(parents=True, exist_ok=True)
        folder = self.layout.model_dir(manifest.registry, manifest.name, manifest.revision)
        with naming, FileLock(str(lock)):
            if self.remote is not None:
                shared.publish(self, manifest)  # a HEAD per blob puts back what a removal took
            if folder.exists():
                self._relink(manifest, folder)
            else:
                self._materialize(manifest, folder)
            path = self.layout.manifest(manifest.registry, manifest.name, manifest.revision)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(manifest.to_json())
            os.replace(tmp, path)
            self._index(manifest)
        from modelport.store.runs import forget

        forget(self.layout.root, registry=manifest.registry, name=manifest.name)
        if self.remote is not None:
            from modelport.store.shared import fit_cache

            fit_cache(self, keep=manifest.key)
        return folder

    def add_file(self, source: Path) -> ManifestFile:
        """Copy a local file (an unpacked archive member) into the blobs, keyed by its sha256."""
        import hashlib

        digest = hashlib.sha256()
        tmp_dir = self.layout.tmp()
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f".blob.{uuid.uuid4().hex}.tmp"
        try:
            with source.open("rb") as src, tmp.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            sha256 = digest.hexdigest()
            blob = self.layout.blob(sha256)
            if not blob.exists():
                blob.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, blob)
            size = blob.stat().st_size
        finally:
            tmp.unlink(missing_ok=True)
        return ManifestFile(source.name, sha256, size, "sha256", sha256)

    def _link(self, sha256: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Not named after the target: a name of the longest length still gets a temporary one.
        tmp = target.with_name(f".{uuid.uuid4().hex}.tmp")
        try:
            os.link(self.layout.blob(sha256), tmp)
        except OSError:
            shutil.copyfile(self.layout.blob(sha256), tmp)
        os.replace(tmp, target)

    def _materialize(self, manifest: Manifest, folder: Path) -> None:
        staging = self.layout.tmp() / uuid.uuid4().hex
        try:
            for f in manifest.files:
                self._link(f.sha256, staging / safe_relative_path(f.path))
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _relink(self, manifest: Manifest, folder: Path) -> None:
        """Bring an existing folder in line with a manifest, file by atomic file."""
        wanted = {safe_relative_path(f.path).as_posix() for f in manifest.files}
        for f in manifest.files:
            place = safe_relative_path(f.path)
            _clear_way(folder, place)
            target = folder / place
            blob = self.layout.blob(f.sha256)
            if not target.exists() or not os.path.samefile(target, blob):
                self._link(f.sha256, target)
        for path in sorted(folder.rglob("*"), reverse=True):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and relative not in wanted:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    def _index(self, manifest: Manifest) -> None:
        # Upserts, not a delete and an insert: servers sharing one PostgreSQL database may
        # index the same model at once. A model pulled again keeps its use count.
        described = {
            "registry": manifest.registry,
            "name": manifest.name,
            "revision": manifest.revision,
            "ref": manifest.ref,
            "requested": manifest.requested,
            "size": manifest.size,
            "file_count": len(manifest.files),
            "task": manifest.task,
            "library": manifest.library,
            "pulled_at": _now(),
        }
        with self.engine.begin() as conn:
            upsert(
                conn,
                store_models,
                {"key": manifest.key, **described, "last_used": None, "use_count": 0},
                keys=["key"],
                replace=list(described),
            )
            conn.execute(delete(store_files).where(store_files.c.model_key == manifest.key))
            upsert(
                conn,
                store_files,
                [
                    {
                        "model_key": manifest.key,
                        "path": f.path,
                        "sha256": f.sha256,
                        "size": f.size,
                        "digest_kind": f.digest_kind,
                        "digest": f.digest,
                    }
                    for f in manifest.files
                ],
                keys=["model_key", "path"],
                replace=["sha256", "size", "digest_kind", "digest"],
            )

    # ---------------------------------------------------------------- refs

    def remember_ref(self, registry: str, name: str, ref: str, revision: str) -> None:
        """Record what a branch or tag resolved to (offline pulls use it)."""
        row = {"registry": registry, "name": name, "ref": ref, "revision": revision}
        with self.engine.begin() as conn:
            upsert(
                conn,
                store_refs,
                {**row, "updated_at": _now()},
                keys=["registry", "name", "ref"],
                replace=["revision", "updated_at"],
            )

    def resolve_ref(self, registry: str, name: str, ref: str) -> str | None:
        """The revision a branch or tag last resolved to, or None."""
        with self.engine.connect() as conn:
            return conn.execute(
                select(store_refs.c.revision).where(
                    (store_refs.c.registry == registry)
                    & (store_refs.c.name == name)
                    & (store_refs.c.ref == ref)
                )
            ).scalar_one_or_none()

    # ---------------------------------------------------------------- counters

    def count(self, name: str) -> None:
        """Add one to a counter (``pull.hit``, ``pull.miss``, ``run.hit``, ``run.miss``)."""
        with self.engine.begin() as conn:
            upsert(
                conn,
                store_counters,
                {"name": name, "value": 1},
                keys=["name"],
                set_={"value": store_counters.c.value + 1},
            )

    def touch(self, key: str) -> None:
        """Record a use of a stored model."""
        with self.engine.begin() as conn:
            conn.execute(
                update(store_models)
                .where(store_models.c.key == key)
                .values(last_used=_now(), use_count=store_models.c.use_count + 1)
            )

    # ---------------------------------------------------------------- listing

    def _row(self, row: object) -> StoredModel:
        r = row._mapping  # type: ignore[attr-defined]
        return StoredModel(
            registry=r["registry"],
            name=r["name"],
            revision=r["revision"],
            ref=r["ref"],
            requested=r["requested"],
            size=r["size"],
            file_count=r["file_count"],
            task=r["task"],
            library=r["library"],
            pulled_at=_aware(r["pulled_at"]) or _now(),
            last_used=_aware(r["last_used"]),
            use_count=r["use_count"],
            path=self.layout.model_dir(r["registry"], r["name"], r["revision"]),
        )

    def list_models(
        self,
        *,
        registry: str | None = None,
        name_contains: str | None = None,
        task: str | None = None,
    ) -> list[StoredModel]:
        """Every stored model revision, newest pull first."""
        self.fold_uses()
        query = select(store_models).order_by(store_models.c.pulled_at.desc())
        if registry:
            query = query.where(store_models.c.registry == registry)
        if task:
            query = query.where(store_models.c.task == task)
        if name_contains:
            query = query.where(
                func.lower(store_models.c.name).contains(name_contains.lower(), autoescape=True)
            )
        with self.engine.connect() as conn:
            return [self._row(row) for row in conn.execute(query)]

    def find(self, registry: str, name: str, revision: str | None = None) -> list[StoredModel]:
        """Stored revisions of a model: one commit, a branch/tag's commit, or all of them."""
        query = select(store_models).where(
            (store_models.c.registry == registry) & (store_models.c.name == name)
        )
        if revision is not None:
            resolved = self.resolve_ref(registry, name, revision) or revision
            query = query.where(
                (store_models.c.revision == resolved)
                | (store_models.c.revision.startswith(revision))
                if len(revision) >= 7 and all(c in "0123456789abcdef" for c in revision)
                else store_models.c.revision == resolved
            )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(store_models.c.pulled_at.desc())).all()
        return [self._row(row) for row in rows]

    def get(self, registry: str, name: str, revision: str | None = None) -> StoredModel:
        """The stored revision (the latest pulled one when no revision is given)."""
        found = self.find(registry, name, revision)
        if not found:
            ref = f"{registry}:{name}" + (f"@{revision}" if revision else "")
            raise NotInStoreError(ref)
        return found[0]

    def files(self, model: StoredModel) -> list[ManifestFile]:
        """The files of a stored model."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(store_files)
                .where(store_files.c.model_key == model.key)
                .order_by(store_files.c.path)
            ).all()
        return [ManifestFile(r.path, r.sha256, r.size, r.digest_kind, r.digest) for r in rows]

    # ---------------------------------------------------------------- removal

    def _unshared_blobs(self, keys: Sequence[str]) -> list[tuple[str, int]]:
        if not keys:
            return []
        with self.engine.connect() as conn:
            mine = conn.execute(
                select(store_files.c.sha256, func.max(store_files.c.size))
                .where(store_files.c.model_key.in_(keys))
                .group_by(store_files.c.sha256)
            ).all()
            kept = set(
                conn.execute(
                    select(store_files.c.sha256)
                    .where(store_files.c.model_key.not_in(keys))
                    .distinct()
                ).scalars()
            )
        return sorted((sha, int(size)) for sha, size in mine if sha not in kept)

    def plan_remove(self, models: Iterable[StoredModel], *, reason: str = "") -> RemovalPlan:
        """What removing these models would delete; blobs other models use stay."""
        chosen = tuple(models)
        return RemovalPlan(
            models=chosen,
            blobs=tuple(self._unshared_blobs([m.key for m in chosen])),
            reasons={m.key: reason for m in chosen if reason},
            artifacts=tuple(
                self._artifacts_of([m.key for m in chosen], find_artifacts(self.layout.root))
            ),
        )

    # ---------------------------------------------------------------- artifacts

    def _digests(self) -> dict[str, str]:
        """Each stored model's content key (``tree_digest`` of its files)."""
        files: dict[str, list[tuple[str, str]]] = {}
        with self.engine.connect() as conn:
            for key, path, sha256 in conn.execute(
                select(store_files.c.model_key, store_files.c.path, store_files.c.sha256)
            ):
                files.setdefault(key, []).append((path, sha256))
        with self.engine.connect() as conn:
            keys = list(conn.execute(select(store_models.c.key)).scalars())
        return {key: tree_digest(files.get(key, [])) for key in keys}

    def _graphs_of(self, owners: Sequence[Artifact], found: Sequence[Artifact]) -> list[Artifact]:
        """The optimized graphs made from files of these artifacts."""
        roots = [(self.layout.root / a.path).resolve() for a in owners]
        return [
            a
            for a in found
            if a.kind == "ort-cache"
            and a.made_from
            and any(Path(a.made_from).is_relative_to(r) for r in roots)
        ]

    def _artifacts_of(self, keys: Sequence[str], found: Sequence[Artifact]) -> list[Artifact]:
        """Artifacts of these models' content that no other stored model shares."""
        if not keys:
            return []
        digests = self._digests()
        going = {digests[k] for k in keys if k in digests}
        staying = {d for k, d in digests.items() if k not in keys}
        owned = [
            a
            for a in found
            if a.kind != "ort-cache"
            and any(a.belongs_to(d) for d in going)
            and not any(a.belongs_to(d) for d in staying)
        ]
        return owned + self._graphs_of(owned, found)

    def _orphans(self, found: Sequence[Artifact]) -> list[list[Artifact]]:
        """Artifacts no stored model owns (converted from folders, or left over), each with
        the optimized graphs made from it: what a prune may remove besides models."""
        digests = set(self._digests().values())
        groups: list[list[Artifact]] = []
        for a in found:
            if a.kind == "ort-cache":
                source = Path(a.made_from) if a.made_from else None
                outside = source is None or not source.is_relative_to(self.layout.root.resolve())
                if source is None or not source.exists() or outside:
                    groups.append([a])
            elif not any(a.belongs_to(d) for d in digests):
                groups.append([a, *self._graphs_of([a], found)])
        return groups

    def plan_prune(
        self, *, max_size: int | None = None, older_than: dt.timedelta | None = None
    ) -> RemovalPlan:
        """Least recently used models to remove so the store fits ``max_size`` and none is
        older (unused) than ``older_than``.

        The size counts blobs and what was derived from them (converted models, PyTorch
        Hub weights, optimized graphs); a model goes with its artifacts, and artifacts no
        stored model owns (converted from a folder) are pruned by age like models.
        """
        models = self.list_models()
        now = _now()
        found = find_artifacts(self.layout.root)
        orphans = self._orphans(found)
        chosen: list[StoredModel] = []
        dropped: list[list[Artifact]] = []
        reasons: dict[str, str] = {}

        def last(m: StoredModel) -> dt.datetime:
            return m.last_used or m.pulled_at

        def newest(group: list[Artifact]) -> dt.datetime:
            return max(a.modified for a in group)

        if older_than is not None:
            for m in models:
                if now - last(m) > older_than:
                    chosen.append(m)
                    reasons[m.key] = f"unused for {(now - last(m)).days} day(s)"
            dropped += [g for g in orphans if now - newest(g) > older_than]

        def size_after() -> int:
            freed = sum(b for _, b in self._unshared_blobs([c.key for c in chosen]))
            freed += sum(a.size for a in self._artifacts_of([c.key for c in chosen], found))
            freed += sum(a.size for g in dropped for a in g)
            return self.disk_size() + sum(a.size for a in found) - freed

        if max_size is not None:
            units: list[tuple[dt.datetime, StoredModel | list[Artifact]]] = [
                (last(m), m) for m in models if m not in chosen
            ]
            units += [(newest(g), g) for g in orphans if g not in dropped]
            units.sort(key=lambda unit: unit[0])
            size = size_after()
            while size > max_size and units:
                _, unit = units.pop(0)
                if isinstance(unit, StoredModel):
                    chosen.append(unit)
                    reasons[unit.key] = "least recently used"
                else:
                    dropped.append(unit)
                size = size_after()
        artifacts = {a.path: a for a in self._artifacts_of([m.key for m in chosen], found)}
        artifacts.update({a.path: a for g in dropped for a in g})
        # Partial downloads nobody resumed for a day are abandoned.
        stale = older_than if older_than is not None else dt.timedelta(days=1)
        partials = []
        partial_dir = self.layout.root / "partial"
        for path in sorted(partial_dir.iterdir()) if partial_dir.exists() else ():
            modified = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            if now - modified > stale:
                partials.append((path.name, path.stat().st_size))
        return RemovalPlan(
            models=tuple(chosen),
            blobs=tuple(self._unshared_blobs([m.key for m in chosen])),
            reasons=reasons,
            partials=tuple(partials),
            artifacts=tuple(artifacts.values()),
        )

    def _forget_rows(
        self, plan: RemovalPlan, keys: list[str]
    ) -> tuple[set[str], list[tuple[str, str, str]]]:
        """Delete the plan's index rows; returns the plan's blobs that another model's rows
        name now (committed since the plan was made) and the removed files' aliases."""
        with self.engine.begin() as conn:
            aliases = conn.execute(
                select(store_files.c.digest_kind, store_files.c.digest, store_files.c.sha256)
                .where(store_files.c.model_key.in_(keys))
                .distinct()
            ).all()
            conn.execute(delete(store_files).where(store_files.c.model_key.in_(keys)))
            conn.execute(delete(store_models).where(store_models.c.key.in_(keys)))
            for m in plan.models:
                conn.execute(
                    delete(store_refs).where(
                        (store_refs.c.registry == m.registry)
                        & (store_refs.c.name == m.name)
                        & (store_refs.c.revision == m.revision)
                    )
                )
            planned = [sha for sha, _ in plan.blobs]
            kept = (
                set(
                    conn.execute(
                        select(store_files.c.sha256)
                        .where(store_files.c.sha256.in_(planned))
                        .distinct()
                    ).scalars()
                )
                if planned
                else set()
            )
        return kept, [(kind, digest, sha) for kind, digest, sha in aliases]

    def execute(self, plan: RemovalPlan) -> int:
        """Carry out a removal plan; returns the bytes freed."""
        keys = [m.key for m in plan.models]
        naming: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self.remote is not None:
            from modelport.store import shared

            naming = shared.bucket_lock(self)
        with naming:
            kept, aliases = self._forget_rows(plan, keys)
            if self.remote is not None:
                shared.forget(self, plan, kept=kept)
        freeing = {sha for sha, _ in plan.blobs} - kept
        from modelport.store.runs import forget

        for m in plan.models:
            self.layout.manifest(m.registry, m.name, m.revision).unlink(missing_ok=True)
            shutil.rmtree(m.path, ignore_errors=True)
            forget(self.layout.root, registry=m.registry, name=m.name)
        freed = sum(remove_artifact(self.layout.root, a) for a in plan.artifacts)
        for sha, size in plan.blobs:
            blob = self.layout.blob(sha)
            if sha in freeing and blob.exists():
                blob.unlink()
                freed += size
        for kind, digest, sha in aliases:
            if sha in freeing and kind != "sha256":
                self.layout.alias(kind, digest).unlink(missing_ok=True)
        for name, size in plan.partials:
            kind, _, digest = name.partition("-")
            lock = self.layout.lock(f"blob-{kind}-{digest}")
            from filelock import FileLock, Timeout

            try:
                # A download in progress holds the lock: leave its partial file alone.
                with FileLock(str(lock), timeout=0):
                    (self.layout.root / "partial" / name).unlink(missing_ok=True)
                    freed += size
            except Timeout:
                continue
        return freed

    # ---------------------------------------------------------------- integrity

    def verify(self) -> VerifyReport:
        """Re-hash every blob, check every alias and every model folder file; report the
        damage and the models it touches."""
        from modelport.store.integrity import verify

        return verify(self)

    def repair_locally(self, report: VerifyReport) -> tuple[str, ...]:
        """Mend what needs no download (see ``modelport.store.integrity.repair_locally``)."""
        from modelport.store.integrity import repair_locally

        return repair_locally(self, report)

    def discard_blob(self, sha256: str) -> None:
        """Delete a (corrupt) blob so that the next pull fetches it again."""
        blob = self.layout.blob(sha256)
        # Another process mending the same model may have discarded it first.
        with contextlib.suppress(FileNotFoundError):
            os.chmod(blob, 0o644)
            blob.unlink()

    # ---------------------------------------------------------------- stats

    def _shared_blobs(self) -> tuple[int, int]:
        """How many distinct blobs the index names, and their bytes (a shared store's)."""
        distinct = (
            select(store_files.c.sha256, func.max(store_files.c.size).label("size"))
            .group_by(store_files.c.sha256)
            .subquery()
        )
        with self.engine.connect() as conn:
            count, size = conn.execute(
                select(func.count(), func.coalesce(func.sum(distinct.c.size), 0))
            ).one()
        return int(count), int(size)

    def disk_size(self) -> int:
        """Bytes of every blob (of a shared store: in its bucket, as the index counts them)."""
        if self.remote is not None:
            return self._shared_blobs()[1]
        blobs_dir = self.layout.root / "blobs" / "sha256"
        if not blobs_dir.exists():
            return 0
        return sum(p.stat().st_size for p in blobs_dir.iterdir() if not p.name.startswith("."))

    def fold_uses(self) -> None:
        """Apply uses that fast runs journaled without the database."""
        from modelport.store.runs import drain_uses

        for key in drain_uses(self.layout.root):
            self.count("run.hit")
            self.touch(key)

    def stats(self) -> StoreStats:
        """Size, counts and hit rates."""
        self.fold_uses()
        with self.engine.connect() as conn:
            counters = dict(
                conn.execute(select(store_counters.c.name, store_counters.c.value)).all()
            )
            models = conn.execute(select(func.count()).select_from(store_models)).scalar_one()
            logical = conn.execute(
                select(func.coalesce(func.sum(store_models.c.size), 0))
            ).scalar_one()
        blobs_dir = self.layout.root / "blobs" / "sha256"
        blobs = (
            [p for p in blobs_dir.iterdir() if not p.name.startswith(".")]
            if blobs_dir.exists()
            else []
        )
        artifacts = find_artifacts(self.layout.root)

        def total(kind: str) -> int:
            return sum(a.size for a in artifacts if a.kind == kind)

        blob_count, blob_size = len(blobs), sum(p.stat().st_size for p in blobs)
        if self.remote is not None:
            blob_count, blob_size = self._shared_blobs()
        return StoreStats(
            converted=sum(1 for a in artifacts if a.kind == "converted"),
            converted_size=total("converted"),
            torch_hub_size=total("torch-hub"),
            graph_cache_size=total("ort-cache"),
            models=int(models),
            blobs=blob_count,
            size=blob_size,
            logical_size=int(logical),
            pull_hits=int(counters.get("pull.hit", 0)),
            pull_misses=int(counters.get("pull.miss", 0)),
            run_hits=int(counters.get("run.hit", 0)),
            run_misses=int(counters.get("run.miss", 0)),
            root=self.layout.root,
        )
