"""Export a PyTorch Hub entry point to ONNX.

The entry point is loaded with ``torch.hub.load(folder, entry, source="local")`` (the
caller has checked that the repository is trusted). An example input comes, in this
order, from ``--input-shape``, from what the entry point or the module declares
(``input_shape`` / ``example_input`` attributes, or Lightning's
``example_input_array``), or from the first layer of a common vision or MLP model.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.convert.parity import Reference
from modelport.errors import ConversionError, InvalidValueError

__all__ = ["InputShape", "export_torchhub", "parse_input_shape"]

_DTYPES = ("float32", "float16", "int64", "int32", "bool")


@dataclass(frozen=True)
class InputShape:
    """One example input: its name (optional), dimensions and element type."""

    dims: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None


def parse_input_shape(text: str) -> InputShape:
    """Parse ``[name=]1,3,224,224[:dtype]``."""
    name, eq, rest = text.partition("=")
    if not eq:
        name, rest = "", text
    dims_text, _, dtype = rest.partition(":")
    dtype = dtype or "float32"
    try:
        dims = tuple(int(d) for d in re.split(r"[,x×]", dims_text.strip()) if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims) or dtype not in _DTYPES or (eq and not name):
        raise InvalidValueError(
            f"{text!r} is not an input shape.",
            hint="Use [name=]d1,d2,…[:dtype], e.g. 1,3,224,224 or ids=1,16:int64.",
        )
    return InputShape(dims, dtype, name or None)


def _declared(obj: Any) -> list[InputShape]:
    for attr in ("input_shapes", "input_shape", "example_input", "example_input_array"):
        value = getattr(obj, attr, None)
        if value is None:
            continue
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            return [InputShape(tuple(value.shape), str(value.dtype).removeprefix("torch."))]
        if isinstance(value, tuple | list) and value and all(isinstance(v, int) for v in value):
            return [InputShape(tuple(value))]
        if isinstance(value, tuple | list) and all(hasattr(v, "shape") for v in value):
            return [InputShape(tuple(v.shape), str(v.dtype).removeprefix("torch.")) for v in value]
        if isinstance(value, tuple | list) and all(isinstance(v, tuple | list) for v in value):
            return [InputShape(tuple(int(d) for d in v)) for v in value]
    return []


def _inferred(model: Any) -> list[InputShape]:
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            return [InputShape((1, module.in_channels, 224, 224))]
        if isinstance(module, torch.nn.Conv1d):
            return [InputShape((1, module.in_channels, 1024))]
        if isinstance(module, torch.nn.Linear):
            return [InputShape((1, module.in_features))]
        if isinstance(module, torch.nn.Embedding):
            return [InputShape((1, 16), "int64")]
    return []


def _example(shapes: Sequence[InputShape], batch: int | None = None, seed: int = 0) -> list[Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for shape in shapes:
        dims = (batch, *shape.dims[1:]) if batch else shape.dims
        dtype = getattr(torch, shape.dtype)
        if dtype.is_floating_point:
            tensors.append(torch.randn(dims, generator=generator).to(dtype))
        elif dtype == torch.bool:
            tensors.append(torch.ones(dims, dtype=torch.bool))
        else:
            tensors.append(torch.randint(0, 100, dims, generator=generator, dtype=dtype))
    return tensors


def _flatten(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _flatten(v)]
    if isinstance(value, tuple | list):
        return [t for v in value for t in _flatten(v)]
    if hasattr(value, "to_tuple"):
        return _flatten(value.to_tuple())
    return []


def export_torchhub(
    folder: Path,
    out: Path,
    *,
    entrypoint: str,
    kwargs: Mapping[str, Any],
    input_shapes: Sequence[InputShape],
    opset: int,
    weights_dir: Path | None = None,
) -> tuple[str, Reference]:
    """Load the entry point, export it to ``out/model.onnx``; returns the task and the
    module's outputs on generated inputs, to check the artifact against.

    Weights the entry point downloads (``torch.hub.load_state_dict_from_url``) are kept
    in ``weights_dir``, so a second conversion does not fetch them again.
    """
    import torch

    if weights_dir is not None:
        torch.hub.set_dir(str(weights_dir))
    hub_module = _import_hubconf(folder)
    entry = getattr(hub_module, entrypoint, None)
    if not callable(entry) or entrypoint.startswith("_"):
        raise ConversionError(
            f"hubconf.py has no entry point {entrypoint!r}.",
            hint="List the entry points with: modelport show torch:OWNER/REPO",
        )
    missing = [d for d in getattr(hub_module, "dependencies", []) or [] if not _importable(str(d))]
    if missing:
        raise ConversionError(
            f"The repository needs packages that are not installed: {', '.join(missing)}.",
            hint="Install them with pip, then run again.",
        )
    try:
        with _on_sys_path(folder):
            model = entry(**kwargs)
    except Exception as e:
        raise ConversionError(
            f"Entry point {entrypoint!r} failed: {type(e).__name__}: {e}",
            hint="Check its keyword arguments: modelport show torch:OWNER/REPO",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise ConversionError(
            f"Entry point {entrypoint!r} returned a {type(model).__name__}, not a torch.nn.Module."
        )
    model.eval()
    shapes = list(input_shapes) or _declared(entry) or _declared(model) or _inferred(model)
    if not shapes:
        raise InvalidValueError(
            f"Cannot tell what input {entrypoint!r} takes.",
            hint="Pass --input-shape, e.g. --input-shape 1,3,224,224.",
        )
    names = [s.name or (f"input_{i}" if len(shapes) > 1 else "input") for i, s in enumerate(shapes)]
    example = _example(shapes)
    with torch.no_grad():
        reference = _flatten(model(*example))
    if not reference:
        raise ConversionError(f"Entry point {entrypoint!r} returned no tensors.")
    outputs = [f"output_{i}" if len(reference) > 1 else "output" for i in range(len(reference))]
    axes = {n: {0: "batch_size"} for n in [*names, *outputs]}
    try:
        torch.onnx.export(
            model,
            tuple(example),
            str(out / "model.onnx"),
            input_names=names,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    except Exception as e:
        raise ConversionError(
            f"torch.onnx.export failed for {entrypoint!r}: {type(e).__name__}: {e}"
        ) from None
    # Parity on a different batch size than the export used: the batch axis must be dynamic.
    check = _example(shapes, batch=2, seed=1)
    with torch.no_grad():
        expected = [t.float().numpy() for t in _flatten(model(*check))]
    feed = {n: t.numpy() for n, t in zip(names, check, strict=True)}
    task = "tensors"
    if (
        len(shapes) == 1
        and len(shapes[0].dims) == 4
        and shapes[0].dims[1] == 3
        and len(expected) == 1
        and expected[0].ndim == 2
    ):
        task = "image-classification"
    return task, Reference(feed, expected)


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    import sys

    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(folder))


def _importable(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _import_hubconf(folder: Path) -> Any:
    """Import ``hubconf.py`` the way ``torch.hub`` does: by path, its folder on sys.path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hubconf", folder / "hubconf.py")
    if spec is None or spec.loader is None:
        raise ConversionError(f"Cannot import {folder / 'hubconf.py'}.")
    module = importlib.util.module_from_spec(spec)
    try:
        with _on_sys_path(folder):
            spec.loader.exec_module(module)
    except Exception as e:
        raise ConversionError(f"hubconf.py failed to import: {type(e).__name__}: {e}") from None
    return module
