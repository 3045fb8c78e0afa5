"""Tokenization with ``tokenizers`` only: pad to the longest input, truncate to the limit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, MissingExtraError
from modelport.runtime.spec import read_json

__all__ = ["TextTokenizer", "load_tokenizer", "special_token", "tokenizer_config"]


def _token(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def load_tokenizer(folder: Path) -> Any:
    """The fast tokenizer of a model folder (``tokenizer.json``), padding and truncation off.

    Nothing changes its settings afterwards, so any number of threads may share it.
    """
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
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def tokenizer_config(folder: Path) -> dict[str, Any]:
    """``tokenizer_config.json`` over ``special_tokens_map.json``: the special tokens and
    the length limit a model's tokenizer files name."""
    return {
        **read_json(folder / "special_tokens_map.json"),
        **read_json(folder / "tokenizer_config.json"),
    }


def special_token(config: dict[str, Any], name: str) -> str | None:
    """A special token's text (``eos_token`` …), given as a string or as an object."""
    return _token(config.get(name))


class TextTokenizer:
    """A fast tokenizer read from ``tokenizer.json``, with its special tokens."""

    def __init__(self, folder: Path, *, max_length: int | None = None) -> None:
        self.folder = folder
        self.tokenizer = load_tokenizer(folder)
        self._counter: Any = None
        self._counter_lock = threading.Lock()
        config = tokenizer_config(folder)
        self.pad_token = special_token(config, "pad_token")
        self.mask_token = special_token(config, "mask_token")
        self.eos_token = special_token(config, "eos_token")
        self.bos_token = special_token(config, "bos_token")
        pad_id = self.token_id(self.pad_token) if self.pad_token else None
        self.pad_id = pad_id if pad_id is not None else 0
        limit = config.get("model_max_length")
        if max_length is None and isinstance(limit, int) and 0 < limit < 1_000_000:
            max_length = limit
        self.max_length = max_length
        # Files often fix padding to 128 tokens: pad to the longest input instead.
        self.tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token or "[PAD]")
        if max_length:
            self.tokenizer.enable_truncation(max_length=max_length)

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
                self._counter = load_tokenizer(self.folder)
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]
