"""PyTorch Hub (``torch:owner/repo[:ref][/entrypoint[?kwargs]]``): GitHub repositories
with a ``hubconf.py``.

Pulling downloads the repository archive of one commit (``{github_url}/OWNER/REPO/
zipball/SHA``, the address ``torch.hub`` itself uses), checks that the archive is of
that commit, unpacks it safely and keeps its files in the store. Nothing of the
repository runs at pull time: entry points are listed by reading ``hubconf.py`` as
source (``ast``), and loading one, which runs the repository's code, happens only at
conversion, for a repository the user trusted (``modelport trust owner/repo``).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from modelport.errors import (
    HubAccessError,
    HubTimeoutError,
    HubUnavailableError,
    IntegrityError,
    InvalidReferenceError,
    ModelNotFoundError,
    OfflineError,
    RateLimitedError,
    RevisionNotFoundError,
)
from modelport.hubconf import EntryPoint, list_entrypoints
from modelport.hubs.base import (
    Fetched,
    Hub,
    HubModel,
    ProgressCallback,
    PullOptions,
    PullTarget,
    Ref,
    offline_mode,
    store_folder,
)

if TYPE_CHECKING:
    from modelport.store.store import Store

__all__ = ["EntryPoint", "TorchHub", "TorchRef", "list_entrypoints", "parse_torch_name"]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
HUB_NAME = "PyTorch Hub (GitHub)"
_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_TORCH_NAME_RE = re.compile(
    rf"(?P<owner>{_SEGMENT})/(?P<repo>{_SEGMENT})(?::(?P<ref>[A-Za-z0-9_.][A-Za-z0-9_./-]*?))?"
    rf"(?:/(?P<entry>{_SEGMENT})(?:\?(?P<kwargs>[A-Za-z0-9_.=&,%+-]*))?)?"
)


@dataclass(frozen=True)
class TorchRef:
    """The parts of a PyTorch Hub name: ``owner/repo[:ref][/entrypoint[?kwargs]]``."""

    owner: str
    repo: str
    git_ref: str | None = None
    entrypoint: str | None = None
    kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def repo_id(self) -> str:
        """``owner/repo``."""
        return f"{self.owner}/{self.repo}"


def _kwarg_value(text: str) -> object:
    from urllib.parse import unquote

    value = unquote(text)
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_torch_name(name: str) -> TorchRef:
    """Split a ``torch:`` name; keyword arguments become ints, floats, bools or strings."""
    match = _TORCH_NAME_RE.fullmatch(name)
    if match is None or ".." in name:
        raise InvalidReferenceError(
            f"torch:{name}",
            f"{name!r} is not a PyTorch Hub reference",
            hint="Use torch:owner/repo[:ref][/entrypoint], e.g. torch:pytorch/vision/resnet18.",
        )
    kwargs: list[tuple[str, object]] = []
    for part in (match["kwargs"] or "").split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.isidentifier():
            raise InvalidReferenceError(
                f"torch:{name}", f"{part!r} is not a keyword argument (use key=value)"
            )
        kwargs.append((key, _kwarg_value(value)))
    return TorchRef(match["owner"], match["repo"], match["ref"], match["entry"], tuple(kwargs))


class TorchHub(Hub):
    """PyTorch Hub repositories on GitHub (or a server speaking GitHub's protocol)."""

    name = "torch"
    options_refusal = (
        "a repository is kept whole at one commit, and its weights are fetched by its own "
        "code when it runs (after `modelport trust`), not by the pull"
    )

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """``owner/repo[:ref][/entrypoint[?kwargs]]``; the git ref goes after ':'."""
        if revision is not None:
            raise InvalidReferenceError(
                text,
                "PyTorch Hub references put the git ref after ':', not '@'",
                hint="Use torch:owner/repo:ref/entrypoint.",
            )
        if not _TORCH_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(
                text,
                f"{name!r} is not a PyTorch Hub reference",
                hint="Use torch:owner/repo[:ref]/entrypoint, "
                "e.g. torch:pytorch/vision:v0.10.0/resnet18.",
            )

    def pinned(self, name: str, revision: str | None) -> str | None:
        """A full commit hash is one fixed revision."""
        return revision if revision and _COMMIT_RE.fullmatch(revision) else None

    def entry_call(self, ref: Ref) -> tuple[str | None, tuple[tuple[str, object], ...]]:
        """The entry point after the repository, and its ``?key=value`` arguments."""
        parts = parse_torch_name(ref.name)
        return parts.entrypoint, parts.kwargs

    def store_name(self, name: str) -> str:
        """The store keeps the repository: ``owner/repo``."""
        return parse_torch_name(name).repo_id

    def store_ref(self, ref: Ref) -> Ref:
        """``owner/repo`` at the git ref the name carries."""
        parts = parse_torch_name(ref.name)
        return Ref(parts.repo_id, "torch", parts.git_ref)

    # ------------------------------------------------------------ GitHub

    @staticmethod
    def _settings() -> Any:
        from modelport.settings import get_settings

        return get_settings()

    def _headers(self, *, api: bool) -> dict[str, str]:
        headers = {"User-Agent": "modelport"}
        if api:
            headers["Accept"] = "application/vnd.github+json"
        token = os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _get(self, url: str, *, what: str, api: bool = True, allow: tuple[int, ...] = ()) -> Any:
        import httpx

        if offline_mode():
            raise OfflineError(f"Cannot reach {HUB_NAME} for {what}: offline mode is on.")
        try:
            response = httpx.get(
                url,
                headers=self._headers(api=api),
                timeout=self._settings().http_timeout,
                follow_redirects=True,
            )
        except httpx.TimeoutException:
            raise HubTimeoutError(
                f"{HUB_NAME} did not answer for {what}",
                hub="torch",
                seconds=self._settings().http_timeout,
            ) from None
        except httpx.HTTPError as e:
            raise HubUnavailableError(
                f"Cannot reach {HUB_NAME} for {what}: {type(e).__name__}.", hub="torch"
            ) from None
        if response.status_code >= 400 and response.status_code not in allow:
            self._raise(response, what)
        return response

    def _raise(self, response: Any, what: str) -> NoReturn:
        status = response.status_code
        if status == 429 or (
            status == 403 and response.headers.get("x-ratelimit-remaining") == "0"
        ):
            reset = response.headers.get("retry-after")
            raise RateLimitedError(hub=HUB_NAME, retry_after=float(reset) if reset else None)
        if status in (401, 403):
            raise HubAccessError(
                f"{HUB_NAME} refused access to {what} (HTTP {status}).",
                ref=what,
                hint="Set GITHUB_TOKEN to a token that can read the repository.",
            )
        if status == 404:
            raise ModelNotFoundError(what, message=f"{HUB_NAME} has no {what}.")
        raise HubUnavailableError(f"{HUB_NAME} answered HTTP {status} for {what}.", hub="torch")

    def resolve_commit(self, parts: TorchRef, revision: str | None = None) -> str:
        """The commit a git ref (or the default branch) points to."""
        wanted = revision or parts.git_ref
        if wanted and _COMMIT_RE.fullmatch(wanted):
            return wanted
        api = self._settings().github_api_url
        repo = f"torch:{parts.repo_id}"
        if not wanted:
            meta = self._get(f"{api}/repos/{parts.repo_id}", what=repo).json()
            wanted = str(meta.get("default_branch") or "main")
        response = self._get(
            f"{api}/repos/{parts.repo_id}/commits/{wanted}", what=repo, allow=(404, 422)
        )
        if response.status_code in (404, 422):
            # GitHub answers 422 for an unknown ref, 404 for an unknown repository.
            self._get(f"{api}/repos/{parts.repo_id}", what=repo)
            raise RevisionNotFoundError(repo, wanted)
        data = response.json()
        sha = str(data.get("sha", "")) if isinstance(data, dict) else ""
        if not _COMMIT_RE.fullmatch(sha):
            raise HubUnavailableError(
                f"{HUB_NAME} did not name a commit for {repo}:{wanted}.", hub="torch"
            )
        return sha

    def hubconf(self, parts: TorchRef, commit: str, *, store: Store) -> str:
        """The text of ``hubconf.py`` at a commit (from the store when it is there)."""
        if store.complete("torch", parts.repo_id, commit) is not None:
            folder: Path = store.layout.model_dir("torch", parts.repo_id, commit)
            return (folder / "hubconf.py").read_text(encoding="utf-8")
        base = self._settings().github_url
        response = self._get(
            f"{base}/{parts.repo_id}/raw/{commit}/hubconf.py",
            what=f"torch:{parts.repo_id} hubconf.py",
            api=False,
        )
        return str(response.text)

    def entrypoints(
        self, ref: Ref, *, store: Store
    ) -> tuple[str, list[EntryPoint], list[str]] | None:
        """The commit, entry points and dependencies of a repository."""
        parts = parse_torch_name(ref.name)
        commit = self._resolve_offline_first(parts, ref.revision, store)
        found, dependencies = list_entrypoints(self.hubconf(parts, commit, store=store))
        return commit, found, dependencies

    def _resolve_offline_first(
        self, parts: TorchRef, revision: str | None, store: Store | None
    ) -> str:
        wanted = revision or parts.git_ref
        if offline_mode() and store is not None:
            known = store.resolve_ref("torch", parts.repo_id, wanted or "latest")
            if known:
                return str(known)
        return self.resolve_commit(parts, revision)

    # ---------------------------------------------------------------- Hub

    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
    ) -> list[HubModel]:
        """Repositories that publish a ``hubconf.py`` and match the query, most starred first."""
        import urllib.parse

        if task and task not in ("image-classification", "object-detection"):
            return []
        api = self._settings().github_api_url
        q = urllib.parse.quote(f"{query} filename:hubconf.py".strip())
        data = self._get(
            f"{api}/search/repositories?q={q}&sort=stars&per_page={min(limit, 100)}",
            what="repository search",
        ).json()
        return [
            HubModel(
                hub="torch",
                id=str(item["full_name"]),
                revision=str(item.get("default_branch") or "main"),
                library="pytorch",
                likes=item.get("stargazers_count"),
                license=(item.get("license") or {}).get("spdx_id"),
                card_summary=item.get("description"),
                last_modified=item.get("pushed_at"),
            )
            for item in (data.get("items") or [])[:limit]
            if isinstance(item, dict) and "full_name" in item
        ]

    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The repository at the commit its ref resolves to."""
        parts = parse_torch_name(ref.name)
        commit = self._resolve_offline_first(parts, ref.revision, store)
        return HubModel(hub="torch", id=parts.repo_id, revision=commit, library="pytorch")

    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """The commit the git ref (or the default branch) points to now."""
        parts = parse_torch_name(ref.name)
        named = options.revision or ref.revision or parts.git_ref
        given = self.described(options, parts.repo_id)
        commit = given.revision if given is not None else self.resolve_commit(parts, named)
        return PullTarget(
            name=parts.repo_id,
            revision=commit,
            ref=f"torch:{parts.repo_id}:{commit}",
            requested=named,
            refs=("latest", *([named] if named else [])),
            model=HubModel(hub="torch", id=parts.repo_id, revision=commit, library="pytorch"),
        )

    def fetch(
        self, target: PullTarget, *, store: Store, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """The repository archive of the commit, checked and unpacked; nothing of it runs."""
        import shutil

        from modelport.hubs.archives import extract_archive

        parts = parse_torch_name(target.name)
        commit = target.revision
        scratch = store.layout.tmp()
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            archive = Path(tmp) / "archive.zip"
            got = self._download(parts, commit, archive, emit)
            unpacked = Path(tmp) / "tree"
            files, top = extract_archive(
                archive, unpacked, ref=f"torch:{parts.repo_id}", strip_top=True
            )
            # GitHub names the top folder OWNER-REPO-SHORTSHA: it must be this commit.
            short = (top or "").rsplit("-", 1)[-1]
            if top and re.fullmatch(r"[0-9a-f]{7,40}", short) and not commit.startswith(short):
                raise IntegrityError(
                    f"The archive of torch:{parts.repo_id} is of commit {short}, "
                    f"not {commit[:12]}.",
                    hint="Nothing was stored. Try again later.",
                )
            if "hubconf.py" not in files:
                shutil.rmtree(unpacked, ignore_errors=True)
                raise ModelNotFoundError(
                    f"torch:{parts.repo_id}",
                    message=f"torch:{parts.repo_id} has no hubconf.py at {commit[:12]}: "
                    "it is not a PyTorch Hub repository.",
                )
            # The entry points travel in the manifest: whoever reads the stored model
            # (inspect, convert) learns them without parsing the repository again.
            try:
                entries, _ = list_entrypoints((unpacked / "hubconf.py").read_text("utf-8"))
            except (IntegrityError, UnicodeDecodeError):
                entries = []
            return Fetched(
                store_folder(store, unpacked, files, emit=emit),
                got,
                tags=tuple(f"entrypoint:{e.name}" for e in entries),
            )

    def _download(self, parts: TorchRef, commit: str, target: Path, emit: ProgressCallback) -> int:
        from modelport.hubs.archives import download_archive

        if offline_mode():
            raise OfflineError(f"Cannot download torch:{parts.repo_id}: offline mode is on.")
        return download_archive(
            f"{self._settings().github_url}/{parts.repo_id}/zipball/{commit}",
            target,
            label=f"{parts.repo_id}@{commit[:12]}.zip",
            hub=HUB_NAME,
            emit=emit,
            on_error=lambda response: self._raise(response, f"torch:{parts.repo_id} archive"),
            headers=self._headers(api=False),
            timeout=self._settings().http_timeout,
        )
