"""The catalog entry schema: one ``ModelEntry`` per model, self-hosted or hosted API.

A field left ``None`` means *unknown*, never zero or false: the catalog says what it
does not know rather than invent it. Facts that go stale (prices, context windows,
deprecations) carry the ``source_url`` and ``as_of`` date they were read from.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "Capabilities",
    "Category",
    "Deprecation",
    "InferenceDefaults",
    "LatencyProfile",
    "Lineage",
    "LoraConfig",
    "MoEConfig",
    "Modality",
    "ModelArchitecture",
    "ModelEntry",
    "Pricing",
    "Quantization",
    "Requirements",
    "Source",
    "Status",
    "TrainingDefaults",
    "catalog_json_schema",
]

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, allow_inf_nan=False, defer_build=True
    )


class Source(StrEnum):
    """Where a model runs: on your hardware, or behind a provider's API."""

    SELF_HOSTED = "self-hosted"
    API = "api"


class Category(StrEnum):
    """What kind of model it is, for browsing."""

    TEXT_LLM = "text-llm"
    VISION_VLM = "vision-vlm"
    EMBEDDING = "embedding"
    RERANKER = "reranker"
    TEXT = "text"
    AUDIO = "audio"
    VISION = "vision"
    IMAGE_GENERATION = "image-generation"
    VIDEO_GENERATION = "video-generation"
    MULTIMODAL = "multimodal"
    MODERATION = "moderation"
    OTHER = "other"


class Status(StrEnum):
    """Whether a model is ready to rely on."""

    STABLE = "stable"
    EXPERIMENTAL = "experimental"
    DEPRECATED = "deprecated"


