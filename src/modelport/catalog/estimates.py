"""Memory, latency and cost estimates, each reported as its parts."""

from __future__ import annotations

from dataclasses import dataclass

from modelport.catalog.entry import LatencyProfile, ModelEntry, Pricing
from modelport.catalog.ids import infer_traits
from modelport.errors import InvalidValueError

__all__ = [
    "BYTES_PER_PARAM",
    "CostEstimate",
    "MemoryEstimate",
    "bytes_per_param",
    "call_cost",
    "estimate_cost",
    "estimate_inference_memory",
    "estimate_training_memory",
    "latency_profile",
]

GB = 1e9

#: Bytes per weight for each dtype or quantization.
BYTES_PER_PARAM: dict[str, float] = {
    "float32": 4.0,
    "fp32": 4.0,
    "float16": 2.0,
    "fp16": 2.0,
    "bfloat16": 2.0,
    "bf16": 2.0,
    "auto": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "8bit": 1.0,
    "int4": 0.5,
    "4bit": 0.5,
    "nf4": 0.5,
    "awq": 0.5,
    "gptq": 0.5,
    "mxfp4": 0.53,
    "q8_0": 1.06,
    "q6_k": 0.82,
    "q5_k_m": 0.71,
    "q4_k_m": 0.6,
    "q3_k_m": 0.49,
    "q2_k": 0.41,
}

# CUDA context, allocator slack and activations for modest batch sizes.
_OVERHEAD_FRACTION = 0.10
_OVERHEAD_FIXED_GB = 0.5


