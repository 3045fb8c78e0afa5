"""``modelport system``: what this machine has."""

from __future__ import annotations

import typer

from modelport.cli._options import GpuMemoryOpt, JsonOpt
from modelport.cli._output import Output

__all__ = ["register"]


def system(gpu_memory: GpuMemoryOpt = None, json_: JsonOpt = False) -> None:
    """Show CPU, RAM, GPUs and ONNX Runtime providers of this machine."""
    from modelport.api import system_info

    info = system_info(gpu_memory=gpu_memory)
    out = Output(json_mode=json_)

    def human() -> None:
        rows = [
            ["os", info.os],
            ["python", info.python],
            ["cpu", f"{info.cpu} ({info.cpu_count} cores)"],
            ["ram", f"{info.ram_gb:g} GB"],
        ]
        if info.gpus:
            for i, gpu in enumerate(info.gpus):
                cc = f", compute {gpu.compute_capability}" if gpu.compute_capability else ""
                rows.append([f"gpu {i}", f"{gpu.name} ({gpu.memory_gb:g} GB{cc}; {gpu.source})"])
        else:
            rows.append(["gpu", "none detected"])
        rows.append(
            [
                "onnxruntime",
                f"{info.onnxruntime_version}: {', '.join(info.onnxruntime_providers)}"
                if info.onnxruntime_version
                else "not installed",
            ]
        )
        for note in info.notes:
            rows.append(["note", note])
        out.table(["", ""], rows)

    out.result(info, human)


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command()(system)
