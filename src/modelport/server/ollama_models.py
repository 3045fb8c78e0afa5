"""Ollama's model objects (``tags``, ``show``, ``ps``) from what modelport knows of a model.

Every field comes from the store (files, sizes, pull time), the model's own files
(``config.json``, the safetensors headers, ``tokenizer_config.json``), the catalog or the
pool. What none of them says is an empty string or left out, never a guess.

Names: Ollama names a model ``name:tag`` and defaults the tag to ``latest``. modelport
lists a model as ``NAME:latest`` (its newest stored revision, as ``NAME`` alone reaches
it) and reads ``NAME:latest`` back as ``NAME``; ``hf.co/org/name`` (Ollama's spelling of
a Hugging Face model) means ``hf:org/name``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import struct
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.errors import InvalidValueError, ModelNotFoundError, ModelportError

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry
    from modelport.server.pool import ModelPool, ServedModel
    from modelport.store.store import StoredModel

__all__ = [
    "display_name",
    "iso_time",
    "local_models",
    "request_name",
    "running_models",
    "show_model",
]

#: Ollama's default tag: ``NAME:latest`` is ``NAME``.
LATEST = "latest"


def request_name(text: str) -> str:
    """The modelport reference an Ollama model name means."""
    from modelport.refs import hub_registries

    name = text.strip()
    if not name:
        raise InvalidValueError("model is required.", param="model")
    for prefix in ("hf.co/", "huggingface.co/"):
        if name.lower().startswith(prefix):
            name = "hf:" + name[len(prefix) :]
    head, sep, tag = name.rpartition(":")
    if sep and tag == LATEST and head and head not in hub_registries():
        name = head
    return name


def display_name(name: str) -> str:
    """A modelport name as Ollama lists it: ``NAME:latest`` (a pinned ``NAME@rev`` as is)."""
    return name if "@" in name else f"{name}:{LATEST}"


def iso_time(seconds: float) -> str:
    """A Unix time as Ollama writes times: RFC 3339 in UTC."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def _store_name(stored: StoredModel) -> str:
    return stored.name if stored.registry == "hf" else f"{stored.registry}:{stored.name}"


# -- what a model's files say --------------------------------------------------------------


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


#: Read ``length`` bytes of a file from ``start``.
ReadBytes = Callable[[int, int], bytes]


def _folder_files(folder: Path) -> list[ReadBytes]:
    """Readers of a folder's safetensors files."""

    def reader(path: Path) -> ReadBytes:
        def read(start: int, length: int) -> bytes:
            with path.open("rb") as fh:
                fh.seek(start)
                return fh.read(length)

        return read

    return [reader(path) for path in sorted(folder.glob("*.safetensors"))]


def _safetensors(files: Iterable[ReadBytes]) -> tuple[int, dict[str, int]]:
    """Parameters in safetensors files, and how many of them each dtype holds.

    Read from each file's JSON header (the first few kilobytes), not from the weights.
    """
    total, by_dtype = 0, dict[str, int]()
    for read in files:
        try:
            (length,) = struct.unpack("<Q", read(0, 8))
            if length > 100_000_000:
                continue
            header = json.loads(read(8, length))
        except (OSError, ValueError, struct.error):
            continue
        if not isinstance(header, dict):
            continue
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", []):
                count *= int(dim)
            total += count
            dtype = str(tensor.get("dtype", ""))
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    return total, by_dtype


_DTYPES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "F32": "F32",
    "F16": "F16",
    "BF16": "BF16",
    "F64": "F64",
    "I8": "I8",
    "U8": "U8",
}


def _parameter_size(count: int) -> str:
    """A parameter count as Ollama writes it: 7.6B, 22.7M, 560K."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.1f}{unit}"
    return str(count)


def _format(names: list[str]) -> str:
    """The format of a model's weights, from its file names."""
    suffixes = {Path(n).suffix.lower() for n in names}
    for suffix, kind in (
        (".gguf", "gguf"),
        (".safetensors", "safetensors"),
        (".onnx", "onnx"),
        (".bin", "pytorch"),
        (".pt", "pytorch"),
        (".pth", "pytorch"),
        (".h5", "keras"),
        (".keras", "keras"),
    ):
        if suffix in suffixes:
            return kind
    if any(Path(n).name == "saved_model.pb" for n in names):
        return "tensorflow"
    return ""


#: The files a model's facts are read from (its weights' headers aside).
_SMALL_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja")


