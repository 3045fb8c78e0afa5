"""KServe / Open Inference Protocol V2 (``/v2``): the protocol of Triton, KServe and MLServer.

With it modelport runs as a KServe serving runtime: server metadata and health, model
metadata and readiness, and ``infer`` with typed tensors, as JSON or with Triton's binary
tensor data extension (``Inference-Header-Content-Length``, what ``tritonclient`` sends by
default). An ONNX graph is served as its own tensors; embedding and classification models
take a ``BYTES`` input ``text`` (see ``modelport.server.tensors`` for the mapping). A model
has one version, ``1``; a store model also answers to its store revision.

Not served: the model repository, statistics, trace, logging and shared-memory extensions,
Triton's model ``config`` (a 400 that says so), the classification extension, BF16
tensors, and the sequence, priority and timeout parameters (each refused with a 400 that
names it, never ignored).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from modelport import __version__
from modelport.errors import (
    InvalidValueError,
    ModelNotFoundError,
    ModelportError,
    RequestTooLargeError,
    UnsupportedParameterError,
)
from modelport.server.errors import LOADING, PlainErrorResponse, error_responses
from modelport.server.state import pool_of, record_model
from modelport.server.tensors import (
    Signature,
    as_array,
    check_inputs,
    check_outputs,
    run,
    signature,
)

__all__ = ["PLATFORM", "router"]

router = APIRouter(tags=["kserve"])

#: The platform Triton names ONNX Runtime models with.
PLATFORM = "onnxruntime_onnx"

#: V2 datatypes by numpy's name of the element type (``string``: ONNX's string tensors).
_V2 = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bfloat16": "BF16",
    "string": "BYTES",
}
_NUMPY = {v2: name for name, v2 in _V2.items()}

_ERRORS = error_responses(*LOADING, model=PlainErrorResponse)
_MODEL_ERRORS = error_responses(*LOADING, model=PlainErrorResponse)
_READY_ERRORS = error_responses(400, 401, 404, 422, model=PlainErrorResponse)


def v2_type(dtype: str) -> str:
    """The V2 datatype of a numpy element type name (``string`` is BYTES)."""
    return _V2.get(dtype, dtype)


# -- server ------------------------------------------------------------------------------


@router.get("/v2", responses=error_responses(401, model=PlainErrorResponse))
def server_metadata() -> dict[str, Any]:
    """The server's name, version and the protocol extensions it speaks."""
    return {"name": "modelport", "version": __version__, "extensions": ["binary_tensor_data"]}


@router.get("/v2/health/live")
def server_live() -> dict[str, bool]:
    """The server answers (Kubernetes' liveness probe)."""
    return {"live": True}


@router.get("/v2/health/ready")
def server_ready() -> dict[str, bool]:
    """The server takes requests: the models it was started with are loaded before it
    listens (Kubernetes' readiness probe)."""
    return {"ready": True}


# -- models (routes with a version first: a model name may hold slashes) -----------------


@router.get("/v2/models/{model:path}/versions/{version}/ready", responses=_READY_ERRORS)
async def model_version_ready(model: str, version: str, request: Request) -> dict[str, Any]:
    """Whether a version of a model is loaded."""
    answer = _ready(request, model)
    await _check_version(request, model, version)
    return answer


@router.post("/v2/models/{model:path}/versions/{version}/infer", responses=_ERRORS)
async def infer_version(model: str, version: str, request: Request) -> Response:
    """Run a version of a model on typed tensors."""
    return await _infer(request, model, version)


@router.get("/v2/models/{model:path}/versions/{version}", responses=_MODEL_ERRORS)
async def model_version_metadata(model: str, version: str, request: Request) -> dict[str, Any]:
    """A version's name, platform, and its inputs and outputs."""
    return await _metadata(request, model, version)


