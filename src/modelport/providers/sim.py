"""The simulator: answers as any catalog model would, from its catalog entry, offline.

``sim:openai:gpt-4o`` (or ``sim:openai/gpt-4o``) is the catalog's ``openai/gpt-4o``
simulated: nothing runs and nothing is sent; the answer keeps the entry's limits,
capabilities and latency, and the call log prices it at the entry's price.

The rules, so that a simulated answer can be reasoned about:

- **Tokens.** As the provider counts them where its tokenizer is known (OpenAI's BPE for
  OpenAI's models), else about four characters a token (``providers/sim_tokens.py`` has
  both rules). A prompt counts its messages' text and framing, 85 tokens per image and 100
  per audio clip, and the JSON of its tools and its response schema. An answer's tokens are
  exactly the pieces it streams.
- **Latency.** From the entry's ``latency`` profile; an entry without one (most of the
  bundled catalog) takes a preset by size (``LatencyProfile.from_preset``): ``small`` below
  10B active parameters or with ``mini``/``nano``/``flash``/``haiku``/``lite``/``small``
  in its id, ``medium`` by default and below 40B, ``large`` below 200B, ``xlarge`` above; a
  reasoning model's preset takes the ``reasoning`` preset's multiplier. The time to first
  token (TTFT) grows by ``PROMPT_TTFT_GROWTH`` (10 %) per 1,000 prompt tokens and is
  multiplied by the profile's vision (image parts), audio (audio parts), tool-call (tools
  given) and reasoning multipliers (the reasoning one scaled by ``reasoning_effort``:
  minimal 0.25, low 0.5, medium 1, high 2). TTFT and each inter-token latency (ITL) are
  drawn from Gaussians truncated at zero: TTFT's spread is 10 % of its mean (profiles give
  none), ITL's is the profile's. ``MODELPORT_SIM_SPEED`` divides every wait (``instant``:
  none). A stream keeps to a timeline set at its start, so that event-loop delays do not
  add up; ``chat`` waits the same total once.
- **Seed.** With ``seed``, the same request gives the same text, tool calls, token counts
  and latencies; without one, each call draws anew.
- **Content.** Lorem-ipsum sentences (24 to 96 tokens) by default; ``metadata``
  ``{"sim_generator": "echo"}`` repeats the last user message, ``{"sim_generator": "fixed",
  "sim_reply": "..."}`` answers that text, ``"template"`` fills ``sim_reply``'s
  ``{last_user}``, ``{model}`` and ``{turn}``, and ``"script"`` answers the conversation's
  n-th assistant turn with the n-th reply of ``sim_script`` (a list, or its JSON text; the
  last one once they run out). Otherwise ``response_format`` ``json_object``
  gives ``{"answer": ...}`` and ``json_schema`` a value that validates against its schema
  (``providers/sim_content.py``). ``max_tokens`` cuts the answer (finish ``length``), a stop
  sequence ends it before the sequence (finish ``stop``), and a prompt plus ``max_tokens``
  over the context window is refused as the real API refuses it.
- **Tools.** A model whose entry says it has no tool calling refuses tools. Otherwise an
  answer to a user turn calls the first tool (or the one ``tool_choice`` names;
  ``"none"`` answers text), with arguments that validate against its parameters; after a
  tool result it answers text (unless ``tool_choice`` requires a tool).
- **Reasoning.** A request with ``reasoning_effort`` (refused by a model whose entry says
  it does not reason) reports hidden reasoning tokens (128 to 1024 scaled by the effort,
  part of the output tokens and at most half of ``max_tokens``); without it a model
  answers at once, as Anthropic's and Gemini's do unless thinking is asked for.
- **Options.** OpenAI's chat options are taken; sampling ones (``temperature``,
  ``top_p``, penalties) change nothing, as the text comes from the seed; ``n`` above 1 and
  ``logprobs`` are refused as for OpenAI.
- **Embeddings.** Unit vectors, deterministic per model and input (seeded by a hash);
  of ``dimensions`` when given, else the model's real size where ``EMBEDDING_DIMENSIONS``
  knows it, else 1024. A shorter vector is the normalized prefix of a longer one.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import math
import os
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.catalog.estimates import latency_profile
from modelport.errors import (
    InputTooLongError,
    InvalidValueError,
    ModelNotFoundError,
    UnsupportedOperationError,
    UnsupportedParameterError,
)
from modelport.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Credentials,
    Embeddings,
    Provider,
    Upstream,
    Usage,
    content_text,
    request_arrived,
    requested_fault,
)
from modelport.providers.openai import check_options
from modelport.providers.sim_content import cut_at, lorem, value_for
from modelport.providers.sim_faults import (
    FAULT_KINDS,
    SimFault,
    SimLimiter,
    SimStats,
    fault_upstream,
)
from modelport.providers.sim_tokens import TokenRule, token_rule
from modelport.settings import get_settings

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry

__all__ = [
    "EMBEDDING_DIMENSIONS",
    "SimProvider",
    "latency_profile",
]

#: TTFT grows by this share per 1,000 prompt tokens (prefill time).
PROMPT_TTFT_GROWTH = 0.10
#: TTFT's standard deviation as a share of its mean (profiles give only the mean).
TTFT_SPREAD = 0.10
#: Tokens an image and an audio clip cost in a prompt.
IMAGE_TOKENS, AUDIO_TOKENS = 85, 100
#: ``reasoning_effort`` → share of the reasoning multiplier and of the reasoning tokens.
EFFORT = {"none": 0.0, "minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0}
REASONING_TOKENS = (128, 1024)
#: Lengths (tokens) of a lorem answer.
LOREM_TOKENS = (24, 96)
GENERATORS = ("lorem", "echo", "fixed", "template", "script")

#: Real vector sizes of common embedding models, by catalog id.
EMBEDDING_DIMENSIONS: dict[str, int] = {
    "openai/text-embedding-3-small": 1536,
    "openai/text-embedding-3-large": 3072,
    "openai/text-embedding-ada-002": 1536,
    "openai/text-embedding-ada-002-v2": 1536,
    "cohere/embed-english-v3.0": 1024,
    "cohere/embed-multilingual-v3.0": 1024,
    "cohere/embed-english-light-v3.0": 384,
    "cohere/embed-multilingual-light-v3.0": 384,
    "cohere/embed-v4.0": 1536,
    "google/text-embedding-004": 768,
    "google/text-embedding-005": 768,
    "google/text-multilingual-embedding-002": 768,
    "google/gemini-embedding-001": 3072,
    "mistral/mistral-embed": 1024,
    "mistral/codestral-embed": 1536,
}
DEFAULT_EMBEDDING_DIMENSIONS = 1024


#: Draws of calls without a seed: one generator, not one seeded from the OS per call.
_UNSEEDED = random.Random()


def _positive_gauss(rng: random.Random, mean: float, std: float) -> float:
    """A Gaussian draw truncated at zero (drawn again below it)."""
    if std <= 0:
        return max(0.0, mean)
    for _ in range(16):
        value = rng.gauss(mean, std)
        if value >= 0:
            return value
    return 0.0


@dataclass
class _Plan:
    """A simulated answer, decided before any of it is sent."""

    model: str
    #: The text's tokens, or the tool call's argument pieces.
    pieces: list[str]
    finish: str
    usage: Usage
    #: Seconds before the first piece, and between each piece and the next.
    ttft: float
    gaps: list[float]
    id: str
    #: ``{"id", "name"}`` of the tool called, or None for a text answer.
    tool: dict[str, str] | None = None

    def message(self) -> dict[str, Any]:
        text = "".join(self.pieces)
        if self.tool is None:
            return {"role": "assistant", "content": text}
        call = {
            "id": self.tool["id"],
            "type": "function",
            "function": {"name": self.tool["name"], "arguments": text},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def first_delta(self) -> dict[str, Any]:
        if self.tool is None:
            return {"role": "assistant", "content": self.pieces[0] if self.pieces else ""}
        call = {
            "index": 0,
            "id": self.tool["id"],
            "type": "function",
            "function": {"name": self.tool["name"], "arguments": ""},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}

    def delta(self, piece: str) -> dict[str, Any]:
        if self.tool is None:
            return {"content": piece}
        return {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}


class SimProvider(Provider):
    """Any catalog model, simulated from its entry: latency, tokens, tools, JSON, limits."""

    name = "sim"
    label = "Simulator"
    env_keys = ()
    needs_key = False
    simulated = True

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        super().__init__(base_url=base_url, timeout=timeout)
        self.stats = SimStats()
        self.limiter = SimLimiter()

    def catalog_id(self, model: str) -> str:
        """``openai:gpt-4o`` → ``openai/gpt-4o``; an id with ``/`` stays as it is."""
        if "/" in model:
            return model
        registry, sep, rest = model.partition(":")
        return f"{registry}/{rest}" if sep and rest else model

    def upstream(self, error: BaseException) -> Upstream | None:
        """A simulated fault is what the real upstream would have answered."""
        return error.upstream if isinstance(error, SimFault) else None

    # -- faults and limits -----------------------------------------------------------------

    def _fault(self, request: ChatRequest, plan: _Plan) -> str | None:
        """The fault this call shows: the one the request names, else one drawn, else None."""
        metadata = request.options.get("metadata") or {}
        named = metadata.get("sim_fault") if isinstance(metadata, dict) else None
        if named is None:
            named = requested_fault.get()
            requested_fault.set(None)  # one call's: a retry or a fallback draws anew
        if named is not None:
            if named not in FAULT_KINDS:
                raise InvalidValueError(
                    f"sim_fault must be one of {', '.join(FAULT_KINDS)}, not {named!r}.",
                    param="metadata",
                )
            return str(named)
        rates = get_settings().sim_faults
        if not rates:
            return None
        draw = random.random()
        for kind in FAULT_KINDS:
            draw -= rates.get(kind, 0.0)
            if draw < 0:
                return kind
        return None

    async def _admit(self, request: ChatRequest, plan: _Plan, *, streaming: bool) -> str | None:
        """Raise the rate limit or the fault this call meets; ``cut`` is left to the stream."""
        settings = get_settings()
        tokens = (plan.usage.input_tokens or 0) + (plan.usage.output_tokens or 0)
        wait = self.limiter.admit(plan.model, tokens, rpm=settings.sim_rpm, tpm=settings.sim_tpm)
        if wait is not None:
            self.stats.failed(plan.model, "limited")
            raise SimFault(
                Upstream(
                    429,
                    f"Rate limit reached for {plan.model}: MODELPORT_SIM_RPM/TPM (simulated).",
                    retry_after=wait,
                    code="rate_limit_exceeded",
                )
            )
        kind = self._fault(request, plan)
        if kind is None or (kind == "cut" and streaming):
            return kind
        self.stats.failed(plan.model, kind)
        if kind == "timeout" and settings.sim_speed:
            await asyncio.sleep(self.timeout / settings.sim_speed)  # Provider.call gives up first
        raise SimFault(fault_upstream(kind, plan.model))

    # -- chat ----------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """The whole simulated answer, after its whole simulated time."""
        plan = self.plan(request)
        loop = asyncio.get_running_loop()
        start = _start(loop)
        await self._admit(request, plan, streaming=False)
        await _until(loop, start + plan.ttft + sum(plan.gaps))
        self.stats.answered(plan.model, plan.usage.input_tokens or 0, plan.usage.output_tokens or 0)
        return ChatResponse(
            message=plan.message(),
            finish_reason=plan.finish,
            usage=plan.usage,
            model=plan.model,
            id=plan.id,
            access="sim",
        )

    async def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """The simulated answer token by token, each at its drawn time."""
        plan = self.plan(request)
        loop = asyncio.get_running_loop()
        start = _start(loop)
        cut = await self._admit(request, plan, streaming=True) == "cut"
        # One timeline from the start: a late wake-up is caught up, not carried on.
        deadline = start + plan.ttft
        await _until(loop, deadline)
        yield ChatChunk(delta=plan.first_delta(), model=plan.model)
        rest = plan.pieces if plan.tool is not None else plan.pieces[1:]
        for i, (piece, gap) in enumerate(zip(rest, plan.gaps, strict=False)):
            if cut and i >= len(rest) // 2:
                self.stats.failed(plan.model, "cut")
                raise SimFault(fault_upstream("cut", plan.model))
            deadline += gap
            await _until(loop, deadline)
            yield ChatChunk(delta=plan.delta(piece), model=plan.model)
        self.stats.answered(plan.model, plan.usage.input_tokens or 0, plan.usage.output_tokens or 0)
        yield ChatChunk(finish_reason=plan.finish, usage=plan.usage, model=plan.model)

    def plan(self, request: ChatRequest) -> _Plan:
        """Decide the whole answer and its timing (refusing what the model would refuse)."""
        entry = self._entry(request.entry, request.model)
        caps = entry.capabilities
        if caps.chat is False and not caps.completion:
            raise UnsupportedOperationError(
                f"{entry.id} does not chat.", hint="Pick a chat model (`modelport models`)."
            )
        metadata, effort, max_tokens = self._options(request, entry)
        rule = token_rule(entry, request.tokenizer_file)
        prompt_tokens, media = _prompt_tokens(request, rule)
        if "image" in media and caps.vision is False:
            raise UnsupportedOperationError(f"{entry.id} does not take images.")
        if "audio" in media and caps.audio_input is False:
            raise UnsupportedOperationError(f"{entry.id} does not take audio.")
        if request.tools and caps.tool_calling is False:
            raise UnsupportedOperationError(
                f"{entry.id} does not support tools.", hint="Pick a model with tool calling."
            )
        fmt = _format_kind(request.response_format)
        if fmt == "json_schema" and caps.structured_outputs is False:
            raise UnsupportedOperationError(
                f"{entry.id} does not support structured outputs (json_schema)."
            )
        if fmt == "json_object" and caps.json_mode is False and not caps.structured_outputs:
            raise UnsupportedOperationError(f"{entry.id} does not support JSON mode.")
        most = entry.max_output_tokens
        if max_tokens is not None and most is not None and max_tokens > most:
            raise UnsupportedParameterError(
                "max_tokens",
                f"{entry.id} writes at most {most} tokens per answer, not {max_tokens}.",
            )
        window = entry.context_window
        if window is not None and prompt_tokens + (max_tokens or 0) > window:
            raise InputTooLongError(
                entry.id,
                prompt_tokens + (max_tokens or 0),
                window,
                param="messages",
                what="prompt plus max_tokens" if max_tokens else "prompt",
            )
        budget = max_tokens
        if budget is None:
            limits = [entry.max_output_tokens, window - prompt_tokens if window else None]
            budget = min((x for x in limits if x is not None), default=None)

        text_rng = time_rng = _UNSEEDED
        if request.seed is not None:
            digest = hashlib.sha256(
                json.dumps(
                    [entry.id, request.messages, request.tools, request.response_format],
                    sort_keys=True,
                    default=str,
                ).encode()
            ).hexdigest()
            text_rng = random.Random(f"text|{digest}|{request.seed}")
            time_rng = random.Random(f"time|{digest}|{request.seed}")

        # Thinking is asked for (as with Anthropic's and Gemini's models, whose catalog
        # entries say they can reason): without ``reasoning_effort`` a model answers at once.
        reasoning = effort is not None and caps.reasoning is not False
        share = EFFORT[effort or "medium"] if reasoning else 0.0
        reasoning_tokens = round(text_rng.randint(*REASONING_TOKENS) * share)
        if budget is not None:
            # At most half the budget: a real model keeps room for its answer too.
            reasoning_tokens = min(reasoning_tokens, budget // 2)
            budget -= reasoning_tokens

        tool = _tool_to_call(request, entry)
        finish = "stop"
        if tool is not None:
            name, parameters = tool
            arguments = json.dumps(value_for(parameters, text_rng))
            pieces = rule.pieces(arguments)
            called = {"id": "call_" + f"{text_rng.getrandbits(96):024x}", "name": name}
            finish = "tool_calls"
            output = len(pieces) + rule.count(name)
        else:
            called = None
            text = _text(request, metadata, fmt, text_rng)
            pieces = rule.pieces(text)
            stop_at = min((i for s in request.stop if s and (i := text.find(s)) >= 0), default=-1)
            if stop_at >= 0:
                pieces, finish = cut_at(pieces, stop_at), "stop"
            if budget is not None and len(pieces) > budget:
                pieces, finish = pieces[:budget], "length"
            output = len(pieces)

        profile = latency_profile(entry)
        ttft_ms = float(profile.time_to_first_token_ms or 0.0)
        ttft_ms *= 1 + PROMPT_TTFT_GROWTH * prompt_tokens / 1000
        if "image" in media:
            ttft_ms *= profile.vision_multiplier
        if "audio" in media:
            ttft_ms *= profile.audio_multiplier
        if request.tools:
            ttft_ms *= profile.tool_call_multiplier
        ttft_ms *= 1 + (profile.reasoning_multiplier - 1) * share
        itl_mean = float(profile.inter_token_latency_ms_mean or 0.0)
        itl_std = float(profile.inter_token_latency_ms_std or 0.0)
        speed = get_settings().sim_speed
        scale = 0.0 if speed == 0 else 1 / (1000 * speed)
        ttft = _positive_gauss(time_rng, ttft_ms, ttft_ms * TTFT_SPREAD) * scale
        steps = len(pieces) if called is not None else max(0, len(pieces) - 1)
        if scale:
            gaps = [_positive_gauss(time_rng, itl_mean, itl_std) * scale for _ in range(steps)]
        else:  # instant: nothing to draw (the time source is apart from the text's)
            gaps = [0.0] * steps
        return _Plan(
            model=request.model,
            pieces=pieces,
            finish=finish,
            usage=Usage(
                input_tokens=prompt_tokens,
                output_tokens=output + reasoning_tokens,
                reasoning_tokens=reasoning_tokens,
            ),
            ttft=ttft,
            gaps=gaps,
            id=f"chatcmpl-sim-{os.urandom(12).hex()}",
            tool=called,
        )

    def _entry(self, entry: Any, model: str) -> ModelEntry:
        if entry is None:
            raise ModelNotFoundError(
                model,
                message=f"The catalog has no model {model!r} to simulate.",
                hint="Run `modelport models` to list them, and give one as sim:<id>.",
            )
        found: ModelEntry = entry
        return found

    def _options(
        self, request: ChatRequest, entry: ModelEntry
    ) -> tuple[dict[str, Any], str | None, int | None]:
        """The request's options checked: its metadata, reasoning effort and max tokens."""
        check_options(request.options, who="Simulated models")
        metadata = request.options.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidValueError("`metadata` must be an object.", param="metadata")
        generator = metadata.get("sim_generator", "lorem")
        if generator not in GENERATORS:
            raise InvalidValueError(
                f"sim_generator must be one of {', '.join(GENERATORS)}, not {generator!r}.",
                param="metadata",
            )
        if generator in ("fixed", "template") and not isinstance(metadata.get("sim_reply"), str):
            raise InvalidValueError(
                f"sim_generator {generator} needs the reply as the sim_reply string.",
                param="metadata",
            )
        if generator == "script":
            _script(metadata)  # refused now, not halfway through a conversation
        effort = request.options.get("reasoning_effort")
        if effort is not None:
            if effort not in EFFORT:
                raise InvalidValueError(
                    f"reasoning_effort must be one of {', '.join(EFFORT)}, not {effort!r}.",
                    param="reasoning_effort",
                )
            if entry.capabilities.reasoning is False:
                raise UnsupportedParameterError(
                    "reasoning_effort", f"{entry.id} does not reason, so it takes no effort."
                )
        max_tokens = request.options.get("max_completion_tokens") or request.max_tokens
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidValueError(
                f"max_tokens must be a positive integer, not {max_tokens!r}.", param="max_tokens"
            )
        return metadata, effort, max_tokens

    # -- embeddings ----------------------------------------------------------------------

    async def embed(
        self,
        model: str,
        inputs: Sequence[str],
        credentials: Credentials | None,
        *,
        dimensions: int | None = None,
        entry: Any = None,
    ) -> Embeddings:
        """Deterministic unit vectors, one per input, of the model's size."""
        entry = self._entry(entry, model)
        if entry.capabilities.embeddings is False:
            raise UnsupportedOperationError(
                f"{entry.id} does not make embeddings.", hint="Pick an embedding model."
            )
        if dimensions is not None and dimensions < 1:
            raise InvalidValueError(
                f"dimensions must be at least 1, not {dimensions}.", param="dimensions"
            )
        size = dimensions or EMBEDDING_DIMENSIONS.get(entry.id, DEFAULT_EMBEDDING_DIMENSIONS)
        vectors, tokens = [], 0
        rule = token_rule(entry)
        for text in inputs:
            count = rule.count(text)
            if entry.context_window is not None and count > entry.context_window:
                raise InputTooLongError(entry.id, count, entry.context_window, param="input")
            tokens += count
            seed = hashlib.sha256(f"{entry.id}\0{text}".encode()).digest()
            rng = random.Random(seed)
            vector = [rng.gauss(0.0, 1.0) for _ in range(size)]
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return Embeddings(
            vectors=vectors, usage=Usage(input_tokens=tokens, output_tokens=0), model=model
        )


