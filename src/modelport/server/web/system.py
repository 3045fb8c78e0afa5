"""The system page: this machine's CPU, memory, GPUs and ONNX Runtime's execution providers,
as ``system_info`` (``GET /api/v1/system``) detects them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelport.server.web.render import page

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: ONNX Runtime's execution providers, in the order modelport prefers them, and what each is.
PROVIDERS = {
    "TensorrtExecutionProvider": "NVIDIA TensorRT",
    "CUDAExecutionProvider": "NVIDIA CUDA",
    "MIGraphXExecutionProvider": "AMD MIGraphX",
    "CoreMLExecutionProvider": "Apple Core ML",
    "DmlExecutionProvider": "DirectML (Windows)",
    "OpenVINOExecutionProvider": "Intel OpenVINO",
    "QNNExecutionProvider": "Qualcomm QNN",
    "CPUExecutionProvider": "CPU",
}


@router.get("/ui/system")
async def system_page(request: Request) -> Response:
    """This machine as modelport sees it when it checks whether a model fits."""
    from modelport.api import system_info

    info = await run_in_threadpool(system_info)
    return page(request, "system.html", active="system", info=info, known=PROVIDERS)
