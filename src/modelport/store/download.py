"""Download one blob: resumable across processes, locked, verified, then renamed into place.

Protocol: take the blob's file lock; if the blob appeared meanwhile, done; a shared
store's bucket that has it is next (fetched from there and hashed). Otherwise continue
``partial/<kind>-<digest>`` with an HTTP Range request (a server that ignores Range
restarts it), hash everything, and only when size and digest match the hub's,
record the alias and rename it into ``blobs/``. A process killed mid-file leaves the
partial file for the next one; a digest mismatch deletes it; a body longer than the
listed size is cut off at that size and discarded. A blob whose alias was lost is
found again by its size and git id instead of being fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from filelock import FileLock

from modelport.errors import HubTimeoutError, HubUnavailableError, IntegrityError, RateLimitedError
from modelport.store.layout import StoreLayout

if TYPE_CHECKING:
    import httpx

__all__ = ["BlobRequest", "download_blob", "existing_blob", "http_client", "link_into_place"]

CHUNK = 1 << 20
MAX_ATTEMPTS = 4
MAX_RETRY_AFTER = 10.0


def http_client(*, timeout: float, max_connections: int = 16) -> httpx.Client:
    """An httpx client for hub requests and downloads, following redirects.

    Building a verifying TLS context (the CA bundle) costs more than a small request, so
    the https transport is made on the first https request; a plain-http mirror (a local
    Hub, the tests' loopback servers) never pays for it.
    """
    import httpx

    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )

    class LazyTLS(httpx.BaseTransport):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.transport: httpx.HTTPTransport | None = None

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            with self.lock:
                if self.transport is None:
                    self.transport = httpx.HTTPTransport(limits=limits)
            return self.transport.handle_request(request)

        def close(self) -> None:
            if self.transport is not None:
                self.transport.close()

    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=LazyTLS(),
        # http:// never negotiates TLS, so this transport's context is never used.
        mounts={"http://": httpx.HTTPTransport(limits=limits, verify=False)},
    )


@dataclass(frozen=True)
class BlobRequest:
    """What to fetch and what it must hash to."""

    url: str
    digest_kind: str  # "sha256" or "git-sha1"
    digest: str
    size: int | None
    label: str


class _Hashers:
    """sha256 (the store's address) and, for small git files, the git blob id, fed as
    bytes arrive so that no second pass over the file is needed."""

    def __init__(self, kind: str, size: int | None) -> None:
        self.sha256 = hashlib.sha256()
        self.git = None
        if kind == "git-sha1":
            if size is None:
                raise IntegrityError("A git-addressed file needs a known size to be verified.")
            # A git blob id is the sha1 of a "blob <size>\0" header and the content.
            self.git = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        self.count = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        if self.git is not None:
            self.git.update(chunk)
        self.count += len(chunk)

    def digest(self, kind: str) -> str:
        if kind == "git-sha1" and self.git is not None:
            return self.git.hexdigest()
        return self.sha256.hexdigest()


def _hash_prefix(path: Path, kind: str, size: int | None) -> _Hashers:
    """Hashers that have seen the bytes already in ``path`` (a partial download)."""
    hashers = _Hashers(kind, size)
    if path.exists():
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                hashers.update(chunk)
    return hashers


def link_into_place(layout: StoreLayout, sha256: str, kind: str, digest: str) -> None:
    """Record that the blob ``sha256`` is also known by ``kind:digest`` (a git blob id)."""
    if kind == "sha256":
        return
    alias = layout.alias(kind, digest)
    alias.parent.mkdir(parents=True, exist_ok=True)
    tmp = alias.with_name(f".{alias.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(sha256)
        os.replace(tmp, alias)
    finally:
        tmp.unlink(missing_ok=True)


def existing_blob(
    layout: StoreLayout, kind: str, digest: str, size: int | None = None
) -> str | None:
    """The sha256 of a blob already in the store under this digest, or None.

    A blob is reused in a new model only if it still has the listed size, and a git alias
    only if the blob it names has that git id (git files are small): damage in the store
    must not reach a model that was never pulled with it.
    """
    if kind == "sha256":
        sha256 = digest
    else:
        try:
            sha256 = layout.alias(kind, digest).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
    try:
        blob = layout.blob(sha256)
        actual = blob.stat().st_size
    except (ValueError, FileNotFoundError):  # a damaged alias file; no such blob
        return None
    if size is not None and actual != size:
        return None
    if kind == "git-sha1" and git_blob_id(blob, actual) != digest:
        return None
    return sha256


def git_blob_id(path: Path, size: int) -> str:
    """The git blob id of a file of ``size`` bytes."""
    hashers = _hash_prefix(path, "git-sha1", size)
    return hashers.digest("git-sha1")


def recover_alias(layout: StoreLayout, kind: str, digest: str, size: int | None) -> str | None:
    """Find the blob an alias that was lost (a crash before it was written) would name.

    Only blobs of exactly ``size`` bytes are hashed; blob sizes are remembered per
    process (a blob never changes), so a miss costs one directory listing. The alias
    is written again when a blob matches.
    """
    if kind != "git-sha1" or size is None:
        return None
    for sha256 in _blobs_of_size(layout, size):
        try:
            if git_blob_id(layout.blob(sha256), size) != digest:
                continue
        except OSError:  # removed meanwhile
            continue
        link_into_place(layout, sha256, kind, digest)
        return sha256
    return None


_sizes_lock = threading.Lock()
# Per blobs folder: its mtime when listed, and each blob's size.
_sizes: dict[Path, tuple[int, dict[str, int]]] = {}


def _blobs_of_size(layout: StoreLayout, size: int) -> list[str]:
    blobs = layout.root / "blobs" / "sha256"
    try:
        stamp = blobs.stat().st_mtime_ns
        with _sizes_lock:
            cached = _sizes.get(blobs)
        if cached is not None and cached[0] == stamp:
            known = cached[1]  # nothing added or removed since it was listed
        else:
            names = {e.name for e in os.scandir(blobs) if not e.name.startswith(".")}
            known = {n: s for n, s in (cached[1] if cached else {}).items() if n in names}
            for name in names - known.keys():
                with contextlib.suppress(OSError):
                    known[name] = (blobs / name).stat().st_size
            with _sizes_lock:
                _sizes[blobs] = (stamp, known)
    except FileNotFoundError:
        return []
    return [name for name, n in known.items() if n == size]


def download_blob(
    client: object,
    request: BlobRequest,
    *,
    layout: StoreLayout,
    headers: Mapping[str, str],
    hub: str,
    on_bytes: Callable[[int, int | None], None] | None = None,
) -> tuple[str, int]:
    """Fetch one blob into the store; return (sha256, bytes downloaded by this call)."""
    import httpx

    assert isinstance(client, httpx.Client)
    kind, digest = request.digest_kind, request.digest
    found = existing_blob(layout, kind, digest, request.size)
    if found is not None:
        return found, 0
    lock_path = layout.lock(f"blob-{kind}-{digest}")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_path)):
        found = existing_blob(layout, kind, digest, request.size) or recover_alias(
            layout, kind, digest, request.size
        )
        if found is not None:
            return found, 0
        remote = layout.remote
        # A shared store's bucket may have it from another server (another model, another
        # revision with the same weights): fetched from there, and hashed, not from the hub.
        if (
            remote is not None
            and kind == "sha256"
            and remote.has_blob(digest, request.size)
            and remote.fetch_blob(digest, layout.blob(digest), scratch=layout.tmp())
        ):
            return digest, 0
        partial = layout.partial(kind, digest)
        partial.parent.mkdir(parents=True, exist_ok=True)
        downloaded = 0
        restarted_after_mismatch = False
        attempt = 0
        hashers: _Hashers | None = None
        while True:
            attempt += 1
            have = partial.stat().st_size if partial.exists() else 0
            if request.size is not None and have > request.size:
                partial.unlink()
                have = 0
            if hashers is None or hashers.count != have:
                # Bytes left by an earlier attempt or process are hashed once, up front.
                hashers = _hash_prefix(partial, kind, request.size)
            if request.size is None or have < request.size:
                try:
                    got, hashers = _fetch(
                        client, request, partial, have, headers, hub, on_bytes, hashers
                    )
                    downloaded += got
                except _TooLong:
                    partial.unlink(missing_ok=True)
                    raise IntegrityError(
                        f"{hub} sent more than the {request.size} bytes it lists for "
                        f"{request.label}.",
                        hint="The download was discarded; nothing was stored. Try again later.",
                    ) from None
                except httpx.TimeoutException:
                    # Retrying would multiply the wait the user set; the partial file stays.
                    sent = partial.stat().st_size if partial.exists() else 0
                    raise HubTimeoutError(
                        f"{hub} stopped sending {request.label} after {sent} bytes: "
                        "nothing more arrived"
                        if sent
                        else f"{hub} did not answer the download of {request.label}",
                        hub=hub,
                        seconds=client.timeout.read or 0,
                        hint="Run the pull again to continue where it stopped, or raise "
                        "MODELPORT_HTTP_TIMEOUT (seconds).",
                    ) from None
                except (httpx.TransportError, _Retry) as e:
                    hashers = None  # the partial file may hold bytes the hashers missed
                    if attempt >= MAX_ATTEMPTS:
                        if isinstance(e, _Retry):
                            raise e.error from None
                        raise HubUnavailableError(
                            f"Downloading {request.label} from {hub} failed: {e}.",
                            hub=hub,
                            hint="Run the pull again: it continues where it stopped.",
                        ) from None
                    if isinstance(e, _Retry) and e.wait:
                        time.sleep(e.wait)
                    continue
                if request.size is not None and hashers.count < request.size:
                    # The body ended early: continue from where it stopped.
                    if attempt >= MAX_ATTEMPTS:
                        raise HubUnavailableError(
                            f"{hub} kept cutting the download of {request.label} short.",
                            hub=hub,
                            hint="Run the pull again: it continues where it stopped.",
                        )
                    continue
            actual = hashers.digest(kind)
            size_ok = request.size is None or hashers.count == request.size
            if actual == digest and size_ok:
                break
            partial.unlink(missing_ok=True)
            hashers = None
            if restarted_after_mismatch:
                raise IntegrityError(
                    f"{request.label} from {hub} does not match its published {kind} digest "
                    f"(expected {digest[:12]}…, got {actual[:12]}…).",
                    hint="The download was discarded; nothing was stored. Try again later.",
                )
            # A partial file from an earlier run may have been corrupt: start over once.
            restarted_after_mismatch = True
            attempt = 0
        sha256 = hashers.sha256.hexdigest()
        blob = layout.blob(sha256)
        blob.parent.mkdir(parents=True, exist_ok=True)
        # An empty file needs no request: its partial file is created here.
        with partial.open("ab") as fh:
            # Durable before visible: a crash after the rename must not leave a short blob.
            os.fsync(fh.fileno())
        os.chmod(partial, 0o444)
        # The alias first: a crash before the rename leaves the verified partial file
        # (renamed by the next pull without a download), never a blob without its alias.
        link_into_place(layout, sha256, kind, digest)
        os.replace(partial, blob)
        return sha256, downloaded


class _TooLong(Exception):
    """The body went on past the size the hub listed: an untrusted response."""


class _Retry(Exception):
    def __init__(self, error: Exception, wait: float) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


def _fetch(
    client: object,
    request: BlobRequest,
    partial: Path,
    have: int,
    headers: Mapping[str, str],
    hub: str,
    on_bytes: Callable[[int, int | None], None] | None,
    hashers: _Hashers,
) -> tuple[int, _Hashers]:
    import httpx

    assert isinstance(client, httpx.Client)
    send = dict(headers)
    send["Accept-Encoding"] = "identity"  # Range offsets count stored bytes
    if have:
        send["Range"] = f"bytes={have}-"
    got = 0
    with client.stream("GET", request.url, headers=send) as response:
        status = response.status_code
        if status == 416 and have:
            return 0, hashers  # already complete; the digest check decides
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            error = RateLimitedError(hub=hub, retry_after=retry_after)
            if retry_after is not None and retry_after <= MAX_RETRY_AFTER:
                raise _Retry(error, retry_after)
            raise error
        if status >= 500:
            raise _Retry(
                HubUnavailableError(f"{hub} answered HTTP {status} for {request.label}.", hub=hub),
                1.0,
            )
        if status not in (200, 206):
            raise HubUnavailableError(f"{hub} answered HTTP {status} for {request.label}.", hub=hub)
        mode = "ab"
        if status == 200 and have:
            mode = "wb"  # the server ignored Range: start the file over
            have = 0
            hashers = _Hashers(request.digest_kind, request.size)
        elif status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                mode, have = "wb", 0
                hashers = _Hashers(request.digest_kind, request.size)
                if start != 0:
                    raise _Retry(
                        HubUnavailableError(
                            f"{hub} answered a range request for {request.label} "
                            "with the wrong range.",
                            hub=hub,
                        ),
                        0.0,
                    )
        if request.size is not None:
            announced = response.headers.get("Content-Length")
            if (
                announced is not None
                and announced.isdigit()
                and have + int(announced) > request.size
            ):
                raise _TooLong()
        with partial.open(mode) as fh, _HashingWriter(fh, hashers) as sink:
            done = have
            # iter_raw yields bytes as they arrive: a body cut short still leaves them on disk.
            for chunk in response.iter_raw():
                if request.size is not None and done + len(chunk) > request.size:
                    raise _TooLong()  # not one byte past the listed size is written
                sink.write(chunk)
                got += len(chunk)
                done += len(chunk)
                if on_bytes is not None:
                    on_bytes(done, request.size)
    return got, hashers


class _HashingWriter:
    """Writes chunks to a file while another thread hashes them and flushes the file to disk.

    Receiving, hashing and the final ``fsync`` of a large file would otherwise take turns
    on one core: hashlib and ``fdatasync`` release the GIL, so they run beside the socket.
    On leaving, every chunk written has been hashed (also when the body was cut short).
    """

    #: Ask the disk to catch up every this many bytes, so the final fsync has little left.
    FLUSH_EVERY = 32 << 20

    def __init__(self, fh: IO[bytes], hashers: _Hashers) -> None:
        import queue

        self.fh = fh
        self.hashers = hashers
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=256)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._hash, name="blob-hasher", daemon=True)

    def __enter__(self) -> _HashingWriter:
        self.thread.start()
        return self

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self.chunks.put(chunk)

    def _hash(self) -> None:
        unflushed = 0
        while (chunk := self.chunks.get()) is not None:
            if self.error is not None:
                continue  # drain, so the writer never blocks on a full queue
            try:
                self.hashers.update(chunk)
                unflushed += len(chunk)
                if unflushed >= self.FLUSH_EVERY:
                    self.fh.flush()
                    os.fdatasync(self.fh.fileno())
                    unflushed = 0
            except BaseException as e:  # re-raised in the writer's thread
                self.error = e

    def __exit__(self, *exc: object) -> None:
        self.chunks.put(None)
        self.thread.join()
        self.fh.flush()
        if self.error is not None and exc[0] is None:
            raise self.error


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200"
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None
