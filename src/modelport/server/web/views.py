"""What the pages show of a catalog entry, as rows of label, value and unit: the facts, the
capabilities, the prices, the latency profile, the requirements and the lineage. Values
are read from the entry (and the catalog's own derivations: ``weights_bytes``,
``estimate_ms``), never recomputed here; an unknown value reads "unknown"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport import units as fmt

if TYPE_CHECKING:
    from modelport.api.compare import Comparison
    from modelport.catalog.entry import ModelEntry

__all__ = [
    "Badge",
    "CompareRow",
    "Fact",
    "Provenance",
    "capability_badges",
    "compare_rows",
    "entry_facts",
    "latency_facts",
    "lineage_facts",
    "price_facts",
    "provenance",
    "requirement_facts",
]

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Fact:
    """One fact: what it is, its value, and the unit the value is in."""

    label: str
    value: str
    unit: str = ""
    #: A page of this UI about the value (a related model), when there is one.
    href: str | None = None
    known: bool = True


@dataclass(frozen=True)
class Provenance:
    """Where a group of facts was read, and when."""

    url: str | None
    as_of: dt.date | None


@dataclass(frozen=True)
class Badge:
    """A capability: supported (yes), not supported (no), or unknown."""

    name: str
    label: str
    state: str  # "yes", "no" or "unknown"


def _fact(label: str, value: Any, unit: str = "", show: Callable[[Any], str] = str) -> Fact:
    if value is None or value == [] or value == "":
        return Fact(label, UNKNOWN, unit, known=False)
    return Fact(label, show(value), unit)


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "no", None: UNKNOWN}[value]


def _date(value: dt.date) -> str:
    return value.isoformat()


def _count(value: int) -> str:
    return f"{value:,} ({fmt.params(value)})"


def provenance(obj: Any) -> Provenance:
    """The source address and as-of date a part of an entry carries."""
    return Provenance(getattr(obj, "source_url", None), getattr(obj, "as_of", None))


def entry_facts(entry: ModelEntry) -> list[Fact]:
    """What the model is: identity, size, context, dates, license, modalities."""
    weights = entry.weights_bytes
    facts = [
        Fact("Id", entry.id),
        Fact("Provider", entry.provider),
        Fact("Source", "hosted API" if entry.is_api else "self-hosted (open weights you run)"),
        Fact("Category", entry.category.value),
        _fact("Tasks", entry.tasks, show=", ".join),
        _fact("Aliases", entry.aliases, show=", ".join),
        Fact(
            "Status",
            entry.status.value
            + (f": {entry.deprecation.message}" if entry.deprecation else "")
            + (
                f" (since {entry.deprecation.deprecation_date})"
                if entry.deprecation and entry.deprecation.deprecation_date
                else ""
            ),
        ),
        _fact("Parameters", entry.effective_parameters, "parameters", _count),
        _fact("Active parameters", entry.active_parameters, "parameters per token", _count),
        _fact("Weights", weights, "bytes, estimated from parameters × bits", fmt.size),
        _fact("Context window", entry.context_window, "tokens", lambda v: f"{v:,}"),
        _fact("Max output", entry.max_output_tokens, "tokens", lambda v: f"{v:,}"),
        _fact("Knowledge cutoff", entry.knowledge_cutoff, "date", _date),
        _fact("Released", entry.release_date, "date", _date),
        _fact("License", entry.license),
        Fact("Open weights", _yes_no(entry.open_weights), known=entry.open_weights is not None),
        Fact("Inputs", ", ".join(m.value for m in entry.input_modalities) or UNKNOWN),
        Fact("Outputs", ", ".join(m.value for m in entry.output_modalities) or UNKNOWN),
        _fact("Architecture", entry.architecture),
        _fact("Family", entry.model_family),
        _fact("Hugging Face repo", entry.hugging_face_id),
        _fact("Tags", entry.tags, show=", ".join),
    ]
    if entry.quantization is not None:
        q = entry.quantization
        facts.append(
            Fact(
                "Quantization",
                q.method + (f" {q.type}" if q.type else ""),
                f"{q.bits:g} bits per weight" if q.bits else "",
            )
        )
    if entry.moe is not None:
        moe = entry.moe
        facts.append(
            Fact(
                "Mixture of experts",
                f"{moe.experts_per_token} of {moe.num_experts}"
                + (f" (+{moe.shared_experts} shared)" if moe.shared_experts else ""),
                "experts per token",
            )
        )
    arch = entry.model_architecture
    if arch is not None:
        for name, unit in (
            ("num_layers", "layers"),
            ("hidden_size", "dimensions"),
            ("num_attention_heads", "heads"),
            ("num_key_value_heads", "heads"),
            ("head_dim", "dimensions"),
            ("vocab_size", "tokens"),
            ("intermediate_size", "dimensions"),
        ):
            value = getattr(arch, name)
            if value is not None:
                facts.append(Fact(name.replace("_", " ").capitalize(), f"{value:,}", unit))
    return facts


def capability_badges(entry: ModelEntry) -> list[Badge]:
    """Every capability the schema knows, each yes, no or unknown."""
    return [
        Badge(name, name.replace("_", " "), _yes_no(value)) for name, value in entry.capabilities
    ]


#: The prices a Pricing can hold, each with the unit its value is in.
PRICE_UNITS: tuple[tuple[str, str, str], ...] = (
    ("input_per_1m_tokens", "Input", "USD per 1M input tokens"),
    ("output_per_1m_tokens", "Output", "USD per 1M output tokens"),
    ("cached_input_per_1m_tokens", "Cached input", "USD per 1M cached input tokens"),
    ("cache_write_per_1m_tokens", "Cache write", "USD per 1M tokens written to the cache"),
    ("reasoning_output_per_1m_tokens", "Reasoning output", "USD per 1M reasoning tokens"),
    ("input_audio_per_1m_tokens", "Audio input", "USD per 1M audio input tokens"),
    ("output_audio_per_1m_tokens", "Audio output", "USD per 1M audio output tokens"),
    ("per_image", "Image", "USD per image"),
    ("per_audio_minute", "Audio", "USD per minute of audio"),
    ("per_1k_characters", "Characters", "USD per 1,000 characters"),
    ("per_query", "Query", "USD per query"),
    ("per_video_second", "Video", "USD per second of video"),
)


def _usd(value: float) -> str:
    if value == 0:
        return "$0 (free)"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.6g}"


def price_facts(entry: ModelEntry) -> list[Fact]:
    """Each known price with its unit, and the 3:1 blend the catalog ranks by."""
    p = entry.pricing
    if p is None or not p.any_known():
        return []
    facts = [
        Fact(label, _usd(value), unit)
        for name, label, unit in PRICE_UNITS
        if (value := getattr(p, name)) is not None
    ]
    blended = p.blended_per_1m_tokens()
    if blended is not None:
        facts.append(Fact("Blended (3:1)", _usd(blended), "USD per 1M tokens, 3 input : 1 output"))
    return facts


#: What a latency fact says when the catalog did not measure it.
PRESET = "preset by size, not measured"


def latency_facts(entry: ModelEntry) -> list[Fact]:
    """The latency profile (``latency_profile``: the entry's own, its unknown parts filled
    from a preset by size), and what it predicts for a short and a long answer. A profile
    that is all preset says so once (in its first fact); in a measured one, each value
    the preset filled in says so."""
    from modelport.catalog.estimates import latency_profile

    own = entry.latency
    lat = latency_profile(entry)

    def measured(name: str) -> bool:
        return own is not None and getattr(own, name) is not None

    def unit(text: str, *names: str) -> str:
        filled = own is not None and not all(measured(n) for n in names)
        return f"{text}, {PRESET}" if filled else text

    facts = [
        Fact("Preset", lat.preset if own is not None else f"{lat.preset} ({PRESET})"),
        _fact(
            "Time to first token",
            lat.time_to_first_token_ms,
            unit("ms", "time_to_first_token_ms"),
            lambda v: f"{v:,.0f}",
        ),
        _fact(
            "Inter-token latency",
            lat.inter_token_latency_ms_mean,
            unit("ms mean", "inter_token_latency_ms_mean"),
            _ms,
        ),
        _fact(
            "Inter-token latency spread",
            lat.inter_token_latency_ms_std,
            unit("ms std dev", "inter_token_latency_ms_std"),
            _ms,
        ),
    ]
    for name in ("vision", "audio", "video", "reasoning", "tool_call"):
        value = getattr(lat, f"{name}_multiplier")
        label = f"{name.replace('_', ' ').capitalize()} multiplier"
        facts.append(Fact(label, f"×{value:g}"))
    whole = ("time_to_first_token_ms", "inter_token_latency_ms_mean")
    for tokens in (100, 1000):
        estimate = lat.estimate_ms(tokens)
        facts.append(
            _fact(
                f"Expected for {tokens:,} tokens",
                estimate,
                unit("ms", *whole),
                lambda v: f"{v:,.0f}",
            )
        )
    return facts


def _ms(value: float) -> str:
    return f"{value:,.1f}"


def requirement_facts(entry: ModelEntry) -> list[Fact]:
    """What hardware a self-hosted model needs."""
    req = entry.requirements
    if req is None:
        return []
    return [
        _fact("Minimum GPU memory", req.min_vram_gb, "GB", lambda v: f"{v:g}"),
        _fact("Recommended GPU memory", req.recommended_vram_gb, "GB", lambda v: f"{v:g}"),
        _fact("Minimum RAM", req.min_ram_gb, "GB", lambda v: f"{v:g}"),
        _fact("Minimum compute capability", req.min_compute_capability, "CUDA"),
        _fact("Minimum GPUs", req.min_gpus, "GPUs"),
    ]


def lineage_facts(entry: ModelEntry, known: Callable[[str], bool]) -> list[Fact]:
    """Where the model comes from; each ancestor the catalog holds links to its page."""
    lin = entry.lineage
    if lin is None:
        return []
    facts = [Fact("Relation", lin.relation or UNKNOWN, known=lin.relation is not None)]
    for label, value in (
        ("Parent", lin.parent),
        ("Base model", lin.base_model),
        ("Root", lin.root),
    ):
        if value is None:
            facts.append(Fact(label, UNKNOWN, known=False))
        else:
            facts.append(Fact(label, value, href=model_href(value) if known(value) else None))
    return facts


def model_href(model_id: str) -> str:
    """The page of a catalog model."""
    from urllib.parse import quote

    return "/ui/models/" + quote(model_id, safe="/:@+")


# -------------------------------------------------------------------- compare


@dataclass(frozen=True)
class CompareRow:
    """One fact across the compared models; ``differs`` when they do not all agree."""

    label: str
    values: tuple[str, ...]
    differs: bool


def _capability(name: str) -> Callable[[ModelEntry], bool | None]:
    def get(entry: ModelEntry) -> bool | None:
        value: bool | None = getattr(entry.capabilities, name)
        return value

    return get


def compare_rows(
    entries: Sequence[ModelEntry | None], comparisons: Sequence[Comparison]
) -> list[CompareRow]:
    """The facts of each model side by side: the catalog's, then what ``compare`` found."""

    def row(label: str, get: Callable[[ModelEntry], Any], show: Callable[[Any], str]) -> None:
        values = tuple(UNKNOWN if e is None or (v := get(e)) is None else show(v) for e in entries)
        rows.append(CompareRow(label, values, len(set(values)) > 1))

    def price(name: str) -> Callable[[ModelEntry], float | None]:
        return lambda e: getattr(e.pricing, name) if e.pricing else None

    rows: list[CompareRow] = []
    row("Provider", lambda e: e.provider, str)
    row("Source", lambda e: e.source.value, str)
    row("Category", lambda e: e.category.value, str)
    row("Status", lambda e: e.status.value, str)
    row("Tasks", lambda e: ", ".join(e.tasks) or None, str)
    row("Parameters", lambda e: e.effective_parameters, fmt.params)
    row("Context window (tokens)", lambda e: e.context_window, lambda v: f"{v:,}")
    row("Max output (tokens)", lambda e: e.max_output_tokens, lambda v: f"{v:,}")
    row("Input (USD per 1M tokens)", price("input_per_1m_tokens"), _usd)
    row("Output (USD per 1M tokens)", price("output_per_1m_tokens"), _usd)
    row(
        "Minimum GPU memory (GB)",
        lambda e: e.requirements.min_vram_gb if e.requirements else None,
        lambda v: f"{v:g}",
    )
    row("License", lambda e: e.license, str)
    row("Open weights", lambda e: e.open_weights, _yes_no)
    row("Released", lambda e: e.release_date, _date)
    row("Knowledge cutoff", lambda e: e.knowledge_cutoff, _date)
    row("Inputs", lambda e: ", ".join(m.value for m in e.input_modalities), str)
    row("Outputs", lambda e: ", ".join(m.value for m in e.output_modalities), str)
    for name in ("chat", "vision", "tool_calling", "structured_outputs", "reasoning", "embeddings"):
        row(name.replace("_", " ").capitalize(), _capability(name), _yes_no)

    def found(label: str, get: Callable[[Comparison], Any], show: Callable[[Any], str]) -> None:
        values = tuple(UNKNOWN if (v := get(c)) is None else show(v) for c in comparisons)
        rows.append(CompareRow(label, values, len(set(values)) > 1))

    found("Download size", lambda c: c.size_bytes, fmt.size)
    found("Format", lambda c: c.format, str)
    found("Downloads", lambda c: c.downloads, lambda v: f"{v:,}")
    found("Fits here (inference)", lambda c: c.fit, str)
    found("Latency for 100 tokens (ms)", lambda c: c.latency_ms, lambda v: f"{v:,.0f}")
    return rows
