"""Tokenization with ``tokenizers`` only: pad to the longest input, truncate to the limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, MissingExtraError

__all__ = ["TextTokenizer"]


def _token(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


class TextTokenizer:
    """A fast tokenizer read from ``tokenizer.json``, with its special tokens."""

    def __init__(self, folder: Path, *, max_length: int | None = None) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingExtraError("run", feature="Tokenizing text") from None
        path = folder / "tokenizer.json"
        if not path.exists():
            raise ConfigError(
                f"{folder} has no tokenizer.json.",
                hint="Convert the model again; conversion writes one.",
            )
        self.tokenizer = Tokenizer.from_file(str(path))
        self._path = path
        self._counter: Any = None
        self._counter_lock = threading.Lock()
        config: dict[str, Any] = {}
        for name in ("tokenizer_config.json", "special_tokens_map.json"):
            try:
                data = json.loads((folder / name).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                config = {**data, **config}
        self.pad_token = _token(config.get("pad_token"))
        self.mask_token = _token(config.get("mask_token"))
        self.eos_token = _token(config.get("eos_token"))
        self.bos_token = _token(config.get("bos_token"))
        pad_id = self.token_id(self.pad_token) if self.pad_token else None
        self.pad_id = pad_id if pad_id is not None else 0
        limit = config.get("model_max_length")
        if max_length is None and isinstance(limit, int) and 0 < limit < 1_000_000:
            max_length = limit
        self.max_length = max_length
        # Files often fix padding to 128 tokens: pad to the longest input instead.
        self.tokenizer.no_padding()
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token or "[PAD]")
        if max_length:
            self.tokenizer.enable_truncation(max_length=max_length)
        else:
            self.tokenizer.no_truncation()

    def token_id(self, token: str | None) -> int | None:
        """The id of a token string."""
        if token is None:
            return None
        found = self.tokenizer.token_to_id(token)
        return int(found) if found is not None else None

    @property
    def eos_id(self) -> int | None:
        """The end-of-sequence id, if the model has one."""
        return self.token_id(self.eos_token)

    def encode_batch(self, texts: list[str]) -> list[Any]:
        """Encodings padded to the longest text."""
        return list(self.tokenizer.encode_batch(texts))

    def encode_unpadded(self, texts: list[str]) -> list[Any]:
        """Encodings of texts, truncated but not padded (``pad`` pads a batch of them)."""
        self.tokenizer.no_padding()
        try:
            return list(self.tokenizer.encode_batch(texts))
        finally:
            self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token or "[PAD]")

    def pad(self, encodings: list[Any]) -> list[Any]:
        """The encodings padded in place to the longest of them; returns them."""
        longest = max((len(e.ids) for e in encodings), default=0)
        for encoding in encodings:
            encoding.pad(longest, pad_id=self.pad_id, pad_token=self.pad_token or "[PAD]")
        return encodings

    def encode_pair(self, first: str, second: str) -> Any:
        """One encoding of a text pair (question, context), truncating the second."""
        if self.max_length:
            self.tokenizer.enable_truncation(max_length=self.max_length, strategy="only_second")
        try:
            return self.tokenizer.encode(first, second)
        finally:
            if self.max_length:
                self.tokenizer.enable_truncation(max_length=self.max_length)

    def encode_plain(self, text: str) -> list[int]:
        """Token ids of a text with the tokenizer's own special tokens, unpadded."""
        self.tokenizer.no_padding()
        try:
            return list(self.tokenizer.encode(text).ids)
        finally:
            self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token or "[PAD]")

    def decode(self, ids: list[int], *, skip_special_tokens: bool = True) -> str:
        """Text from token ids."""
        return str(self.tokenizer.decode(ids, skip_special_tokens=skip_special_tokens))

    def id_to_token(self, token_id: int) -> str:
        """The token string of an id."""
        return str(self.tokenizer.id_to_token(token_id))

    def count(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text with its special tokens, before any truncation.

        Safe from any thread: it uses a tokenizer of its own whose settings never change.
        """
        with self._counter_lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                counter = Tokenizer.from_file(str(self._path))
                counter.no_padding()
                counter.no_truncation()
                self._counter = counter
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]