@router.get("/v2/models/{model:path}/config", responses=_READY_ERRORS)
def model_config(model: str) -> dict[str, Any]:
    """Triton's model configuration, which modelport does not keep (a 400 that says so)."""
    raise InvalidValueError(
        "modelport does not serve Triton's model configuration: "
        f"GET /v2/models/{model} gives the model's inputs and outputs."
    )


@router.get("/v2/models/{model:path}/ready", responses=_READY_ERRORS)
async def model_ready(model: str, request: Request) -> dict[str, Any]:
    """Whether a model is loaded (it loads on its first request, or at start)."""
    return _ready(request, model)


@router.post("/v2/models/{model:path}/infer", responses=_ERRORS)
async def infer(model: str, request: Request) -> Response:
    """Run a model on typed tensors: ``inputs`` as name, shape, datatype and row-major data;
    ``outputs`` optionally names those to return; ``id`` is echoed."""
    return await _infer(request, model, None)


@router.get("/v2/models/{model:path}", responses=_MODEL_ERRORS)
async def model_metadata(model: str, request: Request) -> dict[str, Any]:
    """A model's name, versions, platform, and its inputs and outputs (-1: any size)."""
    return await _metadata(request, model, None)


def _ready(request: Request, model: str) -> dict[str, Any]:
    record_model(request, model)
    pool = pool_of(request)
    if pool.find(model) is not None:
        return {"name": model, "ready": True}
    loading = pool.loading.get(model)
    if loading is not None:
        raise InvalidValueError(f"{model} is not ready: it is loading ({loading.status}).")
    raise InvalidValueError(
        f"{model} is not loaded: it loads on its first inference or metadata request, "
        f"or when the server starts with it (`modelport serve {model}`)."
    )


async def _check_version(request: Request, model: str, version: str | None) -> None:
    """Only version 1 exists; a store model also answers to its store revision."""
    if version is None or version == "1":
        return
    revision = None
    if model not in pool_of(request).folders:
        from anyio import to_thread

        revision = await to_thread.run_sync(_store_revision, model)
    if version == revision:
        return
    raise ModelNotFoundError(
        model,
        message=f"{model} has no version {version!r}: it has one version, 1"
        + (f" (store revision {revision})" if revision else "")
        + ".",
        hint=f"Leave the version out, or ask for /v2/models/{model}/versions/1.",
    )


def _store_revision(model: str) -> str | None:
    from modelport.api import stored_model

    try:
        return stored_model(model).revision
    except ModelportError:
        return None


async def _metadata(request: Request, model: str, version: str | None) -> dict[str, Any]:
    record_model(request, model)
    async with pool_of(request).use(model) as served:
        await _check_version(request, model, version)
        sig = signature(served)
    return {
        "name": model,
        "versions": ["1"],
        "platform": PLATFORM,
        "inputs": [
            {"name": t.name, "datatype": v2_type(t.dtype), "shape": list(t.shape)}
            for t in sig.inputs
        ],
        "outputs": [
            {"name": t.name, "datatype": v2_type(t.dtype), "shape": list(t.shape)}
            for t in sig.outputs
        ],
    }


# -- inference ---------------------------------------------------------------------------

_Parameters = dict[str, Any]


class RequestInput(BaseModel):
    """One input tensor of an inference request."""

    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[Annotated[StrictInt, Field(ge=0)]]
    datatype: str
    parameters: _Parameters = Field(default_factory=dict)
    data: Any = None


class RequestOutput(BaseModel):
    """An output the request asks for."""

    model_config = ConfigDict(extra="forbid")

    name: str
    parameters: _Parameters = Field(default_factory=dict)


