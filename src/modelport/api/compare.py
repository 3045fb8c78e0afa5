"""Compare use-case: side-by-side facts about several models, from the catalog and hubs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelport.api.catalog import get_catalog, show_model, system_info
from modelport.api.store import hub_ref
from modelport.errors import ModelportError

if TYPE_CHECKING:
    from modelport.hardware import SystemInfo

__all__ = ["Comparison", "compare_models"]


@dataclass(frozen=True)
class Comparison:
    """What is known of one model; ``None`` means unknown."""

    ref: str
    task: str | None = None
    size_bytes: int | None = None
    parameters: int | None = None
    format: str | None = None
    opset: int | None = None
    license: str | None = None
    downloads: int | None = None
    fit: str | None = None
    fit_reason: str | None = None
    latency_ms: float | None = None
    errors: tuple[str, ...] = field(default_factory=tuple)


def _compare_one(ref: str, *, system: SystemInfo) -> Comparison:
    from modelport.validation import validate_model

    facts: dict[str, Any] = {"ref": ref}
    errors: list[str] = []
    entry = None
    not_in_catalog: ModelportError | None = None
    try:
        entry = show_model(ref)
    except ModelportError as e:
        not_in_catalog = e  # never another model in its place; said if the hub fails too
    if entry is not None:
        facts.update(
            task=entry.tasks[0] if entry.tasks else None,
            parameters=entry.effective_parameters,
            license=entry.license,
        )
        if entry.latency is not None:
            facts["latency_ms"] = entry.latency.estimate_ms(100)
        try:
            verdict = validate_model(entry, system)
            facts.update(fit=verdict.fit.value, fit_reason=verdict.reasons[0])
        except ModelportError as e:
            errors.append(e.one_line())
    target = None
    try:
        target = hub_ref(ref)
    except ModelportError as e:
        if entry is None:
            errors.append((not_in_catalog or e).one_line())
    if target is not None:
        from modelport.hubs.base import get_hub

        try:
            model = get_hub(target.registry or "").info(target)
        except ModelportError as e:
            if not_in_catalog is not None:
                errors.append(f"catalog: {not_in_catalog.one_line()}")
            errors.append(f"{target.registry}: {e.one_line()}")
        else:
            facts["task"] = facts.get("task") or model.task
            facts["size_bytes"] = model.size or None
            facts["format"] = model.format
            facts["downloads"] = model.downloads
            facts["license"] = facts.get("license") or model.license
            facts["opset"] = model.opset
            if "fit" not in facts and model.size:
                from modelport.validation import fit_by_size

                level, need_gb = fit_by_size(model.size, system)
                facts["fit"] = level.value
                where = "GPU" if system.gpus else "RAM"
                facts["fit_reason"] = f"about {need_gb:.1f} GB of {where} for its weights"
    return Comparison(**facts, errors=tuple(errors))


def compare_models(
    refs: Sequence[str], *, gpu_memory: str | float | None = None
) -> list[Comparison]:
    """Facts about each model, gathered in parallel; a failing source leaves an error."""
    from concurrent.futures import ThreadPoolExecutor

    system = system_info(gpu_memory=gpu_memory)
    get_catalog()  # load once before the threads share it
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(refs)))) as pool:
        return list(pool.map(lambda r: _compare_one(r, system=system), refs))
