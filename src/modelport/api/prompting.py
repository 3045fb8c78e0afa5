"""Prompting any model, hosted or local, through one path: resolve, key, call, record.

``openai:gpt-4o``, ``anthropic:claude-sonnet-4-5``, ``gemini:gemini-2.5-flash``, a bare
catalog name (``gpt-4o``) or a local model (``hf:Qwen/Qwen2.5-0.5B-Instruct``) are all
resolved to a ``Target`` here; a hosted one is called through its provider (with its key,
its access path and its retries), a local one through ONNX Runtime. Every call, whatever
its outcome, is recorded in the call log with its tokens, latency and cost.

The core is async (the gateway runs it on its event loop); ``api/conversation.py`` holds
its synchronous faces, ``prompt`` and ``chat``, for the CLI and Python.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from modelport.api.keys import credentials_for
from modelport.api.local_chat import local_stream
from modelport.api.targets import (
    Target,
    access_mode,
    catalog_entry,
    provider_registry,
    resolve_target,
    stored_tokenizer,
    target_of,
)
from modelport.errors import (
    ContentFilteredError,
    KeyExpiredError,
    KeyRejectedError,
    MissingKeyError,
    ModelportError,
    ModelRetiredError,
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
    Usage,
    get_provider,
    provider_names,
)
from modelport.settings import get_settings

if TYPE_CHECKING:
    from modelport.api.usage import Access, Operation, Origin
    from modelport.providers.sim_faults import SimStatsReport

__all__ = [
    "ChatResult",
    "ChatStream",
    "LocalRunner",
    "Target",
    "chat_completion",
    "embed_texts",
    "provider_registry",
    "record_local_call",
    "rerank_documents",
    "resolve_target",
    "sim_stats",
    "stream_completion",
    "target_of",
]

log = logging.getLogger("modelport.prompt")

T = TypeVar("T")


#: Runs a local model's chat: the server's runs it through its model pool, others in-process.
LocalRunner = Callable[["Target", ChatRequest], AsyncIterator[ChatChunk]]

#: Errors after which the next model in a fallback list is tried: the model or its
#: provider failed, not the request (a content refusal would be refused again).
FALLBACK_ERRORS: tuple[type[Exception], ...] = (
    ProviderError,
    KeyRejectedError,
    MissingKeyError,
    KeyExpiredError,
)


# -- results -----------------------------------------------------------------------------


@dataclass
class ChatResult:
    """A whole answer and how it came about."""

    response: ChatResponse
    #: The model that answered (after fallbacks).
    target: Target
    latency_ms: float
    cost_usd: float | None
    #: Models tried before the one that answered, with why each failed.
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The answer's text."""
        return self.response.text


class ChatStream:
    """A streamed answer: async iteration yields ``ChatChunk``s; the bookkeeping fills in.

    ``target``, ``access`` and ``failed`` are known once the first chunk arrived (fallbacks
    happen before it); ``usage``, ``cost_usd`` and ``latency_ms`` once the stream ended.
    """

    def __init__(self, target: Target, access: Access) -> None:
        self._chunks: AsyncIterator[ChatChunk] | None = None
        self.target = target
        self.access = access
        self.failed: list[tuple[str, str]] = []
        self.usage: Usage | None = None
        self.cost_usd: float | None = None
        self.latency_ms: float | None = None
        self.ttft_ms: float | None = None
        self.finish_reason: str | None = None

    def attach(self, chunks: AsyncIterator[ChatChunk]) -> None:
        """Set the chunks this stream yields."""
        self._chunks = chunks

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        assert self._chunks is not None, "a ChatStream yields once its chunks are attached"
        return self._chunks

    async def aclose(self) -> None:
        """Stop the stream early (the call is recorded as far as it went)."""
        if self._chunks is not None:
            with contextlib.suppress(Exception):
                await self._chunks.aclose()  # type: ignore[attr-defined]


# -- recording ---------------------------------------------------------------------------


