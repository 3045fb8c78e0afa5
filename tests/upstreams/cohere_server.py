"""A loopback server speaking Cohere's v2 API: ``/v2/chat`` (JSON and SSE), embed, rerank.

It answers deterministically: the reply is ``reply`` (default: "Hello from <model>.") unless
the request has tools and the last message is the user's (and ``tool_choice`` is not
``NONE``), then it plans in ``tool_plan`` and calls the first tool with ``tool_arguments``;
``response_format`` json_object gets ``json_reply``. Billed tokens are word counts; the raw
``tokens`` add ``PREAMBLE_TOKENS`` for the preamble Cohere puts before every prompt, so a
test can tell which of the two a client read. Streams use Cohere's event types, each as
``event: <type>`` and ``data: <JSON with the same type>``, with no ``[DONE]`` at the end.
Errors are Cohere's ``{"id": ..., "message": ...}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.upstreams.base import Reply, Seen, UpstreamServer, sse, words
from tests.upstreams.openai_server import vector

#: Tokens Cohere's own preamble adds to every prompt (counted, not billed).
PREAMBLE_TOKENS = 10
#: The most texts one embed call takes.
EMBED_LIMIT = 96
#: Models taking ``output_dimension`` (embed v4 and newer).
_DIMENSION_MODELS = ("embed-v4", "embed-v5")


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def count_tokens(messages: list[dict[str, Any]]) -> int:
    """Billed input tokens as this server counts them: words of every message's text."""
    return sum(len(_text(m.get("content")).split()) for m in messages)


