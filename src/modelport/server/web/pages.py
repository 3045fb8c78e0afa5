"""The UI's pages: the models table, a model, its fit check, and a comparison. Each calls the
use-cases the registry API calls (``list_catalog``, ``resolve_model``, ``validate_model``,
``compare_models``) and renders what they return."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from modelport.errors import InvalidValueError, ModelNotFoundError, ModelportError
from modelport.server.web.render import fragment_requested, page

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Column:
    """A column of the models table."""

    label: str
    #: The sort key its header sorts by, if any.
    key: str | None = None
    numeric: bool = False
    #: Left out on a phone's width.
    optional: bool = False
    #: Sorting by it starts with the largest values.
    largest_first: bool = False


COLUMNS = (
    Column("Model", "id"),
    Column("Provider", "provider"),
    Column("Source", optional=True),
    Column("Category", optional=True),
    Column("Parameters", "parameters", numeric=True, largest_first=True),
    Column("Context (tokens)", "context", numeric=True, largest_first=True),
    Column("Price (USD / 1M tokens)", "price", numeric=True),
    Column("Min GPU memory (GB)", numeric=True, optional=True),
    Column("Released", "release", optional=True, largest_first=True),
)

#: How many models a comparison takes.
COMPARE_MIN, COMPARE_MAX = 2, 4


@router.get("/ui")
def ui_home() -> Response:
    """The UI's home: the models."""
    return RedirectResponse("/ui/models", status_code=307)


