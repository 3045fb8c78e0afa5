"""GPUX compatibility: ``modelport serve REF`` keeps GPUX's ``/predict``, ``/info`` and ``/health``.

As ``gpux serve MODEL`` does, these routes answer for the one model the server was started
with. ``POST /predict`` takes ``{input name: nested list}`` and answers ``{output name:
nested list}``, named as the model's ``gpux.yml`` / ``modelport.yml`` names them; ``GET
/info`` is GPUX's model information; ``GET /health`` is ``{"status": "healthy", "model":
name}``. Errors are ``{"detail": "message"}``, as GPUX's FastAPI server answers them.

A server started with several models, or none, never guesses: ``/predict`` and ``/info``
take ``?model=NAME`` and without it answer 400 naming the models.

Where modelport differs from GPUX: ``/metrics`` is Prometheus' text format (GPUX answers
JSON with its execution provider, which ``/info`` carries here under
``metadata.execution_providers``); JSON numbers are cast to the type the graph takes
(GPUX hands ONNX Runtime float64 arrays, which a float32 input refuses); a spec that
names the graph's tensors differently (every one, in the graph's order) renames them; and a
text model whose spec declares a ``string`` input takes texts (see
``modelport.server.tensors``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from modelport.errors import InvalidValueError
from modelport.server.errors import LOADING, DetailErrorResponse, error_responses
from modelport.server.state import pool_of, record_model
from modelport.server.tensors import (
    TEXT_TASKS,
    Signature,
    TensorInfo,
    as_array,
    check_inputs,
    check_names,
    run,
    signature,
)

if TYPE_CHECKING:
    from modelport.runtime.spec import TensorSpec
    from modelport.server.pool import ServedModel

__all__ = ["router"]

router = APIRouter(tags=["gpux"])

_ModelQuery = Annotated[
    str | None,
    Query(description="The model to use when the server was started with several (or none)."),
]


def _model_name(request: Request, model: str | None) -> str:
    """The model a GPUX route answers for: the one the server serves, or ``?model=``."""
    if model:
        return model
    served: Sequence[str] = getattr(request.app.state, "preload", ())
    if len(served) == 1:
        return served[0]
    route = request.url.path
    if not served:
        raise InvalidValueError(
            f"This server was started without a model, so {route} does not know which to "
            "use: name one with ?model=NAME, or start the server with one model "
            "(`modelport serve ./my-model`).",
            param="model",
        )
    raise InvalidValueError(
        f"This server serves {len(served)} models ({', '.join(served)}), so {route} needs "
        "?model=NAME naming one of them.",
        param="model",
    )


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """GPUX's health check: the server answers, and for which model (null: several or none)."""
    served: Sequence[str] = getattr(request.app.state, "preload", ())
    if len(served) != 1:
        return {"status": "healthy", "model": None}
    loaded = pool_of(request).find(served[0])
    return {"status": "healthy", "model": loaded.model.spec.name if loaded else served[0]}


@router.get("/info", responses=error_responses(*LOADING, model=DetailErrorResponse))
async def info(request: Request, model: _ModelQuery = None) -> dict[str, Any]:
    """GPUX's model information: name, version, file, size, inputs, outputs, metadata."""
    name = _model_name(request, model)
    record_model(request, name)
    async with pool_of(request).use(name) as served:
        spec = served.model.spec
        public = _public(served, _signature(served))
        session = served.model.session
        meta = session.get_modelmeta()
        path = (served.folder / spec.model.source).resolve()
        size = path.stat().st_size if path.is_file() else served.size
        providers = list(session.get_providers())
    declared_in = {t.name: t for t in spec.inputs}
    declared_out = {t.name: t for t in spec.outputs}
    return {
        "name": spec.name,
        "version": spec.version,
        "format": spec.model.format,
        "path": str(path),
        "size_bytes": size,
        "size_mb": round(size / (1024 * 1024), 2),
        "inputs": [
            {**_describe(t, declared_in.get(t.name)), "required": _required(declared_in, t)}
            for t in public.inputs
        ],
        "outputs": [
            {
                **_describe(t, declared_out.get(t.name)),
                "labels": declared_out[t.name].labels if t.name in declared_out else None,
            }
            for t in public.outputs
        ],
        "metadata": {
            "producer_name": meta.producer_name,
            # GPUX asks ONNX Runtime for it, which does not expose it.
            "producer_version": getattr(meta, "producer_version", None),
            "domain": meta.domain,
            "model_version": meta.version,
            "doc_string": meta.description,
            "execution_providers": providers,
        },
    }


