"""OpenAI, and every provider that speaks OpenAI's API, through the official ``openai`` SDK.

Groq, DeepSeek, Mistral, xAI, Together, Fireworks, OpenRouter and Perplexity answer
OpenAI's ``/chat/completions`` at their own base URL (``MODELPORT_<NAME>_URL``), so one
class serves them all; each differs only in its name, key variables and base URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from modelport.errors import MissingExtraError, UnsupportedOperationError
from modelport.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Credentials,
    Embeddings,
    Provider,
    Upstream,
    Usage,
)

__all__ = [
    "DeepSeekProvider",
    "FireworksProvider",
    "GroqProvider",
    "MistralProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "OpenRouterProvider",
    "PerplexityProvider",
    "TogetherProvider",
    "XAIProvider",
    "check_options",
]


def usage_of(raw: Any) -> Usage:
    """OpenAI's ``usage`` object (a dict or the SDK's model) as a ``Usage``."""
    if raw is None:
        return Usage()
    data = raw if isinstance(raw, dict) else raw.model_dump()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=data.get("prompt_tokens"),
        output_tokens=data.get("completion_tokens"),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


#: OpenAI chat parameters passed on as they are (``n``, ``logprobs`` only at their defaults:
#: one choice and no log probabilities come back through modelport's shapes).
PASSED_OPTIONS = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "user",
        "reasoning_effort",
        "metadata",
        "store",
        "parallel_tool_calls",
        "service_tier",
        "prediction",
        "modalities",
        "audio",
        "web_search_options",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
        "max_completion_tokens",
        "n",
        "logprobs",
        "top_logprobs",
    }
)


def check_options(options: dict[str, Any], *, who: str) -> None:
    """Refuse, by name, an option OpenAI's chat API lacks, and the ones whose answer
    modelport's shapes cannot carry (``n`` above 1, log probabilities)."""
    for name, value in options.items():
        if name not in PASSED_OPTIONS:
            raise UnsupportedOperationError(
                f"{who} do not take `{name}`.",
                hint="Known options: " + ", ".join(sorted(PASSED_OPTIONS)) + ".",
            )
        if name == "n" and value not in (None, 1):
            raise UnsupportedOperationError(
                "One choice per call: `n` above 1 is not supported here.",
                hint="Send several requests instead.",
            )
        if name in ("logprobs", "top_logprobs") and value:
            raise UnsupportedOperationError(
                f"`{name}` is not returned through modelport yet.",
                hint="Leave it out, or call the provider's API directly.",
            )