def _start(loop: asyncio.AbstractEventLoop) -> float:
    """When this call's simulated time began: when its request reached the server, once;
    else now (a retry, a fallback or a call from Python waits its whole time)."""
    now = loop.time()
    arrived = request_arrived.get()
    if arrived is None:
        return now
    request_arrived.set(None)
    return min(now, arrived)


async def _until(loop: asyncio.AbstractEventLoop, deadline: float) -> None:
    delay = deadline - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


def _format_kind(response_format: dict[str, Any] | None) -> str:
    if not response_format:
        return "text"
    kind = response_format.get("type", "text")
    if kind not in ("text", "json_object", "json_schema"):
        raise InvalidValueError(
            f"response_format type must be text, json_object or json_schema, not {kind!r}.",
            param="response_format",
        )
    return str(kind)


@functools.lru_cache(maxsize=64)
def _role_tokens(count: Callable[[str], int], role: str) -> int:
    return count(role)


def _prompt_tokens(request: ChatRequest, rule: TokenRule) -> tuple[int, set[str]]:
    """The prompt's tokens by the model's token rule, and the media kinds it holds."""
    count_tokens = rule.count
    tokens, media = rule.reply_tokens, set[str]()
    for message in request.messages:
        tokens += rule.message_tokens
        if rule.counts_role:
            tokens += _role_tokens(count_tokens, str(message.get("role") or ""))
            tokens += 1 if message.get("name") else 0
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind == "image_url":
                    media.add("image")
                    tokens += IMAGE_TOKENS
                elif kind == "input_audio":
                    media.add("audio")
                    tokens += AUDIO_TOKENS
        tokens += count_tokens(content_text(content))
        for call in message.get("tool_calls") or []:
            tokens += count_tokens(json.dumps(call.get("function", {})))
    if request.tools:
        tokens += count_tokens(json.dumps(request.tools))
    if request.response_format:
        tokens += count_tokens(json.dumps(request.response_format))
    return tokens, media


