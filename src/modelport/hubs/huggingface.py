"""The Hugging Face Hub: metadata from its HTTP API, files into the store.

Honours ``HF_ENDPOINT``, ``HF_TOKEN`` (else the token ``hf auth login`` saved) and
``HF_HUB_OFFLINE`` (read when used, not at import). The Hub's HTTP API (``/api/models``)
is spoken directly with httpx, the client the downloads use anyway, so a pull does not
import ``huggingface_hub``. Files are fetched over plain HTTP from
``/{repo}/resolve/{commit}/{path}`` by the store's resumable downloader, so Xet is never
required.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from modelport.errors import (
    HubAccessError,
    HubMetadataError,
    HubTimeoutError,
    HubUnavailableError,
    IntegrityError,
    InvalidReferenceError,
    ModelNotFoundError,
    OfflineError,
    RateLimitedError,
    RevisionNotFoundError,
)
from modelport.hubs.base import (
    REPO_ID_RE,
    Fetched,
    Hub,
    HubFile,
    HubModel,
    ProgressCallback,
    PullEvent,
    PullOptions,
    PullTarget,
    Ref,
    offline_mode,
)

if TYPE_CHECKING:
    from modelport.store.store import ManifestFile, Store

__all__ = ["HuggingFaceHub", "is_commit"]

DEFAULT_ENDPOINT = "https://huggingface.co"
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: No single file on the Hub is anywhere near a petabyte.
_MAX_FILE_SIZE = 10**15


def _bad(field: str, value: object, what: str) -> HubMetadataError:
    return HubMetadataError(
        hub="hf", hub_title="The Hugging Face Hub", field=field, value=value, what=what
    )


def _checked_size(field: str, value: object) -> int | None:
    """A file size from the Hub's metadata, or ``HubMetadataError`` naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_FILE_SIZE:
        raise _bad(field, value, "a whole number of bytes from 0 to 10**15")
    return value


def _checked_digest(field: str, value: object, pattern: re.Pattern[str], what: str) -> str | None:
    """A hex digest from the Hub's metadata, or ``HubMetadataError`` naming the field."""
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _bad(field, value, what)
    return value


_HOSTS = ("huggingface.co", "hf.co", "www.huggingface.co")


def is_commit(revision: str) -> bool:
    """Whether a revision is a full git commit hash."""
    return _COMMIT_RE.fullmatch(revision) is not None