class _Facts:
    """What one model folder (and its catalog entry, if any) says of the model."""

    def __init__(
        self,
        folder: Path | None,
        entry: ModelEntry | None,
        format: str,
        *,
        files: dict[str, Path] | None = None,
        weights: list[ReadBytes] | None = None,
    ) -> None:
        # ``files`` and ``weights``: where the small files are and how to read the weights'
        # headers when the folder is not on this machine (another server pulled the model
        # into a shared store).
        self.files = files
        self.folder = folder
        self.config = self._json("config.json")
        self.entry = entry
        self.format = format
        if weights is None:
            weights = _folder_files(folder) if folder else []
        count, by_dtype = _safetensors(weights)
        self.parameters = count or (entry.parameters if entry and entry.parameters else 0)
        dtype = self.config.get("torch_dtype") or self.config.get("dtype")
        if not dtype and by_dtype:
            dtype = max(by_dtype, key=lambda k: by_dtype[k])
        self.quantization = _DTYPES.get(str(dtype), "") if dtype else ""
        if entry is not None and entry.quantization and entry.quantization.type:
            self.quantization = self.quantization or entry.quantization.type.upper()

    def _file(self, name: str) -> Path | None:
        if self.files is not None:
            return self.files.get(name)
        return self.folder / name if self.folder else None

    def _json(self, name: str) -> dict[str, Any]:
        path = self._file(name)
        return _json(path) if path else {}

    @property
    def family(self) -> str:
        value = self.config.get("model_type")
        return value if isinstance(value, str) else ""

    def _int(self, key: str) -> int | None:
        value = self.config.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def context_length(self) -> int | None:
        value = self._int("max_position_embeddings")
        if value is None and self.entry is not None:
            value = self.entry.context_window
        return value

    def details(self) -> dict[str, Any]:
        """Ollama's ``details`` object."""
        family = self.family
        out: dict[str, Any] = {
            "parent_model": "",
            "format": self.format,
            "family": family,
            "families": [family] if family else None,
            "parameter_size": _parameter_size(self.parameters) if self.parameters else "",
            "quantization_level": self.quantization,
        }
        if (context := self.context_length) is not None:
            out["context_length"] = context
        if (width := self._int("hidden_size")) is not None:
            out["embedding_length"] = width
        return out

    def model_info(self) -> dict[str, Any]:
        """Ollama's ``model_info``: the architecture's numbers under GGUF's key names."""
        arch = self.family
        info: dict[str, Any] = {}
        if arch:
            info["general.architecture"] = arch
        if self.parameters:
            info["general.parameter_count"] = self.parameters
        if not arch:
            return info
        for key, gguf in (
            ("max_position_embeddings", "context_length"),
            ("hidden_size", "embedding_length"),
            ("num_hidden_layers", "block_count"),
            ("intermediate_size", "feed_forward_length"),
            ("num_attention_heads", "attention.head_count"),
            ("num_key_value_heads", "attention.head_count_kv"),
            ("vocab_size", "vocab_size"),
        ):
            if (value := self._int(key)) is not None:
                info[f"{arch}.{gguf}"] = value
        return info

    def chat_template(self) -> str:
        """The model's own chat template (Jinja, as transformers renders it), if it has one."""
        template = self._json("tokenizer_config.json").get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default")
        if not template:
            path = self._file("chat_template.jinja")
            try:
                template = path.read_text() if path else ""
            except OSError:
                return ""
        return template if isinstance(template, str) else ""


def _entry(stored: StoredModel) -> ModelEntry | None:
    """The catalog entry of exactly this stored model (never a fuzzy match)."""
    from modelport.api import get_catalog

    catalog = get_catalog()
    for name in (stored.name, f"{stored.registry}:{stored.name}"):
        try:
            if not catalog.exists(name):
                continue
            entry = catalog.get(name)
        except ModelportError:
            continue
        if stored.name in (entry.id, entry.hugging_face_id):
            return entry
    return None


def _stored_facts(stored: StoredModel) -> tuple[_Facts, str]:
    """The facts of a stored model, and a digest of its files (their sha256s and paths)."""
    from modelport.api import read_stored_file, stored_files, stored_small_files

    files = stored_files(stored)
    listing = "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path))
    digest = hashlib.sha256(listing.encode()).hexdigest()
    here: dict[str, Path] | None = None
    weights: list[ReadBytes] | None = None
    if not stored.path.exists():
        here = stored_small_files(stored, _SMALL_FILES, files)
        weights = [
            functools.partial(read_stored_file, stored, f)
            for f in files
            if "/" not in f.path and f.path.endswith(".safetensors")
        ]
    facts = _Facts(
        stored.path, _entry(stored), _format([f.path for f in files]), files=here, weights=weights
    )
    return facts, digest


def _newest_stored(name: str) -> StoredModel | None:
    """The newest stored revision a name reaches, if it is stored."""
    from modelport.api import stored_revisions

    try:
        found = stored_revisions(name)
    except ModelportError:
        return None
    return found[0] if found else None