def _tool_to_call(request: ChatRequest, entry: ModelEntry) -> tuple[str, dict[str, Any]] | None:
    """The tool the answer calls (name, parameters), or None for a text answer."""
    choice = request.tool_choice
    if not request.tools or choice == "none":
        return None
    functions: dict[str, dict[str, Any]] = {}
    for tool in request.tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidValueError(
                "Each tool must be {type: function, function: {name, parameters}}.",
                param="tools",
            )
        functions[str(function["name"])] = function
    named = None
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if named not in functions:
            raise InvalidValueError(
                f"tool_choice names {named!r}, which is not among the tools.", param="tool_choice"
            )
    last = request.messages[-1].get("role") if request.messages else None
    if last == "tool" and named is None and choice != "required":
        return None  # the tool answered: the model answers the user
    name = named or next(iter(functions))
    parameters = functions[name].get("parameters") or {"type": "object", "properties": {}}
    return name, parameters


def _script(metadata: dict[str, Any]) -> list[str]:
    """The replies of a scripted conversation: a list of strings, or its JSON text (OpenAI's
    ``metadata`` values are strings)."""
    script = metadata.get("sim_script")
    if isinstance(script, str):
        try:
            script = json.loads(script)
        except ValueError:
            script = None
    if not isinstance(script, list) or not script or not all(isinstance(r, str) for r in script):
        raise InvalidValueError(
            "sim_generator script needs sim_script: a list of replies (or its JSON text).",
            param="metadata",
        )
    return script


