"""What a simulated model says: its token rule, lorem-ipsum text, and JSON values that
validate against a JSON Schema (for structured outputs and tool calls), all drawn from a
seeded random source.

The JSON Schema subset covered is what OpenAI's structured outputs and function
parameters use: ``type`` (one or a list),
``object`` (``properties``, ``required``; every listed property is filled), ``array``
(``items``, ``minItems``, ``maxItems``), ``string`` (``enum``, ``const``, ``minLength``,
``maxLength``, ``format`` date, date-time, time, email, uri, uuid), ``number`` and
``integer`` (``minimum``, ``maximum``, their exclusive forms), ``boolean``, ``null``,
``anyOf`` / ``oneOf`` (the first branch), ``allOf`` (merged) and ``$ref`` into ``$defs``
or ``definitions``. ``pattern`` is not followed.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import uuid
from typing import Any

from modelport.errors import InvalidValueError

__all__ = ["LOREM", "count_tokens", "cut_at", "lorem", "token_pieces", "value_for"]

_LOREM_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est "
    "laborum"
)
#: Words of the generated text (lorem ipsum's own).
LOREM = tuple(_LOREM_TEXT.split())

#: Tokens of each lorem word, looked up rather than counted for every word drawn.
_LOREM_COUNTS = {word: max(1, math.ceil(len(word) / 4)) for word in LOREM}
_PIECE = re.compile(r"\s*\S{1,4}")

#: How deep a schema may nest (a recursive ``$ref`` stops here).
MAX_DEPTH = 16


def count_tokens(text: str) -> int:
    """Tokens of a text by the simulator's rule: ``ceil(len / 4)`` per word, at least 1."""
    return sum(max(1, math.ceil(len(word) / 4)) for word in text.split())


def token_pieces(text: str) -> list[str]:
    """A text cut into its tokens (joined, they give the text back exactly)."""
    # A word's first piece carries the spaces before it; each piece holds up to 4 characters.
    pieces: list[str] = _PIECE.findall(text)
    tail = text[sum(map(len, pieces)) :]
    if tail:  # trailing spaces ride on the last token
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


def lorem(rng: random.Random, tokens: int) -> str:
    """Lorem-ipsum sentences of about ``tokens`` tokens."""
    words: list[str] = []
    sentence = total = 0
    while total < tokens:
        word = rng.choice(LOREM)
        words.append(word.capitalize() if sentence == 0 else word)
        total += _LOREM_COUNTS[word]
        sentence += 1
        if sentence >= 6 and rng.random() < 0.2:
            words[-1] += "."
            sentence = 0
    if words and not words[-1].endswith("."):
        words[-1] += "."
    return " ".join(words)


def cut_at(pieces: list[str], at: int) -> list[str]:
    """The pieces of a text up to character ``at`` (a stop sequence starts there)."""
    out: list[str] = []
    seen = 0
    for piece in pieces:
        if seen + len(piece) >= at:
            if at > seen:
                out.append(piece[: at - seen])
            break
        out.append(piece)
        seen += len(piece)
    return out


def value_for(schema: Any, rng: random.Random) -> Any:
    """A value that validates against ``schema`` (the schema's own ``$defs`` resolve)."""
    if not isinstance(schema, dict):
        raise InvalidValueError("A JSON Schema must be an object.", param="response_format")
    return _Faker(schema, rng).value(schema, 0)


class _Faker:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def resolve(self, ref: str) -> dict[str, Any]:
        if not ref.startswith("#"):
            raise InvalidValueError(
                f"The schema's $ref {ref!r} points outside it; only local refs are followed."
            )
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise InvalidValueError(f"The schema's $ref {ref!r} names nothing in it.")
            node = node[part]
        if not isinstance(node, dict):
            raise InvalidValueError(f"The schema's $ref {ref!r} is not a schema.")
        return node

    def value(self, schema: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InvalidValueError(
                f"The schema nests deeper than {MAX_DEPTH} levels; it cannot be simulated.",
                param="response_format",
            )
        if schema is True or schema == {}:
            return self.words(1, 3)
        if not isinstance(schema, dict):
            raise InvalidValueError(f"{schema!r} is not a JSON Schema.")
        if "$ref" in schema:
            return self.value(self.resolve(str(schema["$ref"])), depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(list(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                return self.value(schema[key][0], depth + 1)
        if schema.get("allOf"):
            return self.value(self.merged(schema), depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or ["null"]
            kind = kinds[0]
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else ""
        if kind == "object":
            properties = schema.get("properties") or {}
            return {name: self.value(sub, depth + 1) for name, sub in properties.items()}
        if kind == "array":
            low = int(schema.get("minItems", 1))
            high = int(schema.get("maxItems", max(low, 3)))
            count = self.rng.randint(low, max(low, high))
            items = schema.get("items", {})
            return [self.value(items, depth + 1) for _ in range(count)]
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema)

    def merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self.resolve(part["$ref"]) if "$ref" in part else part
            for key, value in part.items():
                if key == "properties":
                    out["properties"] = {**out.get("properties", {}), **value}
                elif key == "required":
                    out["required"] = [*out.get("required", []), *value]
                else:
                    out.setdefault(key, value)
        return out

    def words(self, low: int, high: int) -> str:
        return " ".join(self.rng.choice(LOREM) for _ in range(self.rng.randint(low, high)))

    def string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        rng = self.rng
        if fmt == "date":
            return (dt.date(2020, 1, 1) + dt.timedelta(days=rng.randint(0, 2000))).isoformat()
        if fmt == "date-time":
            moment = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=rng.randint(0, 2000 * 86400)
            )
            return moment.isoformat().replace("+00:00", "Z")
        if fmt == "time":
            return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        if fmt == "email":
            return f"{rng.choice(LOREM)}.{rng.choice(LOREM)}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{rng.choice(LOREM)}"
        if fmt == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        text = self.words(1, 4)
        while len(text) < low:
            text += " " + rng.choice(LOREM)
        return text if high is None else text[: int(high)]

    def integer(self, schema: dict[str, Any]) -> int:
        low = schema.get("minimum")
        if "exclusiveMinimum" in schema:
            low = math.floor(schema["exclusiveMinimum"]) + 1
        high = schema.get("maximum")
        if "exclusiveMaximum" in schema:
            high = math.ceil(schema["exclusiveMaximum"]) - 1
        low = math.ceil(low) if low is not None else None
        high = math.floor(high) if high is not None else None
        if low is None:
            low = 0 if high is None or high >= 0 else high - 100
        if high is None:
            high = low + 100
        if high < low:
            raise InvalidValueError(f"The schema's integer range {low}..{high} is empty.")
        return self.rng.randint(low, high)

    def number(self, schema: dict[str, Any]) -> float:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 100.0)))
        if high < low:
            raise InvalidValueError(f"The schema's number range {low}..{high} is empty.")
        if high == low:
            return low
        # Strictly inside, so that an exclusive bound holds too.
        value = round(low + (high - low) * (0.05 + 0.9 * self.rng.random()), 3)
        return min(max(value, math.nextafter(low, high)), math.nextafter(high, low))
