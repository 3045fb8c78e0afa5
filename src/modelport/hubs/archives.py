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
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any, NoReturn

from modelport.errors import HubTimeoutError, HubUnavailableError, IntegrityError, UnsafeFileError
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
                follow_redirects=True, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
            ) as client,
            client.stream("GET", url, headers=dict(headers or {})) as response,
        ):
            if response.status_code >= 400:
                response.read()
                on_error(response)
            total = int(response.headers.get("content-length") or 0) or None
            with target.open("wb") as fh:
                for chunk in response.iter_bytes():  # as they arrive: a stall keeps them
                    fh.write(chunk)
                    done += len(chunk)
                    emit(PullEvent("downloading", file=label, total=total, completed=done))
    except httpx.TimeoutException:
        raise HubTimeoutError(
            f"{hub} stopped sending {label} after {done} bytes: nothing more arrived"
            if done
            else f"{hub} did not answer the download of {label}",
            hub=hub,
            seconds=timeout,
            hint="Run the pull again, or raise MODELPORT_HTTP_TIMEOUT (seconds).",
        ) from None
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


@dataclass(frozen=True)
class _Member:
    """An archive entry as both formats describe it."""

    name: str
    size: int
    is_dir: bool
    is_file: bool
    open: Callable[[], IO[bytes] | None]


def extract_archive(
    archive: Path, target: Path, *, ref: str, strip_top: bool = False
) -> tuple[list[str], str | None]:
    """Unpack a zip or tar archive into ``target``; returns the files and the top folder name.

    ``strip_top`` drops the single top-level folder GitHub puts in its archives. Every
    member is checked before the first byte is written.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = [
                _Member(
                    i.filename,
                    i.file_size,
                    i.is_dir(),
                    not stat.S_ISLNK(i.external_attr >> 16),
                    partial(zf.open, i),
                )
                for i in zf.infolist()
            ]
            return _extract(members, target, ref=ref, strip_top=strip_top)
    try:
        with tarfile.open(archive, mode="r:*") as tf:
            members = [
                _Member(m.name, m.size, m.isdir(), m.isfile(), partial(tf.extractfile, m))
                for m in tf.getmembers()
            ]
            return _extract(members, target, ref=ref, strip_top=strip_top)
    except tarfile.TarError:
        raise UnsafeFileError(ref, archive.name) from None


def _extract(
    members: list[_Member], target: Path, *, ref: str, strip_top: bool
) -> tuple[list[str], str | None]:
    if len(members) > MAX_MEMBERS:
        raise UnsafeFileError(ref, f"{len(members)} archive members")
    tops = {m.name.removeprefix("./").split("/", 1)[0] for m in members}
    tops.discard("")
    plan: list[tuple[_Member, str]] = []
    for member in members:
        if member.is_dir:
            continue
        if not member.is_file:  # links, devices, fifos
            raise UnsafeFileError(ref, member.name)
        name = _strip(member.name, strip_top)
        if name is None:
            continue
        try:
            safe_relative_path(name)
        except ValueError:
            raise UnsafeFileError(ref, member.name) from None
        plan.append((member, name))
    total = sum(m.size for m, _ in plan)
    if total > MAX_UNPACKED_BYTES:
        raise UnsafeFileError(ref, f"{total} bytes unpacked")
    for member, name in plan:
        out = target / safe_relative_path(name)
        out.parent.mkdir(parents=True, exist_ok=True)
        src = member.open()
        if src is None:
            raise UnsafeFileError(ref, member.name)
        with src, out.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    return [name for _, name in plan], tops.pop() if len(tops) == 1 else None
