"""Anthropic through the official ``anthropic`` SDK, or Claude Code's ``claude`` CLI.

The request and answer translation lives in ``anthropic_messages`` and the CLI half in
``claude_code``; this module holds the SDK client (one per event loop and key), the
error mapping (an overloaded 529 is a 5xx, retried; an error event inside a stream is
the status its type names) and the provider the ``anthropic`` entry point registers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

from modelport.errors import MissingExtraError, ModelportError
from modelport.providers import claude_code
from modelport.providers.anthropic_messages import (
    ERROR_STATUS,
    StreamTranslator,
    arguments_of,
    json_forced,
    message_of,
    usage_of,
)
from modelport.providers.base import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Credentials,
    Provider,
    Upstream,
)
from modelport.providers.cli import cli_json, cli_json_lines, find_cli
from modelport.providers.openai import retry_after

__all__ = ["AnthropicProvider"]


class AnthropicProvider(Provider):
    """Anthropic's Messages API, or Claude Code's ``claude`` for a signed-in user."""

    name: ClassVar[str] = "anthropic"
    label: ClassVar[str] = "Anthropic"
    env_keys: ClassVar[tuple[str, ...]] = ("ANTHROPIC_API_KEY",)
    cli: ClassVar[str | None] = "claude"

    def __init__(self, *, base_url: str | None = None, timeout: float | None = None) -> None:
        super().__init__(base_url=base_url, timeout=timeout)
        self._signed_in: dict[str, bool] = {}

    def client(self, credentials: Credentials | None) -> Any:
        """The SDK's async client for this key on the running event loop."""

        try:
            import anthropic
        except ImportError:
            raise MissingExtraError("providers", feature=f"Calling {self.label}") from None
        return self.cached_client(
            credentials,
            lambda key: anthropic.AsyncAnthropic(
                api_key=key or "none",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,  # Provider.call retries, the same way for every provider
            ),
        )

    # -- the API ---------------------------------------------------------------------------

    async def chat(self, request: ChatRequest, credentials: Credentials | None) -> ChatResponse:
        """One whole answer from ``/v1/messages``."""
        args = arguments_of(request)
        done = await self.client(credentials).messages.create(**args)
        message, finish = message_of(done, json_forced=json_forced(args))
        return ChatResponse(
            message=message,
            finish_reason=finish,
            usage=usage_of(done.usage),
            model=done.model or request.model,
            id=done.id or "",
        )

    async def stream_chat(
        self, request: ChatRequest, credentials: Credentials | None
    ) -> AsyncIterator[ChatChunk]:
        """The answer as ``/v1/messages`` streams it."""
        args = arguments_of(request)
        state = StreamTranslator(request.model, json_forced=json_forced(args))
        stream = await self.client(credentials).messages.create(**args, stream=True)
        try:
            async for event in stream:
                for chunk in state.chunks(event):
                    yield chunk
        finally:
            await stream.close()

    def upstream(self, error: BaseException) -> Upstream | None:
        """What an ``anthropic`` SDK exception was."""
        try:
            import anthropic
        except ImportError:
            return None
        if isinstance(error, anthropic.APITimeoutError):
            return Upstream(None, "timed out", timeout=True)
        if isinstance(error, anthropic.APIConnectionError):
            return Upstream(None, str(error.__cause__ or error))
        if isinstance(error, anthropic.APIStatusError):
            kind = getattr(error, "type", None)
            status = error.status_code
            if status < 400:  # an error event inside a stream that began with 200
                status = ERROR_STATUS.get(str(kind), 500)
            return Upstream(
                status,
                str(getattr(error, "api_message", None) or error.message),
                retry_after=retry_after(error.response.headers),
                code=str(kind) if kind else None,
            )
        return None

    # -- Claude Code's CLI -------------------------------------------------------------------

    def cli_ready(self) -> bool:
        """Whether ``claude`` is on PATH and signed in (asked once per process, no tokens)."""
        path = find_cli("claude")
        if path is None:
            return False
        if path not in self._signed_in:
            self._signed_in[path] = claude_code.signed_in(path)
        return self._signed_in[path]

    def cli_refusal(self, request: ChatRequest) -> Exception | None:
        """Why ``claude -p`` cannot take this request, or None."""
        try:
            claude_code.command(request, output="json")
        except ModelportError as e:
            return e
        return None

    async def cli_chat(self, request: ChatRequest) -> ChatResponse:
        """One whole answer from ``claude -p --output-format json``."""
        argv, env = claude_code.command(request, output="json")
        result = await cli_json(self.name, argv, timeout=self.timeout, env=env)
        return claude_code.response_of(result, request)

    async def cli_stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The answer as ``claude -p --output-format stream-json`` prints it."""
        argv, env = claude_code.command(request, output="stream-json")
        lines = cli_json_lines(self.name, argv, timeout=self.timeout, env=env)
        try:
            async for chunk in claude_code.chunks(lines, request):
                yield chunk
        finally:
            # Closing the lines kills a claude still running (the caller stopped early).
            aclose = getattr(lines, "aclose", None)
            if aclose is not None:
                await aclose()
