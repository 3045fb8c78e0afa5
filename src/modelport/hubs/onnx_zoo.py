"""The ONNX Model Zoo (``onnx:NAME[@OPSET]``) in its legacy manifest format.

``onnx.hub`` left the ``onnx`` package in 1.21, and the zoo itself moved to the Hugging
Face Hub (organisation ``onnxmodelzoo``, reachable as ``hf:onnxmodelzoo/…``). The legacy
layout is still served and mirrored: ``ONNX_HUB_MANIFEST.json`` at a base URL
(``MODELPORT_ONNX_ZOO_URL``) lists every model with ``model``, ``model_path``,
``opset_version`` and ``metadata{model_sha, model_bytes, tags, io_ports, …}``. Files are
fetched by the store's resumable downloader and verified against ``model_sha``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelport.errors import (
    AmbiguousModelError,
    HubUnavailableError,
    ModelNotFoundError,
    OfflineError,
    RevisionNotFoundError,
    UnsafeFileError,
)
from modelport.hubs.base import (
    Hub,
    HubFile,
    HubModel,
    ProgressCallback,
    PulledModel,
    PullEvent,
    commit_pull,
    offline_mode,
    served_from_store,
)
from modelport.refs import Ref

__all__ = ["OnnxZooHub", "ZooModel"]

MANIFEST = "ONNX_HUB_MANIFEST.json"

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


class OnnxZooHub(Hub):
    """The legacy ONNX Model Zoo manifest, at a configurable base URL."""

    name = "onnx"

    def __init__(self, *, base_url: str | None = None) -> None:
        self._base_url = base_url
        self._manifest: list[ZooModel] | None = None

    def store_name(self, name: str) -> str:
        """Zoo names match loosely: ``ResNet-50`` is ``resnet50``."""
        return _normal(name)

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

    def find(self, name: str, opset: str | None = None) -> ZooModel:
        """The zoo model a name means (fuzzy), at the newest opset or the one asked for."""
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
        """Zoo models whose name or tags match, newest opset of each."""
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
        return [self._hub_model(m) for m in sorted(newest.values(), key=lambda m: m.name)][:limit]

    def info(self, ref: Ref) -> HubModel:
        """The zoo model at ``ref`` (``@opset`` picks one opset)."""
        return self._hub_model(self.find(ref.name, ref.revision))

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
        """Download a zoo model into the store, verified against its ``model_sha``."""
        import httpx

        from modelport.api import get_store
        from modelport.settings import get_settings
        from modelport.store.download import BlobRequest, download_blob
        from modelport.store.layout import safe_relative_path
        from modelport.store.store import Manifest, ManifestFile

        emit = progress or (lambda event: None)
        store = get_store()
        emit(PullEvent("pulling manifest"))
        model = self.find(ref.name, revision or ref.revision)
        name = _normal(model.name)
        existing = store.complete("onnx", name, model.sha256)
        if existing is not None:
            store.remember_ref("onnx", name, str(model.opset), model.sha256)
            return served_from_store(store, existing, emit)
        try:
            safe_relative_path(model.path)
        except ValueError:
            raise UnsafeFileError(f"onnx:{model.name}", model.path) from None
        emit(
            PullEvent(
                "downloading",
                digest=f"sha256:{model.sha256}",
                file="model.onnx",
                total=model.size,
                completed=0,
            )
        )
        timeout = httpx.Timeout(get_settings().http_timeout, connect=10.0)
        with httpx.Client(follow_redirects=True, timeout=timeout) as client:
            sha, got = download_blob(
                client,
                BlobRequest(
                    url=f"{self.base_url}/{model.path}",
                    digest_kind="sha256",
                    digest=model.sha256,
                    size=model.size,
                    label=model.path,
                ),
                layout=store.layout,
                headers={},
                hub="The ONNX Model Zoo",
                on_bytes=lambda done, total: emit(
                    PullEvent(
                        "downloading",
                        digest=f"sha256:{model.sha256}",
                        file="model.onnx",
                        total=total,
                        completed=done,
                    )
                ),
            )
        size = store.layout.blob(sha).stat().st_size
        manifest = Manifest(
            registry="onnx",
            name=name,
            revision=model.sha256,
            ref=f"onnx:{model.name}@{model.opset}",
            requested=str(model.opset),
            files=(ManifestFile("model.onnx", sha, size, "sha256", model.sha256),),
            pulled_at=dt.datetime.now(dt.UTC).isoformat(),
            task=model.task,
            library="onnx",
            tags=model.tags,
        )
        return commit_pull(
            store, manifest, downloaded=got, emit=emit, refs=["latest", str(model.opset)]
        )
