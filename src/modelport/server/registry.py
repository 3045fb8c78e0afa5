"""/api/v1: the registry — models and their versions, categories, tasks, search, validation,
selection, system, and the call log's usage report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelport.api.usage import UsageReport
from modelport.jsonable import to_jsonable
from modelport.server.errors import error_responses

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


def envelope(data: Any, **meta: Any) -> dict[str, Any]:
    """The one response envelope of /api/v1."""
    return {"data": to_jsonable(data), "meta": to_jsonable(meta)}


@router.get("/health", tags=["system"])
def health() -> dict[str, Any]:
    """Liveness, with the catalog size."""
    from modelport import __version__
    from modelport.api import get_catalog

    return envelope({"status": "ok", "version": __version__, "models": len(get_catalog())})


@router.get("/registry/models", tags=["registry"], responses=error_responses(400, 422))
def list_models(
    q: Annotated[str | None, Query(description="Fuzzy search text; ranks by relevance.")] = None,
    provider: str | None = None,
    source: Literal["self-hosted", "api"] | None = None,
    category: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    status: Literal["stable", "experimental", "deprecated"] | None = None,
    capability: Annotated[list[str] | None, Query()] = None,
    min_context: Annotated[int | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    max_vram: Annotated[float | None, Query(ge=0)] = None,
    sort: str = "id",
    desc: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Catalog models with every filter, sorted and paginated."""
    from modelport.api import list_catalog

    page = list_catalog(
        text=q,
        provider=provider,
        source=source,
        category=category,
        task=task,
        tag=tag,
        status=status,
        capabilities=capability or (),
        min_context=min_context,
        max_price=max_price,
        max_vram=max_vram,
        sort=sort,
        descending=desc,
        limit=limit,
        offset=offset,
    )
    return envelope(list(page.models), total=page.total, limit=limit, offset=offset)


@router.get(
    "/registry/models/{model_id:path}",
    tags=["registry"],
    responses=error_responses(400, 404, 409, 422),  # 400: not a model name at all
)
def get_model(model_id: str) -> dict[str, Any]:
    """One model by id (ids contain '/'), alias or fuzzy name."""
    from modelport.api import get_catalog, resolve_model

    match = resolve_model(model_id)
    return envelope(
        get_catalog()[match.id], match={"method": match.method, "confidence": match.confidence}
    )


@router.get(
    "/models/{model_id:path}/versions",
    tags=["registry"],
    responses=error_responses(404, 422),
)
def model_versions(model_id: str) -> dict[str, Any]:
    """Every version of a user or remote entry by exact id, newest first (none for a
    bundled entry): what it was, where it came from, how, by what and whom it ended."""
    from modelport.api import entry_history

    versions = entry_history(model_id)
    return envelope(versions, model=model_id, count=len(versions))


@router.get("/registry/categories", tags=["registry"])
def categories() -> dict[str, Any]:
    """Every category with its model count."""
    from modelport.api import get_catalog
    from modelport.catalog.entry import Category

    counts = get_catalog().facet("category")
    return envelope([{"name": c.value, "models": counts.get(c.value, 0)} for c in Category])


@router.get("/registry/tasks", tags=["registry"])
def tasks() -> dict[str, Any]:
    """Every pipeline task with its category, aliases and model count."""
    from modelport.api import get_catalog
    from modelport.catalog.tasks import TASKS

    counts = get_catalog().facet("task")
    return envelope(
        [
            {
                "name": t.name,
                "category": t.category.value,
                "aliases": list(t.aliases),
                "description": t.description,
                "models": counts.get(t.name, 0),
            }
            for t in TASKS
        ]
    )


class ValidateRequest(BaseModel):
    """What to validate and for which machine."""

    # The schema says what _one_model checks: model or model_id is required, as a string.
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "anyOf": [
                {"required": [field], "properties": {field: {"type": "string"}}}
                for field in ("model", "model_id")
            ]
        },
    )

    model: str | None = Field(default=None, min_length=1, description="Model id, alias or name.")
    model_id: str | None = Field(
        default=None, min_length=1, description="Same as model (what Model Garden sends)."
    )
    gpu_memory: str | float | None = Field(
        default=None, description="Plan for this GPU, e.g. 24GB."
    )
    dtype: str | None = None
    context: Annotated[int, Field(ge=1)] | None = None
    method: Literal["full", "lora", "qlora"] | None = None
    overrides: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_model(self) -> ValidateRequest:
        if self.model is None and self.model_id is None:
            raise ValueError("give the model to validate as model (or model_id)")
        return self

    @property
    def name(self) -> str:
        """The model asked for, whichever field carried it."""
        return self.model or self.model_id or ""


