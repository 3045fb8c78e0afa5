"""Google's Gemini API through the official ``google-genai`` SDK, or the ``gemini`` CLI.

Requests arrive in OpenAI's shape and leave as ``generateContent`` calls: system and
developer messages become the ``system_instruction``, assistant turns the ``model`` role,
tool calls ``function_call`` parts and tool results ``function_response`` parts. A
refusal by Gemini's safety filters (a blocked prompt, or an answer stopped for
``SAFETY``, ``RECITATION``, ``PROHIBITED_CONTENT``, ``BLOCKLIST``, ``SPII`` ...) is a
``ContentFilteredError``, never an empty answer with ``finish_reason: content_filter``.

Gemini 3 models sign their function calls (``thought_signature``) and want the signature
back with the call in the next turn. The signature travels in the OpenAI tool call as
``extra_content.google.thought_signature`` (base64), where Google's own OpenAI
compatibility layer puts it, so a client that sends the tool calls back unchanged keeps
multi-turn tool use working.

The translation between the two shapes is ``providers/gemini_protocol.py``; the
``gemini`` CLI half (``gemini -p``) is ``providers/gemini_cli.py``.

The SDK is pinned to its ``httpx`` transport (it prefers ``aiohttp`` when installed,
whose timeout bounds a whole stream and whose errors differ) and to the Gemini API
(``vertexai=False``, so ``GOOGLE_GENAI_USE_VERTEXAI`` or ADC in the environment never
redirect a call); its own retries are off, since ``Provider.call`` retries.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from modelport.errors import MissingExtraError, ModelportError, ProviderError
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
from modelport.providers.gemini_protocol import (
    check_finish,
    check_prompt,
    config_of,
    contents_of,
    finish_of,
    message_of,
    tool_call,
    usage_of,
)

__all__ = ["GeminiProvider"]


class _EnvKeyNotice(logging.Filter):
    """Drops the SDK's "Both GOOGLE_API_KEY and GEMINI_API_KEY are set. Using GOOGLE_API_KEY."

    The SDK logs it whenever a client is made, even with a key passed in; modelport picks
    the key itself (``GEMINI_API_KEY`` first), so the notice would be wrong.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "GOOGLE_API_KEY and GEMINI_API_KEY are set" not in record.getMessage()


_ENV_KEY_NOTICE = _EnvKeyNotice()


