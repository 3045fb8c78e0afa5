"""A loopback server speaking Anthropic's Messages API (``POST /v1/messages``).

It answers deterministically: "Hello from <model>." (or ``reply``) unless the request has
tools, no ``tool_choice`` of ``none`` and its last turn is the user's own text, then it
calls the first tool (or the one ``tool_choice`` names) with ``tool_input``. A last turn
of tool results gets "The tool said: <their text>."; ``output_config.format`` gets
``json_reply``; a model named ``refuse-*`` refuses, ``retired-*`` is not found. Streams
send the real event sequence with ``event:`` names (message_start, content_block_start /
delta / stop, ping, message_delta, message_stop). Token counts are word counts: fresh
input is the words less ``cached_tokens`` and ``cache_creation_tokens``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from tests.upstreams.base import Reply, Seen, UpstreamServer, sse, words

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def block_text(content: Any) -> str:
    """The words of a message's content (text, tool results, tool inputs)."""
    if isinstance(content, str):
        return content
    out: list[str] = []
    for block in content or []:
        kind = block.get("type")
        if kind == "text":
            out.append(block.get("text", ""))
        elif kind == "tool_result":
            out.append(block_text(block.get("content")))
        elif kind == "tool_use":
            out.append(json.dumps(block.get("input")))
    return " ".join(out)


def count_tokens(body: dict[str, Any]) -> int:
    """Input tokens as this server counts them: words of the system text and every turn."""
    system = body.get("system") or ""
    total = len(block_text(system).split())
    for m in body.get("messages", []):
        total += len(block_text(m.get("content")).split())
    return total


