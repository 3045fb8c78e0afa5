"""Embeddings for the protocol routers: one way to embed inputs with a served encoder.

Inputs are counted, checked against the model's limit (or truncated to it where the
protocol asks), embedded in the model's shared batches, and shortened to ``dimensions``
only for a model trained for it (Matryoshka).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.errors import InputTooLongError, InvalidValueError, UnsupportedParameterError

if TYPE_CHECKING:
    from modelport.server.pool import ModelPool, ServedModel

__all__ = [
    "EMBEDDING_TASKS",
    "MAX_INPUTS",
    "Embedded",
    "counted",
    "embed",
    "encoder_of",
    "token_counts",
]

#: Tasks whose models answer an embedding per input.
EMBEDDING_TASKS = ("feature-extraction", "sentence-similarity")

#: Inputs one request may carry (OpenAI's own limit; Ollama has none, the queue needs one).
MAX_INPUTS = 2048


@dataclass(frozen=True)
class Embedded:
    """Embeddings of a request's inputs, and the tokens each input was embedded with."""

    #: float32 matrix, one row per input.
    vectors: Any
    tokens: list[int]

    @property
    def total_tokens(self) -> int:
        """Tokens of every input together."""
        return sum(self.tokens)


def encoder_of(served: ServedModel, model: str, param: str = "model") -> None:
    """Refuse a served model that makes no embeddings (400 naming its task)."""
    if served.task not in EMBEDDING_TASKS:
        raise InvalidValueError(
            f"{model} is a {served.task} model: it does not make embeddings.",
            hint="Pick a feature-extraction or sentence-similarity model (see `modelport ls`).",
            param=param,
        )


def token_counts(served: ServedModel, inputs: Sequence[Any]) -> list[int]:
    """Tokens of each input (a text, a text pair or token ids), before truncation."""
    texts = [i for i in inputs if not _is_ids(i)]
    found = iter(served.tokenizer.count(texts) if texts else [])
    return [len(i) if _is_ids(i) else next(found) for i in inputs]


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) for i in value)


#: Characters tokenized on the event loop itself: a hop to a worker thread costs more.
_INLINE_CHARACTERS = 4096


async def counted(pool: ModelPool, served: ServedModel, inputs: Sequence[Any]) -> list[int]:
    """Token counts of inputs; long inputs are counted in a worker thread."""
    size = sum(len(i) if isinstance(i, str) or _is_ids(i) else sum(map(len, i)) for i in inputs)
    if size <= _INLINE_CHARACTERS:
        return token_counts(served, inputs)
    result: list[int] = await pool.run(served, lambda: token_counts(served, inputs), inputs=0)
    return result


async def embed(
    pool: ModelPool,
    served: ServedModel,
    inputs: Sequence[str] | Sequence[list[int]],
    *,
    model: str,
    truncate: bool = False,
    window: int | None = None,
    dimensions: int | None = None,
    param: str = "input",
) -> Embedded:
    """Embed inputs in the model's shared batches.

    An input past the model's token limit is refused with its count, or, with
    ``truncate``, embedded from its first tokens up to the limit (what the tokenizer
    keeps). ``window`` is a narrower limit the request sets (Ollama's ``num_ctx``).
    """
    import numpy as np

    encoder_of(served, model)
    if len(inputs) > MAX_INPUTS:
        raise InvalidValueError(
            f"{param} holds {len(inputs)} items; at most {MAX_INPUTS} per request.", param=param
        )
    counts = await counted(pool, served, inputs)
    limit = served.tokenizer.max_length
    used = list(counts)
    for i, n in enumerate(counts):
        if window is not None and n > window and (not limit or window < limit):
            raise InvalidValueError(
                f"{param}[{i}] has {n} tokens, more than options.num_ctx ({window}).",
                hint="Raise num_ctx"
                + (f" (up to the model's {limit})" if limit else "")
                + " or shorten the input; only the model's own limit truncates.",
                param="options.num_ctx",
            )
        if limit and n > limit:
            if not truncate:
                raise InputTooLongError(model, n, limit, param=param, what=f"{param}[{i}]")
            used[i] = limit
    assert served.batcher is not None  # every embedding task is batched
    vectors = await served.batcher.submit(inputs, counts)  # type: ignore[arg-type]
    matrix = np.asarray(vectors, dtype=np.float32)
    return Embedded(shorten(matrix, dimensions, served), used)


def shorten(matrix: Any, dimensions: int | None, served: ServedModel) -> Any:
    """Shorter embeddings for a model trained for them (Matryoshka), re-normalized."""
    import numpy as np

    native = matrix.shape[1]
    if dimensions is None or dimensions == native:
        return matrix
    spec = served.model.spec.modelport
    allowed = spec.get("matryoshka_dims") or spec.get("matryoshka")
    if not allowed:
        raise UnsupportedParameterError(
            "dimensions",
            f"{served.name} makes {native}-dimensional embeddings and was not trained to "
            "be shortened (Matryoshka).",
            hint="Leave dimensions out.",
        )
    if dimensions > native:
        raise UnsupportedParameterError(
            "dimensions", f"{served.name} makes {native}-dimensional embeddings at most."
        )
    short = matrix[:, :dimensions]
    norms = np.linalg.norm(short, axis=1, keepdims=True)
    return short / np.clip(norms, 1e-12, None)
