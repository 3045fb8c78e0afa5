"""A loaded model: its spec, an ONNX Runtime session on the best provider, and its pipeline."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError
from modelport.runtime.pipelines import Pipeline, make_pipeline
from modelport.runtime.providers import create_session
from modelport.runtime.spec import ModelSpec, read_spec

__all__ = ["BenchmarkResult", "Model"]


@dataclass(frozen=True)
class BenchmarkResult:
    """Latency percentiles and throughput of repeated calls."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    throughput_per_s: float
    provider: str


class Model:
    """A converted model ready for repeated calls: ``Model.load(folder)(inputs)``."""

    def __init__(
        self, folder: Path, spec: ModelSpec, session: Any, provider: str, pipeline: Pipeline
    ) -> None:
        self.folder = folder
        self.spec = spec
        self.session = session
        self.provider = provider
        self.pipeline = pipeline

    @classmethod
    def load(
        cls,
        folder: str | Path,
        *,
        provider: str | None = None,
        threads: int | None = None,
        graph_cache: Path | None = None,
    ) -> Model:
        """Load a folder holding ``modelport.yml`` (or GPUX's ``gpux.yml``) and its ONNX file.

        ``graph_cache`` is where ONNX Runtime's optimized graph may be kept (see
        ``create_session``); without it nothing is written.
        """
        root = Path(folder)
        spec = read_spec(root)
        # A spec without a task (GPUX's have none) still runs: arrays in, arrays out.
        task = spec.task or _task_from_gpux(spec) or "tensors"
        model_path = root / spec.model.source
        if not model_path.exists():
            raise ConfigError(f"{model_path} does not exist (model.source in the spec).")
        preferred = provider or (
            spec.runtime.gpu.backend if spec.runtime.gpu.backend != "auto" else None
        )
        session, used = create_session(
            str(model_path),
            preferred=preferred,
            threads=threads,
            graph_cache=graph_cache,
        )
        return cls(root, spec, session, used, make_pipeline(task, session, root, spec))

    @property
    def task(self) -> str:
        """The pipeline task."""
        return self.pipeline.task

    def __call__(self, inputs: Any, **options: Any) -> Any:
        """Run the model on inputs (a text, texts, a dict for QA, an image path)."""
        return self.pipeline(inputs, **options)

    def benchmark(
        self, inputs: Any, *, runs: int = 20, warmup: int = 2, **options: Any
    ) -> BenchmarkResult:
        """Time repeated calls on the same inputs."""
        for _ in range(warmup):
            self(inputs, **options)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self(inputs, **options)
            times.append((time.perf_counter() - start) * 1000)
        ordered = sorted(times)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

        batch = len(inputs) if isinstance(inputs, list) else 1
        mean = statistics.fmean(times)
        return BenchmarkResult(
            runs, pct(0.5), pct(0.9), pct(0.99), mean, batch * 1000 / mean, self.provider
        )


def _task_from_gpux(spec: ModelSpec) -> str | None:
    names = {i.name for i in spec.inputs}
    outputs = {o.name for o in spec.outputs}
    if "input_ids" in names and {"start_logits", "end_logits"} <= outputs:
        return "question-answering"
    if "input_ids" in names and "last_hidden_state" in outputs:
        return "feature-extraction"
    if "input_ids" in names and any(o.labels for o in spec.outputs):
        return "text-classification"
    if "pixel_values" in names:
        return "image-classification"
    return None