class Modality(StrEnum):
    """A kind of input or output."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    EMBEDDING = "embedding"
    FILE = "file"


class Capabilities(_Model):
    """What a model can do; ``None`` means unknown."""

    chat: bool | None = None
    completion: bool | None = None
    embeddings: bool | None = None
    vision: bool | None = None
    audio_input: bool | None = None
    audio_output: bool | None = None
    video_input: bool | None = None
    image_output: bool | None = None
    reasoning: bool | None = None
    tool_calling: bool | None = None
    parallel_tool_calls: bool | None = None
    structured_outputs: bool | None = None
    json_mode: bool | None = None
    streaming: bool | None = None
    system_messages: bool | None = None
    fine_tuning: bool | None = None
    training: bool | None = None
    inference: bool | None = None
    prompt_caching: bool | None = None
    logprobs: bool | None = None
    temperature: bool | None = None
    web_search: bool | None = None
    moderation: bool | None = None
    reranking: bool | None = None

    def supported(self) -> list[str]:
        """The names of the capabilities known to be supported."""
        return [name for name, value in self if value is True]


CAPABILITY_NAMES: tuple[str, ...] = tuple(Capabilities.model_fields)

# Every number has a physical range, so a value the schema accepts cannot overflow later
# (10**400 as a context window used to crash ranking with OverflowError).
#: US dollars per unit: nothing is priced above a million dollars per unit.
Price = Annotated[float, Field(ge=0, le=1_000_000)]
#: Milliseconds: a latency beyond a day is no latency.
Millis = Annotated[float, Field(ge=0, le=86_400_000)]
#: Gigabytes of memory: up to a petabyte.
MemoryGB = Annotated[float, Field(ge=0, le=1_000_000)]
#: Counts and token lengths: up to a billion (context windows, layers, batch sizes).
PosInt = Annotated[int, Field(gt=0, le=1_000_000_000)]
#: Small counts that may be zero (GPUs, shared experts).
NonNegCount = Annotated[int, Field(ge=0, le=1_000_000)]
#: Parameter counts: up to a quadrillion.
ParamCount = Annotated[int, Field(gt=0, le=10**15)]


class Pricing(_Model):
    """Prices in US dollars, each with its unit in its name; ``None`` means unknown or n/a."""

    input_per_1m_tokens: Price | None = None
    output_per_1m_tokens: Price | None = None
    cached_input_per_1m_tokens: Price | None = None
    cache_write_per_1m_tokens: Price | None = None
    reasoning_output_per_1m_tokens: Price | None = None
    input_audio_per_1m_tokens: Price | None = None
    output_audio_per_1m_tokens: Price | None = None
    per_image: Price | None = None
    per_audio_minute: Price | None = None
    per_1k_characters: Price | None = None
    per_query: Price | None = None
    per_video_second: Price | None = None
    currency: Literal["USD"] = "USD"
    source_url: str | None = None
    as_of: dt.date | None = None

    def any_known(self) -> bool:
        """Whether any price is known (a pricing with none is no pricing)."""
        return any(
            value is not None
            for name, value in self
            if name not in ("currency", "source_url", "as_of")
        )

    def blended_per_1m_tokens(self, *, input_share: float = 0.75) -> float | None:
        """A single per-1M-token price for ranking: input and output weighted 3:1.

        Unknown (None) without an input price: an unknown part is never counted as free.
        An unknown output price is taken to be the input price.
        """
        inp = self.input_per_1m_tokens
        if inp is None:
            return None
        out = self.output_per_1m_tokens if self.output_per_1m_tokens is not None else inp
        return inp * input_share + out * (1 - input_share)


class LatencyProfile(_Model):
    """Expected latency: time to first token, inter-token latency, and multipliers."""

    preset: Literal["small", "medium", "large", "xlarge", "reasoning", "custom"] = "custom"
    time_to_first_token_ms: Millis | None = None
    inter_token_latency_ms_mean: Millis | None = None
    inter_token_latency_ms_std: Millis | None = None
    vision_multiplier: Annotated[float, Field(ge=1, le=1000)] = 1.0
    audio_multiplier: Annotated[float, Field(ge=1, le=1000)] = 1.0
    video_multiplier: Annotated[float, Field(ge=1, le=1000)] = 1.0
    reasoning_multiplier: Annotated[float, Field(ge=1, le=1000)] = 1.0
    tool_call_multiplier: Annotated[float, Field(ge=1, le=1000)] = 1.0
    source_url: str | None = None
    as_of: dt.date | None = None

    @classmethod
    def from_preset(cls, preset: str) -> LatencyProfile:
        """A typical profile for a model size class (rough, for planning)."""
        presets: dict[str, tuple[float, float, float, float]] = {
            # ttft ms, itl mean ms, itl std ms, reasoning multiplier
            "small": (200.0, 8.0, 2.0, 1.0),
            "medium": (350.0, 15.0, 4.0, 1.0),
            "large": (600.0, 25.0, 7.0, 1.0),
            "xlarge": (1000.0, 40.0, 12.0, 1.0),
            "reasoning": (2500.0, 20.0, 6.0, 4.0),
        }
        if preset not in presets:
            raise ValueError(f"unknown latency preset {preset!r}; use one of {sorted(presets)}")
        ttft, itl, std, reasoning = presets[preset]
        return cls(
            preset=preset,
            time_to_first_token_ms=ttft,
            inter_token_latency_ms_mean=itl,
            inter_token_latency_ms_std=std,
            vision_multiplier=1.3,
            audio_multiplier=1.2,
            video_multiplier=2.0,
            reasoning_multiplier=reasoning,
            tool_call_multiplier=1.1,
        )

    def estimate_ms(self, output_tokens: int, *, reasoning: bool = False) -> float | None:
        """Expected wall time for a response of ``output_tokens`` tokens."""
        if self.time_to_first_token_ms is None or self.inter_token_latency_ms_mean is None:
            return None
        total = self.time_to_first_token_ms + output_tokens * self.inter_token_latency_ms_mean
        return total * (self.reasoning_multiplier if reasoning else 1.0)


class Requirements(_Model):
    """Hardware a self-hosted model needs to run (inference, 16-bit unless quantized)."""

    min_vram_gb: MemoryGB | None = None
    recommended_vram_gb: MemoryGB | None = None
    min_ram_gb: MemoryGB | None = None
    min_compute_capability: str | None = Field(default=None, pattern=r"^\d+\.\d+$")
    min_gpus: NonNegCount | None = None

    @model_validator(mode="after")
    def _recommended_not_below_min(self) -> Requirements:
        if (
            self.min_vram_gb is not None
            and self.recommended_vram_gb is not None
            and self.recommended_vram_gb < self.min_vram_gb
        ):
            raise ValueError("recommended_vram_gb must not be below min_vram_gb")
        return self


class Quantization(_Model):
    """How the published weights are quantized."""

    method: Literal["none", "bitsandbytes", "awq", "gptq", "gguf", "fp8", "mxfp4", "int8"] = "none"
    type: str | None = Field(default=None, description="e.g. nf4, int4, int8, fp8, q4_k_m")
    bits: Annotated[float, Field(gt=0, le=32)] | None = None


class MoEConfig(_Model):
    """Mixture-of-experts layout."""

    total_parameters: ParamCount | None = None
    active_parameters: ParamCount | None = None
    num_experts: PosInt
    experts_per_token: PosInt
    shared_experts: NonNegCount = 0

    @model_validator(mode="after")
    def _consistent(self) -> MoEConfig:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts_per_token cannot exceed num_experts")
        if (
            self.total_parameters is not None
            and self.active_parameters is not None
            and self.active_parameters > self.total_parameters
        ):
            raise ValueError("active_parameters cannot exceed total_parameters")
        return self


class ModelArchitecture(_Model):
    """Shape facts needed for memory estimates (from the model's config.json)."""

    num_layers: PosInt | None = None
    hidden_size: PosInt | None = None
    num_attention_heads: PosInt | None = None
    num_key_value_heads: PosInt | None = None
    head_dim: PosInt | None = None
    vocab_size: PosInt | None = None
    intermediate_size: PosInt | None = None

    def kv_head_dim(self) -> tuple[int, int] | None:
        """(kv heads, head dim), derived where the config leaves one out."""
        heads = self.num_key_value_heads or self.num_attention_heads
        head_dim = self.head_dim
        if head_dim is None and self.hidden_size and self.num_attention_heads:
            head_dim = self.hidden_size // self.num_attention_heads
        if heads is None or head_dim is None:
            return None
        return heads, head_dim


class Deprecation(_Model):
    """Why and when a model is deprecated."""

    message: str
    deprecation_date: dt.date | None = None
    replacement: str | None = None


class Lineage(_Model):
    """Where a model comes from: its direct parent, the base it was tuned from, the root."""

    base_model: str | None = None
    parent: str | None = None
    root: str | None = None
    relation: Literal["finetune", "adapter", "quantized", "merge", "distillation"] | None = None


class LoraConfig(_Model):
    """LoRA adapter settings."""

    r: PosInt = 16
    alpha: PosInt = 16
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    use_rslora: bool = False


class TrainingDefaults(_Model):
    """Fine-tuning hyperparameters that work for this model."""

    method: Literal["full", "lora", "qlora"] = "lora"
    learning_rate: Annotated[float, Field(gt=0, lt=1)] = 2e-4
    epochs: Annotated[float, Field(gt=0, le=1000)] = 1
    per_device_batch_size: PosInt = 2
    gradient_accumulation_steps: PosInt = 4
    max_seq_length: PosInt = 2048
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    weight_decay: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lr_scheduler: str = "linear"
    optimizer: str = "adamw_8bit"
    gradient_checkpointing: bool = True
    load_in_4bit: bool = False
    lora: LoraConfig | None = Field(default_factory=LoraConfig)
    selective_loss: Literal["all", "responses_only", "completion_only"] = Field(
        default="responses_only",
        description="Which tokens carry loss: everything, assistant responses, or completions.",
    )


class InferenceDefaults(_Model):
    """Serving settings (vLLM-style names) that work for this model."""

    max_model_len: PosInt | None = None
    dtype: Literal["auto", "float32", "float16", "bfloat16", "int8", "int4", "fp8"] = "auto"
    gpu_memory_utilization: Annotated[float, Field(gt=0, le=1)] = 0.9
    quantization: str | None = None
    tensor_parallel_size: PosInt = 1
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_tokens: PosInt | None = None


_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/+@-]*$")


