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
from dataclasses import astuple
from typing import Any, NoReturn

from modelport.errors import (
    HubAccessError,
    HubUnavailableError,
    IntegrityError,
    ModelNotFoundError,
    OfflineError,
    RateLimitedError,
    RevisionNotFoundError,
)
from modelport.hubs.base import (
    Hub,
    HubFile,
    HubModel,
    ProgressCallback,
    PulledModel,
    PullEvent,
    commit_pull,
    served_from_store,
)
from modelport.refs import Ref

__all__ = ["HuggingFaceHub", "is_commit"]

DEFAULT_ENDPOINT = "https://huggingface.co"
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = ("1", "true", "yes", "on")


def is_commit(revision: str) -> bool:
    """Whether a revision is a full git commit hash."""
    return _COMMIT_RE.fullmatch(revision) is not None


class HuggingFaceHub(Hub):
    """The Hugging Face Hub (``hf:org/name``)."""

    name = "hf"

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
        """Whether ``HF_HUB_OFFLINE`` forbids network access."""
        return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token or False)

    def _offline_guard(self, what: str) -> None:
        if self.offline:
            raise OfflineError(
                f"Cannot {what}: HF_HUB_OFFLINE is set.",
                hint="Unset HF_HUB_OFFLINE to reach the Hub.",
            )

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

    def info(self, ref: Ref) -> HubModel:
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

    def pull(
        self,
        ref: Ref,
        *,
        revision: str | None = None,
        allow_patterns: Sequence[str] = (),
        ignore_patterns: Sequence[str] = (),
        allow_pickle: bool = False,
        progress: ProgressCallback | None = None,
    ) -> PulledModel:
        """Download a model into the store: verified, resumable, at most once per blob."""
        from modelport.api import get_store
        from modelport.hubs.files import choose_files

        emit = progress or (lambda event: None)
        store = get_store()
        repo = ref.name
        requested = revision or ref.revision or "main"
        label = f"hf:{repo}@{requested}"

        # Asking for particular files re-selects them; otherwise a complete revision is reused.
        reselect = bool(allow_patterns or ignore_patterns or allow_pickle)
        # A complete pinned commit needs no network at all.
        commit = requested if is_commit(requested) and not reselect else None
        if commit is None and self.offline:
            commit = store.resolve_ref("hf", repo, requested)
        if commit is not None:
            manifest = store.complete("hf", repo, commit)
            if manifest is not None:
                return served_from_store(store, manifest, emit)
        if self.offline:
            raise OfflineError(
                f"{label} is not complete in the store and HF_HUB_OFFLINE is set.",
                hint="Pull it once online, or unset HF_HUB_OFFLINE.",
            )

        emit(PullEvent("pulling manifest"))
        model = self.info(Ref(repo, "hf", requested))
        commit = model.revision
        recorded = store.read_manifest("hf", repo, commit)
        if not reselect and recorded is not None and recorded.selection is not None:
            # A revision pulled before keeps the files it was pulled with (a repair too).
            allow_patterns, ignore_patterns, allow_pickle = astuple(recorded.selection)
        manifest = store.complete("hf", repo, commit)
        if manifest is not None and not reselect:
            if not is_commit(requested):
                store.remember_ref("hf", repo, requested, commit)
            return served_from_store(store, manifest, emit)

        choice = choose_files(
            model.files,
            ref=label,
            include=allow_patterns,
            exclude=ignore_patterns,
            allow_pickle=allow_pickle,
        )
        if manifest is not None and {f.path for f in manifest.files} == {
            f.path for f in choice.files
        }:
            return served_from_store(store, manifest, emit)
        entries, downloaded = self.download_files(repo, commit, choice.files, emit)
        import datetime as dt

        from modelport.store.store import Manifest, Selection

        manifest = Manifest(
            registry="hf",
            name=repo,
            revision=commit,
            ref=f"hf:{repo}@{requested}",
            requested=requested,
            files=tuple(entries),
            pulled_at=dt.datetime.now(dt.UTC).isoformat(),
            task=model.task,
            library=model.library,
            tags=model.tags,
            license=model.license,
            selection=Selection(tuple(allow_patterns), tuple(ignore_patterns), allow_pickle),
        )
        refs = [] if is_commit(requested) else [requested]
        return commit_pull(store, manifest, downloaded=downloaded, emit=emit, refs=refs)

    def download_files(
        self,
        repo: str,
        commit: str,
        files: Sequence[HubFile],
        emit: ProgressCallback,
    ) -> tuple[list[Any], int]:
        """Fetch every file (eight at a time, largest first) into the store's blobs."""
        import threading
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        import httpx
        from huggingface_hub import hf_hub_url

        from modelport.api import get_store
        from modelport.settings import get_settings
        from modelport.store.download import BlobRequest, download_blob
        from modelport.store.store import ManifestFile

        store = get_store()
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