def _capabilities(task: str | None, template: str) -> list[str]:
    if task in ("feature-extraction", "sentence-similarity"):
        return ["embedding"]
    if task == "text-generation":
        return ["completion", "tools"] if "tools" in template else ["completion"]
    return []


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# -- the endpoints' objects ----------------------------------------------------------------


def local_models(pool: ModelPool) -> list[dict[str, Any]]:
    """``GET /api/tags``: runnable models of the store, then served ones not stored."""
    from modelport.api import list_models
    from modelport.runtime.pipelines import SUPPORTED_TASKS

    rows: dict[str, dict[str, Any]] = {}
    for stored in list_models():  # newest pull first: the first revision of a name wins
        if stored.task is not None and stored.task not in SUPPORTED_TASKS:
            continue
        name = display_name(_store_name(stored))
        if name in rows:
            continue
        facts, digest = _stored_facts(stored)
        rows[name] = {
            "name": name,
            "model": name,
            "modified_at": stored.pulled_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "size": stored.size,
            "digest": digest,
            "details": facts.details(),
        }
    for served in list(pool.models.values()):  # a copy: the event loop changes it
        name = display_name(served.name)
        if name not in rows:
            rows[name] = {
                "name": name,
                "model": name,
                "modified_at": iso_time(served.loaded_at),
                "size": served.size,
                "digest": "",
                "details": _Facts(served.folder, None, "onnx").details(),
            }
    for alias, folder in list(pool.folders.items()):
        name = display_name(alias)
        path = Path(folder)
        if name not in rows and path.is_dir():
            rows[name] = {
                "name": name,
                "model": name,
                "modified_at": iso_time(path.stat().st_mtime),
                "size": _folder_bytes(path),
                "digest": "",
                "details": _Facts(path, None, "onnx").details(),
            }
    return list(rows.values())


def show_model(pool: ModelPool, name: str, shown: str) -> dict[str, Any]:
    """``POST /api/show``: what the store (or, for a served folder, the folder) says."""
    from modelport.api import stored_revisions

    served = pool.find(name)
    found: list[StoredModel] = []
    if name not in pool.folders:
        try:
            found = stored_revisions(name)
        except ModelportError:
            if served is None:
                raise  # an unknown name: 404 with suggestions; a hosted model: 400
    if found:
        stored = found[0]
        facts, _ = _stored_facts(stored)
        task = stored.task
        source = f"{stored.registry}:{stored.name}@{stored.revision}"
        modified = stored.pulled_at.timestamp()
    elif served is not None or name in pool.folders:
        folder = served.folder if served is not None else Path(pool.folders[name])
        facts = _Facts(folder, None, "onnx")
        task = served.task if served is not None else None
        source = name  # never the operator's folder path
        modified = served.loaded_at if served is not None else folder.stat().st_mtime
    else:
        raise ModelNotFoundError(
            name,
            message=f"model '{shown}' not found: it is not in the local store.",
            hint=f"Pull it first: `ollama pull {shown}` (or `modelport pull {name}`).",
        )
    template = facts.chat_template()
    body: dict[str, Any] = {
        "modelfile": f"# Modelfile generated by modelport\nFROM {source}\n",
        "details": facts.details(),
        "model_info": facts.model_info(),
        "capabilities": _capabilities(task, template),
        "modified_at": iso_time(modified),
    }
    if template:
        body["template"] = template
    if facts.entry is not None and facts.entry.license:
        body["license"] = facts.entry.license
    return body


def running_models(pool: ModelPool) -> list[dict[str, Any]]:
    """``GET /api/ps``: loaded models, most recently used first."""
    rows = []
    for row in pool.describe():
        if row["state"] != "loaded":
            continue  # Ollama lists a model once it runs; /api/v1/ps shows loading ones
        served = pool.find(row["name"])
        if served is None:
            continue
        stored = None if served.name in pool.folders else _newest_stored(served.name)
        if stored is not None:
            facts, digest = _stored_facts(stored)
        else:
            facts, digest = _Facts(served.folder, None, "onnx"), ""
        on_cpu = (row["provider"] or "").startswith("CPU")
        name = display_name(row["name"])
        rows.append(
            {
                "name": name,
                "model": name,
                "size": row["size"],
                "digest": digest,
                "details": facts.details(),
                "expires_at": None if row["expires_at"] is None else iso_time(row["expires_at"]),
                "size_vram": 0 if on_cpu else row["size"],
                "context_length": _context_length(served),
            }
        )
    return rows


def _context_length(served: ServedModel) -> int:
    """Tokens the loaded model takes: its context, or its tokenizer's limit (0: unknown)."""
    from modelport.server.generation import context_length

    limit = context_length(served)
    if limit is None:
        tokenizer = getattr(served.model.pipeline, "tokenizer", None)
        limit = getattr(tokenizer, "max_length", None)
    return int(limit) if isinstance(limit, int) else 0
