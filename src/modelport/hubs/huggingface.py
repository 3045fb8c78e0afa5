"""The Hugging Face Hub: metadata through ``huggingface_hub``, files into the store.

Honours ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` (read when used, not at
import). Files are fetched over plain HTTP from ``/{repo}/resolve/{commit}/{path}`` by
the store's resumable downloader, so Xet is never required.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from modelport.errors import (
    HubAccessError,
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
_HOSTS = ("huggingface.co", "hf.co", "www.huggingface.co")


def is_commit(revision: str) -> bool:
    """Whether a revision is a full git commit hash."""
    return _COMMIT_RE.fullmatch(revision) is not None


class HuggingFaceHub(Hub):
    """The Hugging Face Hub (``hf:org/name``)."""

    name = "hf"
    title = "The Hugging Face Hub"
    default_revision = "main"
    pull_options = frozenset({"include", "exclude", "allow_pickle"})

    def __init__(self, *, endpoint: str | None = None, token: str | None = None) -> None:
        self._endpoint = endpoint
        self._token = token

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
        from huggingface_hub import get_token

        return get_token()

    @property
    def offline(self) -> bool:
        """Whether ``MODELPORT_OFFLINE`` or ``HF_HUB_OFFLINE`` forbids network access."""
        return offline_mode()

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token or False)

    def _offline_guard(self, what: str) -> None:
        if self.offline:
            raise OfflineError(
                f"Cannot {what}: offline mode is on.",
                hint="Unset MODELPORT_OFFLINE and HF_HUB_OFFLINE to reach the Hub.",
            )

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

    def _raise(self, error: Exception, ref: str, revision: str | None = None) -> NoReturn:
        """Turn a huggingface_hub or transport error into one clear modelport error."""
        from huggingface_hub import errors as hf_errors

        if isinstance(error, hf_errors.RevisionNotFoundError):
            raise RevisionNotFoundError(ref, revision or "main") from None
        if isinstance(error, hf_errors.GatedRepoError):
            raise HubAccessError(
                f"{ref} is gated: accept its conditions on the Hub first.",
                ref=ref,
                hint="Then set HF_TOKEN to a token of that account.",
            ) from None
        if isinstance(error, hf_errors.RepositoryNotFoundError):
            if self.token:
                raise ModelNotFoundError(
                    ref,
                    message=f"{ref} does not exist on the Hub, or your token cannot see it.",
                    hint="Check the name, and that HF_TOKEN has access if it is private.",
                ) from None
            raise ModelNotFoundError(
                ref,
                message=f"{ref} does not exist on the Hub, or it is private.",
                hint="Check the name; for a private repo set HF_TOKEN.",
            ) from None
        if isinstance(error, hf_errors.HfHubHTTPError):
            response = getattr(error, "response", None)
            status = getattr(response, "status_code", None)
            headers = getattr(response, "headers", {}) or {}
            if status == 429:
                retry = headers.get("Retry-After")
                try:
                    after = float(retry) if retry is not None else None
                except ValueError:
                    after = None
                raise RateLimitedError(hub="The Hugging Face Hub", retry_after=after) from None
            if status in (401, 403):
                raise HubAccessError(
                    f"The Hub refused access to {ref} (HTTP {status}).",
                    ref=ref,
                    hint="Check HF_TOKEN: it may be wrong, expired or lack access.",
                ) from None
            if status is not None and status >= 500:
                raise HubUnavailableError(
                    f"The Hugging Face Hub answered HTTP {status}.", hub="hf"
                ) from None
            raise HubUnavailableError(
                f"The Hugging Face Hub answered HTTP {status} for {ref}.", hub="hf"
            ) from None
        if isinstance(error, hf_errors.OfflineModeIsEnabled):
            raise OfflineError(f"Cannot reach the Hub for {ref}: offline mode is on.") from None
        name = type(error).__name__
        if (
            "Timeout" in name
            or "Connect" in name
            or "Network" in name
            or isinstance(error, OSError)
        ):
            raise HubUnavailableError(
                f"Cannot reach the Hugging Face Hub at {self.endpoint}: {name}.", hub="hf"
            ) from None
        raise error

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
            "updated": "last_modified",
            "recent": "created_at",
            "trending": "trending_score",
        }.get(sort or "downloads")
        kwargs: dict[str, Any] = {"search": query or None, "limit": limit, "sort": sort_key}
        if task:
            kwargs["pipeline_tag"] = task
        if library:
            kwargs["library"] = library
        if author:
            kwargs["author"] = author
        try:
            found = list(self._api().list_models(**kwargs))
        except Exception as e:  # translated in one place
            self._raise(e, f"search {query!r}")
        return [self._model(info, revision=getattr(info, "sha", None) or "") for info in found]

    def _model(self, info: Any, *, revision: str) -> HubModel:
        files = []
        for sibling in getattr(info, "siblings", None) or []:
            lfs = getattr(sibling, "lfs", None)
            if lfs is not None:
                sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
                size = lfs.get("size") if isinstance(lfs, dict) else getattr(lfs, "size", None)
                files.append(HubFile(sibling.rfilename, size or sibling.size, sha, "sha256", True))
            else:
                blob = getattr(sibling, "blob_id", None)
                files.append(
                    HubFile(sibling.rfilename, sibling.size, blob, "git-sha1" if blob else None)
                )
        card = getattr(info, "card_data", None) or getattr(info, "cardData", None)
        license_ = None
        if card is not None:
            license_ = (
                card.get("license") if isinstance(card, dict) else getattr(card, "license", None)
            )
        tags = tuple(getattr(info, "tags", None) or ())
        if license_ is None:
            license_ = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
        return HubModel(
            hub="hf",
            id=info.id,
            revision=revision,
            files=tuple(files),
            task=getattr(info, "pipeline_tag", None),
            library=getattr(info, "library_name", None),
            tags=tags,
            license=str(license_) if license_ else None,
            downloads=getattr(info, "downloads", None),
            likes=getattr(info, "likes", None),
            gated=bool(getattr(info, "gated", False)),
            private=bool(getattr(info, "private", False)),
            last_modified=str(getattr(info, "last_modified", "") or "") or None,
        )

    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The model at ``ref`` with its files, sizes and digests; revision resolved."""
        self._offline_guard(f"look up {ref.name}")
        revision = ref.revision or "main"
        for attempt in range(3):
            try:
                info = self._api().model_info(ref.name, revision=revision, files_metadata=True)
                break
            except Exception as e:  # translated in one place
                try:
                    self._raise(e, ref.name, revision)
                except RateLimitedError as limited:
                    # A short Retry-After is worth waiting for; a long one is the user's call.
                    wait = limited.retry_after
                    if attempt == 2 or wait is None or wait > 10:
                        raise
                    time.sleep(wait)
        if not getattr(info, "sha", None):
            raise HubUnavailableError(
                f"The Hub did not say which commit {ref.name}@{revision} is.", hub="hf"
            )
        return self._model(info, revision=info.sha)

    # ---------------------------------------------------------------- pulling

    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """The commit a branch or tag is now, and the files a pull of it keeps."""
        from modelport.hubs.files import choose_files

        repo = ref.name
        requested = options.revision or ref.revision or "main"
        label = f"hf:{repo}@{requested}"
        model = options.model
        if model is None or model.hub != self.name or model.id != repo:
            model = self.info(Ref(repo, "hf", requested))
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
        import threading
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        import httpx
        from huggingface_hub import hf_hub_url

        from modelport.settings import get_settings
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
                    url=hf_hub_url(repo, f.path, revision=commit, endpoint=self.endpoint),
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

        timeout = httpx.Timeout(get_settings().http_timeout, connect=10.0)
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        order = sorted(range(len(files)), key=lambda i: -(files[i].size or 0))
        results: dict[int, tuple[ManifestFile, int]] = {}
        with httpx.Client(follow_redirects=True, timeout=timeout, limits=limits) as client:
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
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(repo, path, revision=commit, endpoint=self.endpoint)
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
