"""One OpenAI-shaped interface over every hosted provider, and the provider registry.

A provider turns an OpenAI-shaped request (``ChatRequest``: OpenAI's chat messages,
tools, ``response_format``) into its vendor's call through the vendor's own SDK, and the
vendor's answer back into OpenAI's shapes (``ChatResponse``, ``ChatChunk``). What it
cannot do is refused with the reason (``UnsupportedOperationError``), never ignored.

SDK errors become domain errors in one place, ``Provider.call``: each provider only says
what an SDK exception was (``Provider.upstream``: a status, a message, a Retry-After),
and ``call`` retries 429s (honouring ``Retry-After``), 5xx and lost connections with
exponential backoff, then raises the one clear error. A stream is retried only before its
first chunk: once text has reached the caller, a failure ends the stream.

Providers are plugins: the built-ins are registered through the ``modelport.providers``
entry point group exactly as a third-party package registers its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from modelport.errors import (
    ContentFilteredError,
    KeyRejectedError,
    ModelRetiredError,
    ProviderError,
    ProviderRateLimitError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UnknownProviderError,
    UnsupportedOperationError,
)
from modelport.settings import get_settings

__all__ = [
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Credentials",
    "Embeddings",
    "Provider",
    "RerankResult",
    "Reranking",
    "Upstream",
    "Usage",
    "get_provider",
    "provider_for_catalog",
    "provider_names",
    "register_provider",
    "request_arrived",
    "requested_fault",
    "reset_providers",
    "unregister_provider",
]

log = logging.getLogger("modelport.providers")

#: When the request of this call reached the server (``time.monotonic()``), set by the
#: server for each request: a simulated latency counts from there, so that the server's own
#: work lies inside the profile's latency (as it lies inside a real provider's) and is not
#: added to it. The simulator reads it once per request.
request_arrived: ContextVar[float | None] = ContextVar("modelport_request_arrived", default=None)
#: A fault the caller asked the simulator for outside the body (``x-modelport-sim-fault``),
#: for protocols whose body has no place for one (Anthropic's ``metadata``).
requested_fault: ContextVar[str | None] = ContextVar("modelport_requested_fault", default=None)

T = TypeVar("T")

#: The longest ``Retry-After`` a call waits out; a longer one fails at once and says when.
MAX_RETRY_WAIT = 30.0


# -- the OpenAI-shaped request and answers ------------------------------------------------


@dataclass
class Usage:
    """Tokens of one call as the provider counted them; None when it did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    #: Input tokens read from the provider's prompt cache (part of ``input_tokens``).
    cached_tokens: int = 0
    #: Output tokens spent on hidden reasoning (part of ``output_tokens``).
    reasoning_tokens: int = 0

    def to_openai(self) -> dict[str, Any]:
        """OpenAI's ``usage`` object."""
        prompt = self.input_tokens or 0
        completion = self.output_tokens or 0
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


@dataclass
class ChatRequest:
    """A chat request in OpenAI's shape, addressed to a provider's own model name."""

    #: The provider's name for the model (``gpt-4o``, ``claude-sonnet-4-5``), no prefix.
    model: str
    #: OpenAI chat messages: ``role`` (system, developer, user, assistant, tool), ``content``
    #: (a string or OpenAI content parts), ``tool_calls`` and ``tool_call_id``.
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    #: OpenAI function tools: ``{"type": "function", "function": {name, description,
    #: parameters}}``.
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    #: ``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {...}}``.
    response_format: dict[str, Any] | None = None
    #: Other OpenAI parameters (``presence_penalty``, ``reasoning_effort``, ``user`` ...):
    #: passed on where the provider has them, refused by name where it has not.
    options: dict[str, Any] = field(default_factory=dict)
    #: The catalog entry of the model asked for, when the catalog knows it (a simulator
    #: answers as that model would; providers that call a real API ignore it).
    entry: Any = field(default=None, repr=False, compare=False)
    #: The model's own ``tokenizer.json`` when the store holds it (a simulator counts tokens
    #: with it; providers that call a real API ignore it).
    tokenizer_file: Path | None = field(default=None, repr=False, compare=False)

    def system_text(self) -> str | None:
        """The system and developer messages joined, for APIs that take them apart."""
        parts = [
            content_text(m.get("content"))
            for m in self.messages
            if m.get("role") in ("system", "developer")
        ]
        return "\n\n".join(p for p in parts if p) or None


