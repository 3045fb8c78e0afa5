"""Which model answers a reference, reached how: hosted (a provider, by API or CLI) or local.

``openai:gpt-4o``, a bare catalog name (``gpt-4o``) or a local model
(``hf:Qwen/Qwen2.5-0.5B-Instruct``) resolve to a ``Target`` here; ``api/prompting.py``
calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from modelport.errors import (
    InvalidValueError,
    ModelNotFoundError,
    ModelportError,
    ProviderError,
    UnknownProviderError,
    UnsupportedOperationError,
)
from modelport.providers.base import (
    ChatRequest,
    Provider,
    get_provider,
    provider_for_catalog,
    provider_names,
)
from modelport.settings import get_settings

if TYPE_CHECKING:
    from modelport.catalog.entry import ModelEntry

__all__ = [
    "TARGET_TTL",
    "Target",
    "access_mode",
    "catalog_entry",
    "forget",
    "provider_registry",
    "resolve_target",
    "stored_tokenizer",
    "target_of",
]


@dataclass(frozen=True)
class Target:
    """A model reference resolved to what answers it."""

    #: The reference as it was given.
    reference: str
    kind: Literal["hosted", "local"]
    #: The registered provider (hosted), or None (local).
    provider: str | None
    #: The provider's name for the model (hosted), or the local reference.
    model: str
    #: The catalog entry's id, when the catalog knows the model.
    catalog_id: str | None = None

    @property
    def name(self) -> str:
        """The canonical reference: ``provider:model`` for hosted models."""
        return f"{self.provider}:{self.model}" if self.kind == "hosted" else self.model


def catalog_entry(catalog_id: str | None) -> ModelEntry | None:
    """The catalog entry of exactly this id (never a fuzzy match), or None."""
    if catalog_id is None:
        return None
    from modelport.api.catalog import get_catalog

    catalog = get_catalog()
    if catalog_id not in catalog:  # Catalog.get resolves names; this is an exact id
        return None
    return catalog[catalog_id]


#: Where each catalog model's own tokenizer lies in the store, for a few seconds.
_TOKENIZERS: dict[str, tuple[float, Path | None]] = {}
_TOKENIZER_TTL_S = 30.0


def stored_tokenizer(entry: ModelEntry | None) -> Path | None:
    """The ``tokenizer.json`` of the entry's Hugging Face model, when the store holds it."""
    if entry is None or not entry.hugging_face_id:
        return None
    now = time.monotonic()
    known = _TOKENIZERS.get(entry.id)
    if known is not None and now - known[0] < _TOKENIZER_TTL_S:
        return known[1]
    from modelport.api.store import stored_revisions

    try:
        revisions = stored_revisions(f"hf:{entry.hugging_face_id}")
    except ModelportError:
        revisions = []
    found = next(
        (r.path / "tokenizer.json" for r in revisions if (r.path / "tokenizer.json").is_file()),
        None,
    )
    _TOKENIZERS[entry.id] = (now, found)
    return found


def provider_registry(registry: str) -> str | None:
    """The provider a reference's registry names (``gemini``, or ``google`` for Gemini)."""
    if registry in provider_names():
        return registry
    return provider_for_catalog(registry)