class OpenAICompatibleProvider(Provider):
    """A provider answering OpenAI's chat completions and embeddings API."""

    label: ClassVar[str] = "OpenAI-compatible API"
    #: How the answer's length limit is named (OpenAI's reasoning models refuse
    #: ``max_tokens``; compatible APIs mostly know only ``max_tokens``).
    max_tokens_name: ClassVar[str] = "max_tokens"
    #: Whether ``stream_options.include_usage`` is understood (usage on the last chunk).
    stream_usage: ClassVar[bool] = True
    #: Whether the provider has ``/embeddings``.
    has_embeddings: ClassVar[bool] = False

    def client(self, credentials: Credentials | None) -> Any:
        """The SDK's async client for this key on the running event loop."""

        try:
            import openai
        except ImportError:
            raise MissingExtraError("providers", feature=f"Calling {self.label}") from None
        return self.cached_client(
            credentials,
            lambda key: openai.AsyncOpenAI(
                api_key=key or "none",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,  # Provider.call retries, the same way for every provider
            ),
        )

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        args: dict[str, Any] = {"model": request.model, "messages": request.messages}
        for name in ("temperature", "top_p", "seed", "tool_choice"):
            value = getattr(request, name)
            if value is not None:
                args[name] = value
        if request.max_tokens is not None:
            args[self.max_tokens_name] = request.max_tokens
        if request.stop:
            args["stop"] = request.stop
        if request.tools:
            args["tools"] = request.tools
        if request.response_format is not None:
            args["response_format"] = request.response_format
        check_options(request.options, who=f"{self.label} calls here")
        for name, value in request.options.items():
            if name == "max_completion_tokens" and value is not None:
                args[self.max_tokens_name] = value
            elif value is not None:
                args[name] = value
        return args

    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """One whole answer from ``/chat/completions``."""
        done = await self.client(credentials).chat.completions.create(**self._arguments(request))
        choice = done.choices[0]
        message = choice.message.model_dump(exclude_none=True)
        message.setdefault("content", None)
        return ChatResponse(
            message=message,
            finish_reason=choice.finish_reason or "stop",
            usage=usage_of(done.usage),
            model=done.model or request.model,
            id=done.id or "",
            created=done.created or 0,
        )

    async def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """The answer as ``/chat/completions`` streams it."""
        args = self._arguments(request)
        args["stream"] = True
        if self.stream_usage:
            args["stream_options"] = {"include_usage": True}
        stream = await self.client(credentials).chat.completions.create(**args)
        try:
            async for event in stream:
                usage = usage_of(event.usage) if event.usage is not None else None
                if not event.choices:
                    if usage is not None:
                        yield ChatChunk(usage=usage, model=event.model)
                    continue
                choice = event.choices[0]
                yield ChatChunk(
                    delta=choice.delta.model_dump(exclude_none=True),
                    finish_reason=choice.finish_reason,
                    usage=usage,
                    model=event.model,
                )
        finally:
            await stream.close()

    async def embed(
        self,
        model: str,
        inputs: Sequence[str],
        credentials: Credentials | None,
        *,
        dimensions: int | None = None,
        entry: Any = None,
    ) -> Embeddings:
        """Vectors from ``/embeddings``."""
        if not self.has_embeddings:
            raise UnsupportedOperationError(f"{self.label} has no embeddings API.")
        args: dict[str, Any] = {"model": model, "input": list(inputs)}
        if dimensions is not None:
            args["dimensions"] = dimensions
        done = await self.client(credentials).embeddings.create(**args)
        rows = sorted(done.data, key=lambda d: d.index)
        return Embeddings(
            vectors=[list(r.embedding) for r in rows],
            usage=Usage(input_tokens=done.usage.prompt_tokens, output_tokens=0),
            model=done.model or model,
        )

    def upstream(self, error: BaseException) -> Upstream | None:
        """What an ``openai`` SDK exception was."""
        try:
            import openai
        except ImportError:
            return None
        if isinstance(error, openai.APITimeoutError):
            return Upstream(None, "timed out", timeout=True)
        if isinstance(error, openai.APIConnectionError):
            return Upstream(None, str(error.__cause__ or error))
        if isinstance(error, openai.APIStatusError):
            body = error.body if isinstance(error.body, dict) else {}
            detail = body.get("error", body) if isinstance(body, dict) else {}
            message = detail.get("message") if isinstance(detail, dict) else None
            code = detail.get("code") if isinstance(detail, dict) else None
            return Upstream(
                error.status_code,
                str(message or error.message),
                retry_after=retry_after(error.response.headers),
                code=str(code) if code else None,
            )
        return None


def retry_after(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` (or ``retry-after-ms``) header, if any."""
    import email.utils
    import time

    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


class OpenAIProvider(OpenAICompatibleProvider):
    """OpenAI's own API."""

    name = "openai"
    label = "OpenAI"
    env_keys = ("OPENAI_API_KEY",)
    has_embeddings = True
    max_tokens_name = "max_completion_tokens"


class GroqProvider(OpenAICompatibleProvider):
    """Groq's OpenAI-compatible API."""

    name = "groq"
    label = "Groq"
    env_keys = ("GROQ_API_KEY",)


class DeepSeekProvider(OpenAICompatibleProvider):
    """DeepSeek's OpenAI-compatible API."""

    name = "deepseek"
    label = "DeepSeek"
    env_keys = ("DEEPSEEK_API_KEY",)


class MistralProvider(OpenAICompatibleProvider):
    """Mistral's OpenAI-compatible API (it has embeddings, no ``stream_options``)."""

    name = "mistral"
    label = "Mistral"
    env_keys = ("MISTRAL_API_KEY",)
    has_embeddings = True
    stream_usage = False


class XAIProvider(OpenAICompatibleProvider):
    """xAI's OpenAI-compatible API (Grok)."""

    name = "xai"
    label = "xAI"
    env_keys = ("XAI_API_KEY",)


class TogetherProvider(OpenAICompatibleProvider):
    """Together AI's OpenAI-compatible API."""

    name = "together"
    label = "Together AI"
    env_keys = ("TOGETHER_API_KEY",)
    has_embeddings = True


class FireworksProvider(OpenAICompatibleProvider):
    """Fireworks AI's OpenAI-compatible API."""

    name = "fireworks"
    label = "Fireworks AI"
    env_keys = ("FIREWORKS_API_KEY",)
    has_embeddings = True


class OpenRouterProvider(OpenAICompatibleProvider):
    """OpenRouter's OpenAI-compatible API (models named ``vendor/model``)."""

    name = "openrouter"
    label = "OpenRouter"
    env_keys = ("OPENROUTER_API_KEY",)


class PerplexityProvider(OpenAICompatibleProvider):
    """Perplexity's OpenAI-compatible API (Sonar)."""

    name = "perplexity"
    label = "Perplexity"
    env_keys = ("PERPLEXITY_API_KEY",)
    stream_usage = False
