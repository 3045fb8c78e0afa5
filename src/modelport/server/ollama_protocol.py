"""Ollama's request bodies and options, validated once at the edge of /api.

Options (``options``) are honoured or refused with the reason, never dropped:

- mapped: ``num_predict`` (max new tokens; -1 and -2 mean until the end of the context),
  ``temperature``, ``top_p``, ``top_k``, ``seed`` (-1: random), ``stop``, and
  ``num_ctx`` (the window: a prompt must fit in it, and generation stops at its end;
  for embeddings, an input past it is refused). Unset ones take Ollama's defaults
  (temperature 0.8, top_p 0.9, top_k 40).
- accepted at the value that asks for nothing: ``repeat_penalty`` 1, ``presence_penalty``
  0, ``frequency_penalty`` 0, ``min_p`` 0, ``typical_p`` 1, ``tfs_z`` 1, ``mirostat`` 0;
  any other value is refused (local generation has no penalties or other samplers).
- accepted because what they tune cannot happen here: ``repeat_last_n``,
  ``penalize_newline`` (penalties), ``mirostat_tau``/``mirostat_eta`` (mirostat),
  ``num_keep`` (the context is never shifted).
- refused: how the server runs (``num_gpu``, ``main_gpu``, ``num_thread``, ``num_batch``,
  ``use_mmap``, ``use_mlock``, ``numa``, ``low_vram``, ``f16_kv``, ``logits_all``,
  ``vocab_only``, ``embedding_only``, ``draft_num_predict``): set per server, not per
  request; sampling options on an embedding model; any name Ollama does not define.

Also refused when set: ``suffix``, ``images``, ``format`` (json or a schema),
``template`` (Ollama's Go templates: prompts are rendered with the model's own Jinja chat
template), ``context``, ``think``, ``logprobs``, ``truncate``/``shift`` on generation (a
prompt past the context is refused with its token count, never cut or shifted),
``insecure``/``username``/``password`` on pull. ``raw`` sends the prompt as it is;
``system`` is rendered with the template. A generate with an empty prompt (a chat with no
messages) loads the model, and with ``keep_alive: 0`` unloads it, as in Ollama.
``/api/embed`` truncates by default (``truncate: false`` refuses with the token count)
and L2-normalizes as Ollama does; ``dimensions`` shortens only a model trained for it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelport.errors import InvalidValueError, ModelportError, UnsupportedParameterError
from modelport.server.generation import GenerationParams, refuse
from modelport.server.ollama_models import request_name

log = logging.getLogger("modelport.serve")

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "DeleteRequest",
    "EmbedRequest",
    "EmbeddingsRequest",
    "GenerateRequest",
    "GenerationBody",
    "PullRequest",
    "ShowRequest",
    "embedding_window",
    "generation_options",
]


# -- request bodies ------------------------------------------------------------------------


class _Body(BaseModel):
    # A field Ollama does not define is refused by name, never ignored.
    model_config = ConfigDict(extra="forbid")


class _ModelBody(_Body):
    model: str = ""
    #: Ollama's deprecated spelling of ``model``.
    name: str = ""

    def ref(self) -> tuple[str, str]:
        """The modelport name of the model, and the name as the request spelt it."""
        shown = self.model or self.name
        return request_name(shown), shown


class ShowRequest(_ModelBody):
    """Ollama's show request."""

    verbose: bool | None = None
    system: str | None = None
    template: str | None = None
    options: dict[str, Any] | None = None


class DeleteRequest(_ModelBody):
    """Ollama's delete request."""


class PullRequest(_ModelBody):
    """Ollama's pull request."""

    stream: bool = True
    insecure: bool | None = None
    username: str | None = None
    password: str | None = None


KeepAlive = str | float | None


class EmbedRequest(_Body):
    """Ollama's embed request."""

    model: str
    input: str | list[str] = ""
    truncate: bool | None = None
    dimensions: Annotated[int | None, Field(ge=1)] = None
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


class EmbeddingsRequest(_Body):
    """Ollama's legacy embeddings request."""

    model: str
    prompt: str = ""
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


class GenerationBody(_Body):
    model: str
    stream: bool = True
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    keep_alive: KeepAlive = None
    think: bool | str | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    truncate: bool | None = None
    shift: bool | None = None

    def refuse_unsupported(self) -> None:
        if self.format not in (None, ""):
            raise UnsupportedParameterError(
                "format", "local generation cannot guarantee JSON output yet."
            )
        refuse("think", self.think, "local models here do not think.")
        refuse("logprobs", self.logprobs, "log probabilities are not returned yet.")
        refuse("top_logprobs", self.top_logprobs, "log probabilities are not returned yet.")
        refuse(
            "truncate",
            self.truncate,
            "prompts are never cut here: one past the context is refused with its tokens.",
        )
        refuse("shift", self.shift, "the context is never shifted: generation stops at its end.")


class GenerateRequest(GenerationBody):
    """Ollama's generate request."""

    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool | None = None
    images: list[str] | None = None
    width: int | None = None
    height: int | None = None
    steps: int | None = None