def resolve_target(reference: str) -> Target:
    """What answers a model reference: a hosted provider's model or a local model.

    ``provider:model`` is that provider's model, in the catalog or not (a new model is
    callable before the catalog knows it; its cost is then unknown). A bare name is a
    hosted model when it names a catalog API entry exactly (id, name or alias); anything
    else is local, where the store and the hubs answer or refuse with "did you mean" (a
    near name is never answered by another model).
    """
    from modelport.api.catalog import get_catalog, resolve_model
    from modelport.catalog.entry import Source
    from modelport.refs import hub_registries, is_path, parse_ref

    if is_path(reference):
        return Target(reference, "local", None, reference)  # the local path says what a folder is
    ref = parse_ref(reference)
    if ref.registry is not None and ref.registry not in hub_registries():
        name = provider_registry(ref.registry)
        if name is None:
            raise UnknownProviderError(ref.registry, provider_names())
        if ref.revision is not None:
            raise InvalidValueError(
                f"{reference}: a hosted model has no revision (@{ref.revision}).",
                hint="Name the model's dated version instead, e.g. openai:gpt-4o-2024-08-06.",
            )
        provider = get_provider(name)
        catalog_id = provider.catalog_id(ref.name)
        catalog = get_catalog()
        return _simulated(
            Target(
                reference, "hosted", name, ref.name, catalog_id if catalog_id in catalog else None
            )
        )
    if ref.registry is not None:
        return Target(reference, "local", None, reference)
    try:
        match = resolve_model(reference)
    except ModelNotFoundError:
        match = None
    if match is None or match.method == "fuzzy":
        # Not a catalog model by name: the local path looks in the store and the hubs, and
        # refuses with "did you mean" itself; a near name is never another model.
        return Target(reference, "local", None, reference)
    entry = get_catalog()[match.id]
    if entry.source is not Source.API:
        return Target(reference, "local", None, reference, match.id)
    name = provider_for_catalog(entry.provider)
    if name is None and get_settings().simulate:
        # Simulation needs no provider: any API entry of the catalog can be answered as.
        return Target(reference, "hosted", "sim", entry.id, entry.id)
    if name is None:
        raise UnsupportedOperationError(
            f"{entry.id} is a {entry.provider} model, and no provider here calls "
            f"{entry.provider}'s API.",
            hint="Install a plugin that registers it (entry point group modelport.providers).",
        )
    model = entry.id.split("/", 1)[1] if "/" in entry.id else entry.id
    return _simulated(Target(reference, "hosted", name, model, entry.id))


def _simulated(target: Target) -> Target:
    """The target itself, or its simulation when MODELPORT_SIMULATE (`serve --simulate`) is
    on: the same catalog model, answered by the ``sim`` provider."""
    if not get_settings().simulate or target.provider is None:
        return target
    provider = get_provider(target.provider)
    if provider.simulated:
        return target
    return Target(
        target.reference,
        "hosted",
        "sim",
        f"{provider.catalog_name}:{target.model}",
        target.catalog_id,
    )


#: How long a resolved name is remembered: a gateway resolves the same few names on every
#: request; a catalog change is seen after this many seconds.
TARGET_TTL = 5.0
_targets: dict[str, tuple[float, Target]] = {}


def forget() -> None:
    """Forget the resolved names and tokenizer places remembered (``api.reset``)."""
    _targets.clear()
    _TOKENIZERS.clear()


async def target_of(reference: str) -> Target:
    """``resolve_target`` for async callers, remembered for ``TARGET_TTL`` seconds."""
    now = time.monotonic()
    cached = _targets.get(reference)
    if cached is not None and now - cached[0] < TARGET_TTL:
        return cached[1]
    from anyio import to_thread

    target = await to_thread.run_sync(resolve_target, reference)
    if len(_targets) > 4096:
        _targets.clear()
    _targets[reference] = (now, target)
    return target


def access_mode(
    provider: Provider, access: str | None, request: ChatRequest | None = None
) -> Literal["api", "cli"]:
    """``api`` or ``cli``: the asked mode, else the setting; ``auto`` prefers a ready CLI,
    unless the CLI would refuse this request and a key for the API is here."""
    mode = (access or get_settings().access_of(provider.name)).lower()
    if mode not in ("auto", "api", "cli"):
        raise InvalidValueError(f"access must be auto, api or cli, not {mode!r}.")
    if mode == "cli":
        if provider.cli is None:
            raise UnsupportedOperationError(
                f"{provider.label} has no CLI modelport can use.", hint="Use `--access api`."
            )
        if not provider.cli_ready():
            raise ProviderError(
                f"The `{provider.cli}` CLI is not installed or not signed in.",
                provider=provider.name,
                hint=f"Install it and sign in, or use `--access api` with a {provider.label} key.",
            )
        return "cli"
    if mode == "auto" and provider.cli is not None and provider.cli_ready():
        if request is not None and provider.cli_refusal(request) is not None:
            from modelport.api.keys import key_status

            if key_status(provider.name, cli=False) is not None:
                return "api"  # the CLI cannot take it; the API can
        return "cli"
    return "api"