@router.get("/ui/models")
def models_page(request: Request) -> Response:
    """The catalog as a table: search, filters, sort and pages, all in the address."""
    from modelport.api.listing import catalog_facets, list_catalog, stored_catalog_ids
    from modelport.catalog.catalog import SORT_KEYS
    from modelport.server.web import forms, views

    filters = forms.parse_filters(request.query_params.multi_items())
    fragment = fragment_requested(request, "results")
    error: str | None = None
    result = None
    try:
        result = list_catalog(
            text=filters.q or None,
            provider=filters.provider or None,
            source=filters.source or None,
            category=filters.category or None,
            task=filters.task or None,
            status=filters.status or None,
            capabilities=filters.capabilities,
            min_context=filters.min_context,
            max_price=filters.max_price,
            max_vram=filters.max_vram,
            stored=filters.stored,
            fits=filters.fits,
            gpu_memory=filters.gpu or None,
            sort=filters.sort if filters.sort not in ("", "relevance") else "id",
            descending=filters.desc,
            rank=filters.relevance,
            # A whole page says what a typo meant at once; as-you-type, it comes after.
            suggest=not fragment,
            limit=filters.per_page,
            offset=filters.offset,
        )
    except ModelportError as e:
        error = e.one_line()
    stored = (
        stored_catalog_ids(result.models) if result is not None and result.models else frozenset()
    )
    pages = max(1, -(-result.total // filters.per_page)) if result else 1
    context: dict[str, Any] = {
        "f": filters,
        "result": result,
        "error": error,
        "stored": stored,
        "pages": pages,
        "columns": COLUMNS,
        "sort_keys": SORT_KEYS,
        "href": views.model_href,
        "lazy_suggestions": fragment,
    }
    headers = {"HX-Push-Url": filters.url()}
    if fragment:
        return page(request, "_results.html", headers=headers, **context)
    return page(request, "models.html", active="models", facets=catalog_facets(), **context)


@router.get("/ui/suggest")
def suggest_fragment(request: Request) -> Response:
    """The "did you mean" of a models view's search text (asked for by its results)."""
    from modelport.api.listing import did_you_mean
    from modelport.server.web import forms, views

    filters = forms.parse_filters(request.query_params.multi_items())
    meant = did_you_mean(filters.q)
    return page(
        request,
        "_did_you_mean.html",
        f=filters,
        spelling=meant.spelling,
        models=meant.models,
        href=views.model_href,
    )


@router.get("/ui/models/{model_id:path}")
def model_page(request: Request, model_id: str) -> Response:
    """Everything the catalog knows of one model, and its defaults as forms to check."""
    from modelport.api import get_catalog, resolve_model
    from modelport.server.web import views

    try:
        match = resolve_model(model_id)
    except ModelNotFoundError as e:
        return _not_found(request, e)
    except ModelportError as e:
        return _error(request, e)
    if match.id != model_id:
        # One address per model: a name or alias leads to the id's page.
        return RedirectResponse(views.model_href(match.id), status_code=307)
    return _model(request, get_catalog()[match.id])


def _model(
    request: Request,
    entry: Any,
    *,
    verdicts: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    from modelport.api import get_catalog, stored_revisions
    from modelport.catalog.entry import InferenceDefaults, TrainingDefaults
    from modelport.server.web import forms, views

    catalog = get_catalog()
    revisions = []
    if entry.hugging_face_id:  # as `show` does: the store keeps Hub repos
        try:
            revisions = stored_revisions(f"hf:{entry.hugging_face_id}")
        except ModelportError:
            revisions = []
    entry_json = json.dumps(entry.to_json_dict(), indent=2, ensure_ascii=False)
    return page(
        request,
        "model.html",
        status=status,
        active="models",
        entry=entry,
        facts=views.entry_facts(entry),
        origin=views.provenance(entry),
        badges=views.capability_badges(entry),
        prices=views.price_facts(entry),
        pricing_origin=views.provenance(entry.pricing),
        latency=views.latency_facts(entry),
        latency_origin=views.provenance(entry.latency),
        requirements=views.requirement_facts(entry),
        lineage=views.lineage_facts(entry, lambda i: i in catalog),
        revisions=revisions,
        entry_json=entry_json,
        entry_yaml=_yaml(entry.to_json_dict()),
        show_command=forms.cli_command_show(entry.id),
        training=forms.defaults_form("training", entry.training_defaults, TrainingDefaults),
        inference=forms.defaults_form("inference", entry.inference_defaults, InferenceDefaults),
        verdicts=verdicts or {},
    )


@router.post("/ui/validate/{purpose}")
async def validate_action(request: Request, purpose: Literal["training", "inference"]) -> Response:
    """Check the defaults form against this machine or a GPU of the memory given."""
    body = (await request.body()).decode("utf-8", errors="replace")
    submitted = dict(parse_qsl(body, keep_blank_values=True))
    verdict = await run_in_threadpool(_validate, purpose, submitted)
    if fragment_requested(request, f"verdict-{purpose}"):
        return page(request, "_verdict.html", v=verdict)
    # Without JavaScript: the whole page, with the verdict in place.
    from modelport.api import show_model

    try:
        entry = show_model(submitted.get("model", ""))
    except ModelportError as e:
        return _error(request, e)
    return _model(request, entry, verdicts={purpose: verdict})


def _validate(purpose: Literal["training", "inference"], submitted: dict[str, str]) -> Any:
    """The verdict of the validate use-case on the submitted form, ready to render."""
    from modelport.api import show_model, validate_model
    from modelport.catalog.entry import InferenceDefaults, TrainingDefaults
    from modelport.server.web import forms

    name = submitted.get("model", "")
    gpu = submitted.get("gpu_memory", "").strip() or None
    verdict: dict[str, Any] = {
        "purpose": purpose,
        "model": name,
        "gpu": gpu,
        "error": None,
        "field_errors": {},
    }
    try:
        entry = show_model(name)
        if purpose == "training":
            form = forms.defaults_form("training", entry.training_defaults, TrainingDefaults)
        else:
            form = forms.defaults_form("inference", entry.inference_defaults, InferenceDefaults)
        method, overrides, errors = forms.parse_defaults(form, submitted)
        if errors:
            verdict["field_errors"] = errors
            first, message = next(iter(errors.items()))
            label = next(f.label for f in form.fields if f.name == first)
            verdict["error"] = f"{label}: {message}"
            return verdict
        result = validate_model(
            entry.id, purpose=purpose, gpu_memory=gpu, method=method, overrides=overrides
        )
    except ModelportError as e:
        verdict["error"] = e.one_line()
        return verdict
    verdict.update(
        result=result,
        parts=_memory_parts(result),
        command=forms.cli_command(
            entry.id, purpose, gpu_memory=gpu, method=method, overrides=overrides
        ),
        defaults_json=json.dumps(result.defaults, indent=2),
        defaults_yaml=_yaml(result.defaults),
    )
    return verdict


def _memory_parts(result: Any) -> list[tuple[str, float]]:
    """The parts of the memory estimate that are not zero, in GB."""
    e = result.estimate
    if e is None:
        return []
    parts = [
        ("Weights", e.weights_gb),
        ("KV cache", e.kv_cache_gb),
        ("Gradients", e.gradients_gb),
        ("Optimizer state", e.optimizer_gb),
        ("Activations", e.activations_gb),
        ("Overhead", e.overhead_gb),
    ]
    return [(label, gb) for label, gb in parts if gb]


@router.get("/ui/compare")
def compare_page(request: Request) -> Response:
    """Two to four models side by side, with the facts that differ marked."""
    from modelport.api import compare_models, show_model
    from modelport.server.web import views

    asked = [m.strip() for m in request.query_params.getlist("m") if m.strip()]
    gpu = request.query_params.get("gpu", "").strip()
    only_diff = request.query_params.get("diff") in ("1", "on", "true")
    context: dict[str, Any] = {
        "asked": asked,
        "gpu": gpu,
        "only_diff": only_diff,
        "rows": [],
        "comparisons": [],
        "entries": [],
        "error": None,
        "limits": (COMPARE_MIN, COMPARE_MAX),
    }
    if asked:
        try:
            if not COMPARE_MIN <= len(asked) <= COMPARE_MAX:
                raise InvalidValueError(
                    f"Compare takes {COMPARE_MIN} to {COMPARE_MAX} models, got {len(asked)}.",
                    hint="Give each model in its own box.",
                )
            comparisons = compare_models(asked, gpu_memory=gpu or None)
            entries: list[ModelEntry | None] = []
            for ref in asked:
                try:
                    entries.append(show_model(ref))
                except ModelportError:
                    entries.append(None)  # a hub model: compare said what it found
            context.update(
                comparisons=comparisons,
                entries=entries,
                rows=views.compare_rows(entries, comparisons),
            )
        except ModelportError as e:
            context["error"] = e.one_line()
    return page(request, "compare.html", active="compare", href=views.model_href, **context)


def _not_found(request: Request, e: ModelNotFoundError) -> Response:
    from modelport.server.web import views

    return page(
        request,
        "error.html",
        status=404,
        active="models",
        title="No such model",
        message=e.message,
        suggestions=e.suggestions[:8],
        href=views.model_href,
        search=f"/ui/models?q={quote(e.ref)}",
    )


def _error(request: Request, e: ModelportError) -> Response:
    from modelport.server.web import views

    return page(
        request,
        "error.html",
        status=e.http_status,
        active="models",
        title="That did not work",
        message=e.one_line(),
        suggestions=[],
        href=views.model_href,
        search=None,
    )


def _yaml(data: Any) -> str:
    """Data as YAML (block style, keys in the schema's order)."""
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))
