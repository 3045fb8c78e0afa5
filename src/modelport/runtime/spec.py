"""``modelport.yml``: the spec beside a converted model, compatible with GPUX's ``gpux.yml``.

The GPUX sections (``name``, ``version``, ``description``, ``model``, ``inputs``,
``outputs``, ``runtime``, ``serving``, ``preprocessing``) are read and written as GPUX
does; modelport's own facts (task, pooling, labels, parity, options) live under
``modelport:``, which GPUX ignores. A hand-written file with only the GPUX sections runs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelport.errors import ConfigError

__all__ = ["SPEC_FILE", "ModelSpec", "read_spec", "write_spec"]

SPEC_FILE = "modelport.yml"
GPUX_FILE = "gpux.yml"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class ModelSource(_Loose):
    """Where the model file is and what format it has."""

    source: str = "model.onnx"
    format: str = "onnx"
    version: str | None = None


class TensorSpec(_Loose):
    """One input or output."""

    name: str
    type: str = "float32"
    shape: list[int | str] = Field(default_factory=list)
    labels: list[str] | None = None
    required: bool = True
    description: str | None = None


class GpuSpec(_Loose):
    """GPU needs."""

    memory: str | None = None
    backend: str = "auto"


class RuntimeSpec(_Loose):
    """How to run it."""

    gpu: GpuSpec = Field(default_factory=GpuSpec)
    timeout: float = 30
    batch_size: int = 1


class ServingSpec(_Loose):
    """How to serve it."""

    host: str = "127.0.0.1"
    port: int = 8080
    batch_size: int = 1
    timeout: float = 30
    max_workers: int = 4


class PreprocessingSpec(_Loose):
    """How inputs are prepared."""

    tokenizer: str | None = None
    max_length: int | None = None
    resize: list[int] | None = None
    normalize: Any = None


class ModelSpec(_Loose):
    """The whole spec."""

    name: str
    version: str = "1.0.0"
    description: str = ""
    model: ModelSource = Field(default_factory=ModelSource)
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    preprocessing: PreprocessingSpec = Field(default_factory=PreprocessingSpec)
    modelport: dict[str, Any] = Field(default_factory=dict)

    @property
    def task(self) -> str | None:
        """The pipeline task (modelport's section, else guessed from GPUX's)."""
        task = self.modelport.get("task")
        return str(task) if task else None


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        from modelport.errors import MissingExtraError

        raise MissingExtraError("run", feature="Reading modelport.yml") from None
    return yaml


def read_spec(folder: Path) -> ModelSpec:
    """Read ``modelport.yml`` (or GPUX's ``gpux.yml``) from a folder."""
    path = folder / SPEC_FILE
    if not path.exists() and (folder / GPUX_FILE).exists():
        path = folder / GPUX_FILE
    yaml = _yaml()
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{folder} has no {SPEC_FILE}.",
            hint="Convert a model with `modelport convert REF` to make one.",
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings.")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {where}: {err['msg']}.") from None


def write_spec(folder: Path, spec: ModelSpec) -> Path:
    """Write ``modelport.yml`` atomically."""
    yaml = _yaml()
    path = folder / SPEC_FILE
    text = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".modelport.", suffix=".yml")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path
