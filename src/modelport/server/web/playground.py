"""The playground: try models in the browser through the same endpoints the clients call.

The page only lists the models each task can use (the store's local models by task, the
hosted models a key here reaches, their simulations); its script then calls ``/v1/embeddings``
and ``/v1/chat/completions`` (streamed), as OpenAI's clients do, and ``/api/v1/predict`` for
the tasks OpenAI has no verb for (classification, question answering, fill-mask, token
classification), as ``modelport run`` does. The browser's session cookie is its key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from modelport.server.web.render import page

__all__ = ["Choice", "model_choices", "router"]

router = APIRouter(include_in_schema=False)

#: The store's tasks each section of the page runs.
SECTIONS: dict[str, tuple[str, ...]] = {
    "embeddings": ("feature-extraction", "sentence-similarity"),
    "chat": ("text-generation",),
    "classify": ("text-classification",),
    "qa": ("question-answering",),
    "other": ("fill-mask", "token-classification"),
}
#: The catalog capability a hosted model needs for a section (the others are local only).
HOSTED = {"embeddings": "embeddings", "chat": "chat"}
#: Hosted and simulated models offered per section (any other can be typed in).
OFFERED = 25
#: What a section starts with when nothing local is pulled (simulated: offline, no key).
SIMULATED_DEFAULT = {
    "embeddings": "openai/text-embedding-3-small",
    "chat": "openai/gpt-4o-mini",
}


@dataclass(frozen=True)
class Choice:
    """A model the page offers: what it sends, and how it reads."""

    value: str
    label: str
    #: local, hosted or simulated.
    kind: str


def _local_name(registry: str, name: str) -> str:
    """How ``/v1`` and ``/api/v1/predict`` name a stored model (as ``/v1/models`` lists it)."""
    return name if registry == "hf" else f"{registry}:{name}"


def model_choices(
    *, simulate: bool, loaded: Sequence[tuple[str, str]] = ()
) -> dict[str, list[Choice]]:
    """The models each section can use: local first (``loaded`` by the server as
    ``(name, task)``, then the store's), then hosted (with a key here, or all of them when
    the server simulates hosted models), then their simulations."""
    from modelport.api import list_catalog, list_models
    from modelport.api.keys import key_status
    from modelport.providers.base import provider_for_catalog

    choices: dict[str, list[Choice]] = {section: [] for section in SECTIONS}
    seen: set[tuple[str, str]] = set()
    local: list[tuple[str, str | None, str]] = [(name, task, "loaded") for name, task in loaded]
    local += [(_local_name(m.registry, m.name), m.task, "local") for m in list_models()]
    for name, task, how in local:
        for section, tasks in SECTIONS.items():
            if task in tasks and (section, name) not in seen:
                seen.add((section, name))
                choices[section].append(Choice(name, f"{name} ({task}, {how})", "local"))
    reachable: dict[str, bool] = {}

    def has_key(catalog_provider: str) -> bool:
        if catalog_provider not in reachable:
            name = provider_for_catalog(catalog_provider)
            reachable[catalog_provider] = name is not None and key_status(name) is not None
        return reachable[catalog_provider]

    for section, capability in HOSTED.items():
        entries = list_catalog(
            source="api", capabilities=[capability], sort="release", descending=True
        ).models
        hosted = [e for e in entries if simulate or has_key(e.provider)][:OFFERED]
        how = "simulated by this server" if simulate else "hosted"
        choices[section] += [Choice(e.id, f"{e.id} ({how})", "hosted") for e in hosted]
        first = [e.id for e in entries if e.id == SIMULATED_DEFAULT[section]]
        simulated = first + [e.id for e in entries if e.id not in first][: OFFERED - len(first)]
        choices[section] += [
            Choice(f"sim:{i}", f"sim:{i} (simulated: offline, no key)", "simulated")
            for i in simulated
        ]
    return choices


def _default(options: list[Choice]) -> str:
    for kind in ("local", "hosted", "simulated"):
        for choice in options:
            if choice.kind == kind:
                return choice.value
    return ""


@router.get("/ui/playground")
async def playground_page(request: Request) -> Response:
    """Embeddings, chat, classification, question answering and the other tasks, tried
    against local, hosted and simulated models."""
    from modelport.server.state import pool_of
    from modelport.settings import get_settings

    simulate = get_settings().simulate
    # Read on the event loop, where the pool changes.
    loaded = [(m["name"], m["task"]) for m in pool_of(request).describe() if m.get("task")]
    choices = await run_in_threadpool(lambda: model_choices(simulate=simulate, loaded=loaded))
    defaults: dict[str, Any] = {section: _default(options) for section, options in choices.items()}
    return page(
        request,
        "playground.html",
        active="playground",
        choices=choices,
        defaults=defaults,
        simulate=simulate,
    )
