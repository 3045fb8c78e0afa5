"""Can this model be trained or served on this machine, why not, and what would make it fit."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from modelport.catalog.entry import (
    InferenceDefaults,
    LoraConfig,
    ModelEntry,
    Status,
    TrainingDefaults,
)
from modelport.catalog.estimates import (
    MemoryEstimate,
    estimate_inference_memory,
    estimate_training_memory,
)
from modelport.errors import InvalidValueError
from modelport.hardware import SystemInfo, _cc_tuple

__all__ = ["FitLevel", "ValidationResult", "fit_by_size", "merge_defaults", "validate_model"]

Purpose = Literal["inference", "training"]
_M = TypeVar("_M", bound=BaseModel)

#: What changes with the training method when the entry's defaults are for another one.
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "full": {"load_in_4bit": False, "lora": None, "learning_rate": 2e-5},
    "lora": {"load_in_4bit": False},
    "qlora": {"load_in_4bit": True},
}

# Leave room for fragmentation and other processes.
_GPU_COMFORT = 0.85
_CPU_COMFORT = 0.70
_CPU_LIMIT = 0.90


class FitLevel(StrEnum):
    """How well a model fits the machine."""

    FITS = "fits"
    TIGHT = "tight"
    DOES_NOT_FIT = "does-not-fit"


@dataclass(frozen=True)
class ValidationResult:
    """The verdict, every reason behind it, and what would make it fit."""

    model_id: str
    purpose: Purpose
    fit: FitLevel
    target: Literal["gpu", "cpu", "api"]
    reasons: tuple[str, ...]
    suggestions: tuple[str, ...] = ()
    estimate: MemoryEstimate | None = None
    available_gb: float | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether it fits, comfortably or tightly."""
        return self.fit is not FitLevel.DOES_NOT_FIT


def merge_defaults(base: _M | None, overrides: dict[str, Any] | None, model: type[_M]) -> _M:
    """Entry defaults ← user overrides; unknown keys and invalid values are rejected."""
    overrides = overrides or {}
    known = set(model.model_fields)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidValueError(
            f"Unknown {model.__name__} setting(s): {', '.join(unknown)}.",
            hint="Known settings: " + ", ".join(sorted(known)) + ".",
        )
    data = (base or model()).model_dump()
    data.update(overrides)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidValueError(
            f"Invalid {model.__name__} value for {where}: {err['msg']}."
        ) from None


def fit_by_size(size_bytes: int, system: SystemInfo) -> tuple[FitLevel, float]:
    """Whether weights of this many bytes fit here, when nothing else is known; and the GB."""
    need = size_bytes * 1.2 / 1e9 + 0.5
    room = system.max_gpu_memory_gb or system.ram_gb * _CPU_COMFORT
    return (FitLevel.FITS if need <= room else FitLevel.DOES_NOT_FIT), need


def _fit(need: float, available: float, comfort: float, limit: float = 1.0) -> FitLevel:
    if need <= available * comfort:
        return FitLevel.FITS
    if need <= available * limit:
        return FitLevel.TIGHT
    return FitLevel.DOES_NOT_FIT


def _available(entry: ModelEntry, system: SystemInfo, parallel: int) -> tuple[str, float]:
    if system.gpus:
        if parallel > 1 or (entry.requirements and (entry.requirements.min_gpus or 1) > 1):
            return "gpu", system.total_vram_gb
        return "gpu", system.max_gpu_memory_gb
    return "cpu", system.ram_gb