class GeminiProvider(Provider):
    """Google's Gemini API (``google-genai``), or the ``gemini`` CLI a user is signed in to."""

    name: ClassVar[str] = "gemini"
    label: ClassVar[str] = "Gemini"
    env_keys: ClassVar[tuple[str, ...]] = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    catalog_provider: ClassVar[str | None] = "google"
    cli: ClassVar[str | None] = "gemini"

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        super().__init__(base_url=base_url, timeout=timeout)
        self._cli_ready: bool | None = None

    def client(self, credentials: Credentials | None) -> Any:
        """The SDK's client for this key on the running event loop."""

        try:
            import httpx
            from google import genai
            from google.genai import types
        except ImportError:
            raise MissingExtraError("providers", feature="Calling Gemini") from None

        def make(key: str) -> Any:
            logging.getLogger("google_genai._api_client").addFilter(_ENV_KEY_NOTICE)
            return genai.Client(
                vertexai=False,
                api_key=key or "none",
                http_options=types.HttpOptions(
                    base_url=self.base_url or None,
                    api_version="v1beta",
                    timeout=max(1, int(self.timeout * 1000)),
                    # One attempt: Provider.call retries, the same way for every provider.
                    retry_options=types.HttpRetryOptions(attempts=1),
                    httpx_async_client=httpx.AsyncClient(timeout=self.timeout),
                ),
            )

        return self.cached_client(credentials, make)

    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """One whole answer from ``generateContent``."""
        contents, config = contents_of(request.messages), config_of(request)
        done = await self.client(credentials).aio.models.generate_content(
            model=request.model, contents=contents, config=config
        )
        message, finish = message_of(done)
        return ChatResponse(
            message=message,
            finish_reason=finish,
            usage=usage_of(done.usage_metadata),
            model=done.model_version or request.model,
            id=done.response_id or "",
        )

    async def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """The answer as ``streamGenerateContent`` sends it; usage and finish come last."""
        contents, config = contents_of(request.messages), config_of(request)
        stream = await self.client(credentials).aio.models.generate_content_stream(
            model=request.model, contents=contents, config=config
        )
        first, calls, answered = True, 0, False
        usage: Usage | None = None
        model: str | None = None
        reason: str | None = None
        try:
            async for event in stream:
                check_prompt(event)
                model = event.model_version or model
                if event.usage_metadata is not None:
                    usage = usage_of(event.usage_metadata)
                candidate = (event.candidates or [None])[0]
                if candidate is None:
                    continue
                reason = finish_of(candidate) or reason
                for part in (candidate.content.parts if candidate.content else None) or []:
                    delta: dict[str, Any] = {}
                    if part.function_call is not None:
                        delta["tool_calls"] = [{"index": calls, **tool_call(part, calls)}]
                        calls += 1
                    elif part.text and part.thought:
                        delta["reasoning_content"] = part.text
                    elif part.text:
                        delta["content"] = part.text
                    else:
                        continue
                    answered = answered or "reasoning_content" not in delta
                    if first:
                        delta = {"role": "assistant", **delta}
                        first = False
                    yield ChatChunk(delta=delta, model=model or request.model)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        finish = check_finish(reason, answered) or "stop"
        if calls and finish == "stop":
            finish = "tool_calls"
        yield ChatChunk(
            delta={"role": "assistant"} if first else {},
            finish_reason=finish,
            usage=usage,
            model=model or request.model,
        )

    async def embed(
        self,
        model: str,
        inputs: Sequence[str],
        credentials: Credentials | None,
        *,
        dimensions: int | None = None,
        entry: Any = None,
    ) -> Embeddings:
        """Vectors from ``batchEmbedContents``; token counts only where Gemini reports them."""
        from google.genai import types

        # One Content per input: a list of plain strings would become one multimodal
        # content (one vector) for the newer embedding models.
        contents = [types.Content(parts=[types.Part(text=text)]) for text in inputs]
        config = types.EmbedContentConfig(output_dimensionality=dimensions)
        done = await self.client(credentials).aio.models.embed_content(
            model=model, contents=contents, config=config
        )
        vectors = [list(e.values or []) for e in done.embeddings or []]
        if len(vectors) != len(inputs):
            raise ProviderError(
                f"Gemini sent {len(vectors)} vectors for {len(inputs)} inputs.",
                provider=self.name,
            )
        return Embeddings(
            vectors=vectors,
            usage=Usage(input_tokens=_embed_tokens(done), output_tokens=0),
            model=model,
        )

    def upstream(self, error: BaseException) -> Upstream | None:
        """What a ``google-genai`` (or its ``httpx`` transport's) exception was."""
        try:
            import httpx
            from google.genai import errors
        except ImportError:
            return None
        if isinstance(error, httpx.TimeoutException):
            return Upstream(None, "timed out", timeout=True)
        if isinstance(error, httpx.TransportError):
            return Upstream(None, str(error) or type(error).__name__)
        if not isinstance(error, errors.APIError):
            return None
        from modelport.providers.openai import retry_after

        status: int | None = error.code
        message = str(error.message or error.status or "no message")
        detail = _error_details(error.details)
        if any(d.get("reason") == "API_KEY_INVALID" for d in detail) or (
            status == 400 and "api key not valid" in message.lower()
        ):
            # Gemini answers a wrong key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
            status = 401
        headers = getattr(error.response, "headers", None)
        wait = retry_after(headers)
        if wait is None:
            wait = _retry_delay(detail)
        return Upstream(status, message, retry_after=wait, code=error.status or None)

    # -- the gemini CLI --------------------------------------------------------------------

    def cli_ready(self) -> bool:
        """Whether ``gemini`` is on PATH and signed in (checked once per process)."""
        if self._cli_ready is None:
            from modelport.providers.gemini_cli import ready

            self._cli_ready = ready()
        return self._cli_ready

    def cli_refusal(self, request: ChatRequest) -> Exception | None:
        """Why ``gemini -p`` cannot take this request, or None."""
        from modelport.providers.gemini_cli import _check

        try:
            _check(request)
        except ModelportError as e:
            return e
        return None

    async def cli_chat(self, request: ChatRequest) -> ChatResponse:
        """One whole answer from ``gemini -p --output-format json``."""
        from modelport.providers.gemini_cli import chat

        return await chat(request, timeout=self.timeout)

    async def cli_stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The answer as ``gemini -p --output-format stream-json`` prints it."""
        from modelport.providers.gemini_cli import stream_chat

        async for chunk in stream_chat(request, timeout=self.timeout):
            yield chunk


def _error_details(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return []
    error = body.get("error", body)
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "37s"``), if any."""
    for detail in details:
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _embed_tokens(response: Any) -> int | None:
    usage = getattr(response, "usage_metadata", None)
    counted = getattr(usage, "prompt_token_count", None) if usage is not None else None
    if counted is not None:
        return int(counted)
    counts = [
        getattr(e.statistics, "token_count", None) if e.statistics is not None else None
        for e in response.embeddings or []
    ]
    if counts and all(c is not None for c in counts):
        return int(sum(c for c in counts if c is not None))
    return None
