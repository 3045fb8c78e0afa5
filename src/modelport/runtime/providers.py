"""Execution providers: which ones exist, which to prefer, and which one a session really uses."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.errors import InvalidValueError, MissingExtraError

__all__ = ["PROVIDER_ORDER", "create_session", "provider_order", "resolve_provider"]

#: Most capable first; CPU always last, as the fallback.
PROVIDER_ORDER: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "MIGraphXExecutionProvider",
    "ROCMExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)

_ALIASES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "amd": "MIGraphXExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def onnxruntime() -> Any:
    """The onnxruntime module, or the install hint."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("run", feature="Running models") from None
    return ort


def resolve_provider(name: str) -> str:
    """``cuda`` → ``CUDAExecutionProvider`` (full names pass through)."""
    key = name.strip().lower()
    if key in ("auto", ""):
        return "auto"
    if key in _ALIASES:
        return _ALIASES[key]
    for full in PROVIDER_ORDER:
        if full.lower() == key:
            return full
    raise InvalidValueError(
        f"Unknown execution provider {name!r}.",
        hint="Use one of: auto, " + ", ".join(sorted(_ALIASES)) + ".",
    )


def provider_order(available: Sequence[str], preferred: str | None = None) -> list[str]:
    """The providers to try, best first, ending with CPU; ``preferred`` goes first."""
    usable = [p for p in available if p != "AzureExecutionProvider"]
    order = [p for p in PROVIDER_ORDER if p in usable]
    order += [p for p in usable if p not in order and p != "CPUExecutionProvider"]
    if preferred and preferred != "auto":
        chosen = resolve_provider(preferred)
        if chosen not in usable:
            raise InvalidValueError(
                f"{chosen} is not available in this onnxruntime.",
                hint="Available: " + ", ".join(order or ["CPUExecutionProvider"]) + ".",
            )
        order = [chosen, *[p for p in order if p != chosen]]
    if "CPUExecutionProvider" in order:
        order.remove("CPUExecutionProvider")
    return [*order, "CPUExecutionProvider"]


#: The machine-optimized copy of a graph is kept only if loading it is at least this much
#: faster than optimizing the graph again (measured on the second load).
KEEP_IF_FASTER = 0.9


def create_session(
    path: str,
    *,
    preferred: str | None = None,
    threads: int | None = None,
    graph_cache: Path | None = None,
) -> tuple[Any, str]:
    """An InferenceSession and the provider it really runs on (a missing CUDA falls back).

    With ``graph_cache`` (a folder of the store), on the CPU the graph ONNX Runtime
    optimizes is saved there the first time (it is specific to this machine and ONNX
    Runtime version), and the second load measures whether loading it is faster than
    optimizing again: it is kept only if so. Nothing is written beside the model.
    """
    import time

    ort = onnxruntime()
    providers = provider_order(ort.get_available_providers(), preferred)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = Path(path)
    cpu_only = providers[0] == "CPUExecutionProvider"
    small = source.stat().st_size < 1_500_000_000 and not any(source.parent.glob("*.onnx_data"))
    entry = _GraphCache(graph_cache, source, ort.__version__) if graph_cache else None
    if entry is None or not (cpu_only and small):
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        return session, _used(session)
    record = entry.read()
    if record.get("verdict") != "plain" and entry.graph.exists():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        started = time.perf_counter()
        session = ort.InferenceSession(str(entry.graph), sess_options=options, providers=providers)
        if "verdict" not in record:
            seconds = time.perf_counter() - started
            faster = seconds < float(record.get("plain_s", 0.0)) * KEEP_IF_FASTER
            entry.write({**record, "cached_s": seconds, "verdict": "keep" if faster else "plain"})
            if not faster:
                entry.graph.unlink(missing_ok=True)
        return session, "CPUExecutionProvider"
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tmp = entry.graph.with_name(f".{entry.graph.name}.{uuid.uuid4().hex}.tmp")
    if record.get("verdict") != "plain":  # first load, or the kept copy was pruned
        entry.graph.parent.mkdir(parents=True, exist_ok=True)
        options.optimized_model_filepath = str(tmp)
        options.log_severity_level = 3  # the "hardware specific" notice is why we cache per machine
    try:
        started = time.perf_counter()
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        if tmp.exists():
            os.replace(tmp, entry.graph)
            entry.write({"plain_s": time.perf_counter() - started})
    finally:
        tmp.unlink(missing_ok=True)
    return session, _used(session)


def _used(session: Any) -> str:
    return session.get_providers()[0] if session.get_providers() else "CPUExecutionProvider"


class _GraphCache:
    """One model's entry in the graph cache: the optimized graph and what was measured.

    The entry is named by the model file's path, size and modification time, this ONNX
    Runtime's version and the machine, so a changed model or runtime gets a new one; the
    record names the source so that pruning can drop entries whose model is gone.
    """

    def __init__(self, root: Path, source: Path, version: str) -> None:
        import hashlib
        import platform

        resolved = source.resolve()
        stat = resolved.stat()
        key = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}\0{version}\0{platform.machine()}"
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.graph = root / f"{name}.onnx"
        self.record = root / f"{name}.json"
        self.source = resolved

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write(self, data: dict[str, Any]) -> None:
        tmp = self.record.with_name(f".{self.record.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps({**data, "source": str(self.source)}))
            os.replace(tmp, self.record)
        except OSError:
            tmp.unlink(missing_ok=True)