def content_text(content: Any) -> str:
    """The text of a message's content (a string or OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")


@dataclass
class ChatResponse:
    """A whole chat answer in OpenAI's terms."""

    #: OpenAI's assistant message: ``role``, ``content``, optionally ``tool_calls``,
    #: ``refusal`` and ``reasoning_content``.
    message: dict[str, Any]
    finish_reason: str
    usage: Usage
    #: The model that answered, as the provider names it.
    model: str
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    #: How the provider was reached: ``api`` or ``cli``.
    access: str = "api"

    @property
    def text(self) -> str:
        """The answer's text."""
        return content_text(self.message.get("content"))


@dataclass
class ChatChunk:
    """One piece of a streamed chat answer in OpenAI's terms."""

    #: OpenAI's ``delta``: ``content``, ``tool_calls`` (with ``index``), ``role``,
    #: ``reasoning_content``.
    delta: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    #: Sent once, on the last chunk, when the provider reports it.
    usage: Usage | None = None
    model: str | None = None


@dataclass
class Embeddings:
    """Vectors for a list of inputs, in input order."""

    vectors: list[list[float]]
    usage: Usage
    model: str


@dataclass
class RerankResult:
    """One document's place in a reranking."""

    index: int
    relevance_score: float


@dataclass
class Reranking:
    """Documents ordered by relevance to a query, best first."""

    results: list[RerankResult]
    usage: Usage
    model: str


@dataclass(frozen=True)
class Credentials:
    """A key and where it came from (the key itself is never shown)."""

    key: str = field(repr=False)
    #: ``argument``, ``$OPENAI_API_KEY``, ``the key store`` ...
    source: str

    def __str__(self) -> str:
        return f"a key from {self.source}"


@dataclass(frozen=True)
class Upstream:
    """What a vendor SDK's exception was: the provider says it, ``Provider.call`` acts."""

    #: The HTTP status, or None when no answer came (connection lost, timeout).
    status: int | None
    message: str
    retry_after: float | None = None
    timeout: bool = False
    #: The provider's own error code (``content_policy_violation``, ``model_not_found``).
    code: str | None = None


# -- providers -----------------------------------------------------------------------------