class _ToolCallFunction(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class _ToolCall(BaseModel):
    model_config = ConfigDict(extra="allow")

    function: _ToolCallFunction


class ChatMessage(_Body):
    """One message of a chat, as Ollama writes it."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = ""
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None

    def for_template(self, i: int) -> dict[str, Any]:
        """The message as chat templates read it (OpenAI's shape, arguments as objects)."""
        refuse(f"messages[{i}].images", self.images, "local models here read no images.")
        refuse(f"messages[{i}].thinking", self.thinking, "local models here do not think.")
        message: dict[str, Any] = {"role": self.role, "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in self.tool_calls
            ]
        if self.tool_name:
            message["name"] = self.tool_name
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


class ChatRequest(GenerationBody):
    """Ollama's chat request."""

    messages: list[ChatMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None


# -- options -------------------------------------------------------------------------------

#: Options that ask for nothing at this value; any other value is refused.
_NEUTRAL: dict[str, float] = {
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "min_p": 0.0,
    "typical_p": 1.0,
    "tfs_z": 1.0,
    "mirostat": 0,
}
#: Options that tune only what the neutral ones switch off, or a context shift (never done).
_MOOT = frozenset({"repeat_last_n", "penalize_newline", "mirostat_tau", "mirostat_eta", "num_keep"})
#: How the server runs rather than what it answers: set per server, so refused per request.
_RUNNER = frozenset(
    {
        "num_batch",
        "num_gpu",
        "main_gpu",
        "use_mmap",
        "use_mlock",
        "num_thread",
        "numa",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "embedding_only",
        "draft_num_predict",
    }
)
_SAMPLING = frozenset({"num_predict", "temperature", "top_p", "top_k", "seed", "stop"})


def _number(key: str, value: Any, *, integer: bool = False) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool):
        kind = "an integer" if integer else "a number"
        raise InvalidValueError(f"options.{key} must be {kind}.", param=f"options.{key}")
    return float(value)


def _refuse_options(options: dict[str, Any], *, sampling: bool) -> dict[str, Any]:
    """The options that are set, after refusing every one that cannot be honoured."""
    given = {k: v for k, v in options.items() if v is not None}
    refused: list[str] = []
    for key, value in given.items():
        if key in _NEUTRAL:
            if _number(key, value) != _NEUTRAL[key]:
                refused.append(f"{key} (local generation has no penalties or other samplers)")
        elif key in _RUNNER:
            refused.append(f"{key} (how the server runs is set per server, not per request)")
        elif key in _SAMPLING and not sampling:
            refused.append(f"{key} (an embedding model does not sample)")
        elif key not in _MOOT and key not in _SAMPLING and key != "num_ctx":
            refused.append(f"{key} (not an Ollama option)")
    if refused:
        first = refused[0].split(" ", 1)[0]
        raise UnsupportedParameterError(
            f"options.{first}",
            "cannot be honoured here: " + "; ".join(refused) + ".",
            hint="Leave these options out.",
        )
    return given


def _window(given: dict[str, Any]) -> int | None:
    if "num_ctx" not in given:
        return None
    value = int(_number("num_ctx", given["num_ctx"], integer=True))
    if value < 1:
        raise InvalidValueError("options.num_ctx must be positive.", param="options.num_ctx")
    return value


def generation_options(options: dict[str, Any] | None) -> tuple[GenerationParams, int | None]:
    """What a request's options ask of the generation, and its window (``num_ctx``)."""
    given = _refuse_options(options or {}, sampling=True)
    max_tokens = None
    if "num_predict" in given:
        value = int(_number("num_predict", given["num_predict"], integer=True))
        if value == 0:
            raise InvalidValueError(
                "options.num_predict must be positive, or -1 for no limit.",
                param="options.num_predict",
            )
        max_tokens = value if value > 0 else None
    temperature = _number("temperature", given.get("temperature", 0.8))
    top_p = _number("top_p", given.get("top_p", 0.9))
    top_k = int(_number("top_k", given.get("top_k", 40), integer=True))
    seed = given.get("seed")
    if seed is not None:
        seed = int(_number("seed", seed, integer=True))
    stop = given.get("stop", [])
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise InvalidValueError("options.stop must be a list of strings.", param="options.stop")
    for key, got, rule, ok in (
        ("temperature", temperature, "at least 0", temperature >= 0),
        ("top_p", top_p, "above 0 and at most 1", 0 < top_p <= 1),
        ("top_k", float(top_k), "at least 0", top_k >= 0),
    ):
        if not ok:
            raise InvalidValueError(
                f"options.{key} must be {rule}, not {got:g}.", param=f"options.{key}"
            )
    params = GenerationParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        seed=None if seed is None or seed < 0 else seed,
        stop=[s for s in stop if s],
    )
    return params, _window(given)


def embedding_window(options: dict[str, Any] | None) -> int | None:
    """The window an embedding request's options set (``num_ctx``), refusing the rest."""
    return _window(_refuse_options(options or {}, sampling=False))


# -- the lines of a response ---------------------------------------------------------------


def now_iso() -> str:
    """Now, as Ollama writes times."""
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def ndjson_line(obj: dict[str, Any]) -> str:
    """One line of a streamed answer."""
    return json.dumps(obj, separators=(",", ":")) + "\n"


def error_line(exc: BaseException) -> str:
    """An error inside a stream, as Ollama writes it: one ``{"error": ...}`` line."""
    if isinstance(exc, ModelportError):
        return ndjson_line({"error": exc.one_line()})
    log.error("unexpected error in an Ollama stream", exc_info=exc)
    return ndjson_line({"error": f"Unexpected {type(exc).__name__}. See the server log."})
