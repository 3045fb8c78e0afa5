"""What this machine has: CPU, RAM, GPUs (VRAM, compute capability), ONNX Runtime providers."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["GPU", "SystemInfo", "detect_system", "with_gpu_memory"]

GB = 1e9


@dataclass(frozen=True)
class GPU:
    """One accelerator."""

    name: str
    vendor: str
    memory_gb: float
    compute_capability: str | None = None
    unified_memory: bool = False
    source: str = "detected"


@dataclass(frozen=True)
class SystemInfo:
    """The machine at hand, as detected (or overridden for planning)."""

    os: str
    python: str
    cpu: str
    cpu_count: int
    ram_gb: float
    gpus: tuple[GPU, ...] = ()
    onnxruntime_version: str | None = None
    onnxruntime_providers: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total_vram_gb(self) -> float:
        """Memory of every GPU together."""
        return round(sum(g.memory_gb for g in self.gpus), 2)

    @property
    def max_gpu_memory_gb(self) -> float:
        """Memory of the largest GPU (0 without one)."""
        return max((g.memory_gb for g in self.gpus), default=0.0)

    @property
    def min_compute_capability(self) -> str | None:
        """The lowest CUDA compute capability among NVIDIA GPUs."""
        caps = [g.compute_capability for g in self.gpus if g.compute_capability]
        return min(caps, key=_cc_tuple) if caps else None


def _cc_tuple(cc: str) -> tuple[int, ...]:
    return tuple(int(p) for p in cc.split(".") if p.isdigit())


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        out = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out.strip()
    return platform.processor() or platform.machine() or "unknown"


def _ram_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "darwin":
        out = _run(["sysctl", "-n", "hw.memsize"])
        if out and out.strip().isdigit():
            return int(out.strip())
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _run(cmd: list[str], timeout: float = 5.0) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _nvidia_nvml() -> list[GPU] | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # NVML raises its own error types when no driver is present
        return None
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(
                GPU(
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    vendor="nvidia",
                    memory_gb=round(mem / GB, 2),
                    compute_capability=f"{major}.{minor}",
                    source="nvml",
                )
            )
        return gpus
    except Exception:
        return None
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def parse_nvidia_smi(text: str) -> list[GPU]:
    """GPUs from ``nvidia-smi --query-gpu=name,memory.total,compute_cap`` CSV output."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            continue
        try:
            memory_mib = float(parts[1])
        except ValueError:
            continue
        cc = parts[2] if len(parts) > 2 and parts[2] not in ("", "[N/A]") else None
        gpus.append(
            GPU(
                name=parts[0],
                vendor="nvidia",
                memory_gb=round(memory_mib * 2**20 / GB, 2),
                compute_capability=cc,
                source="nvidia-smi",
            )
        )
    return gpus


def parse_rocm_smi(text: str) -> list[GPU]:
    """GPUs from ``rocm-smi --showproductname --showmeminfo vram --json``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    gpus = []
    for card, info in sorted(data.items()):
        if not card.startswith("card") or not isinstance(info, dict):
            continue
        total = info.get("VRAM Total Memory (B)")
        try:
            memory = int(total) / GB if total is not None else 0.0
        except (TypeError, ValueError):
            memory = 0.0
        name = info.get("Card Series") or info.get("Card series") or info.get("Card model") or card
        gpus.append(
            GPU(name=str(name), vendor="amd", memory_gb=round(memory, 2), source="rocm-smi")
        )
    return gpus


def _detect_gpus(ram_bytes: int) -> list[GPU]:
    gpus = _nvidia_nvml()
    if gpus:
        return gpus
    out = _run(
        [
            "nvidia-smi",
            "--query-gpu=name,memory.total,compute_cap",
            "--format=csv,noheader,nounits",
        ]
    )
    if out:
        gpus = parse_nvidia_smi(out)
        if gpus:
            return gpus
    out = _run(["rocm-smi", "--showproductname", "--showmeminfo", "vram", "--json"])
    if out:
        gpus = parse_rocm_smi(out)
        if gpus:
            return gpus
    if sys.platform == "darwin" and platform.machine() == "arm64" and ram_bytes:
        # Apple silicon shares memory; Metal can use about three quarters of it.
        return [
            GPU(
                name="Apple silicon GPU",
                vendor="apple",
                memory_gb=round(ram_bytes * 0.75 / GB, 2),
                unified_memory=True,
                source="sysctl",
            )
        ]
    return []


def _onnxruntime() -> tuple[str | None, tuple[str, ...]]:
    if importlib.util.find_spec("onnxruntime") is None:
        return None, ()
    try:
        import onnxruntime

        providers = tuple(
            p for p in onnxruntime.get_available_providers() if p != "AzureExecutionProvider"
        )
        return str(onnxruntime.__version__), providers
    except Exception:
        return None, ()


def detect_system(*, gpu_memory_gb: float | None = None, runtime: bool = True) -> SystemInfo:
    """Detect this machine; ``gpu_memory_gb`` plans for one GPU of that size instead.

    ``runtime=False`` leaves out ONNX Runtime (importing it is most of the cost), for
    callers that only weigh memory.
    """
    ram = _ram_bytes()
    ort_version, providers = _onnxruntime() if runtime else (None, ())
    info = SystemInfo(
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        cpu=_cpu_name(),
        cpu_count=os.cpu_count() or 1,
        ram_gb=round(ram / GB, 2),
        gpus=tuple(_detect_gpus(ram)),
        onnxruntime_version=ort_version,
        onnxruntime_providers=providers,
    )
    if gpu_memory_gb is not None:
        info = with_gpu_memory(info, gpu_memory_gb)
    return info


def with_gpu_memory(info: SystemInfo, gpu_memory_gb: float) -> SystemInfo:
    """The same machine, planned with one GPU of ``gpu_memory_gb`` (0 means none)."""
    if gpu_memory_gb <= 0:
        return replace(info, gpus=(), notes=(*info.notes, "planning without a GPU"))
    gpu = GPU(
        name=f"planned GPU ({gpu_memory_gb:g} GB)",
        vendor="nvidia",
        memory_gb=gpu_memory_gb,
        compute_capability="8.0",
        source="override",
    )
    note = f"planning for one GPU with {gpu_memory_gb:g} GB (override)"
    return replace(info, gpus=(gpu,), notes=(*info.notes, note))