def _text(request: ChatRequest, metadata: dict[str, Any], fmt: str, rng: random.Random) -> str:
    """The answer's whole text, before stop sequences and max_tokens."""
    generator = metadata.get("sim_generator", "lorem")
    if generator == "fixed":
        return str(metadata["sim_reply"])
    users = [m for m in request.messages if m.get("role") == "user"]
    last_user = content_text(users[-1].get("content")) if users else ""
    if generator == "echo":
        return last_user
    turn = sum(1 for m in request.messages if m.get("role") == "assistant")
    if generator == "script":
        script = _script(metadata)
        return script[min(turn, len(script) - 1)]
    if generator == "template":
        fields = {"last_user": last_user, "model": request.model, "turn": turn + 1}
        try:
            return str(metadata["sim_reply"]).format_map(fields)
        except (KeyError, IndexError, ValueError) as e:
            raise InvalidValueError(
                f"The sim_reply template cannot be filled: {e}.",
                hint="It may use {last_user}, {model} and {turn}; write {{ and }} for braces.",
                param="metadata",
            ) from None
    if fmt == "json_schema":
        spec = (request.response_format or {}).get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidValueError(
                "response_format json_schema needs json_schema.schema.", param="response_format"
            )
        return json.dumps(value_for(schema, rng))
    if fmt == "json_object":
        return json.dumps({"answer": lorem(rng, rng.randint(8, 24))})
    return lorem(rng, rng.randint(*LOREM_TOKENS))
