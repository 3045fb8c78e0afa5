"""A loopback server speaking OpenAI's chat completions and embeddings API.

It answers deterministically: the reply is ``reply`` (default: "Hello from <model>.") unless
the request has tools and the last message is the user's, then it calls the first tool
with arguments ``tool_arguments``; ``response_format`` json_object/json_schema gets
``json_reply``. Token counts are word counts, so tests can check usage and cost exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator
from typing import Any

from tests.upstreams.base import Reply, Seen, UpstreamServer, sse, words


def count_tokens(messages: list[dict[str, Any]]) -> int:
    """Input tokens as this server counts them: words of every message's text."""
    total = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += len(str(content or "").split())
    return total


def vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [((digest[i % 32] + i * 7) % 251) / 251 - 0.5 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


class OpenAIServer(UpstreamServer):
    """OpenAI's ``/v1/chat/completions`` and ``/v1/embeddings`` on loopback."""

    def __init__(self, *, key: str = "test-key", reply: str | None = None) -> None:
        super().__init__(key=key)
        self.reply = reply
        self.json_reply: dict[str, Any] = {"answer": 42}
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        self.cached_tokens = 0

    @property
    def base_url(self) -> str:
        """What the SDK's ``base_url`` is set to."""
        return self.url + "/v1"

    def error_body(self, status: int, message: str) -> Any:
        kind = {
            401: ("invalid_request_error", "invalid_api_key"),
            404: ("invalid_request_error", "model_not_found"),
            429: ("requests", "rate_limit_exceeded"),
        }.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind[0], "param": None, "code": kind[1]}}

    def handle(self, seen: Seen) -> Reply:
        if seen.path.endswith("/chat/completions"):
            return self._chat(seen.body)
        if seen.path.endswith("/embeddings"):
            return self._embeddings(seen.body)
        return Reply(404, self.error_body(404, f"Unknown path {seen.path}"))

    def answer(self, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
        """The text or the tool calls this request gets."""
        messages = body.get("messages", [])
        if body.get("tools") and messages and messages[-1].get("role") == "user":
            tool = body["tools"][0]["function"]["name"]
            call = {
                "id": "call_0",
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(self.tool_arguments)},
            }
            return None, [call]
        kind = (body.get("response_format") or {}).get("type")
        if kind in ("json_object", "json_schema"):
            return json.dumps(self.json_reply), None
        return self.reply or f"Hello from {body.get('model')}.", None

    def _chat(self, body: dict[str, Any]) -> Reply:
        model = body.get("model", "")
        if model.startswith("retired-"):
            return Reply(404, self.error_body(404, f"The model `{model}` does not exist."))
        text, calls = self.answer(body)
        prompt = count_tokens(body.get("messages", []))
        completion = len((text or "").split()) + (3 if calls else 0)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and completion > limit:
            text = " ".join((text or "").split()[:limit])
            completion = limit
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        finish = "tool_calls" if calls else "stop"
        ident, created = "chatcmpl-loopback", int(time.time())
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            return Reply(
                body={
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish_reason: str | None) -> bytes:
            return sse(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                }
            )

        def events() -> Iterator[bytes]:
            yield chunk({"role": "assistant", "content": ""}, None)
            if calls:
                for i, call in enumerate(calls):
                    yield chunk({"tool_calls": [{"index": i, **call}]}, None)
            else:
                for piece in words(text or ""):
                    yield chunk({"content": piece}, None)
            yield chunk({}, finish)
            if include_usage:
                yield sse(
                    {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield b"data: [DONE]\n\n"

        return Reply(stream=events(), content_type="text/event-stream")

    def _embeddings(self, body: dict[str, Any]) -> Reply:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or 8)
        data = [
            {"object": "embedding", "index": i, "embedding": vector(str(t), dims)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(str(t).split()) for t in texts)
        return Reply(
            body={
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


if __name__ == "__main__":
    # A standalone upstream for benchmarks: python -m tests.upstreams.openai_server PORT KEY
    import sys
    import time as _time

    from tests.upstreams.base import running as _running

    server = OpenAIServer(key=sys.argv[2] if len(sys.argv) > 2 else "test-key")
    server.port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with _running(server):
        print(server.base_url, flush=True)
        while True:
            _time.sleep(3600)
