"""Checking the store against itself: every blob's bytes, every alias, every folder file.

``verify`` reads everything (the slow, thorough check behind ``cache verify``; of a
shared store, what this machine's cache holds);
``repair_locally`` mends what needs no download. The cheap check a pull makes is
``Store.complete``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from modelport.db import store_files, store_models
from modelport.store.download import git_blob_id, link_into_place
from modelport.store.layout import StoreLayout, safe_relative_path

if TYPE_CHECKING:
    from modelport.store.store import Store

__all__ = ["VerifyReport", "repair_locally", "sha256_of", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    """The result of re-hashing every blob and checking every alias and folder file."""

    checked: int
    checked_bytes: int
    #: sha256 blobs whose bytes do not hash to their name.
    corrupt: tuple[str, ...]
    #: Models using a corrupt blob, a damaged alias or a damaged folder file.
    affected: tuple[str, ...]
    repaired: tuple[str, ...] = ()
    #: ``git-sha1:<oid>`` aliases that name a missing or different blob.
    damaged_aliases: tuple[str, ...] = ()
    #: ``(model key, path)`` of folder files missing or not holding their blob's bytes.
    damaged_files: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not (self.corrupt or self.damaged_aliases or self.damaged_files)


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(store: Store) -> VerifyReport:
    """Re-hash every blob, check every alias and every model folder file; report the
    damage and the models it touches."""
    blobs_root = store.layout.root / "blobs"
    aliases = _aliases(store.layout)
    damaged_aliases = [f"{kind}:{oid}" for kind, oid, sha in aliases if sha is None]
    by_blob: dict[str, list[tuple[str, str]]] = {}
    for kind, oid, sha in aliases:
        if sha is not None:
            by_blob.setdefault(sha, []).append((kind, oid))
    corrupt: list[str] = []
    checked = checked_bytes = 0
    blobs_dir = blobs_root / "sha256"
    present = set()
    for blob in sorted(blobs_dir.iterdir()) if blobs_dir.exists() else ():
        if blob.name.startswith("."):
            continue
        present.add(blob.name)
        checked += 1
        checked_bytes += blob.stat().st_size
        if sha256_of(blob) != blob.name:
            corrupt.append(blob.name)
            continue
        for kind, oid in by_blob.get(blob.name, ()):
            if git_blob_id(blob, blob.stat().st_size) != oid:
                damaged_aliases.append(f"{kind}:{oid}")
    for sha, named in by_blob.items():
        for kind, oid in named:
            # An alias is written just before its blob is renamed in: a download
            # still holding its partial file is in progress, not damaged.
            if sha not in present and not store.layout.partial(kind, oid).exists():
                damaged_aliases.append(f"{kind}:{oid}")
    damaged_files: list[tuple[str, str]] = []
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(
                store_models.c.key,
                store_models.c.registry,
                store_models.c.name,
                store_models.c.revision,
                store_files.c.path,
                store_files.c.sha256,
                store_files.c.digest_kind,
                store_files.c.digest,
            )
            .join(store_files, store_files.c.model_key == store_models.c.key)
            .order_by(store_models.c.key, store_files.c.path)
        ).all()
    bad_aliases, bad_blobs = set(damaged_aliases), set(corrupt)
    affected = set()
    for row in rows:
        if row.sha256 in bad_blobs or f"{row.digest_kind}:{row.digest}" in bad_aliases:
            affected.add(row.key)
        if (
            store.remote is not None
            and not store.layout.manifest(row.registry, row.name, row.revision).exists()
        ):
            continue  # a shared store's model this machine's cache does not hold
        folder = store.layout.model_dir(row.registry, row.name, row.revision)
        target = folder / safe_relative_path(row.path)
        blob = store.layout.blob(row.sha256)
        try:
            same = os.path.samefile(target, blob) if blob.exists() else False
            if not same and sha256_of(target) != row.sha256:
                raise FileNotFoundError(target)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            damaged_files.append((row.key, row.path))
            affected.add(row.key)
    return VerifyReport(
        checked,
        checked_bytes,
        tuple(corrupt),
        tuple(sorted(affected)),
        damaged_aliases=tuple(sorted(set(damaged_aliases))),
        damaged_files=tuple(damaged_files),
    )


def repair_locally(store: Store, report: VerifyReport) -> tuple[str, ...]:
    """Mend what needs no download: discard corrupt blobs, write damaged aliases again
    from intact blobs, link damaged folder files again. Returns the models fully mended
    (those still missing a discarded blob need a pull)."""
    for corrupt in report.corrupt:
        store.discard_blob(corrupt)
    known: dict[str, str] = {}
    with store.engine.connect() as conn:
        for kind, digest, sha256 in conn.execute(
            select(store_files.c.digest_kind, store_files.c.digest, store_files.c.sha256)
        ):
            known[f"{kind}:{digest}"] = sha256
    for name in report.damaged_aliases:
        kind, _, oid = name.partition(":")
        (store.layout.root / "blobs" / kind / oid).unlink(missing_ok=True)
        # The index knows which blob the alias named; it is written again if intact.
        sha = known.get(name)
        blob = store.layout.blob(sha) if sha else None
        if sha and blob and blob.exists() and git_blob_id(blob, blob.stat().st_size) == oid:
            link_into_place(store.layout, sha, kind, oid)
    mended = []
    for key in report.affected:
        registry, _, rest = key.partition("/")
        name, _, revision = rest.rpartition("@")
        manifest = store.read_manifest(registry, name, revision)
        if manifest is None:
            continue
        if all(store.layout.blob(f.sha256).exists() for f in manifest.files):
            store.repair_folder(manifest)
            mended.append(key)
    return tuple(mended)


def _aliases(layout: StoreLayout) -> list[tuple[str, str, str | None]]:
    """Every alias as (kind, digest, the sha256 it names or None if unreadable)."""
    found: list[tuple[str, str, str | None]] = []
    blobs_root = layout.root / "blobs"
    kinds = sorted(blobs_root.iterdir()) if blobs_root.exists() else []
    for kind_dir in kinds:
        if kind_dir.name == "sha256" or not kind_dir.is_dir():
            continue
        for alias in sorted(kind_dir.iterdir()):
            if alias.name.startswith("."):
                continue
            sha: str | None
            try:
                sha = alias.read_text().strip()
                layout.blob(sha)  # raises on anything but a sha256
            except (OSError, ValueError):
                sha = None
            found.append((kind_dir.name, alias.name, sha))
    return found
