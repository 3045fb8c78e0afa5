"""A loopback server that speaks the Hugging Face Hub's HTTP protocol.

It serves repositories the tests build in memory, through the endpoints and headers
``huggingface_hub`` uses: ``/api/models`` (search), ``/api/models/{id}[/revision/{rev}]``
(with ``?blobs=true`` file metadata), ``/api/models/{id}/tree/{rev}``, and HEAD/GET
``/{id}/resolve/{rev}/{file}`` with ``X-Repo-Commit``, ``ETag``/``X-Linked-Etag``,
``X-Linked-Size``, ``X-Error-Code``, redirects of LFS files to a CDN path, and Range.

Misbehaviours on demand: throttling, cutting a body short, ignoring Range, answering
429 with ``Retry-After``, serving bytes that do not match the digest, sending more bytes
than a file's listed size, and listing a hostile file name.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx", ".h5", ".msgpack", ".gguf", ".ckpt")


@functools.cache
def git_blob_id(data: bytes) -> str:
    """The git object id of a file's content (cached: the server lists files often)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@functools.cache
def sha256_hex(data: bytes) -> str:
    """The sha256 of a file's content (cached)."""
    return hashlib.sha256(data).hexdigest()


def is_lfs(path: str, data: bytes) -> bool:
    """Whether the Hub would store this file with Git LFS."""
    return path.endswith(LFS_SUFFIXES) or len(data) > 10 * 1024 * 1024


@dataclass
class FakeRepo:
    """A model repository: commits of files, refs, and its metadata."""

    id: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    pipeline_tag: str | None = None
    library_name: str | None = None
    tags: list[str] = field(default_factory=list)
    downloads: int = 0
    likes: int = 0
    gated: bool = False
    private: bool = False
    extra_listing: list[str] = field(default_factory=list)

    def commit(self, files: dict[str, bytes], *, ref: str = "main") -> str:
        """Add a commit holding exactly ``files`` and point ``ref`` at it."""
        h = hashlib.sha1(usedforsecurity=False)
        h.update(str(len(self.commits)).encode())
        for path in sorted(files):
            h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
        sha = h.hexdigest()
        self.commits[sha] = dict(files)
        self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


@dataclass
class Knobs:
    """Misbehaviours the tests switch on."""

    bytes_per_second: float | None = None
    cut_after: int | None = None  # end each file body after this many bytes
    cut_times: int = 0  # … this many times (0 = always while cut_after is set)
    ignore_range: bool = False
    rate_limit: int = 0  # answer this many requests with 429 first
    rate_limit_files: int = 0  # … or this many file downloads
    retry_after: str = "0"
    corrupt: set[str] = field(default_factory=set)  # paths served with wrong bytes
    extra_bytes: dict[str, int] = field(default_factory=dict)  # path → bytes sent past its end
    omit_length: bool = False  # no Content-Length: bodies end when the connection closes
    required_token: str | None = None  # private/gated repos need it
    search_delay: float = 0.0  # seconds before answering a search
    # Requests accepted and never answered: "metadata" (/api/models/…), "search"
    # (/api/models) or "body" (file bodies stall after ``stall_after`` bytes).
    stall: set[str] = field(default_factory=set)
    stall_after: int = 0
    # Hostile metadata in model info: "sha" replaces the commit, "lfs_sha256" / "lfs_size"
    # / "size" replace those fields of every LFS file listed.
    hostile: dict[str, Any] = field(default_factory=dict)