class Provider(ABC):
    """A hosted model API behind modelport's OpenAI-shaped interface."""

    #: The registry name: the prefix of references (``openai:gpt-4o``).
    name: ClassVar[str]
    #: The vendor's name in sentences ("OpenAI").
    label: ClassVar[str]
    #: Conventional environment variables holding its key, first one wins.
    env_keys: ClassVar[tuple[str, ...]] = ()
    #: The ``provider`` value of its catalog entries, when it differs from ``name``.
    catalog_provider: ClassVar[str | None] = None
    #: The vendor CLI a user may be signed in to (``claude``, ``gemini``), if any.
    cli: ClassVar[str | None] = None
    #: Whether a call needs a key at all (a local OpenAI-compatible server may not).
    needs_key: ClassVar[bool] = True
    #: Whether its answers are simulated (no model runs; the call log says ``sim``).
    simulated: ClassVar[bool] = False

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        settings = get_settings()
        self.base_url = base_url or settings.provider_urls.get(self.name) or ""
        self.timeout = timeout if timeout is not None else settings.timeout_of(self.name)
        self.retries = settings.provider_retries
        self._clients: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()

    def cached_client(self, credentials: Credentials | None, make: Callable[[str], T]) -> T:
        """The vendor SDK's client for this key on the running event loop, made once: a
        client's connection pool belongs to one loop, and a client per call would open a
        connection per call. Keyed by a digest, so that no key sits in the provider's state."""
        import asyncio

        loop = asyncio.get_running_loop()
        key = credentials.key if credentials is not None else ""
        digest = hashlib.sha256(key.encode()).hexdigest()
        clients = self._clients.setdefault(loop, {})
        client = clients.get(digest)
        if client is None:
            client = clients[digest] = make(key)
        return client

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.base_url}>"

    @property
    def catalog_name(self) -> str:
        """The provider field of this provider's catalog entries."""
        return self.catalog_provider or self.name

    def catalog_id(self, model: str) -> str:
        """The catalog id of one of this provider's models (``openai/gpt-4o``)."""
        return f"{self.catalog_name}/{model}"

    # -- what each provider implements -----------------------------------------------------

    @abstractmethod
    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """One whole chat answer (one try; ``call`` retries)."""

    @abstractmethod
    def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """A chat answer as it is generated (an async generator)."""

    async def embed(
        self,
        model: str,
        inputs: Sequence[str],
        credentials: Credentials | None,
        *,
        dimensions: int | None = None,
        entry: Any = None,
    ) -> Embeddings:
        """Vectors for texts (``entry``: the model's catalog entry, as on a chat request);
        refused by providers without an embeddings API."""
        raise UnsupportedOperationError(f"{self.label} has no embeddings API in modelport.")

    async def rerank(
        self,
        model: str,
        query: str,
        documents: Sequence[str],
        credentials: Credentials | None,
        *,
        top_n: int | None = None,
    ) -> Reranking:
        """Documents ordered by relevance; refused by providers without a rerank API."""
        raise UnsupportedOperationError(f"{self.label} has no rerank API.")

    @abstractmethod
    def upstream(self, error: BaseException) -> Upstream | None:
        """What a vendor SDK's exception was; None for an exception that is not the SDK's."""

    # -- the vendor CLI (CLI/API dual mode) --------------------------------------------------

    def cli_ready(self) -> bool:
        """Whether the vendor CLI is installed and signed in (False without one)."""
        return False

    def cli_refusal(self, request: ChatRequest) -> Exception | None:
        """Why the vendor CLI cannot take this request (tools, sampling...), or None."""
        return None

    async def cli_chat(self, request: ChatRequest) -> ChatResponse:
        """One whole answer through the vendor CLI."""
        raise UnsupportedOperationError(f"{self.label} has no CLI modelport can use.")

    def cli_stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """A streamed answer through the vendor CLI."""
        raise UnsupportedOperationError(f"{self.label} has no CLI modelport can use.")

    # -- errors and retries, in one place ----------------------------------------------------

    def error(self, up: Upstream, credentials: Credentials | None) -> Exception:
        """The domain error for what the vendor answered."""
        message = up.message.strip().rstrip(".") or "no message"
        if credentials is not None and credentials.key and credentials.key in message:
            # Some APIs quote the key they refused: it must not reach a log or a client.
            message = message.replace(credentials.key, "…" + credentials.key[-4:])
        if len(message) > 300:
            message = message[:297] + "..."
        if up.timeout:
            return ProviderTimeoutError(
                f"{self.label} sent no answer within {self.timeout:g} s.",
                provider=self.name,
                hint=f"Try again, or raise MODELPORT_PROVIDER_TIMEOUT (e.g. `60,{self.name}=300`).",
            )
        if up.status in (401, 403):
            source = credentials.source if credentials is not None else "nowhere"
            return KeyRejectedError(self.name, self.label, up.status, source=source)
        if up.status == 429:
            when = f" Retry after {up.retry_after:g} s." if up.retry_after else ""
            return ProviderRateLimitError(
                f"{self.label} is rate-limiting this key (429: {message}).{when}",
                provider=self.name,
                retry_after=up.retry_after,
                hint="Wait and try again, or set fallbacks to another model.",
            )
        if up.code in ("content_filter", "content_policy_violation") or (
            up.status == 400 and "content" in message.lower() and "polic" in message.lower()
        ):
            return ContentFilteredError(
                f"{self.label} refused the content ({message}).",
                provider=self.name,
                status=up.status,
                hint="Rephrase the request; the provider's content policy applies.",
            )
        if up.status == 404 or up.code == "model_not_found":
            return ModelRetiredError(
                f"{self.label} does not serve this model ({up.status}: {message}).",
                provider=self.name,
                status=up.status,
                hint="See `modelport models --provider "
                f"{self.catalog_name}` for the models it serves.",
            )
        if up.status is None or up.status >= 500:
            what = f"answered {up.status}" if up.status else "cannot be reached"
            return ProviderUnavailableError(
                f"{self.label} {what} ({message}).",
                provider=self.name,
                status=up.status,
                hint="Try again later, or set fallbacks to another model.",
            )
        return ProviderError(
            f"{self.label} refused the request ({up.status}: {message}).",
            provider=self.name,
            status=up.status,
        )

    def _translate(self, exc: BaseException, credentials: Credentials | None) -> Exception | None:

        if isinstance(exc, TimeoutError):  # asyncio's is the builtin since 3.11
            return self.error(Upstream(None, "timed out", timeout=True), credentials)
        up = self.upstream(exc)
        return None if up is None else self.error(up, credentials)

    def _wait(self, attempt: int, error: Exception) -> float | None:
        """Seconds before the next try, or None when this error is not worth another."""
        if attempt >= self.retries or not isinstance(
            error, ProviderRateLimitError | ProviderUnavailableError
        ):
            return None
        if isinstance(error, ProviderTimeoutError):
            return None  # it already waited the whole timeout once
        retry_after: float | None = getattr(error, "retry_after", None)
        if retry_after is not None:
            return retry_after if retry_after <= MAX_RETRY_WAIT else None
        return float(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))

    async def call(self, make: Callable[[], Awaitable[T]], credentials: Credentials | None) -> T:
        """Run one provider call with the retries, the timeout and the error translation."""
        import asyncio

        attempt = 0
        while True:
            try:
                async with asyncio.timeout(self.timeout):  # no extra task, unlike wait_for
                    return await make()
            except (ProviderError, UnsupportedOperationError, KeyRejectedError):
                raise
            except Exception as exc:
                error = self._translate(exc, credentials)
                if error is None:
                    raise
                wait = self._wait(attempt, error)
                if wait is None:
                    raise error from None
                log.info("%s: %s; retry %d in %.2f s", self.name, error, attempt + 1, wait)
                await asyncio.sleep(wait)
                attempt += 1

    async def call_stream(
        self, make: Callable[[], AsyncIterator[T]], credentials: Credentials | None
    ) -> AsyncIterator[T]:
        """A stream with the retries before its first item, and errors translated throughout.

        The timeout bounds the wait for the first item; later items may take as long as
        the answer does.
        """
        import asyncio

        attempt = 0
        while True:
            stream = make()
            try:
                async with asyncio.timeout(self.timeout):
                    first = await anext(stream)
            except StopAsyncIteration:
                return
            except (ProviderError, UnsupportedOperationError, KeyRejectedError):
                await _close(stream)
                raise
            except Exception as exc:
                await _close(stream)
                error = self._translate(exc, credentials)
                if error is None:
                    raise
                wait = self._wait(attempt, error)
                if wait is None:
                    raise error from None
                log.info("%s: %s; retry %d in %.2f s", self.name, error, attempt + 1, wait)
                await asyncio.sleep(wait)
                attempt += 1
                continue
            break
        try:
            yield first
            async for item in stream:
                yield item
        except (ProviderError, UnsupportedOperationError, KeyRejectedError):
            raise
        except Exception as exc:
            error = self._translate(exc, credentials)
            if error is None:
                raise
            raise error from None
        finally:
            await _close(stream)


