"""The store page: the pulled models with their sizes, revisions and converted artifacts,
the store's disk use and hit rates; pulling a model with live progress; removing a model
or pruning the store, each shown as its plan (what would be deleted, what it would free)
before anything is deleted. Every figure comes from the store use-cases ``list_models``,
``store_stats``, ``plan_remove``, ``plan_prune``, ``execute_plan`` and ``pull``."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from modelport.errors import ModelportError
from modelport.server.web import csrf
from modelport.server.web.pulls import Pulls, sse
from modelport.server.web.render import fragment_requested, page

if TYPE_CHECKING:
    from modelport.store.store import RemovalPlan

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _pulls(request: Request) -> Pulls:
    pulls: Pulls | None = getattr(request.app.state, "ui_pulls", None)
    if pulls is None:
        pulls = request.app.state.ui_pulls = Pulls()
    return pulls


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


def _refused(request: Request) -> Response:
    """The answer to a form that did not come from this server's pages."""
    return page(
        request,
        "error.html",
        status=403,
        active="store",
        title="That form did not come from this page",
        message="The request did not carry this page's token, or came from another site: "
        "nothing was changed. Reload the page and try again.",
        suggestions=[],
        href=str,
        search=None,
    )


def fingerprint(plan: RemovalPlan) -> str:
    """What a plan would delete, as a short digest: the plan executed must be the plan shown."""
    parts = sorted(m.key for m in plan.models)
    parts += sorted(sha for sha, _ in plan.blobs)
    parts += sorted(a.path for a in plan.artifacts)
    parts += sorted(name for name, _ in plan.partials)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _store_context(request: Request) -> dict[str, Any]:
    """The store's models (each with what was derived from it) and its stats."""
    from modelport.api import list_models, store_stats
    from modelport.api.store import stored_artifacts

    models = list_models()
    artifacts = stored_artifacts(models)
    return {"models": models, "artifacts": artifacts, "stats": store_stats()}


@router.get("/ui/store")
async def store_page(request: Request) -> Response:
    """The pulled models, the store's disk use and hit rates, and the pull form."""
    q = request.query_params
    context = await run_in_threadpool(_store_context, request)
    pull_id = q.get("pull", "")
    job = await run_in_threadpool(_pulls(request).find, pull_id) if pull_id else None
    done = {k: q[k] for k in ("removed", "freed", "pruned") if q.get(k, "").isdigit()}
    if fragment_requested(request, "stored"):
        return page(request, "_stored.html", **context)
    return page(
        request,
        "store.html",
        active="store",
        job=job,
        done=done,
        plan=None,
        plan_error=None,
        pull_error=None,
        ref="",
        prune={"max_size": "", "older_than": ""},
        **context,
    )


# -------------------------------------------------------------------- plans


def _plan(kind: str, values: dict[str, str]) -> RemovalPlan:
    from modelport.api import plan_prune, plan_remove

    if kind == "remove":
        return plan_remove(values.get("ref", "").strip())
    return plan_prune(
        max_size=values.get("max_size", "").strip() or None,
        older_than=values.get("older_than", "").strip() or None,
    )


async def _plan_page(
    request: Request, kind: str, values: dict[str, str], *, status: int = 200, changed: bool = False
) -> Response:
    """The store page with a plan to confirm (or the reason there is none)."""
    plan, error = None, None
    try:
        plan = await run_in_threadpool(_plan, kind, values)
    except ModelportError as e:
        error = e.one_line()
        status = e.http_status if status == 200 else status
    context = await run_in_threadpool(_store_context, request)
    return page(
        request,
        "store.html",
        status=status if error is None else (400 if status >= 500 else status),
        active="store",
        job=None,
        done={},
        plan={
            "kind": kind,
            "plan": plan,
            "fingerprint": fingerprint(plan) if plan is not None else "",
            "values": values,
            "changed": changed,
        }
        if plan is not None
        else None,
        plan_error=error,
        pull_error=None,
        ref=values.get("ref", "") if kind == "remove" else "",
        prune={k: values.get(k, "") for k in ("max_size", "older_than")},
        **context,
    )


@router.get("/ui/store/remove")
async def remove_plan(request: Request, ref: str = "") -> Response:
    """What removing a model would delete and free, to confirm (nothing is deleted yet)."""
    return await _plan_page(request, "remove", {"ref": ref})


@router.get("/ui/store/prune")
async def prune_plan(request: Request, max_size: str = "", older_than: str = "") -> Response:
    """What a prune would remove and free, to confirm (nothing is deleted yet)."""
    return await _plan_page(request, "prune", {"max_size": max_size, "older_than": older_than})