class HubServer:
    """The fake Hub; ``url`` is its ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.knobs = Knobs()
        self.requests: list[tuple[str, str, str | None]] = []
        self.file_gets: Counter[str] = Counter()
        self.bytes_sent: Counter[str] = Counter()
        self.leaked_authorization = False
        self._lock = threading.Lock()
        self.released = threading.Event()  # set at shutdown: stalled handlers then return
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_HEAD(self) -> None:
                server._handle(self, "HEAD")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # LFS files redirect to a "CDN" on another loopback host, as on the real Hub:
        # clients must follow it without sending the Hub's Authorization header there.
        self.cdn_httpd = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.cdn_httpd.daemon_threads = True
        self.cdn_url = f"http://127.0.0.2:{self.cdn_httpd.server_address[1]}"

    # ------------------------------------------------------------------ helpers

    def add_repo(self, repo_id: str, files: dict[str, bytes], **meta: Any) -> FakeRepo:
        """Create a repo whose ``main`` holds ``files``."""
        repo = FakeRepo(repo_id, **meta)
        repo.commit(files)
        self.repos[repo_id] = repo
        return repo

    def add_folder(self, repo_id: str, folder: Path, **meta: Any) -> FakeRepo:
        """Create a repo from the files of a folder (e.g. a real model's)."""
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        return self.add_repo(repo_id, files, **meta)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.file_gets.clear()
            self.bytes_sent.clear()

    # ------------------------------------------------------------------ protocol

    def _send_json(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(data)

    def _error(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        status: int,
        code: str | None,
        message: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = {"X-Error-Message": message, **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send_json(h, method, status, {"error": message}, headers)

    def _authorized(self, h: BaseHTTPRequestHandler) -> bool:
        token = self.knobs.required_token
        return token is not None and h.headers.get("Authorization") == f"Bearer {token}"

    def _repo_or_error(
        self, h: BaseHTTPRequestHandler, method: str, repo_id: str
    ) -> FakeRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized(h)):
            self._error(
                h,
                method,
                401 if repo is None or repo.private else 404,
                "RepoNotFound",
                "Repository not found",
            )
            return None
        return repo

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path.startswith("/_debug/"):
            self._debug(h, method, path, query)
            return
        with self._lock:
            self.requests.append((method, path, h.headers.get("Range")))
            if path.startswith("/cdn-lfs/") and h.headers.get("Authorization"):
                self.leaked_authorization = True
            limited = False
            if self.knobs.rate_limit > 0:
                self.knobs.rate_limit -= 1
                limited = True
            elif (
                self.knobs.rate_limit_files > 0
                and method == "GET"
                and ("/resolve/" in path or path.startswith("/cdn-lfs/"))
            ):
                self.knobs.rate_limit_files -= 1
                limited = True
        if limited:
            self._error(
                h, method, 429, None, "Too many requests", {"Retry-After": self.knobs.retry_after}
            )
            return
        stalled = (path == "/api/models" and "search" in self.knobs.stall) or (
            path.startswith("/api/models/") and "metadata" in self.knobs.stall
        )
        if stalled:
            self.released.wait(120)
            return
        try:
            if path == "/api/models":
                self._search(h, method, query)
            elif path.startswith("/api/models/"):
                self._api_model(h, method, path[len("/api/models/") :], query)
            elif path.startswith("/cdn-lfs/"):
                self._cdn(h, method, path[len("/cdn-lfs/") :])
            elif "/resolve/" in path:
                self._resolve(h, method, path.lstrip("/"))
            else:
                self._error(h, method, 404, None, "Not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _debug(
        self, h: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, list[str]]
    ) -> None:
        """Control and counters for benchmarks that run this server in another process."""
        if path == "/_debug/knobs":
            for key, values in query.items():
                value: Any = values[0]
                current = getattr(self.knobs, key)
                if value == "none":
                    value = None
                elif isinstance(current, int) or key in ("bytes_per_second", "cut_after"):
                    value = float(value) if key == "bytes_per_second" else int(value)
                setattr(self.knobs, key, value)
        elif path == "/_debug/reset":
            self.reset_counts()
        with self._lock:
            body = {
                "requests": len(self.requests),
                "file_gets": dict(self.file_gets),
                "bytes_sent": dict(self.bytes_sent),
            }
        self._send_json(h, method, 200, body)

    def _info(self, repo: FakeRepo, commit: str, *, blobs: bool) -> dict[str, Any]:
        files = repo.commits[commit]
        siblings = []
        for name in [*sorted(files), *repo.extra_listing]:
            data = files.get(name, b"")
            sibling: dict[str, Any] = {"rfilename": name}
            if blobs:
                sibling["size"] = len(data)
                sibling["blobId"] = git_blob_id(data)
                if is_lfs(name, data):
                    sibling["lfs"] = {
                        "sha256": sha256_hex(data),
                        "size": len(data),
                        "pointerSize": 134,
                    }
            if "lfs" in sibling and "lfs_sha256" in self.knobs.hostile:
                sibling["lfs"]["sha256"] = self.knobs.hostile["lfs_sha256"]
            if "lfs" in sibling and "lfs_size" in self.knobs.hostile:
                sibling["lfs"]["size"] = self.knobs.hostile["lfs_size"]
            if "lfs" in sibling and "size" in self.knobs.hostile:
                sibling["size"] = self.knobs.hostile["size"]
            siblings.append(sibling)
        if "sha" in self.knobs.hostile:
            commit = self.knobs.hostile["sha"]
        return {
            "_id": repo.id,
            "id": repo.id,
            "modelId": repo.id,
            "sha": commit,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": repo.downloads,
            "likes": repo.likes,
            "library_name": repo.library_name,
            "tags": repo.tags,
            "pipeline_tag": repo.pipeline_tag,
            "lastModified": "2026-11-01T00:00:00.000Z",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "cardData": {"license": "apache-2.0"},
            "siblings": siblings,
        }

    def _search(self, h: BaseHTTPRequestHandler, method: str, query: dict[str, list[str]]) -> None:
        if self.knobs.search_delay:
            time.sleep(self.knobs.search_delay)
        text = (query.get("search") or [""])[0].lower()
        task = (query.get("pipeline_tag") or [None])[0]
        library = (query.get("library") or [None])[0]
        author = (query.get("author") or [None])[0]
        limit = int((query.get("limit") or ["1000"])[0])
        sort = (query.get("sort") or ["downloads"])[0]
        found = [
            r
            for r in self.repos.values()
            if not r.private
            and text in r.id.lower()
            and (author is None or r.id.split("/")[0] == author)
            and (task is None or r.pipeline_tag == task)
            and (library is None or r.library_name == library)
        ]
        key = "likes" if sort == "likes" else "downloads"
        found.sort(key=lambda r: -getattr(r, key))
        self._send_json(
            h,
            method,
            200,
            [
                {
                    k: v
                    for k, v in self._info(r, r.refs["main"], blobs=False).items()
                    if k != "siblings"
                }
                for r in found[:limit]
            ],
        )

    def _api_model(
        self, h: BaseHTTPRequestHandler, method: str, rest: str, query: dict[str, list[str]]
    ) -> None:
        if "/revision/" in rest:
            repo_id, revision = rest.split("/revision/", 1)
            kind = "info"
        elif "/tree/" in rest:
            repo_id, tail = rest.split("/tree/", 1)
            revision = tail.split("/", 1)[0]
            kind = "tree"
        else:
            repo_id, revision, kind = rest, "main", "info"
        repo = self._repo_or_error(h, method, repo_id)
        if repo is None:
            return
        if repo.gated and not self._authorized(h):
            self._error(h, method, 403, "GatedRepo", "Access to this model is restricted")
            return
        commit = repo.resolve(revision)
        if commit is None:
            self._error(h, method, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if kind == "tree":
            entries = []
            for name, data in sorted(repo.commits[commit].items()):
                entry: dict[str, Any] = {
                    "type": "file",
                    "oid": git_blob_id(data),
                    "size": len(data),
                    "path": name,
                }
                if is_lfs(name, data):
                    entry["lfs"] = {
                        "oid": sha256_hex(data),
                        "size": len(data),
                        "pointerSize": 134,
                    }
                entries.append(entry)
            self._send_json(h, method, 200, entries)
            return
        blobs = (query.get("blobs") or ["false"])[0].lower() == "true"
        self._send_json(h, method, 200, self._info(repo, commit, blobs=blobs))

    def _resolve(self, h: BaseHTTPRequestHandler, method: str, path: str) -> None:
        head, file_path = path.split("/resolve/", 1)
        revision, _, name = file_path.partition("/")
        repo = self._repo_or_error(h, method, head)
        if repo is None:
            return
        if repo.gated and not self._authorized(h):
            self._error(h, method, 403, "GatedRepo", "Access to this model is restricted")
            return
        commit = repo.resolve(revision)
        if commit is None:
            self._error(h, method, 404, "RevisionNotFound", "Invalid rev id")
            return
        files = repo.commits[commit]
        if name not in files:
            self._error(h, method, 404, "EntryNotFound", "Entry not found")
            return
        data = files[name]
        common = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if is_lfs(name, data):
            sha = sha256_hex(data)
            h.send_response(302)
            for k, v in {
                **common,
                "Location": f"{self.cdn_url}/cdn-lfs/{sha}",
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_id(data)}"',
                "Content-Length": "0",
            }.items():
                h.send_header(k, v)
            h.end_headers()
            return
        self._serve_bytes(h, method, name, data, {**common, "ETag": f'"{git_blob_id(data)}"'})

    def _cdn(self, h: BaseHTTPRequestHandler, method: str, sha: str) -> None:
        for repo in self.repos.values():
            for files in repo.commits.values():
                for name, data in files.items():
                    if sha256_hex(data) == sha:
                        self._serve_bytes(h, method, name, data, {"ETag": f'"{sha}"'})
                        return
        self._error(h, method, 404, None, "Not found")

    def _serve_bytes(
        self,
        h: BaseHTTPRequestHandler,
        method: str,
        name: str,
        data: bytes,
        headers: dict[str, str],
    ) -> None:
        if name in self.knobs.corrupt:
            data = bytes(b ^ 0xFF for b in data[:16]) + data[16:]
        start = 0
        status = 200
        range_header = h.headers.get("Range")
        if range_header and not self.knobs.ignore_range and range_header.startswith("bytes="):
            start = int(range_header[6:].split("-", 1)[0] or 0)
            if start >= len(data) and data:
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        # Bytes past the listed size, announced in Content-Length like a real (wrong) body.
        body = data[start:] + b"\0" * self.knobs.extra_bytes.get(name, 0)
        if method != "HEAD":
            # Counted before the headers go out: a client may hang up as soon as it reads them.
            with self._lock:
                self.file_gets[name] += 1
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if self.knobs.omit_length:
            h.close_connection = True
        else:
            h.send_header("Content-Length", str(len(body)))
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if method == "HEAD":
            return
        limit = len(body)
        # Only a body longer than stall_after stalls midway: a shorter one is sent whole and
        # ends normally, so its keep-alive connection is not left hanging for the next file.
        stall = "body" in self.knobs.stall and self.knobs.stall_after < len(body)
        if stall:
            limit = min(limit, self.knobs.stall_after)
        with self._lock:
            if self.knobs.cut_after is not None and self.knobs.cut_after < len(body):
                limit = self.knobs.cut_after
                if self.knobs.cut_times:
                    self.knobs.cut_times -= 1
                    if self.knobs.cut_times == 0:
                        self.knobs.cut_after = None
        sent = 0
        chunk = 64 * 1024
        while sent < limit:
            piece = body[sent : min(limit, sent + chunk)]
            h.wfile.write(piece)
            sent += len(piece)
            with self._lock:
                self.bytes_sent[name] += len(piece)
            if self.knobs.bytes_per_second:
                time.sleep(len(piece) / self.knobs.bytes_per_second)
        if stall:
            h.wfile.flush()
            self.released.wait(120)
            return
        if limit < len(body):
            h.close_connection = True
            h.wfile.flush()
            with suppress(OSError):
                h.connection.shutdown(1)


@contextmanager
def serve_hub() -> Iterator[HubServer]:
    """Run a HubServer for the duration of the block."""
    server = HubServer()
    for httpd in (server.httpd, server.cdn_httpd):
        threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.released.set()
        for httpd in (server.httpd, server.cdn_httpd):
            httpd.shutdown()
            httpd.server_close()


if __name__ == "__main__":
    # python tests/hf_server.py REPO_ID FOLDER: serve one folder as a repo until killed.
    import sys

    hub = HubServer()
    hub.add_folder(sys.argv[1], Path(sys.argv[2]))
    threading.Thread(target=hub.cdn_httpd.serve_forever, args=(0.05,), daemon=True).start()
    print(hub.url, flush=True)
    hub.httpd.serve_forever(0.05)
