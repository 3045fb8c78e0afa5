"""Text generation over an exported decoder: a KV-cache loop, sampling, streaming text.

The graph is optimum's ``text-generation-with-past`` export: ``input_ids``,
``attention_mask`` (and ``position_ids``) plus ``past_key_values.N.key/value`` in,
``logits`` and ``present.N.key/value`` out. The loop feeds each step's ``present``
OrtValues back as the next ``past`` without turning them into numpy arrays, so the cache
is never copied between steps, and only the last row of the logits is read.

Text is decoded incrementally with the prefix-offset technique of TGI and vLLM: a step's
text is the decoding of a short window of earlier tokens plus the new ones, minus the
window's own text, and it waits while it ends in U+FFFD (a character whose bytes span
several tokens). Stop strings are cut out of the text; text that could be the start of
one is held back until the next token settles it.

One ``TextGenerator`` serves many threads at once: its tokenizer is never reconfigured
(no padding, no truncation), each call keeps its own cache, and ONNX Runtime's
``run`` is thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelport.errors import ConfigError, InvalidValueError, MissingExtraError
from modelport.runtime.spec import read_json
from modelport.runtime.text import load_tokenizer, special_token, tokenizer_config

__all__ = [
    "Completion",
    "FinishReason",
    "GenerationDelta",
    "IncrementalDecoder",
    "StopStrings",
    "TextGenerator",
    "sample_token",
]

#: Why a generation ended: an end-of-sequence token or a stop string ("stop"), the
#: ``max_new_tokens`` budget ("length"), or ``cancelled()`` turning true ("cancelled").
FinishReason = Literal["stop", "length", "cancelled"]

#: Prompt tokens fed to the graph at once (see ``TextGenerator.steps``).
PREFILL_CHUNK = 512

#: Prompt tokens decoded before the first new token, so that the first piece of text keeps
#: the space a SentencePiece or byte-level tokenizer puts in front of a word (vLLM's 5).
CONTEXT_TOKENS = 5


@dataclass(frozen=True)
class GenerationDelta:
    """New text and the tokens that made it; the last delta also says why and how many."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Completion:
    """A whole generation: its text, tokens, why it ended and the token counts."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


def _np() -> Any:
    try:
        import numpy
    except ImportError:
        raise MissingExtraError("run", feature="Running models") from None
    return numpy


def _ids(value: Any) -> set[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, int) and not isinstance(v, bool)}
    return set()


class IncrementalDecoder:
    """Text of a growing list of token ids, piece by piece, never splitting a character."""

    def __init__(self, decode: Callable[[list[int]], str], context: Sequence[int] = ()) -> None:
        self._decode = decode
        self.ids = list(context[-CONTEXT_TOKENS:]) if context else []
        self._prefix = 0  # start of the window decoded for reference
        self._read = len(self.ids)  # tokens whose text has been handed out

    def push(self, token_id: int) -> str:
        """The text the new token completes ("" while a character is still partial)."""
        self.ids.append(token_id)
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return after[len(before) :]
        return ""

    def flush(self) -> str:
        """Whatever text is still held back (an unfinished character decodes as U+FFFD)."""
        before = self._decode(self.ids[self._prefix : self._read])
        after = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return after[len(before) :] if len(after) > len(before) else ""


class StopStrings:
    """Cuts generated text at the first stop string, holding back what may begin one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(s for s in stops if s)
        self._held = ""

    def push(self, text: str) -> tuple[str, bool]:
        """The text that is safe to hand out, and whether a stop string was reached."""
        if not self.stops:
            return text, False
        buffer = self._held + text
        found = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if found:
            self._held = ""
            return buffer[: min(found)], True
        keep = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), keep, -1):
                if buffer.endswith(stop[:size]):
                    keep = size
                    break
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep], False

    def flush(self) -> str:
        """The held-back text, once no more text will come."""
        held, self._held = self._held, ""
        return held