@router.post(
    "/registry/validate/{purpose}",
    tags=["registry"],
    responses=error_responses(400, 404, 409, 422),
)
def validate(purpose: Literal["training", "inference"], body: ValidateRequest) -> dict[str, Any]:
    """Whether a model can be trained or served on this machine, why, and what would help."""
    from modelport.api import validate_model
    from modelport.errors import InvalidValueError

    if body.model is not None and body.model_id is not None and body.model != body.model_id:
        # The schema allows both; naming two different models is a value that cannot be used.
        raise InvalidValueError(
            "model and model_id name different models.", hint="Give one of them."
        )
    result = validate_model(
        body.name,
        purpose=purpose,
        gpu_memory=body.gpu_memory,
        dtype=body.dtype,
        context=body.context,
        method=body.method,
        overrides=body.overrides,
    )
    return envelope(result)


class SelectRequest(BaseModel):
    """A task and the constraints for choosing models."""

    model_config = ConfigDict(extra="forbid")

    task: str
    include_api: bool = True
    include_self_hosted: bool = True
    min_context: Annotated[int, Field(ge=0)] | None = None
    max_cost_per_1m: Annotated[float, Field(ge=0)] | None = None
    capabilities: list[str] = Field(default_factory=list)
    fits_this_machine: bool = False
    gpu_memory: str | float | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 10
    #: Only API models with a usable key here (and self-hosted ones).
    usable_only: bool = False


@router.post("/registry/select", tags=["registry"], responses=error_responses(400, 422))
def select(body: SelectRequest) -> dict[str, Any]:
    """Ranked self-hosted and API models for a task, with reasons."""
    from modelport.api import select_models

    picks = select_models(
        body.task,
        include_api=body.include_api,
        include_self_hosted=body.include_self_hosted,
        min_context=body.min_context,
        max_cost_per_1m=body.max_cost_per_1m,
        capabilities=body.capabilities,
        fits_this_machine=body.fits_this_machine,
        gpu_memory=body.gpu_memory,
        limit=body.limit,
        usable_only=body.usable_only,
    )
    return envelope(
        [
            {
                "model": p.entry,
                "score": p.score,
                "reasons": p.reasons,
                "fit": p.validation.fit.value if p.validation else None,
                "key": p.key,
            }
            for p in picks
        ]
    )


@router.get("/sim/stats", tags=["simulation"], responses=error_responses(422))
def sim_stats(request: Request) -> dict[str, Any]:
    """What the simulated models answered since the server started: requests, faults by
    kind, rate-limited calls and tokens, per model; and, with ``--replay``/``--record``,
    the calls the cassette replayed, missed and recorded."""
    from modelport.api.prompting import sim_stats as stats

    cassette = getattr(request.app.state, "cassette", None)
    meta = {}
    if cassette is not None:
        meta["cassette"] = {
            "replayed": cassette.replayed,
            "missed": cassette.missed,
            "recorded": cassette.recorded,
            "interactions": len(cassette),
        }
    return envelope(stats(), **meta)


@router.get("/system", tags=["system"], responses=error_responses(400, 422))
def system(gpu_memory: str | None = None) -> dict[str, Any]:
    """This machine: CPU, RAM, GPUs, ONNX Runtime providers."""
    from modelport.api import system_info

    return envelope(system_info(gpu_memory=gpu_memory))


class UsageResponse(BaseModel):
    """The call log's report in the envelope of /api/v1."""

    data: UsageReport
    meta: dict[str, Any] = Field(default_factory=dict)


@router.get(
    "/usage",
    tags=["usage"],
    response_model=UsageResponse,
    responses=error_responses(400, 422, 503),
)
def usage(
    since: Annotated[
        str,
        Query(description="Since a duration ago (30m, 24h, 7d), an ISO date or time, or all."),
    ] = "7d",
    by: Annotated[
        Literal["model", "provider", "day", "access", "origin", "call"],
        Query(description="Add the calls up per this, or list them one by one (call)."),
    ] = "model",
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many calls.")] = 100,
) -> dict[str, Any]:
    """What calls to models used and cost: tokens, latency, known cost, calls of unknown cost."""
    from modelport.api import usage_report

    report = usage_report(since=since, by=None if by == "call" else by, limit=limit)
    return envelope(report, since=since, by=by)


@router.get("/usage/timeline", tags=["usage"], responses=error_responses(400, 422, 503))
def usage_timeline(
    since: Annotated[
        str,
        Query(description="Since a duration ago (30m, 24h, 7d), an ISO date or time, or all."),
    ] = "24h",
    by: Annotated[
        Literal["model", "provider"], Query(description="One series per model or provider.")
    ] = "model",
    steps: Annotated[int, Query(ge=1, le=1000, description="At most this many time steps.")] = 60,
    top: Annotated[
        int, Query(ge=1, le=50, description="Series for the busiest; the rest as other.")
    ] = 8,
) -> dict[str, Any]:
    """Calls, tokens, cost and mean latency per time step, per model or provider."""
    from modelport.api.usage_timeline import usage_timeline as timeline

    return envelope(timeline(since=since, by=by, steps=steps, top=top), since=since, by=by)
