"""Where the store keeps things, and which file names it accepts from a hub.

store/
  blobs/sha256/<hex>        content-addressed, read-only; shared across models
  blobs/git-sha1/<oid>      aliases: the sha256 of the blob with that git blob id
  partial/<kind>-<digest>   a download in progress (a stable name, so it resumes)
  locks/                    per-blob and per-manifest file locks
  manifests/<registry>/<name>/<revision>.json
  models/<registry>/<name>/<revision>/…   the model's tree, hard-linked to blobs

With ``MODELPORT_STORE_URL`` these are this machine's cache of a bucket (``remote``):
see ``modelport.store.shared``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelport.store.remote import RemoteStore

__all__ = ["StoreLayout", "safe_relative_path", "tree_conflict", "tree_digest"]

_DIGEST_RE = {"sha256": re.compile(r"[0-9a-f]{64}"), "git-sha1": re.compile(r"[0-9a-f]{40}")}
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+=-]*")
# The longest file name ext4, XFS, APFS and NTFS hold, in bytes of UTF-8.
MAX_NAME_BYTES = 255


def tree_digest(files: Iterable[tuple[str, str]]) -> str:
    """The content key of a model tree: its files' relative paths and sha256 digests.

    The store computes it from a manifest and the converter from a folder's files, so the
    same weights are converted once wherever they come from.
    """
    digest = hashlib.sha256()
    for path, sha256 in sorted(files):
        digest.update(f"{path}\0{sha256}\n".encode())
    return digest.hexdigest()


def safe_relative_path(name: str) -> PurePosixPath:
    """A hub file name as a relative path that stays inside the model folder.

    Refuses absolute paths, drive letters, backslashes, ``..`` and ``.`` segments,
    empty segments, control characters and segments no file system can hold (over 255
    bytes); raises ``ValueError`` with the reason.
    """
    if not name or len(name) > 1024:
        raise ValueError("empty or overlong name")
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        raise ValueError("control characters")
    if "\\" in name:
        raise ValueError("backslash")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ValueError("absolute path")
    parts = name.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("empty, '.' or '..' segment")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in parts):
        raise ValueError(f"a name longer than {MAX_NAME_BYTES} bytes")
    return PurePosixPath(*parts)


def tree_conflict(names: Iterable[str]) -> tuple[str, str] | None:
    """The first of a listing's (safe) names that no folder can hold beside the others, and
    why: a name listed twice, or one below a name that is a file. None when all fit."""
    listed: set[str] = set()
    ordered = list(names)
    for name in ordered:
        if name in listed:
            return name, "listed twice"
        listed.add(name)
    for name in ordered:
        parts = name.split("/")
        for end in range(1, len(parts)):
            folder = "/".join(parts[:end])
            if folder in listed:
                return name, f"{folder!r} is a file, not a folder"
    return None


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store under ``root``."""

    root: Path
    #: The bucket behind the store when it is shared (downloads look there before a hub).
    remote: RemoteStore | None = field(default=None, compare=False, repr=False)

    def _digest(self, kind: str, digest: str) -> str:
        if kind not in _DIGEST_RE or not _DIGEST_RE[kind].fullmatch(digest):
            raise ValueError(f"not a {kind} digest: {digest!r}")
        return digest

    def blob(self, sha256: str) -> Path:
        """The blob with this sha256."""
        return self.root / "blobs" / "sha256" / self._digest("sha256", sha256)

    def alias(self, kind: str, digest: str) -> Path:
        """The blob reached by another digest (``git-sha1``), or the sha256 path itself."""
        return self.root / "blobs" / kind / self._digest(kind, digest)

    def partial(self, kind: str, digest: str) -> Path:
        """The stable name of a download in progress."""
        return self.root / "partial" / f"{kind}-{self._digest(kind, digest)}"

    def lock(self, name: str) -> Path:
        """A lock file."""
        return self.root / "locks" / f"{name}.lock"

    def _model_key(self, registry: str, name: str, revision: str) -> PurePosixPath:
        parts = [registry, *name.split("/"), revision]
        for part in parts:
            if not _SEGMENT_RE.fullmatch(part) or part in (".", ".."):
                raise ValueError(f"unsafe store path segment {part!r}")
        return PurePosixPath(*parts)

    def manifest(self, registry: str, name: str, revision: str) -> Path:
        """The manifest of one model revision."""
        key = self._model_key(registry, name, revision)
        return self.root / "manifests" / key.parent / f"{key.name}.json"

    def model_dir(self, registry: str, name: str, revision: str) -> Path:
        """The folder holding one model revision's tree."""
        return self.root / "models" / self._model_key(registry, name, revision)

    def tmp(self) -> Path:
        """Scratch space on the store's file system (for atomic renames)."""
        return self.root / "tmp"