def bytes_per_param(dtype: str) -> float:
    """Bytes per weight for a dtype or quantization name."""
    key = dtype.strip().lower().replace("-", "_")
    if key not in BYTES_PER_PARAM:
        raise InvalidValueError(
            f"Unknown dtype or quantization {dtype!r}.",
            hint="Use one of: " + ", ".join(sorted(BYTES_PER_PARAM)) + ".",
        )
    return BYTES_PER_PARAM[key]


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated memory in GB, as parts that add up to ``total_gb``."""

    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float
    gradients_gb: float = 0.0
    optimizer_gb: float = 0.0
    activations_gb: float = 0.0
    dtype: str = "bfloat16"
    context: int = 0
    method: str = "inference"
    assumptions: tuple[str, ...] = ()

    @property
    def total_gb(self) -> float:
        """Sum of the parts."""
        return round(
            self.weights_gb
            + self.kv_cache_gb
            + self.overhead_gb
            + self.gradients_gb
            + self.optimizer_gb
            + self.activations_gb,
            3,
        )


def _parameters(entry: ModelEntry) -> tuple[int | None, list[str]]:
    if entry.effective_parameters is not None:
        return entry.effective_parameters, []
    traits = infer_traits(entry.id)
    if traits.parameters is not None:
        return traits.parameters, [f"parameter count {traits.parameters:,} guessed from the id"]
    return None, []


def _default_dtype(entry: ModelEntry) -> str:
    if entry.quantization is not None and entry.quantization.method != "none":
        if entry.quantization.bits is not None and entry.quantization.bits <= 4.5:
            return "int4"
        if entry.quantization.bits is not None and entry.quantization.bits <= 8:
            return "int8"
    return "bfloat16"


def kv_cache_gb(
    entry: ModelEntry, *, context: int, batch_size: int = 1, kv_dtype_bytes: float = 2.0
) -> tuple[float, list[str]]:
    """KV cache: 2 × layers × kv_heads × head_dim × context × bytes × batch, in GB."""
    arch = entry.model_architecture
    shape = arch.kv_head_dim() if arch else None
    if arch is None or arch.num_layers is None or shape is None:
        return 0.0, ["KV cache not estimated: the entry lacks layer and head counts"]
    heads, head_dim = shape
    total = 2 * arch.num_layers * heads * head_dim * context * kv_dtype_bytes * batch_size
    return total / GB, []


def estimate_inference_memory(
    entry: ModelEntry,
    *,
    dtype: str | None = None,
    context: int | None = None,
    batch_size: int = 1,
) -> MemoryEstimate:
    """Memory to serve a model: weights + KV cache + overhead."""
    if batch_size < 1:
        raise InvalidValueError(f"batch_size must be at least 1, got {batch_size}.")
    if context is not None and context < 1:
        raise InvalidValueError(f"context must be at least 1 token, got {context}.")
    params, notes = _parameters(entry)
    if params is None:
        raise InvalidValueError(
            f"Cannot estimate memory for {entry.id}: its parameter count is unknown.",
            hint="Add 'parameters' to the entry.",
        )
    dtype = dtype or _default_dtype(entry)
    weights = params * bytes_per_param(dtype) / GB
    ctx = context
    if ctx is None:
        ctx = (
            entry.inference_defaults.max_model_len
            if entry.inference_defaults and entry.inference_defaults.max_model_len
            else min(entry.context_window or 2048, 8192)
        )
    kv, kv_notes = kv_cache_gb(entry, context=ctx, batch_size=batch_size)
    overhead = _OVERHEAD_FIXED_GB + _OVERHEAD_FRACTION * (weights + kv)
    return MemoryEstimate(
        weights_gb=round(weights, 3),
        kv_cache_gb=round(kv, 3),
        overhead_gb=round(overhead, 3),
        dtype=dtype,
        context=ctx,
        method="inference",
        assumptions=tuple(notes + kv_notes),
    )


def estimate_training_memory(
    entry: ModelEntry,
    *,
    method: str = "lora",
    context: int = 2048,
    batch_size: int = 1,
    lora_rank: int = 16,
) -> MemoryEstimate:
    """Memory to fine-tune: full (mixed precision AdamW), LoRA, or QLoRA (4-bit base)."""
    if method not in ("full", "lora", "qlora"):
        raise InvalidValueError(
            f"Unknown training method {method!r}.", hint="Use full, lora or qlora."
        )
    if context < 1 or batch_size < 1 or lora_rank < 1:
        raise InvalidValueError("context, batch_size and lora_rank must be at least 1.")
    params, notes = _parameters(entry)
    if params is None:
        raise InvalidValueError(
            f"Cannot estimate memory for {entry.id}: its parameter count is unknown.",
            hint="Add 'parameters' to the entry.",
        )
    arch = entry.model_architecture
    hidden = arch.hidden_size if arch and arch.hidden_size else None
    layers = arch.num_layers if arch and arch.num_layers else None
    if hidden is None or layers is None:
        # A dense transformer has about 12 × layers × hidden² parameters.
        layers = layers or 32
        hidden = hidden or max(256, int((params / (12 * layers)) ** 0.5))
        notes.append("layer count and width guessed from the parameter count")
    # Activations with gradient checkpointing: about one hidden state per layer per token.
    activations = 2 * layers * hidden * context * batch_size * 2 / GB
    if method == "full":
        weights = params * 2 / GB  # bf16 weights
        grads = params * 2 / GB
        optimizer = params * 12 / GB  # fp32 master weights + two Adam moments
        dtype = "bfloat16"
    else:
        dtype = "int4" if method == "qlora" else "bfloat16"
        weights = params * bytes_per_param(dtype) / GB
        # LoRA on the four attention projections: 2 × r × hidden per projection per layer.
        lora_params = 4 * layers * 2 * lora_rank * hidden
        grads = lora_params * 2 / GB
        optimizer = lora_params * 12 / GB
    overhead = _OVERHEAD_FIXED_GB + _OVERHEAD_FRACTION * weights
    return MemoryEstimate(
        weights_gb=round(weights, 3),
        kv_cache_gb=0.0,
        overhead_gb=round(overhead, 3),
        gradients_gb=round(grads, 3),
        optimizer_gb=round(optimizer, 3),
        activations_gb=round(activations, 3),
        dtype=dtype,
        context=context,
        method=method,
        assumptions=tuple(notes),
    )


@dataclass(frozen=True)
class CostEstimate:
    """Estimated cost in USD of a workload on a hosted model."""

    input_usd: float
    output_usd: float
    cached_input_usd: float

    @property
    def total_usd(self) -> float:
        """Sum of the parts."""
        return round(self.input_usd + self.output_usd + self.cached_input_usd, 6)


def estimate_cost(
    entry: ModelEntry,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
) -> CostEstimate | None:
    """Cost of a token workload at the entry's prices, or None if they are unknown."""
    if min(input_tokens, output_tokens, cached_input_tokens) < 0:
        raise InvalidValueError("Token counts must not be negative.")
    p = entry.pricing
    if p is None or p.input_per_1m_tokens is None or p.output_per_1m_tokens is None:
        return None
    cached_rate = (
        p.cached_input_per_1m_tokens
        if p.cached_input_per_1m_tokens is not None
        else p.input_per_1m_tokens
    )
    return CostEstimate(
        input_usd=round(input_tokens * p.input_per_1m_tokens / 1e6, 6),
        output_usd=round(output_tokens * p.output_per_1m_tokens / 1e6, 6),
        cached_input_usd=round(cached_input_tokens * cached_rate / 1e6, 6),
    )


