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

import ast
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
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
    HubModel,
    ProgressCallback,
    PulledModel,
    PullEvent,
    commit_folder,
    offline_mode,
    served_from_store,
)
from modelport.refs import Ref, TorchRef, parse_torch_name

__all__ = ["EntryPoint", "TorchHub", "list_entrypoints"]

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
HUB_NAME = "PyTorch Hub (GitHub)"


@dataclass(frozen=True)
class EntryPoint:
    """A callable ``hubconf.py`` offers, as its source declares it."""

    name: str
    signature: str
    doc: str | None
    imported_from: str | None = None


def list_entrypoints(hubconf_source: str) -> tuple[list[EntryPoint], list[str]]:
    """Entry points and ``dependencies`` of a ``hubconf.py``, read without running it."""
    try:
        tree = ast.parse(hubconf_source)
    except SyntaxError as e:
        raise IntegrityError(f"hubconf.py does not parse: {e.msg} (line {e.lineno}).") from None
    found: dict[str, EntryPoint] = {}
    dependencies: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found[node.name] = EntryPoint(
                node.name, f"({ast.unparse(node.args)})", ast.get_docstring(node)
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                shown = alias.asname or alias.name
                if alias.name != "*" and not shown.startswith("_") and shown[:1].islower():
                    found[shown] = EntryPoint(shown, "(...)", None, f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "dependencies" in targets and isinstance(node.value, ast.List | ast.Tuple):
                dependencies = [
                    e.value
                    for e in node.value.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                ]
    return sorted(found.values(), key=lambda e: e.name), dependencies


class TorchHub(Hub):
    """PyTorch Hub repositories on GitHub (or a server speaking GitHub's protocol)."""

    name = "torch"

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

    def resolve(self, parts: TorchRef, revision: str | None = None) -> str:
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

    def hubconf(self, parts: TorchRef, commit: str) -> str:
        """The text of ``hubconf.py`` at a commit (from the store when it is there)."""
        from modelport.api import get_store

        stored = get_store().complete("torch", parts.repo_id, commit)
        if stored is not None:
            folder: Path = get_store().layout.model_dir("torch", parts.repo_id, commit)
            return (folder / "hubconf.py").read_text(encoding="utf-8")
        base = self._settings().github_url
        response = self._get(
            f"{base}/{parts.repo_id}/raw/{commit}/hubconf.py",
            what=f"torch:{parts.repo_id} hubconf.py",
            api=False,
        )
        return str(response.text)

    def entrypoints(self, ref: Ref) -> tuple[str, list[EntryPoint], list[str]]:
        """The commit, entry points and dependencies of a repository."""
        parts = parse_torch_name(ref.name)
        commit = self._resolve_offline_first(parts, ref.revision)
        found, dependencies = list_entrypoints(self.hubconf(parts, commit))
        return commit, found, dependencies

    def _resolve_offline_first(self, parts: TorchRef, revision: str | None) -> str:
        from modelport.api import get_store

        wanted = revision or parts.git_ref
        if offline_mode():
            known = get_store().resolve_ref("torch", parts.repo_id, wanted or "latest")
            if known:
                return str(known)
        return self.resolve(parts, revision)

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

    def info(self, ref: Ref) -> HubModel:
        """The repository at the commit its ref resolves to."""
        parts = parse_torch_name(ref.name)
        commit = self._resolve_offline_first(parts, ref.revision)
        return HubModel(hub="torch", id=parts.repo_id, revision=commit, library="pytorch")

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
        """Download one commit of the repository into the store; nothing of it runs."""
        import shutil

        from modelport.api import get_store
        from modelport.hubs.archives import extract_archive

        emit = progress or (lambda event: None)
        parts = parse_torch_name(ref.name)
        store = get_store()
        emit(PullEvent("pulling manifest"))
        commit = self._resolve_offline_first(parts, revision or ref.revision)
        named = revision or parts.git_ref
        existing = store.complete("torch", parts.repo_id, commit)
        if existing is not None:
            if named:
                store.remember_ref("torch", parts.repo_id, named, commit)
            return served_from_store(store, existing, emit)
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
            refs = ["latest", *([named] if named else [])]
            return commit_folder(
                store,
                unpacked,
                files,
                registry="torch",
                name=parts.repo_id,
                revision=commit,
                ref=f"torch:{parts.repo_id}:{commit}",
                requested=named,
                library="pytorch",
                emit=emit,
                downloaded=got,
                refs=refs,
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
