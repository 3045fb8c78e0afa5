"""The ONNX Model Zoo (``onnx:NAME[@OPSET]``), where it lives now and in its legacy layout.

``onnx.hub`` left the ``onnx`` package in 1.21, and the zoo itself moved to the Hugging
Face Hub: organisation ``onnxmodelzoo`` (``MODELPORT_ONNX_ZOO_ORG``), one repository per
model and opset (``resnet50_Opset17``) with the ``.onnx`` at its root. ``onnx:resnet50``
looks there first (through the Hugging Face hub, its endpoint and token) and takes the
newest opset; the repository's files are fetched and verified like any Hub pull, and
stored as ``onnx:resnet50`` at that commit.

The legacy layout is still served and mirrored: ``ONNX_HUB_MANIFEST.json`` at a base URL
(``MODELPORT_ONNX_ZOO_URL``) lists every model with ``model``, ``model_path``,
``opset_version`` and ``metadata{model_sha, model_bytes, tags, io_ports, …}``. A name the
Hub organisation does not have (or cannot be reached for) is looked up there; files are
fetched by the store's resumable downloader and verified against ``model_sha``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import (
    AmbiguousModelError,
    HubTimeoutError,
    HubUnavailableError,
    InvalidReferenceError,
    ModelNotFoundError,
    ModelportError,
    OfflineError,
    RevisionNotFoundError,
    UnsafeFileError,
)
from modelport.hubs.base import (
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
    from modelport.hubs.huggingface import HuggingFaceHub
    from modelport.store.store import Store

__all__ = ["OnnxZooHub", "ZooModel"]

MANIFEST = "ONNX_HUB_MANIFEST.json"
_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_PATH_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")

# Zoo tags → pipeline tasks.
_TAG_TASKS: tuple[tuple[str, str], ...] = (
    ("object detection", "object-detection"),
    ("object_detection", "object-detection"),
    ("segmentation", "image-segmentation"),
    ("classification", "image-classification"),
    ("super resolution", "image-to-image"),
    ("style transfer", "image-to-image"),
    ("machine comprehension", "question-answering"),
    ("question answering", "question-answering"),
    ("language", "feature-extraction"),
)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", name.lower())


@dataclass(frozen=True)
class ZooModel:
    """One model file of the zoo at one opset."""

    name: str
    path: str
    opset: int
    sha256: str
    size: int | None
    tags: tuple[str, ...]
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]

    @property
    def task(self) -> str | None:
        """The pipeline task its tags name."""
        joined = " ".join(self.tags).lower()
        for tag, task in _TAG_TASKS:
            if tag in joined:
                return task
        return None


@dataclass(frozen=True)
class HubZooModel:
    """One zoo model on the Hugging Face Hub: a repository per model and opset."""

    name: str
    repo: str
    opset: int | None
    task: str | None = None
    downloads: int | None = None


_OPSET_SUFFIX = re.compile(r"^(?P<base>.+?)[-_.]?opset(?P<opset>\d+)$", re.IGNORECASE)


def _split_opset(short: str) -> tuple[str, int | None]:
    match = _OPSET_SUFFIX.match(short)
    if match is None:
        return short, None
    return match["base"], int(match["opset"])


class OnnxZooHub(Hub):
    """The legacy ONNX Model Zoo manifest, at a configurable base URL."""

    name = "onnx"
    mirrored_by_name = True
    options_refusal = "the zoo serves each model as its ready ONNX files, none of them pickles"

    def __init__(self, *, base_url: str | None = None) -> None:
        self._base_url = base_url
        self._manifest: list[ZooModel] | None = None

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """A zoo model name (``resnet50``), optionally with folders."""
        if not _PATH_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid onnx model name")

    def store_name(self, name: str) -> str:
        """Zoo names match loosely: ``ResNet-50`` is ``resnet50``."""
        return _normal(name)

    @staticmethod
    def _hf() -> HuggingFaceHub:
        """The Hugging Face hub, where the zoo lives now."""
        from modelport.hubs.base import get_hub
        from modelport.hubs.huggingface import HuggingFaceHub

        hf = get_hub("hf")
        assert isinstance(hf, HuggingFaceHub)
        return hf

    @property
    def base_url(self) -> str:
        """Where the manifest and the model files are served."""
        from modelport.settings import get_settings

        return (self._base_url or get_settings().onnx_zoo_url).rstrip("/")

    def manifest(self) -> list[ZooModel]:
        """Every model the manifest lists (fetched once per process)."""
        if self._manifest is not None:
            return self._manifest
        if offline_mode():
            raise OfflineError("Cannot read the ONNX Model Zoo manifest: offline mode is on.")
        import httpx

        from modelport.settings import get_settings

        url = f"{self.base_url}/{MANIFEST}"
        try:
            response = httpx.get(url, timeout=get_settings().http_timeout, follow_redirects=True)
        except httpx.TimeoutException:
            raise HubTimeoutError(
                f"The ONNX Model Zoo at {self.base_url} did not answer {MANIFEST}",
                hub="onnx",
                seconds=get_settings().http_timeout,
            ) from None
        except httpx.HTTPError as e:
            raise HubUnavailableError(
                f"Cannot reach the ONNX Model Zoo at {self.base_url}: {type(e).__name__}.",
                hub="onnx",
            ) from None
        if response.status_code != 200:
            raise HubUnavailableError(
                f"The ONNX Model Zoo answered HTTP {response.status_code} for {MANIFEST}.",
                hub="onnx",
            )
        try:
            raw = json.loads(response.content)
        except ValueError:
            raise HubUnavailableError(f"{url} is not valid JSON.", hub="onnx") from None
        models = []
        for item in raw if isinstance(raw, list) else []:
            try:
                meta = item.get("metadata") or {}
                ports = meta.get("io_ports") or {}
                models.append(
                    ZooModel(
                        name=str(item["model"]),
                        path=str(item["model_path"]),
                        opset=int(item.get("opset_version") or 0),
                        sha256=str(meta["model_sha"]).lower(),
                        size=int(meta["model_bytes"]) if meta.get("model_bytes") else None,
                        tags=tuple(str(t) for t in meta.get("tags") or ()),
                        inputs=tuple(ports.get("inputs") or ()),
                        outputs=tuple(ports.get("outputs") or ()),
                    )
                )
            except (KeyError, TypeError, ValueError):
                continue  # an incomplete entry cannot be verified, so it is not offered
        self._manifest = models
        return models

    @staticmethod
    def _org() -> str:
        from modelport.settings import get_settings

        return get_settings().onnx_zoo_org

    def hub_models(self, query: str, *, task: str | None = None) -> list[HubZooModel]:
        """Zoo repositories on the Hugging Face Hub whose names contain the query."""
        found = self._hf().search(query, task=task, limit=100, author=self._org())
        out = []
        for m in found:
            base, opset = _split_opset(m.id.rsplit("/", 1)[-1])
            out.append(HubZooModel(base, m.id, opset, m.task, m.downloads))
        return out

    def find_on_hub(self, name: str, opset: str | None = None) -> HubZooModel | None:
        """The Hub repository a zoo name means at the newest (or the given) opset, or None."""
        wanted = _normal(name)
        candidates = self.hub_models(name)
        if not any(_normal(m.name) == wanted for m in candidates):
            # Hub search matches substrings of ids: ask again by the name's leading word.
            stem = re.match(r"[A-Za-z]+", name)
            if stem and stem.group(0).lower() != name.lower():
                candidates += self.hub_models(stem.group(0))
        by_name: dict[str, list[HubZooModel]] = {}
        for m in candidates:
            by_name.setdefault(_normal(m.name), []).append(m)
        if wanted not in by_name:
            from rapidfuzz import fuzz, process

            close = process.extract(
                wanted, list(by_name), scorer=fuzz.ratio, limit=2, score_cutoff=90
            )
            if not close or (len(close) > 1 and close[0][1] - close[1][1] < 5):
                return None
            wanted = close[0][0]
        models = sorted(by_name[wanted], key=lambda m: m.opset or 0, reverse=True)
        if opset is None:
            return models[0]
        number = opset.lower().removeprefix("opset")
        return next((m for m in models if str(m.opset) == number), None)

    def find(self, name: str, opset: str | None = None) -> ZooModel:
        """The legacy-manifest model a name means (fuzzy), at the newest or the given opset."""
        models = self.manifest()
        wanted = _normal(name)
        by_name: dict[str, list[ZooModel]] = {}
        for m in models:
            by_name.setdefault(_normal(m.name), []).append(m)
        if wanted not in by_name:
            from rapidfuzz import fuzz, process

            close = process.extract(
                wanted, list(by_name), scorer=fuzz.WRatio, limit=5, score_cutoff=70
            )
            names = [by_name[c][0].name for c, _, _ in close]
            if len(close) == 1 or (
                close and close[0][1] >= 95 and (len(close) == 1 or close[0][1] - close[1][1] >= 5)
            ):
                wanted = close[0][0]
            elif close:
                raise AmbiguousModelError(f"onnx:{name}", suggestions=[f"onnx:{n}" for n in names])
            else:
                raise ModelNotFoundError(f"onnx:{name}", suggestions=[])
        candidates = sorted(by_name[wanted], key=lambda m: m.opset, reverse=True)
        if opset is None:
            return candidates[0]
        for m in candidates:
            if str(m.opset) == opset.removeprefix("opset") or m.sha256.startswith(opset):
                return m
        raise RevisionNotFoundError(f"onnx:{candidates[0].name}", opset)

    # ---------------------------------------------------------------- Hub

    def _hub_model(self, m: ZooModel) -> HubModel:
        return HubModel(
            hub="onnx",
            id=m.name,
            revision=m.sha256,
            files=(HubFile("model.onnx", m.size, m.sha256, "sha256", True),),
            task=m.task,
            library="onnx",
            tags=(*m.tags, f"opset:{m.opset}"),
        )

    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
    ) -> list[HubModel]:
        """Zoo models whose name or tags match, newest opset of each: the Hub's, then legacy."""
        results: dict[str, HubModel] = {}
        failures: list[ModelportError] = []
        try:
            newest_on_hub: dict[str, HubZooModel] = {}
            for hm in self.hub_models(query, task=task):
                key = _normal(hm.name)
                if key not in newest_on_hub or (hm.opset or 0) > (newest_on_hub[key].opset or 0):
                    newest_on_hub[key] = hm
            for key, hm in newest_on_hub.items():
                results[key] = HubModel(
                    hub="onnx",
                    id=hm.name,
                    revision="",
                    task=hm.task,
                    library="onnx",
                    tags=(f"opset:{hm.opset}",) if hm.opset else (),
                    downloads=hm.downloads,
                )
        except ModelportError as e:
            failures.append(e)
        try:
            q = _normal(query)
            newest: dict[str, ZooModel] = {}
            for m in self.manifest():
                text = _normal(m.name + " ".join(m.tags))
                if q and q not in text:
                    continue
                if task and m.task != task:
                    continue
                key = _normal(m.name)
                if key not in newest or m.opset > newest[key].opset:
                    newest[key] = m
            for key, m in newest.items():
                results.setdefault(key, self._hub_model(m))
        except ModelportError as e:
            failures.append(e)
        if len(failures) == 2:
            raise HubUnavailableError(
                "Cannot reach the ONNX Model Zoo: neither on the Hugging Face Hub ("
                + failures[0].message.rstrip(".")
                + ") nor in the legacy manifest ("
                + failures[1].message.rstrip(".")
                + ").",
                hub="onnx",
            )
        return sorted(results.values(), key=lambda m: m.id.lower())[:limit]

    def _hub_or_none(self, name: str, opset: str | None) -> HubZooModel | None:
        """The zoo model on the Hub, or None when the organisation lacks it or is unreachable
        (the legacy manifest is asked next)."""
        try:
            return self.find_on_hub(name, opset)
        except (HubUnavailableError, OfflineError):
            return None

    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The zoo model at ``ref`` (``@opset`` picks one opset)."""
        on_hub = self._hub_or_none(ref.name, ref.revision)
        if on_hub is not None:
            model = self._hf().info(Ref(on_hub.repo, "hf"))
            return HubModel(
                hub="onnx",
                id=on_hub.name,
                revision=model.revision,
                files=model.files,
                task=model.task or on_hub.task,
                library="onnx",
                tags=(
                    *model.tags,
                    *((f"opset:{on_hub.opset}",) if on_hub.opset else ()),
                    f"hf:{on_hub.repo}",
                ),
                license=model.license,
                downloads=model.downloads,
                likes=model.likes,
            )
        return self._hub_model(self.find(ref.name, ref.revision))

    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """The zoo model on the Hub at the newest (or the given) opset, else the legacy one."""
        from modelport.store.layout import safe_relative_path

        wanted_opset = options.revision or ref.revision
        given = self.described(options, ref.name)
        mirror = next((t[3:] for t in given.tags if t.startswith("hf:")), None) if given else None
        if given is not None and mirror is not None:
            # The preflight found it on the Hub: its answer stands for this pull.
            zoo = HubZooModel(given.id, mirror, given.opset, given.task)
            own = tuple(t for t in given.tags if not t.startswith(("hf:", "opset:")))
            listed = HubModel(
                hub="hf",
                id=mirror,
                revision=given.revision,
                files=given.files,
                task=given.task,
                tags=own,
                license=given.license,
            )
            return self._hub_target(zoo, listed)
        on_hub = self._hub_or_none(ref.name, wanted_opset)
        if on_hub is not None:
            return self._hub_target(on_hub)
        model = self.find(ref.name, wanted_opset)
        try:
            safe_relative_path(model.path)
        except ValueError:
            raise UnsafeFileError(f"onnx:{model.name}", model.path) from None
        hub_model = self._hub_model(model)
        return PullTarget(
            name=_normal(model.name),
            revision=model.sha256,
            ref=f"onnx:{model.name}@{model.opset}",
            requested=str(model.opset),
            refs=("latest", str(model.opset)),
            model=HubModel(
                hub="onnx",
                id=model.name,
                revision=model.sha256,
                files=hub_model.files,
                task=model.task,
                library="onnx",
                tags=model.tags,
            ),
            files=hub_model.files,
            extra=(("url", f"{self.base_url}/{model.path}"),),
        )

    def _hub_target(self, zoo: HubZooModel, model: HubModel | None = None) -> PullTarget:
        """A zoo repository on the Hub: its root ONNX files, stored as ``onnx:``."""
        from modelport.store.layout import safe_relative_path

        model = model or self._hf().info(Ref(zoo.repo, "hf"))
        wanted = tuple(
            f
            for f in model.files
            if f.path.endswith((".onnx", ".onnx.data", ".onnx_data", ".json", ".txt", ".md"))
            and "/" not in f.path.strip("/")
        )
        if not any(f.path.endswith(".onnx") for f in wanted):
            raise ModelNotFoundError(
                f"onnx:{zoo.name}", message=f"{zoo.repo} has no .onnx file at its root."
            )
        for f in wanted:
            try:
                safe_relative_path(f.path)
            except ValueError:
                raise UnsafeFileError(f"onnx:{zoo.name}", f.path) from None
        opset = str(zoo.opset) if zoo.opset else None
        return PullTarget(
            name=_normal(zoo.name),
            revision=model.revision,
            ref=f"onnx:{zoo.name}" + (f"@{opset}" if opset else ""),
            requested=opset,
            refs=("latest", *([opset] if opset else [])),
            model=HubModel(
                hub="onnx",
                id=zoo.name,
                revision=model.revision,
                files=wanted,
                task=model.task or zoo.task,
                library="onnx",
                tags=(*model.tags, f"hf:{zoo.repo}"),
                license=model.license,
            ),
            files=wanted,
            extra=(("repo", zoo.repo),),
        )

    def fetch(
        self, target: PullTarget, *, store: Store, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """Through the Hugging Face hub, or the legacy file verified against ``model_sha``."""
        repo = target.get("repo")
        if repo is not None:
            entries, downloaded = self._hf().download_files(
                repo, target.revision, target.files or (), emit, store=store
            )
            return Fetched(tuple(entries), downloaded)
        import httpx

        from modelport.settings import get_settings
        from modelport.store.download import BlobRequest, download_blob
        from modelport.store.store import ManifestFile

        sha256 = target.revision
        [listed] = target.files or ()
        tag = f"sha256:{sha256}"
        emit(PullEvent("downloading", digest=tag, file=listed.path, total=listed.size, completed=0))
        seconds = get_settings().http_timeout
        timeout = httpx.Timeout(seconds, connect=min(seconds, 10.0))
        with httpx.Client(follow_redirects=True, timeout=timeout) as client:
            sha, got = download_blob(
                client,
                BlobRequest(
                    url=target.get("url") or "",
                    digest_kind="sha256",
                    digest=sha256,
                    size=listed.size,
                    label=target.ref,
                ),
                layout=store.layout,
                headers={},
                hub="The ONNX Model Zoo",
                on_bytes=lambda done, total: emit(
                    PullEvent(
                        "downloading", digest=tag, file=listed.path, total=total, completed=done
                    )
                ),
            )
        size = store.layout.blob(sha).stat().st_size
        return Fetched((ManifestFile(listed.path, sha, size, "sha256", sha256),), got)
