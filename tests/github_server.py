"""A loopback server speaking the parts of GitHub's protocol PyTorch Hub uses.

- ``GET /api/repos/OWNER/REPO`` → repository metadata (``default_branch``)
- ``GET /api/repos/OWNER/REPO/commits/REF`` → ``{"sha": …}`` (404 for an unknown ref)
- ``GET /api/search/repositories?q=…`` → ``{"items": [...]}``
- ``GET /OWNER/REPO/zipball/REF`` → 302 to ``/codeload/OWNER/REPO/legacy.zip/SHA``, a zip
  whose single top folder is ``OWNER-REPO-SHORTSHA`` (as GitHub builds them)
- ``GET /OWNER/REPO/raw/SHA/PATH`` → one file

Knobs: ``tamper`` (serve another commit's archive), ``hostile`` (an archive member that
escapes), ``token`` (require ``Authorization: Bearer TOKEN``), ``rate_limited``.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Repo:
    """A repository with one commit per branch name."""

    owner: str
    name: str
    branches: dict[str, dict[str, str]] = field(default_factory=dict)
    description: str = ""
    stars: int = 0

    def sha(self, branch: str) -> str:
        files = self.branches[branch]
        blob = json.dumps(files, sort_keys=True).encode() + branch.encode()
        return hashlib.sha1(blob).hexdigest()


class GitHubServer:
    """Serves repositories on 127.0.0.1 and records every request."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[str] = []
        self.auth_headers: list[str | None] = []
        self.tamper = False
        self.hostile = False
        self.token: str | None = None
        self.rate_limited = False
        # Requests accepted and never answered: "api" (every /api/ request) or "archive"
        # (a zip archive's body stalls after half of it).
        self.stall: set[str] = set()
        self.released = threading.Event()  # set at shutdown: stalled handlers then return
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.auth_headers.append(self.headers.get("Authorization"))
                server.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, repo: Repo) -> Repo:
        """Publish a repository."""
        self.repos[f"{repo.owner}/{repo.name}"] = repo
        return repo

    def _commit(self, repo: Repo, ref: str) -> tuple[str, dict[str, str]] | None:
        for branch, files in repo.branches.items():
            sha = repo.sha(branch)
            if ref in (branch, sha):
                return sha, files
        return None

    def _archive(self, repo: Repo, sha: str, files: dict[str, str]) -> bytes:
        top = f"{repo.owner}-{repo.name}-{sha[:7]}"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(f"{top}/", "")
            for path, text in files.items():
                zf.writestr(f"{top}/{path}", text)
            if self.hostile:
                zf.writestr(f"{top}/../../escaped.py", "print('escaped')")
        return buffer.getvalue()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        if parts[0] == "api" and "api" in self.stall:
            self.released.wait(120)
            return None
        if self.rate_limited:
            return self._send(h, 403, {"message": "API rate limit exceeded"}, ratelimit=True)
        if self.token and h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 404, {"message": "Not Found"})
        if parts[:2] == ["api", "search"]:
            query = urllib.parse.parse_qs(url.query).get("q", [""])[0].lower()
            words = [w for w in query.split() if ":" not in w]
            items = [
                {
                    "full_name": key,
                    "default_branch": next(iter(r.branches)),
                    "stargazers_count": r.stars,
                    "description": r.description,
                    "license": {"spdx_id": "BSD-3-Clause"},
                }
                for key, r in self.repos.items()
                if all(w in (key + " " + r.description).lower() for w in words)
            ]
            items.sort(key=lambda i: -int(str(i["stargazers_count"])))
            return self._send(h, 200, {"total_count": len(items), "items": items})
        if parts[0] == "api" and parts[1] == "repos" and len(parts) >= 4:
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._send(h, 404, {"message": "Not Found"})
            if len(parts) == 4:
                return self._send(
                    h,
                    200,
                    {"full_name": f"{repo.owner}/{repo.name}", "default_branch": "main"},
                )
            if parts[4] == "commits" and len(parts) >= 6:
                found = self._commit(repo, "/".join(parts[5:]))
                if found is None:
                    return self._send(h, 422, {"message": "No commit found for SHA"})
                return self._send(h, 200, {"sha": found[0]})
        if len(parts) >= 4 and parts[2] == "zipball":
            return self._redirect(h, f"/codeload/{parts[0]}/{parts[1]}/legacy.zip/{parts[3]}")
        if parts[0] == "codeload" and len(parts) == 5:
            repo = self.repos.get(f"{parts[1]}/{parts[2]}")
            found = self._commit(repo, parts[4]) if repo else None
            if repo is None or found is None:
                return self._send(h, 404, {"message": "Not Found"})
            sha, files = found
            if self.tamper:
                other = next(b for b in repo.branches if repo.sha(b) != sha)
                sha, files = repo.sha(other), repo.branches[other]
            data = self._archive(repo, sha, files)
            if "archive" in self.stall:
                h.send_response(200)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                self.released.wait(120)
                return None
            return self._bytes(h, data, "application/zip")
        if len(parts) >= 5 and parts[2] == "raw":
            repo = self.repos.get(f"{parts[0]}/{parts[1]}")
            found = self._commit(repo, parts[3]) if repo else None
            path = "/".join(parts[4:])
            if found is None or path not in found[1]:
                return self._send(h, 404, {"message": "Not Found"})
            return self._bytes(h, found[1][path].encode(), "text/plain")
        return self._send(h, 404, {"message": "Not Found"})

    @staticmethod
    def _send(
        h: BaseHTTPRequestHandler, status: int, body: object, *, ratelimit: bool = False
    ) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if ratelimit:
            h.send_header("x-ratelimit-remaining", "0")
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _bytes(h: BaseHTTPRequestHandler, data: bytes, kind: str) -> None:
        h.send_response(200)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _redirect(h: BaseHTTPRequestHandler, location: str) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()


@contextmanager
def serve_github() -> Iterator[GitHubServer]:
    """Run a GitHubServer for the duration of the block."""
    server = GitHubServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.httpd.shutdown()
        server.httpd.server_close()