class AnthropicServer(UpstreamServer):
    """Anthropic's ``/v1/messages`` on loopback.

    The key comes in ``x-api-key`` (the API's documented header, older SDKs) or as
    ``Authorization: Bearer`` (what the SDK 2.x sends); both are accepted, as by the API.
    """

    key_header = ("x-api-key", "")

    def __init__(self, *, key: str = "test-key", reply: str | None = None) -> None:
        super().__init__(key=key)
        self.reply = reply
        self.json_reply: dict[str, Any] = {"answer": 42}
        self.tool_input: dict[str, Any] = {"city": "Paris"}
        self.cached_tokens = 0
        self.cache_creation_tokens = 0
        self.thinking = "Let me think it through."
        #: Send an ``error`` event (overloaded) after this many stream events.
        self.stream_error_after: int | None = None

    def key_of(self, seen: Seen) -> str | None:
        if "x-api-key" in seen.headers:
            return seen.headers["x-api-key"]
        value = seen.headers.get("authorization", "")
        return value[len("Bearer ") :] if value.startswith("Bearer ") else None

    @property
    def base_url(self) -> str:
        """What the SDK's ``base_url`` is set to."""
        return self.url

    def error_body(self, status: int, message: str) -> Any:
        kind = ERROR_TYPES.get(status, "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": "req_loopback",
        }

    def handle(self, seen: Seen) -> Reply:
        if seen.method != "POST" or seen.path != "/v1/messages":
            return Reply(404, self.error_body(404, f"Not found: {seen.method} {seen.path}"))
        if "anthropic-version" not in seen.headers:
            return Reply(400, self.error_body(400, "anthropic-version: header is required"))
        body = seen.body if isinstance(seen.body, dict) else {}
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return Reply(400, self.error_body(400, f"{name}: Field required"))
        model = str(body["model"])
        if model.startswith("retired-"):
            return Reply(404, self.error_body(404, f"model: {model}"))
        return self._messages(body)

    # -- the answer ----------------------------------------------------------------------

    def blocks(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
        """The content blocks, the stop reason and the stop sequence this request gets."""
        messages = body.get("messages", [])
        last = messages[-1] if messages else {}
        content = last.get("content")
        results = [
            b
            for b in (content if isinstance(content, list) else [])
            if b.get("type") == "tool_result"
        ]
        choice = body.get("tool_choice") or {}
        out: list[dict[str, Any]] = []
        if (body.get("thinking") or {}).get("type") == "enabled":
            out.append({"type": "thinking", "thinking": self.thinking, "signature": "sig-loopback"})
        if (
            body.get("tools")
            and choice.get("type") != "none"
            and last.get("role") == "user"
            and not results
        ):
            name = choice.get("name") or body["tools"][0]["name"]
            out.append(
                {
                    "type": "tool_use",
                    "id": "toolu_loopback0",
                    "name": name,
                    "input": self.tool_input,
                }
            )
            return out, "tool_use", None
        if str(body["model"]).startswith("refuse-"):
            out.append({"type": "text", "text": "I can't help with that."})
            return out, "refusal", None
        if ((body.get("output_config") or {}).get("format") or {}).get("type") == "json_schema":
            text = json.dumps(self.json_reply)
        elif results:
            text = "The tool said: " + " ".join(block_text(r.get("content")) for r in results) + "."
        else:
            text = self.reply or f"Hello from {body['model']}."
        stop, sequence = "end_turn", None
        for candidate in body.get("stop_sequences") or []:
            if candidate in text:
                text, stop, sequence = text.split(candidate, 1)[0], "stop_sequence", candidate
                break
        pieces = text.split()
        if len(pieces) > body["max_tokens"]:
            text, stop = " ".join(pieces[: body["max_tokens"]]), "max_tokens"
        out.append({"type": "text", "text": text})
        return out, stop, sequence

    def usage(self, body: dict[str, Any], blocks: list[dict[str, Any]]) -> dict[str, Any]:
        """Anthropic's usage object for a request and its answer."""
        total = count_tokens(body)
        cached = self.cached_tokens + self.cache_creation_tokens
        output = 0
        for b in blocks:
            if b["type"] == "text":
                output += len(b["text"].split())
            elif b["type"] == "thinking":
                output += len(b["thinking"].split())
            else:
                output += 3
        return {
            "input_tokens": max(0, total - cached),
            "cache_creation_input_tokens": self.cache_creation_tokens,
            "cache_read_input_tokens": self.cached_tokens,
            "output_tokens": output,
            "service_tier": "standard",
        }

    def _messages(self, body: dict[str, Any]) -> Reply:
        blocks, stop, sequence = self.blocks(body)
        usage = self.usage(body, blocks)
        message = {
            "id": "msg_loopback",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": sequence,
            "usage": usage,
        }
        if not body.get("stream"):
            return Reply(body=message)
        return Reply(stream=self._events(message), content_type="text/event-stream")

    def _events(self, message: dict[str, Any]) -> Iterator[bytes]:
        usage = message["usage"]
        start = dict(message, content=[], stop_reason=None, stop_sequence=None)
        start["usage"] = dict(usage, output_tokens=1)
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start})
        ]
        for i, block in enumerate(message["content"]):
            events += self._block_events(i, block)
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": message["stop_reason"],
                        "stop_sequence": message["stop_sequence"],
                    },
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        for n, (name, data) in enumerate(events):
            if self.stream_error_after is not None and n == self.stream_error_after:
                yield sse(self.error_body(529, "Overloaded"), event="error")
                return
            yield sse(data, event=name)

    def _block_events(self, i: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        def delta(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            return "content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}

        out: list[tuple[str, dict[str, Any]]] = []
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            pieces = [delta({"type": "text_delta", "text": p}) for p in words(block["text"])]
        elif block["type"] == "thinking":
            opening = {"type": "thinking", "thinking": "", "signature": ""}
            pieces = [
                delta({"type": "thinking_delta", "thinking": p}) for p in words(block["thinking"])
            ]
            pieces.append(delta({"type": "signature_delta", "signature": block["signature"]}))
        else:
            opening = dict(block, input={})
            raw = json.dumps(block["input"])
            cut = [0, len(raw) // 3, 2 * len(raw) // 3, len(raw)]
            # The API opens with an empty piece, then sends the JSON in arbitrary cuts.
            pieces = [delta({"type": "input_json_delta", "partial_json": ""})]
            pieces += [
                delta({"type": "input_json_delta", "partial_json": raw[a:b]})
                for a, b in itertools.pairwise(cut)
            ]
        start = {"type": "content_block_start", "index": i, "content_block": opening}
        out.append(("content_block_start", start))
        out.append(("ping", {"type": "ping"}))
        out += pieces
        out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        return out
