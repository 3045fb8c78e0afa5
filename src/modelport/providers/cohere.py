"""Cohere through the official ``cohere`` SDK: v2 chat (streaming, tools), embed and rerank.

The shapes are translated in ``cohere_protocol`` (OpenAI's request to Cohere's, Cohere's
answers and stream events to OpenAI's); this module makes the calls and says what the SDK's
errors were.

Embeddings are made for documents (``input_type`` ``search_document``) unless the caller
asks ``embed(..., input_type="search_query")`` (or ``classification``, ``clustering``):
Cohere's vectors differ by input type. ``dimensions`` is sent as ``output_dimension``, which
only embed v4 and newer take; Cohere refuses it for the others. A rerank reports the billed
input tokens where Cohere prices the model by token, and no tokens otherwise: search units
are not tokens, and the per-query price comes from the catalog.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, ClassVar

from modelport.errors import (
    MissingExtraError,
    MissingKeyError,
    ProviderError,
    UnsupportedOperationError,
)
from modelport.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Credentials,
    Embeddings,
    Provider,
    Reranking,
    RerankResult,
    Upstream,
    Usage,
)
from modelport.providers.cohere_protocol import (
    StreamTranslation,
    chat_arguments,
    finish_reason,
    openai_message,
    usage_of,
)
from modelport.providers.openai import retry_after

__all__ = ["CohereProvider"]

DEFAULT_URL = "https://api.cohere.com"

#: The most texts one v2 embed call takes; longer lists go in several calls.
EMBED_BATCH = 96

#: The ``input_type`` values of v2 embed for text.
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or json.dumps(body))
    return str(body or "").strip()


# -- the provider -------------------------------------------------------------------------------


class CohereProvider(Provider):
    """Cohere's v2 API: chat (streaming, tools), embed and rerank."""

    name: ClassVar[str] = "cohere"
    label: ClassVar[str] = "Cohere"
    env_keys: ClassVar[tuple[str, ...]] = ("CO_API_KEY", "COHERE_API_KEY")

    def client(self, credentials: Credentials | None) -> Any:
        """The SDK's async v2 client for this key on the running event loop."""

        try:
            import cohere
        except ImportError:
            raise MissingExtraError("providers", feature="Calling Cohere") from None
        if credentials is None:
            # The SDK would read CO_API_KEY itself, around modelport's own key order.
            raise MissingKeyError(self.name, self.label, self.env_keys)
        return self.cached_client(
            credentials,
            lambda key: cohere.AsyncClientV2(
                api_key=key,
                base_url=self.base_url or DEFAULT_URL,
                timeout=self.timeout,
                max_retries=0,  # Provider.call retries, the same way for every provider
                log_warning_experimental_features=False,
            ),
        )

    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """One whole answer from ``/v2/chat``."""
        args = chat_arguments(request)
        done = await self.client(credentials).chat(**args)
        return ChatResponse(
            message=openai_message(done.message),
            finish_reason=finish_reason(done.finish_reason),
            usage=usage_of(done.usage),
            model=request.model,
            id=done.id or "",
        )

    async def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """The answer as ``/v2/chat`` streams it: role, text or tool calls, finish and usage."""
        args = chat_arguments(request)
        stream = self.client(credentials).chat_stream(**args)
        state = StreamTranslation(request.model)
        try:
            async for event in stream:
                chunk = state.chunk(event)
                if chunk is not None:
                    yield chunk
        finally:
            await stream.aclose()

    async def embed(
        self,
        model: str,
        inputs: Sequence[str],
        credentials: Credentials | None,
        *,
        dimensions: int | None = None,
        entry: Any = None,
        input_type: str = "search_document",
    ) -> Embeddings:
        """Float vectors from ``/v2/embed``, in input order (made for documents by default)."""
        if input_type not in INPUT_TYPES:
            raise UnsupportedOperationError(
                f"Cohere embeds text with no input_type {input_type!r}.",
                hint="Use " + ", ".join(INPUT_TYPES) + ".",
            )
        texts = list(inputs)
        if not texts:
            return Embeddings(vectors=[], usage=Usage(input_tokens=0, output_tokens=0), model=model)
        client = self.client(credentials)
        vectors: list[list[float]] = []
        tokens: int | None = None
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start : start + EMBED_BATCH]
            args: dict[str, Any] = {
                "model": model,
                "input_type": input_type,
                "texts": batch,
                "embedding_types": ["float"],
            }
            if dimensions is not None:
                args["output_dimension"] = dimensions
            done = await client.embed(**args)
            floats = getattr(done.embeddings, "float_", None) or []
            if len(floats) != len(batch):
                raise ProviderError(
                    f"Cohere sent {len(floats)} float vectors for {len(batch)} texts.",
                    provider=self.name,
                )
            vectors.extend([float(x) for x in vector] for vector in floats)
            used = usage_of(done.meta).input_tokens
            if used is not None:
                tokens = (tokens or 0) + used
        return Embeddings(
            vectors=vectors,
            usage=Usage(input_tokens=tokens, output_tokens=0),
            model=model,
        )

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str],
        credentials: Credentials | None,
        *,
        top_n: int | None = None,
    ) -> Reranking:
        """Documents ordered by ``/v2/rerank``, best first (tokens only where Cohere bills them)."""
        docs = list(documents)
        if not docs:
            return Reranking(results=[], usage=Usage(), model=model)
        args: dict[str, Any] = {"model": model, "query": query, "documents": docs}
        if top_n is not None:
            args["top_n"] = top_n
        done = await self.client(credentials).rerank(**args)
        results = [RerankResult(int(r.index), float(r.relevance_score)) for r in done.results]
        results.sort(key=lambda r: -r.relevance_score)  # stable: Cohere's order among ties
        billed = getattr(getattr(done, "meta", None), "billed_units", None)
        tokens = getattr(billed, "input_tokens", None)
        return Reranking(
            results=results,
            usage=Usage(input_tokens=int(tokens) if tokens is not None else None),
            model=model,
        )

    def upstream(self, error: BaseException) -> Upstream | None:
        """What a ``cohere`` SDK exception (or the httpx error under it) was."""
        try:
            import httpx
            from cohere.core.api_error import ApiError
            from cohere.core.http_sse import SSEError
        except ImportError:
            return None
        if isinstance(error, httpx.TimeoutException):
            return Upstream(None, "timed out", timeout=True)
        if isinstance(error, httpx.TransportError):
            return Upstream(None, str(error) or type(error).__name__)
        if isinstance(error, SSEError):
            return Upstream(502, f"an unreadable stream: {error}")
        if isinstance(error, ApiError):
            status = error.status_code
            if status == 498:
                status = 401  # Cohere's "invalid token" status
            return Upstream(
                status,
                _error_message(error.body),
                retry_after=retry_after(httpx.Headers(error.headers or {})),
            )
        return None
