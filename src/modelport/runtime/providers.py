"""Execution providers: which ones exist, which to prefer, and which one a session really uses."""

from __future__ import annotations

from collections.abc import Sequence
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


def create_session(
    path: str, *, preferred: str | None = None, threads: int | None = None
) -> tuple[Any, str]:
    """An InferenceSession and the provider it really runs on (a missing CUDA falls back).

    On the CPU, the graph ONNX Runtime optimizes is saved beside the model the first time
    (it is specific to this machine and ONNX Runtime version) and loaded as is afterwards.
    """
    import os
    import platform
    import uuid
    from pathlib import Path

    ort = onnxruntime()
    providers = provider_order(ort.get_available_providers(), preferred)
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    source = Path(path)
    cached = source.with_name(
        f".{source.stem}.ort-{ort.__version__}-{platform.machine()}.optimized.onnx"
    )
    cpu_only = providers[0] == "CPUExecutionProvider"
    small = source.stat().st_size < 1_500_000_000 and not any(source.parent.glob("*.onnx_data"))
    if cpu_only and small and cached.exists():
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(cached), sess_options=options, providers=providers)
        return session, "CPUExecutionProvider"
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    tmp = cached.with_name(f"{cached.name}.{uuid.uuid4().hex}.tmp")
    if cpu_only and small and os.access(source.parent, os.W_OK):
        options.optimized_model_filepath = str(tmp)
        options.log_severity_level = 3  # the "hardware specific" notice is why we cache per machine
    try:
        session = ort.InferenceSession(path, sess_options=options, providers=providers)
        if tmp.exists():
            os.replace(tmp, cached)
    finally:
        tmp.unlink(missing_ok=True)
    used = session.get_providers()[0] if session.get_providers() else "CPUExecutionProvider"
    return session, used