async def _close(stream: AsyncIterator[Any]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


# -- the registry --------------------------------------------------------------------------

_lock = threading.Lock()
_factories: dict[str, Callable[[], Provider]] | None = None
_instances: dict[str, Provider] = {}


def _load_factories() -> dict[str, Callable[[], Provider]]:
    global _factories
    with _lock:
        if _factories is None:
            from importlib.metadata import entry_points

            found: dict[str, Callable[[], Provider]] = {}
            for ep in entry_points(group="modelport.providers"):
                found[ep.name] = _lazy(ep)
            _factories = found
        return _factories


def _lazy(ep: Any) -> Callable[[], Provider]:
    def make() -> Provider:
        target = ep.load()
        provider = target() if callable(target) else target
        if not isinstance(provider, Provider):
            raise TypeError(f"entry point {ep.name} gave {provider!r}, not a Provider")
        return provider

    return make


def register_provider(name: str, factory: Callable[[], Provider]) -> None:
    """Register a provider under a name (entry points do this for installed packages)."""
    factories = _load_factories()
    with _lock:
        factories[name] = factory
        _instances.pop(name, None)


def unregister_provider(name: str) -> None:
    """Remove a registered provider."""
    factories = _load_factories()
    with _lock:
        factories.pop(name, None)
        _instances.pop(name, None)


def provider_names() -> list[str]:
    """Names of every registered provider."""
    return sorted(_load_factories())


def get_provider(name: str) -> Provider:
    """The provider registered under ``name`` (created once per process)."""
    factories = _load_factories()
    with _lock:
        if name in _instances:
            return _instances[name]
        if name not in factories:
            raise UnknownProviderError(name, list(factories))
        provider = factories[name]()
        _instances[name] = provider
        return provider


def provider_for_catalog(catalog_provider: str) -> str | None:
    """The registered provider serving catalog entries of that ``provider`` value."""
    names = provider_names()
    if catalog_provider in names:
        return catalog_provider
    for name in names:
        try:
            if get_provider(name).catalog_name == catalog_provider:
                return name
        except Exception as e:  # a broken plugin must not hide the others
            log.warning("provider %s cannot be loaded: %s", name, e)
    return None


def reset_providers(*, rescan: bool = False) -> None:
    """Forget created providers (settings changed); ``rescan`` re-reads the entry points."""
    global _factories
    with _lock:
        _instances.clear()
        if rescan:
            _factories = None


def catalog_aliases() -> Mapping[str, str]:
    """Catalog provider values that differ from the provider's name (``google`` → gemini)."""
    out: dict[str, str] = {}
    for name in provider_names():
        with contextlib.suppress(Exception):
            provider = get_provider(name)
            if provider.catalog_name != name:
                out[provider.catalog_name] = name
    return out