class CohereServer(UpstreamServer):
    """Cohere's ``/v2/chat``, ``/v2/embed`` and ``/v2/rerank`` on loopback."""

    def __init__(self, *, key: str = "test-key", reply: str | None = None) -> None:
        super().__init__(key=key)
        self.reply = reply
        self.json_reply: dict[str, Any] = {"answer": 42}
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        #: A ``finish_reason`` to end every chat with (``ERROR``), with ``error`` as its text.
        self.finish_override: str | None = None
        self.error = "internal generation failure"

    @property
    def base_url(self) -> str:
        """What the SDK's ``base_url`` is set to."""
        return self.url

    def error_body(self, status: int, message: str) -> Any:
        return {"id": f"err-{status}", "message": message}

    def handle(self, seen: Seen) -> Reply:
        if seen.method != "POST":
            return Reply(404, self.error_body(404, f"Unknown path {seen.path}"))
        if seen.path == "/v2/chat":
            return self._chat(seen.body)
        if seen.path == "/v2/embed":
            return self._embed(seen.body)
        if seen.path == "/v2/rerank":
            return self._rerank(seen.body)
        return Reply(404, self.error_body(404, f"Unknown path {seen.path}"))

    # -- chat -----------------------------------------------------------------------------

    def answer(self, body: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]] | None]:
        """The text or the tool calls this request gets."""
        messages = body.get("messages", [])
        tools = body.get("tools")
        if (
            tools
            and body.get("tool_choice") != "NONE"
            and messages
            and messages[-1].get("role") == "user"
        ):
            name = tools[0]["function"]["name"]
            call = {
                "id": f"{name}_k3x9q2",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(self.tool_arguments)},
            }
            return None, [call]
        if (body.get("response_format") or {}).get("type") == "json_object":
            return json.dumps(self.json_reply), None
        return self.reply or f"Hello from {body.get('model')}.", None

    def _chat(self, body: dict[str, Any]) -> Reply:
        model = str(body.get("model", ""))
        if model.startswith("retired-"):
            message = (
                f"model '{model}' not found, make sure the correct model ID was used "
                "and that you have access to the model."
            )
            return Reply(404, self.error_body(404, message))
        if body.get("tool_choice") == "REQUIRED" and not body.get("tools"):
            return Reply(400, self.error_body(400, "invalid request: tool_choice needs tools"))
        text, calls = self.answer(body)
        finish = "TOOL_CALL" if calls else "COMPLETE"
        for stop in body.get("stop_sequences") or []:
            if text and stop in text:
                text, finish = text[: text.index(stop)], "STOP_SEQUENCE"
        limit = body.get("max_tokens")
        if text and limit and len(text.split()) > limit:
            text, finish = " ".join(text.split()[:limit]), "MAX_TOKENS"
        finish = self.finish_override or finish
        plan = f"I will call {calls[0]['function']['name']}." if calls else None
        prompt = count_tokens(body.get("messages", []))
        completion = len((text or "").split()) + len((plan or "").split()) + (3 if calls else 0)
        usage = {
            "billed_units": {"input_tokens": prompt, "output_tokens": completion},
            "tokens": {"input_tokens": prompt + PREAMBLE_TOKENS, "output_tokens": completion},
        }
        ident = "c0ffee00-loopback"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant"}
            if calls:
                message["tool_plan"] = plan
                message["tool_calls"] = calls
            else:
                message["content"] = [{"type": "text", "text": text}]
            return Reply(
                body={"id": ident, "finish_reason": finish, "message": message, "usage": usage}
            )

        def event(data: dict[str, Any]) -> bytes:
            return sse(data, event=data["type"])

        def events() -> Iterator[bytes]:
            yield event(
                {
                    "id": ident,
                    "type": "message-start",
                    "delta": {
                        "message": {
                            "role": "assistant",
                            "content": [],
                            "tool_plan": "",
                            "tool_calls": [],
                            "citations": [],
                        }
                    },
                }
            )
            if calls:
                for piece in words(plan or ""):
                    yield event(
                        {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}}
                    )
                for i, call in enumerate(calls):
                    start = {**call, "function": {**call["function"], "arguments": ""}}
                    yield event(
                        {
                            "type": "tool-call-start",
                            "index": i,
                            "delta": {"message": {"tool_calls": start}},
                        }
                    )
                    arguments = call["function"]["arguments"]
                    for at in range(0, len(arguments), 5):
                        piece = {"function": {"arguments": arguments[at : at + 5]}}
                        yield event(
                            {
                                "type": "tool-call-delta",
                                "index": i,
                                "delta": {"message": {"tool_calls": piece}},
                            }
                        )
                    yield event({"type": "tool-call-end", "index": i})
            else:
                yield event(
                    {
                        "type": "content-start",
                        "index": 0,
                        "delta": {"message": {"content": {"type": "text", "text": ""}}},
                    }
                )
                for piece in words(text or ""):
                    yield event(
                        {
                            "type": "content-delta",
                            "index": 0,
                            "delta": {"message": {"content": {"text": piece}}},
                        }
                    )
                yield event({"type": "content-end", "index": 0})
            end: dict[str, Any] = {"finish_reason": finish, "usage": usage}
            if finish == "ERROR":
                end["error"] = self.error
            yield event({"type": "message-end", "delta": end})

        return Reply(stream=events(), content_type="text/event-stream")

    # -- embed and rerank -----------------------------------------------------------------

    def _embed(self, body: dict[str, Any]) -> Reply:
        model = str(body.get("model", ""))
        texts = list(body.get("texts") or [])
        if not body.get("input_type"):
            return Reply(400, self.error_body(400, "invalid request: input_type is required"))
        if len(texts) > EMBED_LIMIT:
            message = f"invalid request: texts must have at most {EMBED_LIMIT} items"
            return Reply(400, self.error_body(400, message))
        if "float" not in (body.get("embedding_types") or ["float"]):
            return Reply(400, self.error_body(400, "invalid request: only float is served here"))
        dims = body.get("output_dimension")
        if dims is not None and not model.startswith(_DIMENSION_MODELS):
            message = f"invalid request: output_dimension is not supported for {model}"
            return Reply(400, self.error_body(400, message))
        size = int(dims or 8)
        tokens = sum(len(str(t).split()) for t in texts)
        return Reply(
            body={
                "id": "e0-loopback",
                "response_type": "embeddings_by_type",
                "embeddings": {"float": [vector(str(t), size) for t in texts]},
                "texts": texts,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            }
        )

    def _rerank(self, body: dict[str, Any]) -> Reply:
        query = set(str(body.get("query", "")).lower().split())
        documents = [str(d) for d in body.get("documents") or []]
        scored = []
        for i, doc in enumerate(documents):
            overlap = len(query & set(doc.lower().split()))
            scored.append({"index": i, "relevance_score": round(overlap / (len(query) or 1), 6)})
        scored.sort(key=lambda r: -float(r["relevance_score"]))
        top_n = body.get("top_n")
        if top_n is not None:
            scored = scored[: int(top_n)]
        return Reply(
            body={
                "id": "r0-loopback",
                "results": scored,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        )
