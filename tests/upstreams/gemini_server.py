"""A loopback server speaking Google's Gemini API (``v1beta``) as the google-genai SDK calls it.

``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent?alt=sse`` (server-
sent events, one ``GenerateContentResponse`` each), ``:batchEmbedContents`` and
``:embedContent``; the key in the ``x-goog-api-key`` header. A wrong key gets what Gemini
sends: 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``. Errors have Google's shape,
``{"error": {"code", "message", "status", "details"}}``.

It answers deterministically: the reply is ``reply`` (default "Hello from <model>.") unless
the request declares functions and the last content is the user's text, then it calls the
first function with ``tool_arguments``; a JSON response MIME type gets ``json_reply``.
Token counts are word counts. ``thought``, ``thoughts_tokens``, ``cached_tokens``,
``finish_reason`` and ``block_reason`` script the rest of an answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from tests.upstreams.base import Fault, Reply, Seen, UpstreamServer, sse, words

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_PATH = re.compile(r"^/v1beta/models/(?P<model>[^:/]+):(?P<method>\w+)$")


def text_of(content: dict[str, Any] | None) -> str:
    """The text parts of one Gemini content, joined by spaces."""
    parts = (content or {}).get("parts") or []
    return " ".join(str(p["text"]) for p in parts if isinstance(p, dict) and "text" in p)


def vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text."""
    digest = hashlib.sha256(text.encode()).digest()
    raw = [((digest[i % 32] + i * 7) % 251) / 251 - 0.5 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


def _get(body: dict[str, Any], camel: str, snake: str) -> Any:
    # Google's JSON parser takes both spellings, and the SDK sends some fields in each.
    return body.get(camel, body.get(snake))


class GeminiServer(UpstreamServer):
    """Gemini's ``generateContent`` family and embeddings on loopback."""

    key_header = ("x-goog-api-key", "")

    def __init__(self, *, key: str = "test-key", reply: str | None = None) -> None:
        # The key is checked in `handle`: Gemini answers a wrong one with 400, not 401.
        super().__init__(key=None)
        self.api_key = key
        self.reply = reply
        self.json_reply: dict[str, Any] = {"answer": 42}
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        #: A thought summary sent before the answer (with ``include_thoughts``).
        self.thought: str | None = None
        self.thoughts_tokens = 0
        self.cached_tokens = 0
        self.finish_reason = "STOP"
        #: Block the prompt (``promptFeedback.blockReason``) instead of answering.
        self.block_reason: str | None = None
        #: Report ``usageMetadata.promptTokenCount`` for embeddings.
        self.embed_usage = False
        #: A thought signature on function calls (bytes, base64 on the wire).
        self.signature: bytes | None = None

    def error_body(self, status: int, message: str) -> Any:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": STATUS.get(status, "UNKNOWN"),
        }
        return {"error": error}

    def invalid_key(self) -> Reply:
        """What Gemini answers to a key it does not know."""
        body = self.error_body(400, "API key not valid. Please pass a valid API key.")
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ]
        return Reply(400, body)

    def rate_limited(self, delay: str) -> None:
        """Answer the next request 429 with a ``RetryInfo`` detail, as Gemini does."""
        body = self.error_body(429, "Resource has been exhausted (e.g. check quota).")
        body["error"]["details"] = [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}
        ]
        with self._lock:
            self.faults.append(Fault(429, body, {}, 0.0, 1))

    def handle(self, seen: Seen) -> Reply:
        if self.api_key is not None and self.key_of(seen) != self.api_key:
            return self.invalid_key()
        match = _PATH.match(seen.path)
        if match is None or seen.method != "POST":
            return Reply(404, self.error_body(404, f"Unknown path {seen.path}"))
        model, method = match["model"], match["method"]
        if model.startswith("retired-"):
            return Reply(404, self.error_body(404, f"models/{model} is not found."))
        body = seen.body if isinstance(seen.body, dict) else {}
        if method == "generateContent":
            return Reply(body=self.answer(model, body))
        if method == "streamGenerateContent":
            return Reply(stream=self._events(model, body), content_type="text/event-stream")
        if method == "batchEmbedContents":
            return self._embeddings([r.get("content") for r in body.get("requests", [])], body)
        if method == "embedContent":
            return self._embeddings([body.get("content")], body)
        return Reply(404, self.error_body(404, f"Method {method} is not found."))

    # -- generateContent --------------------------------------------------------------

    def _parts(self, model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int, str]:
        """The answer's parts, its token count and its finish reason."""
        contents = body.get("contents") or []
        declared = [
            d
            for t in body.get("tools") or []
            for d in _get(t, "functionDeclarations", "function_declarations") or []
        ]
        last = contents[-1] if contents else {}
        last_is_text = last.get("role") == "user" and any(
            "text" in p for p in last.get("parts") or []
        )
        if declared and last_is_text:
            call: dict[str, Any] = {
                "functionCall": {"name": declared[0]["name"], "args": self.tool_arguments}
            }
            if self.signature:
                import base64

                call["thoughtSignature"] = base64.b64encode(self.signature).decode()
            return [call], 3, self.finish_reason
        config = _get(body, "generationConfig", "generation_config") or {}
        if _get(config, "responseMimeType", "response_mime_type") == "application/json":
            text = json.dumps(self.json_reply)
        else:
            text = self.reply or f"Hello from {model}."
        limit = _get(config, "maxOutputTokens", "max_output_tokens")
        if limit and len(text.split()) > limit:
            text = " ".join(text.split()[:limit])
            return [{"text": text}], limit, "MAX_TOKENS"
        return [{"text": text}], len(text.split()), self.finish_reason

    def _usage(self, body: dict[str, Any], answer: int) -> dict[str, Any]:
        system = _get(body, "systemInstruction", "system_instruction")
        prompt = sum(len(text_of(c).split()) for c in [system, *(body.get("contents") or [])])
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": answer,
            "totalTokenCount": prompt + answer + self.thoughts_tokens,
        }
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = self.cached_tokens
        return usage

    def answer(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        """The whole ``GenerateContentResponse`` for a request."""
        if self.block_reason:
            return {
                "promptFeedback": {"blockReason": self.block_reason},
                "usageMetadata": self._usage(body, 0),
                "modelVersion": model,
            }
        parts, tokens, finish = self._parts(model, body)
        thoughts = [{"text": self.thought, "thought": True}] if self.thought else []
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": thoughts + parts},
                    "finishReason": finish,
                    "index": 0,
                }
            ],
            "usageMetadata": self._usage(body, tokens),
            "modelVersion": model,
            "responseId": "loopback-response",
        }

    def _events(self, model: str, body: dict[str, Any]) -> Iterator[bytes]:
        whole = self.answer(model, body)
        if "candidates" not in whole:
            yield sse(whole)
            return
        candidate = whole["candidates"][0]
        parts = candidate["content"]["parts"]
        pieces: list[dict[str, Any]] = []
        for part in parts:
            if "text" in part and not part.get("thought"):
                pieces.extend({"text": w} for w in words(part["text"]))
            else:
                pieces.append(part)
        usage = whole["usageMetadata"]
        for i, piece in enumerate(pieces):
            event: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [piece]}, "index": 0}],
                "usageMetadata": {"promptTokenCount": usage["promptTokenCount"]},
                "modelVersion": model,
                "responseId": "loopback-response",
            }
            if i == len(pieces) - 1:
                event["candidates"][0]["finishReason"] = candidate["finishReason"]
                event["usageMetadata"] = usage
            yield sse(event)

    # -- embeddings --------------------------------------------------------------------

    def _embeddings(self, contents: list[Any], body: dict[str, Any]) -> Reply:
        requests = body.get("requests") or [body]
        dims = int(_get(requests[0], "outputDimensionality", "output_dimensionality") or 8)
        texts = [text_of(c) for c in contents]
        out: dict[str, Any] = {"embeddings": [{"values": vector(t, dims)} for t in texts]}
        if self.embed_usage:
            out["usageMetadata"] = {"promptTokenCount": sum(len(t.split()) for t in texts)}
        if "requests" not in body:
            out = {"embedding": out["embeddings"][0]}
        return Reply(body=out)
