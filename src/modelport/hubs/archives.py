"""Safe extraction of the archives hubs serve (GitHub zipballs, tfhub tarballs).

Every member is checked before anything is written: no absolute paths, no ``..``, no
links or devices, a bounded total size and member count. Extraction goes into a
scratch folder the caller owns, so a refused archive leaves nothing behind.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from modelport.errors import HubUnavailableError, IntegrityError, UnsafeFileError
from modelport.hubs.base import ProgressCallback, PullEvent
from modelport.store.layout import safe_relative_path

__all__ = ["download_archive", "extract_archive"]


def download_archive(
    url: str,
    target: Path,
    *,
    label: str,
    hub: str,
    emit: ProgressCallback,
    on_error: Callable[[Any], NoReturn],
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> int:
    """Stream an archive (no published digest) to ``target`` with progress; returns its bytes.

    ``on_error`` turns an HTTP error response into the hub's own error; a body shorter
    than its ``Content-Length`` is an ``IntegrityError``.
    """
    import httpx

    done = 0
    total: int | None = None
    try:
        with (
            httpx.Client(
                follow_redirects=True, timeout=httpx.Timeout(timeout, connect=10.0)
            ) as client,
            client.stream("GET", url, headers=dict(headers or {})) as response,
        ):
            if response.status_code >= 400:
                response.read()
                on_error(response)
            total = int(response.headers.get("content-length") or 0) or None
            with target.open("wb") as fh:
                for chunk in response.iter_bytes(1 << 20):
                    fh.write(chunk)
                    done += len(chunk)
                    emit(PullEvent("downloading", file=label, total=total, completed=done))
    except httpx.HTTPError as e:
        raise HubUnavailableError(
            f"Downloading {label} from {hub} failed: {type(e).__name__}.",
            hub=hub,
            hint="Run the pull again.",
        ) from None
    if total is not None and done != total:
        raise IntegrityError(f"{label} from {hub} ended after {done} of {total} bytes.")
    return done


#: Refuse archives that unpack to more than this (a zip bomb guard).
MAX_UNPACKED_BYTES = 64 * 1024**3
MAX_MEMBERS = 200_000


def _strip(name: str, strip_top: bool) -> str | None:
    name = name.removeprefix("./")
    if strip_top:
        _, _, name = name.partition("/")
    return name or None


def extract_archive(
    archive: Path, target: Path, *, ref: str, strip_top: bool = False
) -> tuple[list[str], str | None]:
    """Unpack a zip or tar archive into ``target``; returns the files and the top folder name.

    ``strip_top`` drops the single top-level folder GitHub puts in its archives.
    """
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target, ref=ref, strip_top=strip_top)
    try:
        return _extract_tar(archive, target, ref=ref, strip_top=strip_top)
    except tarfile.TarError:
        raise UnsafeFileError(ref, archive.name) from None


def _top(names: list[str]) -> str | None:
    tops = {n.removeprefix("./").split("/", 1)[0] for n in names if n.removeprefix("./")}
    return tops.pop() if len(tops) == 1 else None


def _extract_zip(
    archive: Path, target: Path, *, ref: str, strip_top: bool
) -> tuple[list[str], str | None]:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise UnsafeFileError(ref, f"{len(infos)} archive members")
        top = _top([i.filename for i in infos])
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        total = 0
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeFileError(ref, info.filename)
            name = _strip(info.filename, strip_top)
            if name is None or info.is_dir():
                continue
            try:
                safe_relative_path(name)
            except ValueError:
                raise UnsafeFileError(ref, info.filename) from None
            total += info.file_size
            plan.append((info, name))
        if total > MAX_UNPACKED_BYTES:
            raise UnsafeFileError(ref, f"{total} bytes unpacked")
        for info, name in plan:
            out = target / safe_relative_path(name)
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return [name for _, name in plan], top


def _extract_tar(
    archive: Path, target: Path, *, ref: str, strip_top: bool
) -> tuple[list[str], str | None]:
    with tarfile.open(archive, mode="r:*") as tf:
        members = tf.getmembers()
        if len(members) > MAX_MEMBERS:
            raise UnsafeFileError(ref, f"{len(members)} archive members")
        top = _top([m.name for m in members])
        plan: list[tuple[tarfile.TarInfo, str]] = []
        total = 0
        for member in members:
            if member.isdir():
                continue
            if not member.isfile():  # links, devices, fifos
                raise UnsafeFileError(ref, member.name)
            name = _strip(member.name, strip_top)
            if name is None:
                continue
            try:
                safe_relative_path(name)
            except ValueError:
                raise UnsafeFileError(ref, member.name) from None
            total += member.size
            plan.append((member, name))
        if total > MAX_UNPACKED_BYTES:
            raise UnsafeFileError(ref, f"{total} bytes unpacked")
        for member, name in plan:
            out = target / safe_relative_path(name)
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:
                raise UnsafeFileError(ref, member.name)
            with src, out.open("wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        return [name for _, name in plan], top