def _describe(tensor: TensorInfo, declared: TensorSpec | None) -> dict[str, Any]:
    """A tensor as GPUX lists it: the spec's type and shape where it gives them."""
    if declared is None:
        return {
            "name": tensor.name,
            "type": tensor.dtype,
            "shape": list(tensor.shape),
            "description": None,
        }
    return {
        "name": tensor.name,
        "type": declared.type,
        "shape": list(declared.shape) or list(tensor.shape),
        "description": declared.description,
    }


def _required(declared: dict[str, TensorSpec], tensor: TensorInfo) -> bool:
    spec = declared.get(tensor.name)
    return True if spec is None else spec.required


@router.post("/predict", responses=error_responses(*LOADING, model=DetailErrorResponse))
async def predict(request: Request, model: _ModelQuery = None) -> Response:
    """Run the model on ``{input name: nested list}``; answers ``{output name: nested list}``."""
    name = _model_name(request, model)
    record_model(request, name)
    body = await request.body()
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidValueError(f"The request body is not JSON: {e}.") from None
    pool = pool_of(request)
    async with pool.use(name) as served:
        sig = _signature(served)
        public = _public(served, sig)
        if not isinstance(data, dict):
            raise InvalidValueError(
                "The request body must be a JSON object keyed by input name: "
                + ", ".join(t.name for t in public.inputs)
                + "."
            )
        check_names(name, public, list(data))
        arrays = {
            key: as_array(key, _texts(value, tensor), tensor.dtype)
            for key, value in data.items()
            if (tensor := public.input(key)) is not None
        }
        check_inputs(name, public, arrays)
        own = {p.name: t.name for p, t in zip(public.inputs, sig.inputs, strict=True)}
        values = await run(pool, served, sig, {own[k]: v for k, v in arrays.items()})
    renamed = {p.name: values[t.name] for p, t in zip(public.outputs, sig.outputs, strict=True)}
    return Response(
        json.dumps({k: v.tolist() for k, v in renamed.items()}), media_type="application/json"
    )


def _texts(value: Any, tensor: TensorInfo) -> Any:
    """One text for a string input is a list of one."""
    return [value] if tensor.dtype == "string" and isinstance(value, str) else value


def _signature(served: ServedModel) -> Signature:
    """Texts for a text model whose spec declares a string input; else the graph."""
    texts = served.task in TEXT_TASKS and any(t.type == "string" for t in served.model.spec.inputs)
    return signature(served, texts=texts)


def _public(served: ServedModel, sig: Signature) -> Signature:
    """The signature under the names the spec gives: the model's own names, unless the spec
    names every tensor otherwise (then by position, as the spec lists them)."""
    spec = served.model.spec

    def rename(
        declared: Sequence[TensorSpec], tensors: tuple[TensorInfo, ...]
    ) -> tuple[TensorInfo, ...]:
        names = [t.name for t in declared]
        own = [t.name for t in tensors]
        if names and set(names) != set(own) and len(names) == len(own):
            return tuple(
                dataclasses.replace(t, name=n) for t, n in zip(tensors, names, strict=True)
            )
        return tensors

    return Signature(sig.mode, rename(spec.inputs, sig.inputs), rename(spec.outputs, sig.outputs))