class InferenceRequest(BaseModel):
    """An inference request: its inputs, the outputs to return, an id to echo."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    parameters: _Parameters = Field(default_factory=dict)
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


async def _infer(request: Request, model: str, version: str | None) -> Response:
    record_model(request, model)
    header, blobs = await _read(request)
    body = _parse(header)
    binary_default = _request_options(body)
    pool = pool_of(request)
    async with pool.use(model) as served:
        await _check_version(request, model, version)
        sig = signature(served)
        arrays = _inputs(model, sig, body.inputs, blobs)
        requested = [o.name for o in body.outputs or ()]
        if len(set(requested)) != len(requested):
            raise InvalidValueError("The request names an output twice.")
        check_outputs(model, sig, requested)
        binary = {o.name: _output_binary(o, binary_default) for o in body.outputs or ()}
        values = await run(pool, served, sig, arrays, requested or None)
    return _response(model, version or "1", body.id, values, binary, binary_default)


async def _read(request: Request) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data after it (empty for a JSON body)."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("gzip", "deflate"):
        body = _inflate(body, encoding, pool_of(request).settings.max_request_bytes)
    elif encoding not in ("", "identity"):
        raise InvalidValueError(
            f"Content-Encoding {encoding!r} is not supported; send gzip, deflate or none."
        )
    length = request.headers.get("inference-header-content-length")
    if length is None:
        return body, b""
    if not length.strip().isdigit() or not 0 < int(length) <= len(body):
        raise InvalidValueError(
            f"Inference-Header-Content-Length is {length!r}; it must be the length of the "
            f"JSON header, between 1 and the body's {len(body)} bytes."
        )
    return body[: int(length)], body[int(length) :]


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """A compressed body, decompressed no further than the server's body bound."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | (16 if encoding == "gzip" else 0))
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as e:
        raise InvalidValueError(f"The body is not valid {encoding} data: {e}.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise RequestTooLargeError(limit)
    return data


def _parse(header: bytes) -> InferenceRequest:
    try:
        document = json.loads(header)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidValueError(f"The inference request is not JSON: {e}.") from None
    try:
        return InferenceRequest.model_validate(document)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "the request"
        raise InvalidValueError(
            f"The inference request is malformed: {where}: {first['msg']}."
        ) from None


def _request_options(body: InferenceRequest) -> bool:
    """Whether outputs default to binary data; any other request parameter is refused."""
    binary = False
    for key, value in body.parameters.items():
        if key == "binary_data_output" and isinstance(value, bool):
            binary = value
        elif key == "binary_data_output":
            raise InvalidValueError("parameters.binary_data_output must be true or false.")
        else:
            raise UnsupportedParameterError(
                f"parameters.{key}", "modelport's V2 endpoint does not implement it."
            )
    return binary


def _output_binary(output: RequestOutput, default: bool) -> bool:
    binary = default
    for key, value in output.parameters.items():
        if key == "binary_data" and isinstance(value, bool):
            binary = value
        else:
            raise UnsupportedParameterError(
                f"outputs.{output.name}.parameters.{key}",
                "modelport's V2 endpoint does not implement it"
                + (" (the classification extension)." if key == "classification" else "."),
            )
    return binary


def _inputs(model: str, sig: Signature, inputs: list[RequestInput], blobs: bytes) -> dict[str, Any]:
    """The request's tensors as numpy arrays, of the datatype the model takes."""
    arrays: dict[str, Any] = {}
    offset = 0
    for tensor in inputs:
        if tensor.name in arrays:
            raise InvalidValueError(f"The request gives the input {tensor.name} twice.")
        raw = None
        for key, value in tensor.parameters.items():
            if key != "binary_data_size":
                raise UnsupportedParameterError(
                    f"inputs.{tensor.name}.parameters.{key}",
                    "modelport's V2 endpoint does not implement it.",
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidValueError(
                    f"inputs.{tensor.name}.parameters.binary_data_size must be a byte count."
                )
            if offset + value > len(blobs):
                raise InvalidValueError(
                    f"The input {tensor.name} announces {value} bytes of binary data; "
                    f"the body holds {len(blobs) - offset} more."
                )
            raw = blobs[offset : offset + value]
            offset += value
        if tensor.datatype not in _NUMPY:
            raise InvalidValueError(
                f"The input {tensor.name} has datatype {tensor.datatype!r}, which V2 does not "
                "define (BOOL, UINT8…UINT64, INT8…INT64, FP16, FP32, FP64, BYTES)."
            )
        if tensor.datatype == "BF16":
            raise InvalidValueError(
                f"The input {tensor.name} is BF16, which modelport does not take; send FP32."
            )
        declared = sig.input(tensor.name)
        if declared is not None and v2_type(declared.dtype) != tensor.datatype:
            raise InvalidValueError(
                f"The input {tensor.name} of {model} is {v2_type(declared.dtype)}; "
                f"the request sent {tensor.datatype}."
            )
        arrays[tensor.name] = _decode(tensor, raw)
    if offset != len(blobs):
        raise InvalidValueError(
            f"The body holds {len(blobs) - offset} bytes of binary data no input announces."
        )
    check_inputs(model, sig, arrays, type_name=v2_type)
    return arrays


def _decode(tensor: RequestInput, raw: bytes | None) -> Any:
    import numpy as np

    name, datatype, shape = tensor.name, tensor.datatype, tensor.shape
    dtype = _NUMPY[datatype]
    count = math.prod(shape)
    if raw is not None:
        if tensor.data is not None:
            raise InvalidValueError(f"The input {name} has both data and binary data.")
        if dtype == "string":
            texts = _split_bytes(name, raw)
            if len(texts) != count:
                raise InvalidValueError(
                    f"The input {name} has shape {shape} ({count} elements) but "
                    f"{len(texts)} in its binary data."
                )
            return np.array(texts, dtype=object).reshape(shape)
        wire = np.dtype(dtype).newbyteorder("<")
        if len(raw) != count * wire.itemsize:
            raise InvalidValueError(
                f"The input {name} has shape {shape} of {datatype}: {count * wire.itemsize} "
                f"bytes, but its binary data holds {len(raw)}."
            )
        return np.frombuffer(raw, dtype=wire).astype(dtype).reshape(shape)
    if tensor.data is None:
        raise InvalidValueError(f"The input {name} carries no data.")
    values = as_array(name, tensor.data, dtype, type_name=v2_type)
    if values.size != count:
        raise InvalidValueError(
            f"The input {name} has shape {shape} ({count} elements) but {values.size} values."
        )
    return values.reshape(shape)


def _split_bytes(name: str, raw: bytes) -> list[str]:
    """BYTES binary data: each element a 4-byte little-endian length, then its bytes."""
    texts: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidValueError(f"The binary data of the input {name} ends inside a length.")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise InvalidValueError(f"The binary data of the input {name} ends inside an element.")
        try:
            texts.append(raw[offset : offset + size].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidValueError(
                f"An element of the input {name} is not UTF-8 text; modelport takes text."
            ) from None
        offset += size
    return texts


def _response(
    model: str,
    version: str,
    request_id: str | None,
    values: dict[str, Any],
    binary: dict[str, bool],
    binary_default: bool,
) -> Response:
    import numpy as np

    outputs: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, value in values.items():
        array = np.asarray(value)
        text = array.dtype.kind in "OUS"
        entry: dict[str, Any] = {
            "name": name,
            "datatype": "BYTES" if text else _V2[array.dtype.name],
            "shape": list(array.shape),
        }
        flat = array.reshape(-1)
        if binary.get(name, binary_default):
            if text:
                raw = b"".join(
                    struct.pack("<I", len(b)) + b for b in (_utf8(x) for x in flat.tolist())
                )
            else:
                raw = flat.astype(array.dtype.newbyteorder("<")).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = [_text(x) for x in flat.tolist()] if text else flat.tolist()
        outputs.append(entry)
    document: dict[str, Any] = {"model_name": model, "model_version": version}
    if request_id is not None:
        document["id"] = request_id
    document["outputs"] = outputs
    header = json.dumps(document).encode()
    if not blobs:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(blobs),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def _utf8(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
