"""Will this ONNX model run here? Opset, operators per execution provider, memory.

ONNX Runtime's own kernel registry (``get_all_opkernel_def``: operator, domain, version
range, provider) is the source of truth: the highest opset it implements, and which
operators each provider of this build has. Problems refuse a run; warnings (an operator
that falls back from the GPU to the CPU, a tight memory fit) are reported.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["Compatibility", "check_model", "check_opset", "supported_opset"]

_DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass(frozen=True)
class Compatibility:
    """Why a model cannot run here (``problems``) and what to know if it can (``warnings``)."""

    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    opset: int | None = None
    providers_checked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Whether nothing stops the model from running."""
        return not self.problems


@lru_cache(maxsize=1)
def _kernels() -> dict[tuple[str, str], dict[str, int]]:
    """(domain, operator) → provider → the lowest opset with a kernel."""
    from onnxruntime.capi import _pybind_state as C

    table: dict[tuple[str, str], dict[str, int]] = {}
    for k in C.get_all_opkernel_def():
        domain = "" if k.domain in _DEFAULT_DOMAINS else k.domain
        per = table.setdefault((domain, k.op_name), {})
        per[k.provider] = min(per.get(k.provider, 1 << 30), int(k.version_range[0]))
    return table


def supported_opset() -> int:
    """The highest default-domain opset this ONNX Runtime implements."""
    starts = [
        since for (domain, _), per in _kernels().items() if domain == "" for since in per.values()
    ]
    return max(starts, default=0)


def check_opset(opset: int | None) -> str | None:
    """A problem sentence when an opset is newer than this ONNX Runtime implements."""
    if opset is None:
        return None
    import onnxruntime

    top = supported_opset()
    if opset > top:
        return (
            f"the model needs ONNX opset {opset}, and onnxruntime {onnxruntime.__version__} "
            f"implements up to opset {top}; upgrade onnxruntime or pick an older opset"
        )
    return None


def _nodes(graph: Any) -> Iterable[Any]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.type == attribute.GRAPH:
                yield from _nodes(attribute.g)
            for sub in attribute.graphs:
                yield from _nodes(sub)


#: Operators ONNX Runtime folds away when it loads a graph, so no kernel exists for them.
_FOLDED = {("", "Constant")}


def _expandable(domain: str, op: str, opset: int | None) -> bool:
    """Whether ONNX Runtime can run an operator without a kernel: folded, or expanded from
    the function body its ONNX schema defines."""
    if (domain, op) in _FOLDED:
        return True
    try:
        import onnx.defs

        schema = onnx.defs.get_schema(op, opset or onnx.defs.onnx_opset_version(), domain)
    except Exception:  # no schema: a custom operator
        return False
    return bool(
        getattr(schema, "has_function", False)
        or getattr(schema, "has_context_dependent_function", False)
    )


def _read_model(path: Path) -> tuple[dict[str, int], set[tuple[str, str]]]:
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except ImportError:  # runtime-only installs: ONNX Runtime parses it instead
        return {}, set()
    opsets = {
        ("" if o.domain in _DEFAULT_DOMAINS else o.domain): o.version for o in model.opset_import
    }
    local = {f.name for f in model.functions}
    ops = {
        ("" if n.domain in _DEFAULT_DOMAINS else n.domain, n.op_type)
        for n in _nodes(model.graph)
        if n.op_type not in local
    }
    return opsets, ops


def check_model(
    path: str | Path,
    *,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    size_bytes: int | None = None,
    system: Any = None,
    cache: Path | None = None,
) -> Compatibility:
    """Check an ONNX file against this ONNX Runtime, the providers in order, and memory.

    With ``cache``, the answer is kept in that file, for as long as the model file, this
    ONNX Runtime, the providers and the machine's memory stay the same: reading a large
    graph to list its operators takes seconds.
    """
    path = Path(path)
    context: list[Any] = []
    if cache is not None:
        import onnxruntime

        stat = path.stat()
        context = [
            onnxruntime.__version__,
            list(providers),
            size_bytes,
            stat.st_size,
            stat.st_mtime_ns,
            getattr(system, "ram_gb", None),
            getattr(system, "max_gpu_memory_gb", None),
        ]
        try:
            saved = json.loads(cache.read_text())
            if saved.get("context") == context:
                return Compatibility(
                    tuple(saved["problems"]),
                    tuple(saved["warnings"]),
                    saved["opset"],
                    tuple(providers),
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    result = _check(path, providers=providers, size_bytes=size_bytes, system=system)
    if cache is not None:
        record = {
            "context": context,
            "problems": list(result.problems),
            "warnings": list(result.warnings),
            "opset": result.opset,
        }
        tmp = cache.with_name(f".{cache.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_text(json.dumps(record))
            os.replace(tmp, cache)
        except OSError:
            tmp.unlink(missing_ok=True)
    return result


def _check(
    path: Path, *, providers: Sequence[str], size_bytes: int | None, system: Any
) -> Compatibility:
    problems: list[str] = []
    warnings: list[str] = []
    opsets, ops = _read_model(path)
    opset = opsets.get("")
    if (problem := check_opset(opset)) is not None:
        problems.append(problem)
    table = _kernels()
    known_domains = {domain for domain, _ in table}
    preferred = providers[0] if providers else "CPUExecutionProvider"
    missing_everywhere: list[str] = []
    falls_back: list[str] = []
    for domain, op in sorted(ops):
        per = table.get((domain, op), {})
        usable = {p for p, since in per.items() if since <= opsets.get(domain, 1 << 30)}
        name = f"{domain}.{op}" if domain else op
        if not usable and not _expandable(domain, op, opsets.get(domain)):
            if domain and domain not in known_domains:
                missing_everywhere.append(f"{name} (custom domain {domain!r})")
            else:
                missing_everywhere.append(name)
        elif preferred not in usable and preferred != "CPUExecutionProvider":
            falls_back.append(name)
    if missing_everywhere:
        problems.append(
            "no execution provider of this onnxruntime implements "
            + ", ".join(missing_everywhere[:8])
            + (" …" if len(missing_everywhere) > 8 else "")
        )
    if falls_back:
        warnings.append(
            f"{preferred} lacks "
            + ", ".join(falls_back[:8])
            + (" …" if len(falls_back) > 8 else "")
            + "; those run on the CPU (slower, with copies between devices)"
        )
    if size_bytes is None:
        size_bytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    if system is not None and size_bytes:
        from modelport.validation import fit_by_size

        level, need = fit_by_size(size_bytes, system)
        if level.value == "does-not-fit":
            problems.append(f"it needs about {need:.1f} GB of memory, more than this machine has")
        elif level.value == "tight":
            warnings.append(f"memory is tight: it needs about {need:.1f} GB")
    return Compatibility(tuple(problems), tuple(warnings), opset, tuple(providers))