class HuggingFaceHub(Hub):
    """The Hugging Face Hub (``hf:org/name``)."""

    name = "hf"
    default_revision = "main"
    mirrored_by_name = True
    pull_options = frozenset({"include", "exclude", "allow_pickle"})

    def __init__(self, *, endpoint: str | None = None, token: str | None = None) -> None:
        self._endpoint = endpoint
        self._token = token
        self._client: Any = None
        self._client_lock = threading.Lock()

    # ---------------------------------------------------------------- settings

    @property
    def endpoint(self) -> str:
        """The Hub's base URL (``HF_ENDPOINT``)."""
        return (self._endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    @property
    def token(self) -> str | None:
        """The access token (``HF_TOKEN``, else the one saved by ``hf auth login``)."""
        if self._token:
            return self._token
        if os.environ.get("HF_TOKEN"):
            return os.environ["HF_TOKEN"]
        return _saved_token()

    @property
    def offline(self) -> bool:
        """Whether ``MODELPORT_OFFLINE`` or ``HF_HUB_OFFLINE`` forbids network access."""
        return offline_mode()

    def _offline_guard(self, what: str) -> None:
        if self.offline:
            raise OfflineError(
                f"Cannot {what}: offline mode is on.",
                hint="Unset MODELPORT_OFFLINE and HF_HUB_OFFLINE to reach the Hub.",
            )

    def _http(self) -> Any:
        """The one HTTP client of this hub: metadata and downloads share its connections.

        Its connections (and TLS context) are made once per hub, on first use.
        """
        with self._client_lock:
            if self._client is None:
                from modelport.settings import get_settings
                from modelport.store.download import http_client

                self._client = http_client(timeout=get_settings().http_timeout)
            return self._client

    def close(self) -> None:
        """Close the HTTP client's connections."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _get_json(
        self, path: str, params: dict[str, Any], *, ref: str, revision: str | None
    ) -> Any:
        """GET one API document; every failure becomes one modelport error."""
        import httpx

        try:
            response = self._http().get(
                f"{self.endpoint}{path}", params=params, headers=self._headers()
            )
        except httpx.TimeoutException:
            from modelport.settings import get_settings

            raise HubTimeoutError(
                f"The Hugging Face Hub at {self.endpoint} did not answer {path}",
                hub="hf",
                seconds=get_settings().http_timeout,
            ) from None
        except httpx.HTTPError as e:
            raise HubUnavailableError(
                f"Cannot reach the Hugging Face Hub at {self.endpoint}: {type(e).__name__}.",
                hub="hf",
            ) from None
        if response.status_code >= 400:
            self._refuse(response, ref, revision)
        try:
            return response.json()
        except ValueError:
            raise HubUnavailableError(
                f"The Hugging Face Hub answered {path} with something that is not JSON.", hub="hf"
            ) from None

    # ---------------------------------------------------------------- names

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """A repo id: ``org/name`` or ``name``, parts of at most 96 characters."""
        if not REPO_ID_RE.fullmatch(name) or ".." in name or "--" in name:
            raise InvalidReferenceError(
                text,
                f"{name!r} is not a Hugging Face repo id",
                hint="Use org/name or name, e.g. hf:sentence-transformers/all-MiniLM-L6-v2.",
            )
        if any(len(part) > 96 for part in name.split("/")):
            raise InvalidReferenceError(text, "a part of the repo id is over 96 characters")

    def from_address(self, host: str, path: str) -> Ref | None:
        """``huggingface.co/org/name[/tree/REV/…]``."""
        if host not in _HOSTS:
            return None
        segments = path.split("/")
        revision = None
        if len(segments) >= 4 and segments[2] in ("tree", "blob", "resolve"):
            revision = segments[3]
        return Ref(name="/".join(segments[:2]), registry="hf", revision=revision)

    def pinned(self, name: str, revision: str | None) -> str | None:
        """A full commit hash is one fixed revision."""
        return revision if revision and is_commit(revision) else None

    # ---------------------------------------------------------------- errors

    def _refuse(self, response: Any, ref: str, revision: str | None = None) -> NoReturn:
        """Turn an error answer of the Hub into one clear modelport error."""
        status = response.status_code
        code = response.headers.get("X-Error-Code")
        if status == 429:
            retry = response.headers.get("Retry-After")
            try:
                after = float(retry) if retry is not None else None
            except ValueError:
                after = None
            raise RateLimitedError(hub="The Hugging Face Hub", retry_after=after)
        if code == "RevisionNotFound":
            raise RevisionNotFoundError(ref, revision or "main")
        if code == "GatedRepo":
            raise HubAccessError(
                f"{ref} is gated: accept its conditions on the Hub first.",
                ref=ref,
                hint="Then set HF_TOKEN to a token of that account.",
            )
        if code == "RepoNotFound" or status == 404:
            if self.token:
                raise ModelNotFoundError(
                    ref,
                    message=f"{ref} does not exist on the Hub, or your token cannot see it.",
                    hint="Check the name, and that HF_TOKEN has access if it is private.",
                )
            raise ModelNotFoundError(
                ref,
                message=f"{ref} does not exist on the Hub, or it is private.",
                hint="Check the name; for a private repo set HF_TOKEN.",
            )
        if status in (401, 403):
            raise HubAccessError(
                f"The Hub refused access to {ref} (HTTP {status}).",
                ref=ref,
                hint="Check HF_TOKEN: it may be wrong, expired or lack access.",
            )
        if status >= 500:
            raise HubUnavailableError(f"The Hugging Face Hub answered HTTP {status}.", hub="hf")
        raise HubUnavailableError(
            f"The Hugging Face Hub answered HTTP {status} for {ref}.", hub="hf"
        )

    # ---------------------------------------------------------------- metadata

    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
        author: str | None = None,
    ) -> list[HubModel]:
        """Models on the Hub matching ``query`` (of one ``author`` or organisation if given)."""
        self._offline_guard("search the Hub")
        sort_key = {
            "downloads": "downloads",
            "likes": "likes",
            "updated": "lastModified",
            "recent": "createdAt",
            "trending": "trendingScore",
        }.get(sort or "downloads", "downloads")
        params: dict[str, Any] = {"limit": limit, "sort": sort_key, "direction": -1}
        if query:
            params["search"] = query
        if task:
            params["pipeline_tag"] = task
        if library:
            params["library"] = library
        if author:
            params["author"] = author
        found = self._get_json("/api/models", params, ref=f"search {query!r}", revision=None)
        return [
            self._model(info, revision=str(info.get("sha") or ""))
            for info in (found if isinstance(found, list) else [])
            if isinstance(info, dict) and "id" in info
        ]

    def _model(self, info: dict[str, Any], *, revision: str) -> HubModel:
        """A model as the Hub's API document describes it."""
        files = []
        for sibling in info.get("siblings") or []:
            lfs = sibling.get("lfs")
            size = _checked_size("size", sibling.get("size"))
            if isinstance(lfs, dict):
                lfs_size = _checked_size("lfs.size", lfs.get("size"))
                digest = _checked_digest(
                    "lfs.sha256", lfs.get("sha256"), _SHA256_RE, "64 lowercase hex digits"
                )
                files.append(
                    HubFile(sibling["rfilename"], lfs_size or size, digest, "sha256", True)
                )
            else:
                blob = _checked_digest(
                    "blobId", sibling.get("blobId"), _COMMIT_RE, "40 lowercase hex digits"
                )
                files.append(
                    HubFile(
                        sibling["rfilename"],
                        size,
                        blob,
                        "git-sha1" if blob else None,
                    )
                )
        card = info.get("cardData")
        license_ = card.get("license") if isinstance(card, dict) else None
        tags = tuple(str(t) for t in info.get("tags") or ())
        if license_ is None:
            license_ = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
        return HubModel(
            hub="hf",
            id=str(info["id"]),
            revision=revision,
            files=tuple(files),
            task=info.get("pipeline_tag"),
            library=info.get("library_name"),
            tags=tags,
            license=str(license_) if license_ else None,
            downloads=info.get("downloads"),
            likes=info.get("likes"),
            gated=bool(info.get("gated", False)),
            private=bool(info.get("private", False)),
            last_modified=str(info.get("lastModified") or "") or None,
        )

    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The model at ``ref`` with its files, sizes and digests; revision resolved."""
        self._offline_guard(f"look up {ref.name}")
        from urllib.parse import quote

        revision = ref.revision or "main"
        path = f"/api/models/{ref.name}/revision/{quote(revision, safe='')}"
        for attempt in range(3):
            try:
                info = self._get_json(path, {"blobs": "true"}, ref=ref.name, revision=revision)
                break
            except RateLimitedError as limited:
                # A short Retry-After is worth waiting for; a long one is the user's call.
                wait = limited.retry_after
                if attempt == 2 or wait is None or wait > 10:
                    raise
                time.sleep(wait)
        if not isinstance(info, dict) or not info.get("sha"):
            raise HubUnavailableError(
                f"The Hub did not say which commit {ref.name}@{revision} is.", hub="hf"
            )
        commit = _checked_digest("sha", info["sha"], _COMMIT_RE, "40 lowercase hex digits")
        return self._model(info, revision=str(commit))

    # ---------------------------------------------------------------- pulling

    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """The commit a branch or tag is now, and the files a pull of it keeps."""
        from modelport.hubs.files import choose_files

        repo = ref.name
        requested = options.revision or ref.revision or "main"
        label = f"hf:{repo}@{requested}"
        model = self.described(options, repo) or self.info(Ref(repo, "hf", requested))
        choice = choose_files(
            model.files,
            ref=label,
            include=options.include,
            exclude=options.exclude,
            allow_pickle=options.allow_pickle,
        )
        return PullTarget(
            name=repo,
            revision=model.revision,
            ref=label,
            requested=requested,
            refs=() if is_commit(requested) else (requested,),
            model=model,
            files=choice.files,
        )

    def fetch(
        self, target: PullTarget, *, store: Store, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """The chosen files, straight into the store's blobs."""
        files = target.files if target.files is not None else ()
        entries, downloaded = self.download_files(
            target.name, target.revision, files, emit, store=store
        )
        return Fetched(tuple(entries), downloaded)

    def download_files(
        self,
        repo: str,
        commit: str,
        files: Sequence[HubFile],
        emit: ProgressCallback,
        *,
        store: Store,
    ) -> tuple[list[ManifestFile], int]:
        """Fetch every file (eight at a time, largest first) into the store's blobs."""
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        import httpx

        from modelport.store.download import BlobRequest, download_blob
        from modelport.store.store import ManifestFile

        headers = self._headers()
        emit_lock = threading.Lock()

        def say(event: PullEvent) -> None:
            with emit_lock:
                emit(event)

        def fetch(client: httpx.Client, f: HubFile) -> tuple[ManifestFile, int]:
            kind: str | None = f.digest_kind
            digest, size = f.digest, f.size
            if kind is None or digest is None:
                kind, digest, size = self._head_digest(client, repo, commit, f.path, headers)
            tag = f"{kind}:{digest}"
            say(PullEvent("downloading", digest=tag, file=f.path, total=size, completed=0))

            def on_bytes(done: int, total: int | None) -> None:
                say(PullEvent("downloading", digest=tag, file=f.path, total=total, completed=done))

            sha256, got = download_blob(
                client,
                BlobRequest(
                    url=self.file_url(repo, f.path, commit),
                    digest_kind=kind,
                    digest=digest,
                    size=size,
                    label=f"{repo}/{f.path}",
                ),
                layout=store.layout,
                headers=headers,
                hub="The Hugging Face Hub",
                on_bytes=on_bytes,
            )
            blob_size = store.layout.blob(sha256).stat().st_size
            say(
                PullEvent(
                    "verifying sha256 digest",
                    digest=f"sha256:{sha256}",
                    file=f.path,
                    total=blob_size,
                    completed=blob_size,
                )
            )
            return ManifestFile(f.path, sha256, blob_size, kind, digest), got

        order = sorted(range(len(files)), key=lambda i: -(files[i].size or 0))
        results: dict[int, tuple[ManifestFile, int]] = {}
        client = self._http()
        pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(files))))
        try:
            futures = {pool.submit(fetch, client, files[i]): i for i in order}
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            for future, index in futures.items():
                results[index] = future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        entries = [results[i][0] for i in range(len(files))]
        return entries, sum(got for _, got in results.values())

    def file_url(self, repo: str, path: str, commit: str) -> str:
        """Where the Hub serves one file of a commit."""
        from urllib.parse import quote

        return f"{self.endpoint}/{repo}/resolve/{quote(commit, safe='')}/{quote(path)}"

    def _headers(self) -> dict[str, str]:
        """Headers for file downloads: who we are and, if set, the token."""
        from modelport import __version__

        headers = {"User-Agent": f"modelport/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _head_digest(
        self, client: Any, repo: str, commit: str, path: str, headers: dict[str, str]
    ) -> tuple[str, str, int | None]:
        url = self.file_url(repo, path, commit)
        response = client.head(
            url, headers={**headers, "Accept-Encoding": "identity"}, follow_redirects=False
        )
        etag = response.headers.get("X-Linked-Etag") or response.headers.get("ETag") or ""
        etag = etag.strip('"').removeprefix("W/").strip('"')
        size_text = response.headers.get("X-Linked-Size") or response.headers.get("Content-Length")
        size = int(size_text) if size_text and size_text.isdigit() else None
        if re.fullmatch(r"[0-9a-f]{64}", etag):
            return "sha256", etag, size
        if re.fullmatch(r"[0-9a-f]{40}", etag):
            return "git-sha1", etag, size
        raise IntegrityError(
            f"The Hub published no digest for {repo}/{path}; refusing to store it unverified."
        )


def _saved_token() -> str | None:
    """The token ``hf auth login`` saved (``HF_TOKEN_PATH``, else ``$HF_HOME/token``)."""
    from pathlib import Path

    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    path = os.environ.get("HF_TOKEN_PATH") or os.path.join(home, "token")
    try:
        token = Path(os.path.expanduser(os.path.expandvars(path))).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None
