"""/api/v1 serving: loaded models (ps, stop), task predictions, and rerank.

OpenAI has no verb for classification, token classification, QA, fill-mask or image
classification: ``POST /api/v1/predict/{model}`` takes Hugging Face's Inference API shape
(``inputs`` and ``parameters``) for every task the runtime has. ``POST /v1/rerank`` and
a ``query`` + ``documents`` body to the predict route score passages with a
cross-encoder in Cohere's shape.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from modelport.errors import InvalidValueError
from modelport.jsonable import to_jsonable
from modelport.server.embeddings import counted
from modelport.server.errors import LOADING, error_responses
from modelport.server.pool import keep_alive_seconds
from modelport.server.state import pool_of, record_model

__all__ = ["router"]

router = APIRouter(tags=["serving"])

_ERRORS = error_responses(*LOADING)


@router.get("/api/v1/ps", responses=error_responses(401))
async def loaded_models(request: Request) -> dict[str, Any]:
    """The models loaded (or loading) now, most recently used first."""
    return {"data": pool_of(request).describe(), "meta": {}}


@router.delete("/api/v1/ps/{model:path}", responses=error_responses(401, 404))
async def stop_model(model: str, request: Request) -> dict[str, Any]:
    """Unload a model (once the requests it is answering end)."""
    from modelport.errors import ModelNotFoundError

    pool = pool_of(request)
    if not pool.unload(model):
        loaded = sorted({n for m in pool.models.values() for n in m.names})
        raise ModelNotFoundError(
            model,
            message=f"{model!r} is not loaded.",
            hint=("Loaded: " + ", ".join(loaded) + ".") if loaded else "No model is loaded.",
        )
    return {"data": {"stopped": model}, "meta": {}}


class PredictRequest(BaseModel):
    """A prediction: the task's inputs and its options (Hugging Face's Inference API shape)."""

    model_config = ConfigDict(extra="forbid")

    inputs: Any = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    keep_alive: str | float | None = None
    #: Rerank in Cohere's shape: a query and the documents to score against it.
    query: str | None = None
    documents: list[str | dict[str, Any]] | None = None
    top_n: Annotated[int | None, Field(ge=1)] = None
    return_documents: bool = False


#: Options each task's pipeline takes from ``parameters``; anything else is refused.
_OPTIONS: dict[str, frozenset[str]] = {
    "feature-extraction": frozenset(),
    "sentence-similarity": frozenset(),
    "text-classification": frozenset({"top_k", "function_to_apply"}),
    "token-classification": frozenset({"aggregation"}),
    "question-answering": frozenset({"max_answer_len"}),
    "fill-mask": frozenset({"top_k"}),
    "image-classification": frozenset({"top_k"}),
    "text-generation": frozenset(
        {"max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "seed"}
    ),
    "tensors": frozenset(),
}


@router.post("/api/v1/predict/{model:path}", responses=_ERRORS, tags=["serving"])
async def predict(model: str, body: PredictRequest, request: Request) -> dict[str, Any]:
    """Run any local model on its task's inputs; encoders share dynamic batches."""
    from modelport.server.batching import BATCHED_TASKS

    record_model(request, model)
    pool = pool_of(request)
    started = time.perf_counter()
    keep_alive = keep_alive_seconds(body.keep_alive)
    async with pool.use(model, keep_alive=keep_alive) as served:
        if body.query is not None or body.documents is not None:
            return await _rerank(request, model, served, body)
        if body.inputs is None:
            raise InvalidValueError("inputs is required.", param="inputs")
        allowed = _OPTIONS.get(served.task, frozenset())
        unknown = sorted(set(body.parameters) - allowed)
        if unknown:
            raise InvalidValueError(
                f"{served.task} models take no parameter {', '.join(unknown)}.",
                hint="They take: " + (", ".join(sorted(allowed)) or "none") + ".",
                param="parameters." + unknown[0],
            )
        inputs = body.inputs
        if served.task == "image-classification":
            inputs = _images(inputs)
        if served.task in BATCHED_TASKS and served.batcher is not None and _texts(inputs):
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            counts = await counted(pool, served, texts)
            answers = await served.batcher.submit(texts, counts, **body.parameters)
            result: Any = answers[0] if isinstance(inputs, str) else answers
        else:
            parameters = body.parameters
            result = await pool.run(
                served,
                lambda: served.model(inputs, **parameters),
                inputs=len(inputs) if isinstance(inputs, list) else 1,
            )
    return {
        "data": to_jsonable(result),
        "meta": {
            "model": model,
            "task": served.task,
            "provider": served.model.provider,
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    }


class RerankRequest(BaseModel):
    """A rerank request in Cohere's (and Jina's) shape."""

    model_config = ConfigDict(extra="forbid")

    model: str
    query: str
    documents: list[str | dict[str, Any]]
    top_n: Annotated[int | None, Field(ge=1)] = None
    return_documents: bool = False
    max_tokens_per_doc: Annotated[int | None, Field(ge=1)] = None


@router.post("/v1/rerank", responses=_ERRORS, tags=["serving"])
async def rerank(body: RerankRequest, request: Request) -> dict[str, Any]:
    """Score documents against a query with a local cross-encoder, best first."""
    from modelport.errors import UnsupportedParameterError

    record_model(request, body.model)
    if body.max_tokens_per_doc is not None:
        raise UnsupportedParameterError(
            "max_tokens_per_doc", "documents are truncated to the model's own limit."
        )
    as_predict = PredictRequest(
        query=body.query,
        documents=body.documents,
        top_n=body.top_n,
        return_documents=body.return_documents,
    )
    async with pool_of(request).use(body.model) as served:
        return await _rerank(request, body.model, served, as_predict)


async def _rerank(
    request: Request, model: str, served: Any, body: PredictRequest
) -> dict[str, Any]:
    if served.task != "text-classification":
        raise InvalidValueError(
            f"{model} is a {served.task} model: reranking needs a cross-encoder "
            "(a text-classification model that scores text pairs).",
            param="model",
        )
    if not body.query:
        raise InvalidValueError("query is required to rerank.", param="query")
    if not body.documents:
        raise InvalidValueError("documents must hold at least one document.", param="documents")
    texts = []
    for i, doc in enumerate(body.documents):
        text = doc if isinstance(doc, str) else doc.get("text")
        if not isinstance(text, str):
            raise InvalidValueError(
                f"documents[{i}] must be a text or an object with a text.", param="documents"
            )
        texts.append(text)
    pairs = [(body.query, t) for t in texts]
    pool = pool_of(request)
    assert served.batcher is not None
    counts = await counted(pool, served, pairs)
    scored = await served.batcher.submit(pairs, counts, top_k=None, function_to_apply="none")
    scores = [_relevance(row) for row in scored]
    order = sorted(range(len(texts)), key=lambda i: -scores[i])[: body.top_n or len(texts)]
    results = []
    for i in order:
        row: dict[str, Any] = {"index": i, "relevance_score": scores[i]}
        if body.return_documents:
            row["document"] = {"text": texts[i]}
        results.append(row)
    return {
        "id": str(uuid.uuid4()),
        "results": results,
        "meta": {"billed_units": {"search_units": 1}, "tokens": {"input_tokens": sum(counts)}},
    }


def _relevance(labels: list[dict[str, Any]]) -> float:
    """One relevance score from a cross-encoder's raw output: sigmoid of a single logit,
    else the probability of the last ("relevant") label."""
    import math

    if len(labels) == 1:
        return 1 / (1 + math.exp(-float(labels[0]["score"])))
    by_label = sorted(labels, key=lambda r: str(r["label"]))
    logits = [float(r["score"]) for r in by_label]
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    return exps[-1] / sum(exps)


def _texts(inputs: Any) -> bool:
    return isinstance(inputs, str) or (
        isinstance(inputs, list) and bool(inputs) and all(isinstance(t, str) for t in inputs)
    )


#: Largest image a request may send (decoded), in bytes.
MAX_IMAGE_BYTES = 20 * 10**6


def _images(inputs: Any) -> Any:
    """Base64 images (optionally data URLs) as PIL images; a request never names a file."""
    from PIL import Image

    def one(value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidValueError(
                "An image is sent as base64 text (optionally a data: URL).", param="inputs"
            )
        data = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidValueError("The image is not valid base64.", param="inputs") from None
        if len(raw) > MAX_IMAGE_BYTES:
            raise InvalidValueError("The image is larger than 20 MB.", param="inputs")
        try:
            image = Image.open(io.BytesIO(raw))
            image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise InvalidValueError(f"The image cannot be read: {e}.", param="inputs") from None
        return image

    return [one(v) for v in inputs] if isinstance(inputs, list) else one(inputs)
