"""What the store derives from its sources, and which source each one came from.

store/
  converted/<key>/          ONNX artifacts; ``modelport.yml`` names the source's content key
  torch-hub/<content key>/  weights a PyTorch Hub entry point downloaded while exporting
  ort-cache/<name>.onnx     ONNX Runtime's machine-optimized graph of a model, and beside it
  ort-cache/<name>.json     the record naming the model file it was made from
  digests/<name>.json       per-folder file hashes (see ``convert.export.source_digest``)

A source is a stored model (its content key is ``tree_digest`` of its manifest) or a
folder of the user's (the same key, from its files). Removing a stored model removes the
artifacts of its content key unless another stored model has the same content.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Artifact", "find_artifacts", "remove_artifact"]

_DIGEST_RE = re.compile(r"\bdigest:\s*['\"]?([0-9a-f]{64})")


@dataclass(frozen=True)
class Artifact:
    """A tree the store derived from a source: converted model, hub weights or graph."""

    path: str  # relative to the store root
    kind: str  # converted | torch-hub | ort-cache
    source: str | None  # the content key of the source (a prefix for torch-hub)
    size: int
    modified: dt.datetime
    #: For an optimized graph: the model file it was made from.
    made_from: str | None = None

    def belongs_to(self, digest: str) -> bool:
        """Whether this artifact came from the source with this content key."""
        return self.source is not None and digest.startswith(self.source)


def _tree_size(path: Path) -> tuple[int, float]:
    if path.is_file():
        stat = path.stat()
        return stat.st_size, stat.st_mtime
    size, newest = 0, path.stat().st_mtime
    for item in path.rglob("*"):
        if item.is_file():
            stat = item.stat()
            size += stat.st_size
            newest = max(newest, stat.st_mtime)
    return size, newest


def _when(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _spec_digest(folder: Path) -> str | None:
    # A regular expression, not YAML: listing artifacts must not import pyyaml.
    try:
        match = _DIGEST_RE.search((folder / "modelport.yml").read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def find_artifacts(root: Path) -> list[Artifact]:
    """Every derived tree under the store root (partial conversions excluded)."""
    found: list[Artifact] = []
    converted = root / "converted"
    for folder in sorted(converted.iterdir()) if converted.is_dir() else ():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        size, newest = _tree_size(folder)
        found.append(
            Artifact(
                f"converted/{folder.name}", "converted", _spec_digest(folder), size, _when(newest)
            )
        )
    weights = root / "torch-hub"
    for folder in sorted(weights.iterdir()) if weights.is_dir() else ():
        size, newest = _tree_size(folder)
        source = folder.name if re.fullmatch(r"[0-9a-f]{32}", folder.name) else None
        found.append(Artifact(f"torch-hub/{folder.name}", "torch-hub", source, size, _when(newest)))
    graphs = root / "ort-cache"
    for record in sorted(graphs.glob("*.json")) if graphs.is_dir() else ():
        graph = record.with_suffix(".onnx")
        try:
            made_from = str(json.loads(record.read_text()).get("source") or "") or None
        except (OSError, ValueError, AttributeError):
            made_from = None
        size = record.stat().st_size + (graph.stat().st_size if graph.exists() else 0)
        found.append(
            Artifact(
                f"ort-cache/{record.stem}",
                "ort-cache",
                None,
                size,
                _when(record.stat().st_mtime),
                made_from,
            )
        )
    return found


def remove_artifact(root: Path, artifact: Artifact) -> int:
    """Delete one artifact; returns the bytes freed."""
    path = root / artifact.path
    if artifact.kind == "ort-cache":
        for suffix in (".onnx", ".json"):
            path.with_suffix(suffix).unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    return artifact.size
