"""``modelport.yml``: the spec beside a converted model, compatible with GPUX's ``gpux.yml``.

The GPUX sections (``name``, ``version``, ``description``, ``model``, ``inputs``,
``outputs``, ``runtime``, ``serving``, ``preprocessing``) are read and written as GPUX
does; modelport's own facts (task, pooling, labels, parity, options) live under
``modelport:``, which GPUX ignores. A hand-written file with only the GPUX sections runs.

Every form GPUX's own parser (``gpux.config.parser``) accepts is read: ``inputs`` and
``outputs`` as a list or as a mapping keyed by name, a scalar shorthand (``text: string``),
``max_length``, ``labels``, ``shape: null``, empty ``serving``/``preprocessing`` sections,
``preprocessing.tokenizer`` naming a Hub tokenizer, extra sections (``metadata``) and keys;
and timeouts as seconds or with a unit (``5s``, ``500ms``).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelport.errors import ConfigError, InvalidValueError

__all__ = ["SPEC_FILE", "ModelSpec", "read_json", "read_spec", "write_spec"]

SPEC_FILE = "modelport.yml"
GPUX_FILE = "gpux.yml"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


def _tensor_list(value: Any) -> Any:
    """GPUX's mapping form (``{name: {type: …}}`` or ``{name: type}``) as a list."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return value
    tensors = []
    for name, config in value.items():
        if isinstance(config, dict):
            tensors.append({**config, "name": str(name)})
        elif config is None:
            tensors.append({"name": str(name)})
        else:
            tensors.append({"name": str(name), "type": str(config)})
    return tensors


def _seconds(value: Any) -> Any:
    """A timeout in seconds, or with a unit as people write it (``5s``, ``500ms``, ``2m``)."""
    if value is None or isinstance(value, bool):
        return value
    from modelport.settings import parse_seconds

    try:
        return parse_seconds(value)
    except InvalidValueError as e:
        raise ValueError(e.message.rstrip(".") + " (use seconds, e.g. 30 or 5s)") from None


class ModelSource(_Loose):
    """Where the model file is and what format it has."""

    source: str = "model.onnx"
    format: str = "onnx"
    version: str | None = None


class TensorSpec(_Loose):
    """One input or output."""

    name: str
    type: str = "float32"
    shape: list[int | str | None] = Field(default_factory=list)
    labels: list[str] | None = None
    required: bool = True
    max_length: int | None = None
    description: str | None = None

    @field_validator("shape", mode="before")
    @classmethod
    def _no_shape(cls, value: Any) -> Any:
        return [] if value is None else value


class GpuSpec(_Loose):
    """GPU needs."""

    memory: str | None = None
    backend: str = "auto"


class RuntimeSpec(_Loose):
    """How to run it."""

    gpu: GpuSpec = Field(default_factory=GpuSpec)
    timeout: float = 30
    batch_size: int = 1

    _timeout = field_validator("timeout", mode="before")(_seconds)


class ServingSpec(_Loose):
    """How to serve it."""

    host: str = "127.0.0.1"
    port: int = 8080
    batch_size: int = 1
    timeout: float = 30
    max_workers: int = 4

    _timeout = field_validator("timeout", mode="before")(_seconds)


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

    _tensors = field_validator("inputs", "outputs", mode="before")(_tensor_list)

    @field_validator("version", "description", mode="before")
    @classmethod
    def _text(cls, value: Any, info: Any) -> Any:
        # YAML reads `version: 1.0` as a number and `description:` as null.
        if value is None:
            return "1.0.0" if info.field_name == "version" else ""
        return str(value) if isinstance(value, int | float) else value

    @field_validator("runtime", "serving", "preprocessing", "model", mode="before")
    @classmethod
    def _empty_section(cls, value: Any) -> Any:
        return {} if value is None else value

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
        message = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where}: {message}.") from None


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


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of a model folder; {} when it is missing, unreadable or no object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
