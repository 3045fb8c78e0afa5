"""A loopback server speaking Kaggle Models' API as kagglehub calls it, and tfhub.dev's
compressed-model format.

- ``POST /api/v1/models.ModelApiService/GetModelInstance`` → ``{"versionNumber": …}``
- ``POST /api/v1/models.ModelApiService/ListModelInstanceVersionFiles`` → ``{"files": […]}``
- ``POST /api/v1/models.ModelApiService/DownloadModelInstanceVersion`` → 302 to
  ``/storage/…``, which serves the file with an ``x-goog-hash: md5=…`` header (as GCS does)
- ``POST /api/v1/models.ModelApiService/ListModels`` → ``{"models": […]}``
- ``GET /HANDLE/VERSION?tf-hub-format=compressed`` → the model folder as a tar.gz

Knobs: ``tamper`` (wrong bytes for the published MD5), ``require_auth`` (HTTP 401 without
Basic credentials), ``delay`` (seconds before every answer).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class KaggleModel:
    """One model instance with numbered versions, each a folder of files."""

    owner: str
    slug: str
    framework: str  # the enum name, e.g. MODEL_FRAMEWORK_TENSOR_FLOW_2
    instance: str
    versions: dict[int, dict[str, bytes]]
    title: str = ""
    tags: tuple[str, ...] = ()

    @staticmethod
    def from_folder(folder: Path) -> dict[str, bytes]:
        """Every file under a folder, by relative path."""
        return {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }


class KaggleServer:
    """Serves Kaggle models and old tfhub.dev handles on 127.0.0.1."""

    def __init__(self) -> None:
        self.models: list[KaggleModel] = []
        self.legacy: dict[str, dict[str, bytes]] = {}
        self.requests: list[str] = []
        self.tamper = False
        self.require_auth = False
        self.delay = 0.0
        self.stall = False  # API calls are accepted and never answered
        self.released = threading.Event()  # set at shutdown: stalled handlers then return
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(self.path)
                server.rpc(self, body)

            def do_GET(self) -> None:
                server.requests.append(self.path)
                server.get(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _find(self, body: dict[str, object]) -> KaggleModel | None:
        for m in self.models:
            framework = str(body.get("framework", ""))
            if (
                m.owner == body.get("ownerSlug")
                and m.slug == body.get("modelSlug")
                and m.instance == body.get("instanceSlug")
                and framework == m.framework
            ):
                return m
        return None

    def rpc(self, h: BaseHTTPRequestHandler, body: dict[str, object]) -> None:
        time.sleep(self.delay)
        if self.stall:
            self.released.wait(120)
            return None
        method = h.path.rsplit("/", 1)[-1]
        if self.require_auth and not (h.headers.get("Authorization") or "").startswith("Basic "):
            return self._json(h, 401, {"code": 401, "message": "Unauthenticated"})
        if method == "ListModels":
            search = str(body.get("search") or "").lower()
            found = [
                {
                    "ref": f"{m.owner}/{m.slug}",
                    "title": m.title or m.slug,
                    "subtitle": m.title,
                    "author": m.owner,
                    "slug": m.slug,
                    "voteCount": 7,
                    "tags": [{"name": t} for t in m.tags],
                    "instances": [
                        {
                            "slug": m.instance,
                            "framework": m.framework,
                            "versionNumber": max(m.versions),
                            "licenseName": "Apache 2.0",
                        }
                    ],
                }
                for m in self.models
                if search in f"{m.owner}/{m.slug} {m.title}".lower()
            ]
            return self._json(h, 200, {"models": found, "nextPageToken": ""})
        model = self._find(body)
        if model is None:
            return self._json(h, 404, {"code": 404, "message": "Model instance not found"})
        if method == "GetModelInstance":
            return self._json(
                h,
                200,
                {
                    "slug": model.instance,
                    "framework": model.framework,
                    "versionNumber": max(model.versions),
                },
            )
        version = int(str(body.get("versionNumber") or 0))
        if version not in model.versions:
            return self._json(h, 404, {"code": 404, "message": "Version not found"})
        files = model.versions[version]
        if method == "ListModelInstanceVersionFiles":
            return self._json(
                h,
                200,
                {
                    "files": [{"name": n, "size": len(b)} for n, b in files.items()],
                    "nextPageToken": "",
                },
            )
        if method == "DownloadModelInstanceVersion":
            path = str(body.get("path") or "")
            if path not in files:
                return self._json(h, 404, {"code": 404, "message": "File not found"})
            location = "/storage/" + urllib.parse.quote(
                f"{model.owner}/{model.slug}/{model.instance}/{version}/{path}"
            )
            h.send_response(302)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        return self._json(h, 404, {"code": 404, "message": f"unknown method {method}"})

    def get(self, h: BaseHTTPRequestHandler) -> None:
        time.sleep(self.delay)
        url = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(url.path)
        if path.startswith("/storage/"):
            owner, slug, instance, version, file = path.removeprefix("/storage/").split("/", 4)
            model = next(
                m for m in self.models if (m.owner, m.slug, m.instance) == (owner, slug, instance)
            )
            data = model.versions[int(version)][file]
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
            if self.tamper:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("x-goog-hash", f"crc32c=AAAAAA==,md5={md5}")
            h.end_headers()
            h.wfile.write(data)
            return
        handle = path.strip("/")
        if "tf-hub-format=compressed" in url.query and handle in self.legacy:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
                for name, data in self.legacy[handle].items():
                    info = tarfile.TarInfo(f"./{name}")
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
            blob = buffer.getvalue()
            h.send_response(200)
            h.send_header("Content-Type", "application/x-tar")
            h.send_header("Content-Length", str(len(blob)))
            h.end_headers()
            h.wfile.write(blob)
            return
        self._json(h, 404, {"code": 404, "message": "Not found"})

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


@contextmanager
def serve_kaggle() -> Iterator[KaggleServer]:
    """Run a KaggleServer for the duration of the block."""
    server = KaggleServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.httpd.shutdown()
        server.httpd.server_close()