async def _execute(request: Request, kind: str) -> Response:
    """Carry out the plan the user confirmed, if it is still the plan: otherwise show the
    plan as it is now, to confirm again."""
    from modelport.api import execute_plan

    form = await _form(request)
    if not csrf.from_this_site(request, form.get(csrf.FIELD)):
        return _refused(request)
    keys = ("ref",) if kind == "remove" else ("max_size", "older_than")
    values = {k: form.get(k, "") for k in keys}
    try:
        plan = await run_in_threadpool(_plan, kind, values)
    except ModelportError:
        return await _plan_page(request, kind, values)
    if fingerprint(plan) != form.get("plan", ""):
        return await _plan_page(request, kind, values, status=409, changed=True)
    freed = await run_in_threadpool(execute_plan, plan)
    from modelport.server.state import pool_of

    pool = pool_of(request)
    for m in plan.models:  # a removed model is not answered from memory either
        pool.unload(m.name if m.registry == "hf" else f"{m.registry}:{m.name}")
    done = {"removed" if kind == "remove" else "pruned": len(plan.models), "freed": freed}
    return RedirectResponse(f"/ui/store?{urlencode(done)}#done", status_code=303)


@router.post("/ui/store/remove")
async def remove_model(request: Request) -> Response:
    """Remove a model as the plan the user confirmed says."""
    return await _execute(request, "remove")


@router.post("/ui/store/prune")
async def prune_store(request: Request) -> Response:
    """Prune the store as the plan the user confirmed says."""
    return await _execute(request, "prune")


# -------------------------------------------------------------------- pulls


@router.post("/ui/store/pulls")
async def start_pull(request: Request) -> Response:
    """Start pulling a model; its progress streams from ``/ui/store/pulls/{id}/events``."""
    form = await _form(request)
    if not csrf.from_this_site(request, form.get(csrf.FIELD)):
        return _refused(request)
    ref = form.get("ref", "").strip()
    revision = form.get("revision", "").strip() or None
    error = None
    if not ref:
        error = "Name the model to pull, e.g. hf:sentence-transformers/all-MiniLM-L6-v2."
    else:
        from modelport.api import hub_ref

        try:
            await run_in_threadpool(hub_ref, ref)  # a bad name is said now, not in the stream
        except ModelportError as e:
            error = e.one_line()
    if error is not None:
        if fragment_requested(request, "pull-status"):
            # htmx swaps only a 2xx answer: the sentence comes as one.
            return page(request, "_pull.html", job=None, pull_error=error, ref=ref)
        context = await run_in_threadpool(_store_context, request)
        return page(
            request,
            "store.html",
            status=400,
            active="store",
            job=None,
            done={},
            plan=None,
            plan_error=None,
            pull_error=error,
            ref=ref,
            prune={"max_size": "", "older_than": ""},
            **context,
        )
    job = await run_in_threadpool(_pulls(request).start, ref, revision=revision)
    if fragment_requested(request, "pull-status"):
        return page(request, "_pull.html", job=job, pull_error=None, ref=ref)
    return RedirectResponse(f"/ui/store?pull={job.id}#pull-status", status_code=303)


@router.get("/ui/store/pulls/{job_id}/events")
async def pull_events(request: Request, job_id: str) -> Response:
    """A pull's progress as Server-Sent Events, whichever replica runs it; leaving the stream
    (without another one coming back) cancels the pull."""
    from modelport.api import pull_jobs

    row = await run_in_threadpool(pull_jobs.read, job_id)
    if row is None:
        return JSONResponse(
            {"error": {"message": "No such pull on this server.", "code": "not_found"}},
            status_code=404,
        )
    return StreamingResponse(
        sse(request, row),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/ui/store/pulls/{job_id}/cancel")
async def cancel_pull(request: Request, job_id: str) -> Response:
    """Stop a pull, whichever replica runs it; what it had downloaded is deleted."""
    from modelport.api import pull_jobs

    form = await _form(request)
    token = request.headers.get(csrf.HEADER) or form.get(csrf.FIELD)
    if not csrf.from_this_site(request, token):
        return _refused(request)
    local = _pulls(request).get(job_id)
    if local is not None:  # running here: no need to wait for it to read the request
        local.cancel.set()
    job = await run_in_threadpool(pull_jobs.request_cancel, job_id)
    if job is None:
        return JSONResponse(
            {"error": {"message": "No such pull on this server.", "code": "not_found"}},
            status_code=404,
        )
    if request.headers.get("hx-request") == "true" or "json" in request.headers.get("accept", ""):
        return JSONResponse({"cancelling": job.id, "state": job.state}, status_code=202)
    return RedirectResponse(f"/ui/store?pull={job.id}#pull-status", status_code=303)
