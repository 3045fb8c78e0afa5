"""What a model id says by itself: fine-tune, adapter and quantized ids, and traits.

``parse_model_id`` finds the base of ``ft:…``, LoRA and quantized ids; ``infer_traits``
guesses size, tuning, modality, reasoning, mixture of experts and quantization.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["QUANT_WORDS", "IdTraits", "ParsedModelId", "infer_traits", "parse_model_id"]


@dataclass(frozen=True)
class ParsedModelId:
    """What a model id says about where it comes from."""

    id: str
    kind: Literal["plain", "openai-finetune", "adapter", "quantized"]
    base: str | None = None
    organization: str | None = None
    suffix: str | None = None
    job_id: str | None = None


_FT_RE = re.compile(r"^ft:(?P<base>[^:]+):(?P<org>[^:]*):(?P<suffix>[^:]*)(?::(?P<job>[^:]+))?$")
_ADAPTER_WORDS = re.compile(
    r"(?:^|[-_.])(?:q?lora|peft|adapters?|finetuned|fine-tuned|ft|sft|dpo|orpo)(?=$|[-_.])",
    re.IGNORECASE,
)
#: A quantization word in an id or name (``awq``, ``bnb-4bit``, ``gguf``, ``q4_k_m``…).
QUANT_WORDS = re.compile(
    r"(?:^|[-_.])(?:awq|gptq|gguf|exl2|mlx|bnb|(?:bnb-)?[48]bit|int[48]|fp8|nf4|q[2-8]_k(?:_[msl])?)"
    r"(?=$|[-_.])",
    re.IGNORECASE,
)


def parse_model_id(model_id: str) -> ParsedModelId:
    """Parse fine-tuned (``ft:gpt-4o-mini:org:name:id``), adapter and quantized ids to a base."""
    text = model_id.strip()
    ft = _FT_RE.match(text)
    if ft:
        return ParsedModelId(
            id=text,
            kind="openai-finetune",
            base=ft.group("base"),
            organization=ft.group("org") or None,
            suffix=ft.group("suffix") or None,
            job_id=ft.group("job"),
        )
    org, _, name = text.rpartition("/")
    if _ADAPTER_WORDS.search(name):
        base = _ADAPTER_WORDS.sub("", name).strip("-_.")
        return ParsedModelId(
            id=text, kind="adapter", base=base or None, organization=org or None, suffix=None
        )
    if QUANT_WORDS.search(name):
        base = QUANT_WORDS.sub("", name).strip("-_.")
        return ParsedModelId(id=text, kind="quantized", base=base or None, organization=org or None)
    return ParsedModelId(id=text, kind="plain", base=None, organization=org or None)


@dataclass(frozen=True)
class IdTraits:
    """Characteristics guessed from a model id alone."""

    parameters: int | None = None
    active_parameters: int | None = None
    num_experts: int | None = None
    instruct: bool = False
    chat: bool = False
    vision: bool = False
    reasoning: bool = False
    moe: bool = False
    code: bool = False
    embedding: bool = False
    quantization: str | None = None
    quantization_bits: int | None = None


_SIZE_RE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bmk])(?![a-z0-9])")
_MOE_RE = re.compile(r"(?<![a-z0-9])(\d+)x(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
_ACTIVE_RE = re.compile(r"(?<![a-z0-9])a(\d+(?:\.\d+)?)([bm])(?![a-z0-9])")
_SCALE = {"b": 10**9, "m": 10**6, "k": 10**3}


#: Mixture-of-experts families whose ids do not spell out their totals, as published by
#: their makers: (id pattern, total parameters, active parameters, experts, reasoning).
_MOE_FAMILIES: tuple[tuple[re.Pattern[str], int, int, int, bool], ...] = tuple(
    (re.compile(pattern), int(total), int(active), experts, reasoning)
    for pattern, total, active, experts, reasoning in (
        (r"^gpt-oss-120b", 117e9, 5.1e9, 128, True),
        (r"^gpt-oss-20b", 21e9, 3.6e9, 32, True),
        (r"^deepseek-(?:coder-)?v2(?:\.5)?-lite", 15.7e9, 2.4e9, 64, False),
        (r"^deepseek-(?:coder-)?v2(?![0-9])", 236e9, 21e9, 160, False),
        (r"^deepseek-v3(?![0-9])", 671e9, 37e9, 256, False),
        (r"^deepseek-r1(?![0-9])(?!.*distill)", 671e9, 37e9, 256, True),
        # Experts share attention: 8x7B is 46.7B in all, not 56B.
        (r"^mixtral-8x7b", 46.7e9, 12.9e9, 8, False),
        (r"^mixtral-8x22b", 141e9, 39e9, 8, False),
        (r"^phi-3\.5-moe", 41.9e9, 6.6e9, 16, False),
        (r"llama-4-scout-17b-16e", 109e9, 17e9, 16, False),
        (r"llama-4-maverick-17b-128e", 400e9, 17e9, 128, False),
    )
)
#: ``17B-16E``: a size per token (active) and an expert count (Llama 4's naming).
_EXPERTS_RE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([bm])-(\d+)e(?![a-z0-9])")


def infer_traits(model_id: str) -> IdTraits:
    """Guess size, tuning, modality, reasoning, MoE and quantization from an id.

    Sizes are totals; a mixture of experts also gets its active size and expert count
    (``8x7B``, ``30B-A3B``, ``17B-16E``, and the families in ``_MOE_FAMILIES``). A
    ``17B-16E`` id of an unknown family has no total: 17B is what runs per token.
    """
    text = model_id.rsplit("/", 1)[-1].lower().replace("_", "-")
    parameters = active = experts = None
    family_reasoning = False
    moe = _MOE_RE.search(text)
    per_token = _EXPERTS_RE.search(text)
    family = next((f for f in _MOE_FAMILIES if f[0].search(text)), None)
    if family is not None:
        _, parameters, active, experts, family_reasoning = family
    elif moe:
        experts = int(moe.group(1))
        per_expert = float(moe.group(2)) * _SCALE[moe.group(3)]
        parameters = int(experts * per_expert)
    elif per_token:
        active = int(float(per_token.group(1)) * _SCALE[per_token.group(2)])
        experts = int(per_token.group(3))
    else:
        sizes = [float(m.group(1)) * _SCALE[m.group(2)] for m in _SIZE_RE.finditer(text)]
        if sizes:
            parameters = int(max(sizes))
    act = _ACTIVE_RE.search(text)
    if act and family is None:
        active = int(float(act.group(1)) * _SCALE[act.group(2)])
    quant: str | None = None
    bits: int | None = None
    for word, name, qbits in (
        ("awq", "awq", 4),
        ("gptq", "gptq", 4),
        ("gguf", "gguf", None),
        ("exl2", "exl2", None),
        ("mxfp4", "mxfp4", 4),
        ("fp8", "fp8", 8),
        ("nf4", "bitsandbytes", 4),
        ("bnb-4bit", "bitsandbytes", 4),
        ("4bit", "bitsandbytes", 4),
        ("8bit", "bitsandbytes", 8),
        ("int4", "int4", 4),
        ("int8", "int8", 8),
    ):
        if re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", text):
            quant, bits = name, qbits
            break
    if quant is None and re.search(r"(?<![a-z0-9])q([2-8])[-_]k", text):
        quant = "gguf"
        bits = int(re.search(r"q([2-8])[-_]k", text).group(1))  # type: ignore[union-attr]

    def has(pattern: str) -> bool:
        return re.search(pattern, text) is not None

    return IdTraits(
        parameters=parameters,
        active_parameters=active,
        num_experts=experts,
        instruct=has(r"instruct|(?<![a-z0-9])it(?![a-z0-9])|(?<![a-z0-9])sft(?![a-z0-9])"),
        chat=has(r"chat|instruct|(?<![a-z0-9])it(?![a-z0-9])"),
        vision=has(r"vision|(?<![a-z0-9])vl(?![a-z])|llava|pixtral|idefics|paligemma|-vlm|qvq"),
        reasoning=family_reasoning
        or has(r"reason|(?<![a-z0-9])r1(?![0-9])|think|qwq|magistral|(?<![a-z0-9])o[134](?![0-9])"),
        moe=experts is not None or act is not None or has(r"(?<![a-z0-9])moe(?![a-z0-9])|mixtral"),
        code=has(r"code|coder|codestral|starcoder|devstral"),
        embedding=has(r"embed|minilm|mpnet|bge-|e5-|gte-|sentence"),
        quantization=quant,
        quantization_bits=bits,
    )