def sample_token(logits: Any, *, temperature: float, top_k: int, top_p: float, rng: Any) -> int:
    """A token id from a row of logits: greedy at temperature 0, else sampled after
    temperature, top-k (0 = all) and nucleus (top-p) filtering."""
    np = _np()
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits.astype(np.float64) / temperature
    if top_k and top_k < logits.shape[0]:
        cutoff = np.partition(logits, -top_k)[-top_k]
        logits = np.where(logits < cutoff, -np.inf, logits)
    shifted = np.exp(logits - logits.max())
    probs = shifted / shifted.sum()
    if top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs = probs / probs.sum()
    return int(rng.choice(probs.shape[0], p=probs))


def _kv_heads(config: dict[str, Any]) -> int:
    return int(
        config.get("num_key_value_heads")
        or config.get("n_head")
        or config.get("num_attention_heads")
        or 1
    )


def _head_dim(config: dict[str, Any]) -> int:
    if config.get("head_dim"):
        return int(config["head_dim"])
    hidden = config.get("hidden_size") or config.get("n_embd") or 0
    heads = config.get("num_attention_heads") or config.get("n_head") or 1
    return int(hidden) // int(heads)


#: config.json keys that give how many positions a model was built for, in this order.
_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length")


class TextGenerator:
    """Prompt in, tokens and text out, over one ONNX Runtime session of a decoder."""

    def __init__(self, session: Any, folder: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise MissingExtraError("run", feature="Generating text") from None
        self._ort_value = onnxruntime.OrtValue
        self.session = session
        self.folder = folder
        inputs = {i.name: i for i in session.get_inputs()}
        self.input_names = list(inputs)
        self.output_names = [o.name for o in session.get_outputs()]
        if "logits" not in self.output_names or "input_ids" not in inputs:
            raise ConfigError(
                f"{folder.name} is not a text-generation graph (no input_ids in, logits out)."
            )
        self._logits = self.output_names.index("logits")
        self.past_inputs = [n for n in self.input_names if n.startswith("past_key_values")]
        self._present = [
            self.output_names.index(n.replace("past_key_values", "present"))
            for n in self.past_inputs
        ]
        config = read_json(folder / "config.json")
        self._empty_past: dict[str, Any] = {}
        np = _np()
        for name in self.past_inputs:
            shape = inputs[name].shape
            heads = shape[1] if isinstance(shape[1], int) else _kv_heads(config)
            head_dim = shape[3] if isinstance(shape[3], int) else _head_dim(config)
            dtype = np.float16 if "float16" in str(inputs[name].type) else np.float32
            self._empty_past[name] = np.zeros((1, heads, 0, head_dim), dtype=dtype)
        # Its own tokenizer, configured once: shared by every thread, never toggled.
        self.tokenizer = load_tokenizer(folder)
        generation_config = read_json(folder / "generation_config.json")
        eos = _ids(generation_config.get("eos_token_id")) or _ids(config.get("eos_token_id"))
        eos_token = special_token(tokenizer_config(folder), "eos_token")
        if eos_token is not None and self.tokenizer.token_to_id(eos_token) is not None:
            eos.add(int(self.tokenizer.token_to_id(eos_token)))
        #: Every id that ends a generation: generation_config.json's (a list for many chat
        #: models), else config.json's, and the tokenizer's end-of-sequence token.
        self.eos_ids = frozenset(eos)
        #: The most tokens (prompt + new) the model has positions for, if known.
        self.context_length: int | None = next(
            (int(config[k]) for k in _CONTEXT_KEYS if isinstance(config.get(k), int)), None
        )
        vocab = config.get("vocab_size")
        self.vocab_size = int(vocab) if isinstance(vocab, int) else None

    # ------------------------------------------------------------------ tokens

    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """The token ids of a text (with the tokenizer's own special tokens if asked)."""
        return list(self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids)

    def count_tokens(self, text: str, *, add_special_tokens: bool = True) -> int:
        """How many tokens a text is as a prompt."""
        return len(self.encode(text, add_special_tokens=add_special_tokens))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of token ids, special tokens left out."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    # ------------------------------------------------------------------ generation

    def stream(
        self,
        prompt: str | Sequence[int],
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        stop: Sequence[str] = (),
        cancelled: Callable[[], bool] | None = None,
        add_special_tokens: bool = True,
    ) -> Iterator[GenerationDelta]:
        """The continuation of a prompt (text, or token ids taken as they are) as deltas.

        Temperature 0 is greedy; above it, sampling with ``top_k`` (0 = off) and
        ``top_p``, reproducible with ``seed``. Generation ends at an end-of-sequence id
        or a stop string (``"stop"``; the stop string is not in the text), after
        ``max_new_tokens`` (``"length"``), or when ``cancelled()`` turns true, which is
        asked before each token (``"cancelled"``). Every delta carries new text; the last
        one carries the finish reason and the token counts. Bad values raise
        InvalidValueError here, before any token is generated.
        """
        ids = self._prompt_ids(prompt, add_special_tokens)
        self._check(len(ids), max_new_tokens, temperature, top_p, top_k, stop)
        rng = _np().random.default_rng(seed)

        def pick(logits: Any) -> int:
            return sample_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, rng=rng)

        return self._deltas(ids, max_new_tokens, pick, stop, cancelled)

    def complete(self, prompt: str | Sequence[int], **options: Any) -> Completion:
        """The whole continuation of a prompt at once (``stream`` joined; same options)."""
        texts: list[str] = []
        ids: list[int] = []
        last = None
        for delta in self.stream(prompt, **options):
            texts.append(delta.text)
            ids.extend(delta.token_ids)
            last = delta
        # The stream always ends with a delta that says why.
        assert last is not None
        assert last.finish_reason is not None
        return Completion(
            "".join(texts),
            tuple(ids),
            last.finish_reason,
            int(last.prompt_tokens or 0),
            int(last.completion_tokens or 0),
        )

    def greedy_ids(self, prompt_ids: Sequence[int], max_new_tokens: int) -> list[int]:
        """Greedy continuation ids up to (not including) an end-of-sequence id."""
        new: list[int] = []
        for token in self.steps(list(prompt_ids), max_new_tokens, lambda row: int(row.argmax())):
            if token in self.eos_ids:
                break
            new.append(token)
        return new

    def steps(
        self, ids: list[int], max_new_tokens: int, pick: Callable[[Any], int]
    ) -> Generator[int, None, None]:
        """Token after token: one forward pass per token, run only when it is asked for.

        A long prompt goes in by chunks of ``PREFILL_CHUNK`` tokens, each attending to the
        cache of the ones before: the graph returns logits for every position it is fed,
        and at a chat model's vocabulary (150,000) a 4,000-token prompt would otherwise make
        2.4 GB of them. Causal attention makes the result the same, bit for bit.
        """
        np = _np()
        value = self._ort_value.ortvalue_from_numpy
        run = self.session.run_with_ort_values
        past = {name: value(array) for name, array in self._empty_past.items()}
        total = len(ids) + max_new_tokens
        # Made once: each step feeds a slice of them (a view, not a new array).
        mask = np.ones((1, total), dtype=np.int64)
        positions = (
            np.arange(total, dtype=np.int64)[None] if "position_ids" in self.input_names else None
        )
        seen = 0

        def forward(tokens: list[int]) -> Any:
            nonlocal past, seen
            end = seen + len(tokens)
            feed = {
                "input_ids": value(np.array([tokens], dtype=np.int64)),
                "attention_mask": value(mask[:, :end]),
                **past,
            }
            if positions is not None:
                feed["position_ids"] = value(positions[:, seen:end])
            outputs = run(self.output_names, feed)
            seen = end
            # The present OrtValues become the next past as they are: no copy of the cache.
            past = {n: outputs[i] for n, i in zip(self.past_inputs, self._present, strict=True)}
            return outputs[self._logits]

        if not self.past_inputs:
            # A graph without a cache (exported without past): the whole text every step.
            history = list(ids)
            for _ in range(max_new_tokens):
                seen = 0
                token = pick(forward(history).numpy()[0, -1])
                yield token
                history.append(token)
            return
        start = max(0, (len(ids) - 1) // PREFILL_CHUNK * PREFILL_CHUNK)
        for chunk in range(0, start, PREFILL_CHUNK):
            forward(ids[chunk : chunk + PREFILL_CHUNK])
        step = ids[start:]
        for _ in range(max_new_tokens):
            token = pick(forward(step).numpy()[0, -1])
            yield token
            step = [token]

    def _prompt_ids(self, prompt: str | Sequence[int], add_special_tokens: bool) -> list[int]:
        if isinstance(prompt, str):
            ids = self.encode(prompt, add_special_tokens=add_special_tokens)
        elif all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            ids = [int(t) for t in prompt]
            limit = self.vocab_size or self.tokenizer.get_vocab_size(with_added_tokens=True)
            wrong = [t for t in ids if not 0 <= t < limit]
            if wrong:
                raise InvalidValueError(
                    f"Token id {wrong[0]} is outside this model's vocabulary (0-{limit - 1})."
                )
        else:
            raise InvalidValueError("A prompt is a text or a list of token ids.")
        if not ids:
            raise InvalidValueError("The prompt is empty: give at least one token of text.")
        return ids

    def _check(
        self,
        prompt_tokens: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        top_k: int,
        stop: Sequence[str],
    ) -> None:
        if max_new_tokens < 1:
            raise InvalidValueError(f"max_new_tokens must be at least 1, not {max_new_tokens}.")
        if not temperature >= 0:  # NaN too
            raise InvalidValueError(f"temperature must be 0 or more, not {temperature}.")
        if not 0 < top_p <= 1:
            raise InvalidValueError(f"top_p must be above 0 and at most 1, not {top_p}.")
        if top_k < 0:
            raise InvalidValueError(f"top_k must be 0 (off) or more, not {top_k}.")
        if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
            raise InvalidValueError("stop must be a list of strings.")
        limit = self.context_length
        if limit is not None and prompt_tokens + max_new_tokens > limit:
            raise InvalidValueError(
                f"This model's context is {limit} tokens, but the prompt has {prompt_tokens} "
                f"and {max_new_tokens} more were asked for ({prompt_tokens + max_new_tokens}).",
                hint="Shorten the prompt or ask for fewer new tokens (max_tokens).",
            )

    def _deltas(
        self,
        ids: list[int],
        max_new_tokens: int,
        pick: Callable[[Any], int],
        stop: Sequence[str],
        cancelled: Callable[[], bool] | None,
    ) -> Iterator[GenerationDelta]:
        decoder = IncrementalDecoder(self.decode, ids)
        stops = StopStrings(stop)
        tokens = self.steps(ids, max_new_tokens, pick)
        pending: list[int] = []
        count = 0
        finish: FinishReason = "length"
        tail: str | None = None  # the text before a stop string, once one is reached
        try:
            while True:
                if cancelled is not None and cancelled():
                    finish = "cancelled"
                    break
                token = next(tokens, None)
                if token is None:
                    break
                count += 1
                pending.append(token)
                if token in self.eos_ids:
                    finish = "stop"
                    break
                text, hit = stops.push(decoder.push(token))
                if hit:
                    finish, tail = "stop", text
                    break
                if text:
                    yield GenerationDelta(text, tuple(pending))
                    pending = []
        finally:
            tokens.close()
        if tail is None:
            # No more tokens come: what was held back is the end of the answer.
            text, hit = stops.push(decoder.flush())
            tail = text if hit else text + stops.flush()
        yield GenerationDelta(
            tail,
            tuple(pending),
            finish_reason=finish,
            prompt_tokens=len(ids),
            completion_tokens=count,
        )
