"""The keys page: hosted providers' API keys, masked; set, rotate and remove them.

A key travels once, in the body of a POST from this page (with the page's token: see
``csrf``), into the key store use-cases (``set_key``, ``rotate_key``, ``remove_key``); the
answer is a redirect, so the key is never rendered back, not even into a form that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from modelport.errors import ModelportError
from modelport.server.web import csrf
from modelport.server.web.render import page

if TYPE_CHECKING:
    from modelport.secrets import KeyInfo

__all__ = ["ProviderKey", "router"]

router = APIRouter(include_in_schema=False)

ACTIONS = ("set", "rotate", "remove")


@dataclass(frozen=True)
class ProviderKey:
    """A provider and where its key comes from, never the key."""

    name: str
    label: str
    needs_key: bool
    env_keys: tuple[str, ...]
    #: Where a usable key is (``$OPENAI_API_KEY``, ``the key store``, ``the claude CLI``).
    source: str | None
    stored: KeyInfo | None


def _providers() -> list[ProviderKey]:
    from modelport.api import list_keys
    from modelport.api.keys import key_status
    from modelport.providers.base import get_provider, provider_names

    stored = {info.provider: info for info in list_keys()}
    rows = []
    for name in provider_names():
        try:
            provider = get_provider(name)
        except ModelportError:
            continue
        rows.append(
            ProviderKey(
                name=name,
                label=provider.label,
                needs_key=provider.needs_key,
                env_keys=tuple(provider.env_keys),
                source=key_status(name),
                stored=stored.pop(name, None),
            )
        )
    # Keys of providers whose plugin is gone can still be seen and removed.
    for name, info in sorted(stored.items()):
        rows.append(ProviderKey(name, name, True, (), "the key store", info))
    return rows


def _page(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    rows = _providers()
    done = request.query_params.get("done")
    who = request.query_params.get("provider", "")
    message = None
    if done in ACTIONS and error is None:
        info = next((r.stored for r in rows if r.name == who and r.stored), None)
        message = {
            "set": f"Stored the {who} key{' ' + info.masked if info else ''}.",
            "rotate": f"Rotated the {who} key{': now ' + info.masked if info else ''}."
            + (
                f" The old key stays usable until {info.previous_until:%Y-%m-%d %H:%M} UTC."
                if info and info.previous_until
                else ""
            ),
            "remove": f"Removed the {who} key.",
        }[done]
    # Only what is safe to show goes back into a form: never the key itself.
    shown = {
        k: v for k, v in (form or {}).items() if k in ("action", "provider", "expires", "grace")
    }
    return page(
        request,
        "keys.html",
        status=status,
        active="keys",
        rows=rows,
        settable=[r for r in rows if r.needs_key],
        message=message,
        error=error,
        form=shown,
    )


@router.get("/ui/keys")
async def keys_page(request: Request) -> Response:
    """Each provider, where its key comes from, and the stored keys, masked."""
    return await run_in_threadpool(lambda: _page(request))


@router.post("/ui/keys")
async def change_key(request: Request) -> Response:
    """Set, rotate or remove a provider's stored key."""
    from modelport.api import remove_key, rotate_key, set_key

    body = (await request.body()).decode("utf-8", errors="replace")
    form: dict[str, Any] = dict(parse_qsl(body, keep_blank_values=True))
    if not csrf.from_this_site(request, form.get(csrf.FIELD)):
        return await run_in_threadpool(
            lambda: _page(
                request,
                status=403,
                error="That form did not come from this page (or the page is old): nothing was "
                "changed. Try again from this page.",
            )
        )
    action = form.get("action", "")
    provider = form.get("provider", "").strip()
    key = form.pop("key", "").strip()
    expires = form.get("expires", "").strip() or None

    def act() -> None:
        if action not in ACTIONS:
            raise ModelportError("Choose to set, rotate or remove a key.")
        if action == "remove":
            if not remove_key(provider):
                raise ModelportError(f"No {provider} key is stored, so none was removed.")
            return
        if not key:
            raise ModelportError(f"Paste the {provider or 'provider'}'s key to {action} it.")
        if action == "set":
            set_key(provider, key, expires=expires)
        else:
            rotate_key(provider, key, grace=form.get("grace", "").strip() or "24h", expires=expires)

    try:
        await run_in_threadpool(act)
    except ModelportError as e:
        message = e.one_line().replace(key, "…") if key else e.one_line()
        return await run_in_threadpool(lambda: _page(request, status=400, error=message, form=form))
    target = "/ui/keys?" + urlencode({"done": action, "provider": provider})
    return RedirectResponse(target, status_code=303)