def validate_model(
    entry: ModelEntry,
    system: SystemInfo,
    *,
    purpose: Purpose = "inference",
    dtype: str | None = None,
    context: int | None = None,
    method: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> ValidationResult:
    """Check whether ``entry`` can be used for ``purpose`` on ``system``."""
    if purpose not in ("inference", "training"):
        raise InvalidValueError(f"Unknown purpose {purpose!r}.", hint="Use inference or training.")
    if method is not None and method not in _METHOD_DEFAULTS:
        raise InvalidValueError(
            f"Unknown training method {method!r}.", hint="Use full, lora or qlora."
        )
    if entry.is_api:
        result = _validate_api(entry, purpose)
    elif purpose == "inference":
        result = _validate_inference(
            entry, system, dtype=dtype, context=context, overrides=overrides
        )
    else:
        result = _validate_training(
            entry, system, method=method, context=context, overrides=overrides
        )
    warnings = _warnings(entry)
    if not warnings:
        return result
    suggestions = result.suggestions
    if entry.deprecation and entry.deprecation.replacement:
        suggestions = (*suggestions, f"use its replacement {entry.deprecation.replacement}")
    return replace(result, warnings=warnings, suggestions=suggestions)


def _warnings(entry: ModelEntry) -> tuple[str, ...]:
    """What a user should know before choosing this model, fit or not."""
    if entry.status is Status.DEPRECATED or entry.deprecation is not None:
        message = entry.deprecation.message if entry.deprecation else "no reason given"
        when = entry.deprecation.deprecation_date if entry.deprecation else None
        return (f"deprecated{f' since {when}' if when else ''}: {message}",)
    return ()


def _validate_api(entry: ModelEntry, purpose: Purpose) -> ValidationResult:
    if purpose == "inference":
        reasons = [f"hosted by {entry.provider}: needs an API key, no local hardware"]
        return ValidationResult(entry.id, purpose, FitLevel.FITS, "api", tuple(reasons))
    if entry.capabilities.fine_tuning:
        return ValidationResult(
            entry.id,
            purpose,
            FitLevel.FITS,
            "api",
            (f"{entry.provider} offers fine-tuning of this model through its API",),
        )
    why = (
        f"{entry.provider} does not offer fine-tuning of this model"
        if entry.capabilities.fine_tuning is False
        else f"the catalog does not know whether {entry.provider} offers fine-tuning of it"
    )
    return ValidationResult(
        entry.id,
        purpose,
        FitLevel.DOES_NOT_FIT,
        "api",
        (why,),
        ("choose an open-weights model to fine-tune locally",),
    )


def _hardware_reasons(entry: ModelEntry, system: SystemInfo, target: str) -> list[str]:
    blockers: list[str] = []
    req = entry.requirements
    if req is None:
        return blockers
    if req.min_gpus and len(system.gpus) < req.min_gpus:
        blockers.append(f"needs {req.min_gpus} GPU(s), this machine has {len(system.gpus)}")
    have_cc = system.min_compute_capability
    if (
        req.min_compute_capability
        and have_cc
        and _cc_tuple(have_cc) < _cc_tuple(req.min_compute_capability)
    ):
        blockers.append(
            f"needs CUDA compute capability {req.min_compute_capability}, the GPU has {have_cc}"
        )
    # RAM limits a CPU run; a GPU run streams safetensors weights and needs far less.
    if target == "cpu" and req.min_ram_gb and system.ram_gb < req.min_ram_gb:
        blockers.append(
            f"needs {req.min_ram_gb:g} GB of RAM, this machine has {system.ram_gb:g} GB"
        )
    return blockers


def _validate_inference(
    entry: ModelEntry,
    system: SystemInfo,
    *,
    dtype: str | None,
    context: int | None,
    overrides: dict[str, Any] | None,
) -> ValidationResult:
    defaults = merge_defaults(entry.inference_defaults, overrides, InferenceDefaults)
    if dtype is None and defaults.dtype != "auto":
        dtype = defaults.dtype
    if context is None:
        context = defaults.max_model_len
    est = estimate_inference_memory(entry, dtype=dtype, context=context)
    target, available = _available(entry, system, defaults.tensor_parallel_size)
    comfort, limit = (_GPU_COMFORT, 1.0) if target == "gpu" else (_CPU_COMFORT, _CPU_LIMIT)
    fit = _fit(est.total_gb, available, comfort, limit)
    where = "GPU memory" if target == "gpu" else "RAM (no GPU: runs on the CPU)"
    reasons = [
        f"needs about {est.total_gb:g} GB ({est.dtype}, {est.context} tokens), "
        f"{available:g} GB of {where} available"
    ]
    reasons.extend(est.assumptions)
    blockers = _hardware_reasons(entry, system, target)
    if blockers:
        fit = FitLevel.DOES_NOT_FIT
        reasons.extend(blockers)
    if target == "cpu" and (entry.effective_parameters or 0) > 3e9:
        reasons.append("without a GPU a model this size generates only a few tokens per second")
    suggestions: list[str] = []
    if fit is not FitLevel.FITS and not blockers:
        for smaller in ("int8", "int4"):
            if est.dtype in ("int4",) or smaller == est.dtype:
                continue
            alt = estimate_inference_memory(entry, dtype=smaller, context=est.context)
            if _fit(alt.total_gb, available, comfort, limit) is FitLevel.FITS:
                suggestions.append(f"quantize to {smaller} (about {alt.total_gb:g} GB)")
                break
        if est.kv_cache_gb > 0:
            ctx = est.context
            while ctx > 512:
                ctx //= 2
                alt = estimate_inference_memory(entry, dtype=est.dtype, context=ctx)
                if _fit(alt.total_gb, available, comfort, limit) is FitLevel.FITS:
                    suggestions.append(
                        f"limit the context to {ctx} tokens (about {alt.total_gb:g} GB)"
                    )
                    break
        if target == "cpu":
            needed = est.total_gb / _GPU_COMFORT
            suggestions.append(f"use a GPU with at least {needed:.0f} GB")
        elif not suggestions:
            smallest = estimate_inference_memory(
                entry, dtype="int4", context=min(est.context, 4096)
            )
            needed = smallest.total_gb / _GPU_COMFORT
            gpus = max(2, math.ceil(needed / max(available, 1e-9)))
            suggestions.append(
                f"even int4 with a 4K context needs about {smallest.total_gb:g} GB: use "
                f"{gpus} GPUs like this one with tensor_parallel_size={gpus}, "
                f"or a hosted API model"
            )
    return ValidationResult(
        entry.id,
        "inference",
        fit,
        target,  # type: ignore[arg-type]
        tuple(reasons),
        tuple(suggestions),
        est,
        available,
        defaults.model_dump(mode="json"),
    )


def _validate_training(
    entry: ModelEntry,
    system: SystemInfo,
    *,
    method: str | None,
    context: int | None,
    overrides: dict[str, Any] | None,
) -> ValidationResult:
    base = entry.training_defaults or TrainingDefaults()
    if method is not None and method != base.method:
        # The entry's defaults are for another method: take that method's own settings.
        update: dict[str, Any] = {"method": method, **_METHOD_DEFAULTS[method]}
        if method != "full":
            update["lora"] = base.lora or LoraConfig()
        base = base.model_copy(update=update)
    defaults = merge_defaults(base, overrides, TrainingDefaults)
    method = defaults.method
    context = context or defaults.max_seq_length
    est = estimate_training_memory(
        entry,
        method=method,
        context=context,
        batch_size=defaults.per_device_batch_size,
        lora_rank=defaults.lora.r if defaults.lora else 16,
    )
    target, available = _available(entry, system, 1)
    reasons = [
        f"{method} fine-tuning needs about {est.total_gb:g} GB, "
        f"{available:g} GB of {'GPU memory' if target == 'gpu' else 'RAM'} available"
    ]
    reasons.extend(est.assumptions)
    refusal = None
    if entry.open_weights is False:
        refusal = "its weights are not published: it cannot be fine-tuned locally"
    elif entry.capabilities.training is False:
        refusal = "the catalog marks it as not trainable (capabilities.training is false)"
    if refusal is not None:
        return ValidationResult(
            entry.id,
            "training",
            FitLevel.DOES_NOT_FIT,
            target,  # type: ignore[arg-type]
            (refusal,),
            (),
            est,
            available,
            defaults.model_dump(mode="json"),
        )
    if target == "gpu":
        fit = _fit(est.total_gb, available, _GPU_COMFORT)
    else:
        small = (entry.effective_parameters or 0) <= 500e6
        fit = (
            _fit(est.total_gb, available, _CPU_COMFORT, _CPU_LIMIT)
            if small
            else FitLevel.DOES_NOT_FIT
        )
        reasons.append(
            "no GPU: only small models (≤ 500M parameters) train in reasonable time on a CPU"
        )
    blockers = _hardware_reasons(entry, system, target)
    if blockers:
        fit = FitLevel.DOES_NOT_FIT
        reasons.extend(blockers)
    suggestions: list[str] = []
    if fit is not FitLevel.FITS and not blockers and target == "gpu":
        for alt_method in ("lora", "qlora"):
            if alt_method == method or (method == "qlora"):
                continue
            alt = estimate_training_memory(entry, method=alt_method, context=context)
            if _fit(alt.total_gb, available, _GPU_COMFORT) is FitLevel.FITS:
                suggestions.append(f"use {alt_method} (about {alt.total_gb:g} GB)")
                break
        ctx = context
        while ctx > 256:
            ctx //= 2
            alt = estimate_training_memory(entry, method=method, context=ctx)
            if _fit(alt.total_gb, available, _GPU_COMFORT) is FitLevel.FITS:
                suggestions.append(
                    f"train on sequences of {ctx} tokens (about {alt.total_gb:g} GB)"
                )
                break
    if target == "cpu" and fit is FitLevel.DOES_NOT_FIT:
        suggestions.append(f"use a GPU with at least {est.total_gb / _GPU_COMFORT:.0f} GB")
    return ValidationResult(
        entry.id,
        "training",
        fit,
        target,  # type: ignore[arg-type]
        tuple(reasons),
        tuple(suggestions),
        est,
        available,
        defaults.model_dump(mode="json"),
    )