class ModelEntry(_Model):
    """Everything the catalog knows about one model."""

    id: str = Field(min_length=1, max_length=256, description="Unique id, e.g. openai/gpt-4o.")
    name: str = Field(min_length=1, description="Human-readable name.")
    provider: str = Field(min_length=1, description="Who serves or publishes it (lowercase).")
    source: Source
    category: Category
    tasks: list[str] = Field(default_factory=list, description="Hugging Face pipeline tasks.")
    aliases: list[str] = Field(default_factory=list)
    architecture: str | None = None
    model_family: str | None = None
    parameters: ParamCount | None = Field(default=None, description="Total parameter count.")
    active_parameters: ParamCount | None = Field(
        default=None, description="Parameters active per token (MoE)."
    )
    moe: MoEConfig | None = None
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    status: Status = Status.STABLE
    deprecation: Deprecation | None = None
    lineage: Lineage | None = None
    license: str | None = None
    open_weights: bool | None = None
    hugging_face_id: str | None = None
    input_modalities: list[Modality] = Field(default_factory=lambda: [Modality.TEXT])
    output_modalities: list[Modality] = Field(default_factory=lambda: [Modality.TEXT])
    context_window: PosInt | None = None
    max_output_tokens: PosInt | None = None
    knowledge_cutoff: dt.date | None = None
    release_date: dt.date | None = None
    capabilities: Capabilities = Field(default_factory=Capabilities)
    pricing: Pricing | None = None
    latency: LatencyProfile | None = None
    requirements: Requirements | None = None
    quantization: Quantization | None = None
    model_architecture: ModelArchitecture | None = None
    training_defaults: TrainingDefaults | None = None
    inference_defaults: InferenceDefaults | None = None
    urls: dict[str, str] = Field(default_factory=dict)
    source_url: str | None = Field(default=None, description="Where the facts were read.")
    as_of: dt.date | None = Field(default=None, description="When the facts were read.")
    notes: str = Field(default="", description="Caveats, and which facts are unknown.")

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not _ID_RE.match(value) or ".." in value or value.endswith("/"):
            raise ValueError(
                "id may hold letters, digits and _ . : / + @ - and must not contain '..'"
            )
        return value

    @field_validator("provider")
    @classmethod
    def _provider_lower(cls, value: str) -> str:
        if value != value.lower() or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", value):
            raise ValueError("provider must be a lowercase name like 'openai' or 'meta'")
        return value

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: list[str]) -> list[str]:
        from modelport.catalog.tasks import canonical_task

        canonical: list[str] = []
        for task in value:
            try:
                name = canonical_task(task)
            except ValueError as e:
                raise ValueError(str(e).rstrip(".") + " (see `modelport tasks`)") from None
            if name not in canonical:
                canonical.append(name)
        return canonical

    @field_validator("tags")
    @classmethod
    def _tags_lower(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(tag.strip().lower() for tag in value if tag.strip()))

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        if self.status is Status.DEPRECATED and self.deprecation is None:
            raise ValueError("a deprecated entry needs 'deprecation' with a message")
        if (
            self.parameters is not None
            and self.active_parameters is not None
            and self.active_parameters > self.parameters
        ):
            raise ValueError("active_parameters cannot exceed parameters")
        if (
            self.context_window is not None
            and self.max_output_tokens is not None
            and self.max_output_tokens > self.context_window
            and self.source is Source.SELF_HOSTED
        ):
            raise ValueError("max_output_tokens cannot exceed context_window")
        return self

    # Convenience views used by indexes and ranking.
    @property
    def is_api(self) -> bool:
        """Whether it is a hosted API model."""
        return self.source is Source.API

    @property
    def effective_parameters(self) -> int | None:
        """Parameters that must be held in memory (all of them, even for MoE)."""
        if self.parameters is not None:
            return self.parameters
        if self.moe is not None and self.moe.total_parameters is not None:
            return self.moe.total_parameters
        return None

    @property
    def weights_bytes(self) -> int | None:
        """What its published weights weigh: parameters × their bits (16 unless quantized).

        A bnb-4bit model is a quarter of its 16-bit base; a hosted API model has none.
        """
        params = self.effective_parameters
        if params is None or self.source is Source.API:
            return None
        quant = self.quantization
        bits = quant.bits if quant is not None and quant.method != "none" and quant.bits else 16
        return int(params * bits / 8)

    def search_text(self) -> str:
        """Text that fuzzy search matches against."""
        return " ".join([self.id, self.name, *self.aliases])

    def to_json_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data, leaving out unset and empty fields."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def catalog_json_schema() -> dict[str, Any]:
    """The JSON Schema of a catalog file: an object with ``entries``, or a bare list."""
    entry_schema = ModelEntry.model_json_schema()
    defs = entry_schema.pop("$defs", {})
    defs["ModelEntry"] = entry_schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://modelport.dev/schema/catalog-v1.json",
        "title": "modelport catalog",
        "description": "A list of modelport catalog entries, bare or under 'entries'.",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "schema_version": {"const": SCHEMA_VERSION},
                    "provider": {"type": "string"},
                    "source": {"type": "string"},
                    "as_of": {"type": "string", "format": "date"},
                    "entries": {"type": "array", "items": {"$ref": "#/$defs/ModelEntry"}},
                },
                "required": ["entries"],
                "additionalProperties": False,
            },
            {"type": "array", "items": {"$ref": "#/$defs/ModelEntry"}},
        ],
        "$defs": defs,
    }