def call_cost(
    pricing: Pricing | None,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> float | None:
    """What one call cost in USD at these prices, or None when any priced part is unknown.

    ``cached_tokens`` are part of ``input_tokens`` (read from the provider's prompt cache)
    and ``reasoning_tokens`` part of ``output_tokens``, as providers report them. Unlike
    ``estimate_cost`` nothing is guessed: a part that has tokens but no price makes the
    whole cost unknown (never 0), and a part with no tokens needs no price.
    """
    if pricing is None or input_tokens is None or output_tokens is None:
        return None
    if min(input_tokens, output_tokens, cached_tokens, reasoning_tokens) < 0:
        raise InvalidValueError("Token counts must not be negative.")
    if cached_tokens > input_tokens or reasoning_tokens > output_tokens:
        raise InvalidValueError(
            "Cached tokens are part of the input tokens and reasoning tokens part of the "
            f"output tokens: got {cached_tokens} cached of {input_tokens} input and "
            f"{reasoning_tokens} reasoning of {output_tokens} output."
        )
    reasoning_rate = (
        pricing.reasoning_output_per_1m_tokens
        if pricing.reasoning_output_per_1m_tokens is not None
        else pricing.output_per_1m_tokens
    )
    parts = (
        (input_tokens - cached_tokens, pricing.input_per_1m_tokens),
        (cached_tokens, pricing.cached_input_per_1m_tokens),
        (output_tokens - reasoning_tokens, pricing.output_per_1m_tokens),
        (reasoning_tokens, reasoning_rate),
    )
    total = 0.0
    for count, rate in parts:
        if count == 0:
            continue
        if rate is None:
            return None
        total += count * rate / 1e6
    # Float noise (0.1 + 0.2) is far below a cent: drop it so equal costs compare equal.
    return round(total, 10)


_SMALL_HINTS = ("mini", "nano", "flash", "haiku", "lite", "small", "tiny")
#: The presets, built once (a simulated call asks for one every time).
_PRESETS: dict[str, LatencyProfile] = {}


def _preset(name: str) -> LatencyProfile:
    preset = _PRESETS.get(name)
    if preset is None:
        preset = _PRESETS[name] = LatencyProfile.from_preset(name)
    return preset


def latency_profile(entry: ModelEntry) -> LatencyProfile:
    """The entry's latency profile, its unknown parts filled from a preset by size (``small``
    below 10B active parameters or with ``mini``/``nano``/``flash``/``haiku``/``lite``/
    ``small``/``tiny`` in its id, ``medium`` below 40B and by default, ``large`` below 200B,
    ``xlarge`` above; a reasoning model takes the ``reasoning`` preset's multiplier)."""
    params = entry.active_parameters or entry.parameters
    if params is not None:
        size = (
            "small"
            if params < 10e9
            else "medium"
            if params < 40e9
            else "large"
            if params < 200e9
            else "xlarge"
        )
    else:
        size = "small" if any(h in entry.id.lower() for h in _SMALL_HINTS) else "medium"
    preset = _preset(size)
    if entry.capabilities.reasoning:
        reasoning = _preset("reasoning").reasoning_multiplier
        preset = preset.model_copy(update={"reasoning_multiplier": reasoning})
    own = entry.latency
    if own is None:
        return preset
    names = ("time_to_first_token_ms", "inter_token_latency_ms_mean", "inter_token_latency_ms_std")
    fill = {name: getattr(preset, name) for name in names if getattr(own, name) is None}
    return own.model_copy(update=fill) if fill else own