def _record(
    target: Target,
    *,
    access: Access,
    origin: Origin,
    operation: Operation,
    started: float,
    started_at: dt.datetime,
    usage: Usage | None,
    ttft_ms: float | None = None,
    status: str = "ok",
    served_by: str | None = None,
    billed: bool = True,
) -> float | None:
    """Write one call to the call log; returns its cost (None: unknown).

    ``billed=False`` says a failed call was refused before the provider generated anything
    (no key, a 4xx, the budget): it cost nothing. A call cut short after it started
    (a timeout, a lost stream, a client that left) was billed for tokens nobody counted:
    its cost is unknown.
    """
    from modelport.api.usage import CallRecord, cost_of, record_call

    usage = usage or Usage()
    cost: float | None = None
    try:
        if target.kind == "local" or (status != "ok" and not billed):
            cost = 0.0  # no per-call charge: a local model, or refused before any token
        elif access == "cli":
            cost = None  # the vendor CLI's own plan: no per-call price modelport knows
        elif target.catalog_id is not None and usage.input_tokens is not None:
            cost = cost_of(
                target.catalog_id,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
    except Exception as e:  # a provider's odd counts must not fail an answered call
        log.warning("cannot price the call to %s: %s", target.name, e)
        cost = None
    try:
        record_call(
            CallRecord(
                started_at=started_at,
                model=target.catalog_id or target.name,
                provider=target.provider or "local",
                access=access,
                origin=origin,
                operation=operation,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                latency_ms=(time.perf_counter() - started) * 1000,
                ttft_ms=ttft_ms,
                cost_usd=cost,
                status=status,
                served_by=served_by,
            )
        )
    except Exception as e:  # the log is bookkeeping: never fail a call for it
        log.warning("cannot record the call to %s: %s", target.name, e)
    return cost


def sim_stats() -> SimStatsReport:
    """What the simulator answered in this process: requests, faults, rate limits, tokens."""
    from modelport.providers.sim_faults import SimStats, SimStatsReport

    stats = getattr(get_provider("sim"), "stats", None) if "sim" in provider_names() else None
    return stats.snapshot() if isinstance(stats, SimStats) else SimStatsReport()


def record_local_call(
    model: str,
    *,
    operation: Operation,
    started: float,
    started_at: dt.datetime,
    input_tokens: int | None,
    output_tokens: int | None = 0,
    ttft_ms: float | None = None,
    status: str = "ok",
    origin: Origin = "gateway",
) -> None:
    """Write a call a local model answered outside ``chat_completion`` (the server's own
    local routes) to the call log; it costs nothing per call."""
    _record(
        Target(model, "local", None, model),
        access="local",
        origin=origin,
        operation=operation,
        started=started,
        started_at=started_at,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        ttft_ms=ttft_ms,
        status=status,
    )


def _status(error: BaseException) -> str:
    return error.code if isinstance(error, ModelportError) else "error"


def _billed(error: BaseException) -> bool:
    """Whether a failed call may have been billed: it timed out or was cut after it began."""
    from modelport.errors import ProviderTimeoutError

    return isinstance(error, ProviderTimeoutError)


def _explain_retired(error: ModelRetiredError, target: Target) -> ModelRetiredError:
    """The catalog's deprecation note added to a provider's "no such model"."""
    entry = catalog_entry(target.catalog_id)
    if entry is None or entry.deprecation is None:
        return error
    note = entry.deprecation
    instead = f" Use {note.replacement} instead." if note.replacement else ""
    return ModelRetiredError(
        f"{error.message} The catalog says: {note.message}",
        provider=error.provider,
        status=error.status,
        hint=(instead.strip() or error.hint),
    )


# -- hosted calls ------------------------------------------------------------------------


def _request(
    target: Target, messages: Sequence[dict[str, Any]], params: dict[str, Any]
) -> ChatRequest:
    known = {
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
    }
    options = dict(params.pop("options", None) or {})
    options.update({k: v for k, v in params.items() if k not in known and v is not None})
    stop = params.get("stop")
    entry = catalog_entry(target.catalog_id)
    return ChatRequest(
        model=target.model,
        messages=[dict(m) for m in messages],
        max_tokens=params.get("max_tokens"),
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        stop=[stop] if isinstance(stop, str) else list(stop or []),
        seed=params.get("seed"),
        tools=params.get("tools"),
        tool_choice=params.get("tool_choice"),
        response_format=params.get("response_format"),
        options=options,
        entry=entry,
        tokenizer_file=stored_tokenizer(entry) if target.provider == "sim" else None,
    )


async def _check_budget(target: Target) -> None:
    if target.kind == "hosted" and get_settings().daily_budget is not None:
        from anyio import to_thread

        from modelport.api.usage import check_budget

        await to_thread.run_sync(check_budget)  # it may read the database


async def _path(target: Target, access: str | None, request: ChatRequest) -> Access:
    """How a hosted target is reached (asking a vendor CLI may start a process)."""
    from anyio import to_thread

    assert target.provider is not None
    provider = get_provider(target.provider)
    if provider.simulated and (access or "auto").lower() != "cli":
        return "sim"  # called like an API (no key needed), recorded as simulated
    if provider.cli is None:
        return access_mode(provider, access, request)
    return await to_thread.run_sync(access_mode, provider, access, request)


def _key_for(target: Target, key: str | None, owner: str | None) -> str | None:
    """An explicit key belongs to the first model's provider: a fallback to another
    provider uses that provider's own key, never this one."""
    return key if target.provider == owner else None


async def _hosted_chat(
    target: Target, request: ChatRequest, *, key: str | None, path: Access
) -> ChatResponse:
    assert target.provider is not None
    provider = get_provider(target.provider)
    if path == "cli":
        return await provider.cli_chat(request)
    credentials = credentials_for(provider, key)
    try:
        response = await provider.call(lambda: provider.chat(request, credentials), credentials)
    except KeyRejectedError:
        previous = _previous_key(provider, credentials)
        if previous is None:
            raise
        response = await provider.call(lambda: provider.chat(request, previous), previous)
    await _mark_used(provider, credentials)
    return response


def _previous_key(provider: Provider, credentials: Credentials | None) -> Credentials | None:
    """The key a rotation replaced, while its grace lasts, after the new one was rejected."""
    from modelport.secrets import get_key_store

    if credentials is None or credentials.source != "the key store":
        return None
    previous = get_key_store().previous(provider.name)
    return Credentials(previous, "the key store (before rotation)") if previous else None


async def _mark_used(provider: Provider, credentials: Credentials | None) -> None:
    if credentials is not None and credentials.source.startswith("the key store"):
        from anyio import to_thread

        from modelport.secrets import get_key_store

        with contextlib.suppress(Exception):  # at most one file write a minute
            await to_thread.run_sync(get_key_store().mark_used, provider.name)


async def _hosted_stream(
    target: Target, request: ChatRequest, *, key: str | None, path: Access
) -> tuple[AsyncIterator[ChatChunk], ChatChunk | None]:
    """A hosted stream, started: its first chunk is already here (errors came before it)."""
    assert target.provider is not None
    provider = get_provider(target.provider)
    credentials: Credentials | None = None
    if path == "cli":
        chunks = provider.cli_stream_chat(request)
    else:
        credentials = credentials_for(provider, key)
        chunks = provider.call_stream(
            lambda: provider.stream_chat(request, credentials), credentials
        )
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = None
    except KeyRejectedError:
        previous = _previous_key(provider, credentials)
        if previous is None:
            raise
        chunks = provider.call_stream(lambda: provider.stream_chat(request, previous), previous)
        first = await anext(chunks, None)
    await _mark_used(provider, credentials)
    return chunks, first


def _gather(first: ChatChunk | None, pieces: list[ChatChunk], target: Target) -> ChatResponse:
    """A whole answer from its chunks (tool call deltas joined by index)."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    finish, usage, model = "stop", Usage(), target.model
    for chunk in ([first] if first else []) + pieces:
        delta = chunk.delta
        if delta.get("content"):
            content.append(delta["content"])
        if delta.get("reasoning_content"):
            reasoning.append(delta["reasoning_content"])
        for call in delta.get("tool_calls") or []:
            slot = calls.setdefault(
                int(call.get("index", 0)),
                {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
            )
            slot["id"] = call.get("id") or slot["id"]
            function = call.get("function") or {}
            slot["function"]["name"] += function.get("name") or ""
            slot["function"]["arguments"] += function.get("arguments") or ""
        if chunk.finish_reason:
            finish = chunk.finish_reason
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.model:
            model = chunk.model
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if not calls and message["content"] is None:
        message["content"] = ""
    return ChatResponse(message=message, finish_reason=finish, usage=usage, model=model)


# -- the use-cases -----------------------------------------------------------------------


def _falls_back(error: Exception) -> bool:
    """Whether the next model of a fallback list is worth trying after this error."""
    return isinstance(error, FALLBACK_ERRORS) and not isinstance(error, ContentFilteredError)


def _candidates(model: str, fallbacks: Sequence[str] | None) -> list[str]:
    chain = [model, *(fallbacks if fallbacks is not None else get_settings().fallbacks)]
    seen: list[str] = []
    for name in chain:
        if name not in seen:
            seen.append(name)
    return seen


@dataclass
class _Attempt:
    """The candidate that answered: its target, access path, start and the failures before."""

    target: Target
    path: Access
    started: float
    started_at: dt.datetime
    failed: list[tuple[str, str]]


#: One try at a candidate: ``(target, request, access path, its explicit key) -> answer``.
_Try = Callable[[Target, ChatRequest, "Access", str | None], Awaitable[T]]


async def _first_answer(
    model: str,
    messages: Sequence[dict[str, Any]],
    params: dict[str, Any],
    attempt: _Try[T],
    *,
    key: str | None,
    access: str | None,
    origin: Origin,
    fallbacks: Sequence[str] | None,
) -> tuple[_Attempt, T]:
    """Try the model, then each fallback, until one answers (a stream: sends its first
    chunk); every failed try is recorded, and an error that no fallback follows is raised."""
    failed: list[tuple[str, str]] = []
    candidates = _candidates(model, fallbacks)
    owner: str | None = None
    for i, name in enumerate(candidates):
        target = await target_of(name)
        owner = target.provider if i == 0 else owner
        request = _request(target, messages, dict(params))
        started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
        path: Access = "local" if target.kind == "local" else "api"
        try:
            await _check_budget(target)
            if target.kind == "hosted":
                path = await _path(target, access, request)
            answer = await attempt(target, request, path, _key_for(target, key, owner))
        except Exception as error:
            if isinstance(error, ModelRetiredError):
                error = _explain_retired(error, target)
            _record(
                target,
                access=path,
                origin=origin,
                operation="chat",
                started=started,
                started_at=started_at,
                usage=None,
                status=_status(error),
                billed=_billed(error),
            )
            if i + 1 < len(candidates) and _falls_back(error):
                log.info("%s failed (%s); trying %s", name, error, candidates[i + 1])
                failed.append((target.name, str(error)))
                continue
            raise error from None
        return _Attempt(target, path, started, started_at, failed), answer
    raise AssertionError("unreachable: the loop returns or raises")


async def chat_completion(
    model: str,
    messages: Sequence[dict[str, Any]],
    *,
    key: str | None = None,
    access: str | None = None,
    origin: Origin = "python",
    fallbacks: Sequence[str] | None = None,
    local: LocalRunner | None = None,
    **params: Any,
) -> ChatResult:
    """One whole chat answer from a hosted or local model, trying fallbacks in order."""

    async def whole(
        target: Target, request: ChatRequest, path: Access, own_key: str | None
    ) -> ChatResponse:
        if target.kind == "hosted":
            return await _hosted_chat(target, request, key=own_key, path=path)
        pieces = [c async for c in (local or local_stream)(target, request)]
        return _gather(None, pieces, target)

    tried, response = await _first_answer(
        model, messages, params, whole, key=key, access=access, origin=origin, fallbacks=fallbacks
    )
    response.access = tried.path
    cost = _record(
        tried.target,
        access=tried.path,
        origin=origin,
        operation="chat",
        started=tried.started,
        started_at=tried.started_at,
        usage=response.usage,
        served_by=response.model,
    )
    latency = (time.perf_counter() - tried.started) * 1000
    return ChatResult(response, tried.target, latency, cost, tried.failed)


async def stream_completion(
    model: str,
    messages: Sequence[dict[str, Any]],
    *,
    key: str | None = None,
    access: str | None = None,
    origin: Origin = "python",
    fallbacks: Sequence[str] | None = None,
    local: LocalRunner | None = None,
    **params: Any,
) -> ChatStream:
    """A streamed chat answer, started: fallbacks are tried until one sends its first chunk."""

    async def started(
        target: Target, request: ChatRequest, path: Access, own_key: str | None
    ) -> tuple[AsyncIterator[ChatChunk], ChatChunk | None]:
        if target.kind == "hosted":
            return await _hosted_stream(target, request, key=own_key, path=path)
        chunks = (local or local_stream)(target, request)
        return chunks, await anext(chunks, None)

    tried, (chunks, first) = await _first_answer(
        model,
        messages,
        params,
        started,
        key=key,
        access=access,
        origin=origin,
        fallbacks=fallbacks,
    )
    stream = ChatStream(tried.target, tried.path)
    stream.failed = tried.failed
    stream.ttft_ms = (time.perf_counter() - tried.started) * 1000
    stream.attach(_follow(stream, chunks, first, origin, tried.started, tried.started_at))
    return stream


async def _follow(
    stream: ChatStream,
    chunks: AsyncIterator[ChatChunk],
    first: ChatChunk | None,
    origin: Origin,
    started: float,
    started_at: dt.datetime,
) -> AsyncIterator[ChatChunk]:
    """The chunks as they come, then the call recorded and the stream's bookkeeping filled."""
    usage: Usage | None = None
    served_by: str | None = None
    status = "ok"
    try:
        if first is not None:
            if first.usage is not None:
                usage = first.usage
            yield first
        async for chunk in chunks:
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.model:
                served_by = chunk.model
            if chunk.finish_reason:
                stream.finish_reason = chunk.finish_reason
            yield chunk
    except BaseException as error:
        status = _status(error) if isinstance(error, Exception) else "cancelled"
        raise
    finally:
        with contextlib.suppress(Exception):
            await chunks.aclose()  # type: ignore[attr-defined]
        stream.usage = usage
        stream.latency_ms = (time.perf_counter() - started) * 1000
        stream.cost_usd = _record(
            stream.target,
            access=stream.access,
            origin=origin,
            operation="chat",
            started=started,
            started_at=started_at,
            usage=usage,
            ttft_ms=stream.ttft_ms,
            status=status,
            served_by=served_by,
        )


async def _hosted_once(
    model: str,
    operation: Operation,
    call: Callable[[Provider, Target, Credentials | None], Awaitable[T]],
    *,
    key: str | None,
    origin: Origin,
    local_hint: str,
) -> T:
    """One call to a hosted model without fallbacks (embeddings, rerank), recorded."""
    target = await target_of(model)
    if target.kind != "hosted" or target.provider is None:
        raise UnsupportedOperationError(f"{model} is a local model.", hint=local_hint)
    provider = get_provider(target.provider)
    path: Access = "sim" if provider.simulated else "api"
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    try:
        await _check_budget(target)
        credentials = credentials_for(provider, key)
        done = await provider.call(lambda: call(provider, target, credentials), credentials)
    except Exception as error:
        _record(
            target,
            access=path,
            origin=origin,
            operation=operation,
            started=started,
            started_at=started_at,
            usage=None,
            status=_status(error),
            billed=_billed(error),
        )
        raise
    await _mark_used(provider, credentials)
    _record(
        target,
        access=path,
        origin=origin,
        operation=operation,
        started=started,
        started_at=started_at,
        usage=getattr(done, "usage", None),
        served_by=getattr(done, "model", None),
    )
    return done


async def embed_texts(
    model: str,
    texts: Sequence[str],
    *,
    key: str | None = None,
    dimensions: int | None = None,
    origin: Origin = "python",
) -> Embeddings:
    """Vectors for texts from a hosted model (local encoders are served by ``run``)."""
    return await _hosted_once(
        model,
        "embeddings",
        lambda provider, target, credentials: provider.embed(
            target.model,
            texts,
            credentials,
            dimensions=dimensions,
            entry=catalog_entry(target.catalog_id),
        ),
        key=key,
        origin=origin,
        local_hint="Use `modelport run` or the server's /v1/embeddings.",
    )


async def rerank_documents(
    model: str,
    query: str,
    documents: Sequence[str],
    *,
    key: str | None = None,
    top_n: int | None = None,
    origin: Origin = "python",
) -> Reranking:
    """Documents ordered by relevance to a query, by a hosted rerank model."""
    return await _hosted_once(
        model,
        "rerank",
        lambda provider, target, credentials: provider.rerank(
            target.model, query, documents, credentials, top_n=top_n
        ),
        key=key,
        origin=origin,
        local_hint="Use the server's /v1/rerank for local rerankers.",
    )
