"""Fetch a remote catalog document (modelport JSON or a LiteLLM map) over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from modelport.catalog.entry import ModelEntry
from modelport.catalog.importers.litellm import import_litellm_map
from modelport.catalog.loader import parse_catalog
from modelport.errors import CatalogValidationError, InvalidValueError, RemoteError

__all__ = ["FORMATS", "RemoteCatalog", "fetch_remote_catalog", "parse_catalog_text"]

FORMATS = ("modelport", "litellm", "openrouter")
MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class RemoteCatalog:
    """Entries fetched from a URL, with the ETag that identifies that version."""

    url: str
    entries: tuple[ModelEntry, ...]
    etag: str | None


def parse_catalog_text(text: bytes | str, *, source: str, format: str) -> tuple[ModelEntry, ...]:
    """Parse a catalog document of either format into validated entries."""
    if format == "modelport":
        return parse_catalog(text, source=source).entries
    if format == "litellm":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CatalogValidationError(source, [("$", f"not valid JSON: {e}")]) from None
        if not isinstance(data, dict):
            raise CatalogValidationError(source, [("$", "a LiteLLM map is a JSON object")])
        made = import_litellm_map(data, as_of=dt.date.today(), source_url=source)
        return made.entries
    if format == "openrouter":
        try:
            listing = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CatalogValidationError(source, [("$", f"not valid JSON: {e}")]) from None
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise CatalogValidationError(
                source, [("$.data", "an OpenRouter listing is an object with a 'data' list")]
            )
        from modelport.catalog.importers.openrouter import import_openrouter_models

        return import_openrouter_models(listing, as_of=dt.date.today(), source_url=source).entries
    raise InvalidValueError(
        f"Unknown catalog format {format!r}.", hint="Use one of: " + ", ".join(FORMATS) + "."
    )


def fetch_remote_catalog(url: str, *, format: str, timeout: float) -> RemoteCatalog:
    """Download and validate a remote catalog; nothing is stored here."""
    import httpx

    if not url.startswith(("http://", "https://")):
        raise InvalidValueError(f"{url!r} is not an http(s) URL.")
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            response = client.get(url)
    except httpx.TimeoutException:
        raise RemoteError(
            f"{url} did not answer within {timeout:g} s.",
            hint="Try again later or raise MODELPORT_HTTP_TIMEOUT.",
        ) from None
    except httpx.HTTPError as e:
        raise RemoteError(
            f"Cannot reach {url}: {e}.", hint="Check the URL and the network."
        ) from None
    if response.status_code != 200:
        raise RemoteError(f"{url} answered HTTP {response.status_code}.")
    if len(response.content) > MAX_BYTES:
        raise RemoteError(f"{url} sent more than 256 MiB; refusing it as a catalog.")
    entries = parse_catalog_text(response.content, source=url, format=format)
    return RemoteCatalog(url=url, entries=entries, etag=response.headers.get("etag"))
