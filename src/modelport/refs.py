"""Model references: ``[registry:]name[@revision]``.

Examples::

    hf:sentence-transformers/all-MiniLM-L6-v2@main
    sentence-transformers/all-MiniLM-L6-v2          (a bare org/name means hf:)
    onnx:resnet50
    tfhub:google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3
    torch:pytorch/vision:v0.10.0/resnet18
    openai:gpt-4o                                   (a hosted API model)
    llama 8b                                        (a bare name, looked up in the catalog)

The syntax is checked here; what a name may look like on one registry is asked of that
registry's hub (``Hub.check_name``), so a hub another package registers gets its own
rules. Web addresses are mapped by the hub whose site they are (``Hub.from_address``).
``str(ref)`` gives the canonical text, and ``parse_ref(str(ref)) == ref`` for every
reference ``parse_ref`` returns.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from modelport.errors import InvalidReferenceError
from modelport.hubs.base import Ref, get_hub, hub_names

__all__ = ["Ref", "hub_registries", "is_path", "parse_ref"]

MAX_REF_LENGTH = 512

_REGISTRY_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_API_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.:/+-]*[A-Za-z0-9_.+])?")
_QUERY_RE = re.compile(r"[A-Za-z0-9_.:/+ -]+")
_REVISION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


def hub_registries() -> tuple[str, ...]:
    """Registries whose models can be pulled into the store: every registered hub.

    Hosted API providers are registries too, but catalog-only.
    """
    return tuple(hub_names())


def __getattr__(name: str) -> Any:
    # ``HUB_REGISTRIES`` was a fixed tuple; it now follows the hub registry.
    if name == "HUB_REGISTRIES":
        return hub_registries()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_revision(text: str, revision: str) -> None:
    if not revision:
        raise InvalidReferenceError(text, "the revision after '@' is empty")
    if (
        not _REVISION_RE.fullmatch(revision)
        or ".." in revision
        or "//" in revision
        or revision.endswith(("/", ".lock", "."))
    ):
        raise InvalidReferenceError(
            text,
            f"{revision!r} is not a valid revision",
            hint="A revision is a branch, a tag or a commit hash, e.g. @main or @v1.0.",
        )


def _check_name(text: str, registry: str | None, name: str, revision: str | None) -> None:
    if not name:
        raise InvalidReferenceError(text, "the model name is empty")
    if registry is not None and registry in hub_names():
        get_hub(registry).check_name(text, name, revision)
    elif registry is not None:
        if not _API_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid model name")
    elif not _QUERY_RE.fullmatch(name) or name != name.strip() or "  " in name or ".." in name:
        raise InvalidReferenceError(
            text,
            "a model name may hold only letters, digits, spaces and - _ . : / +",
        )


def _from_url(text: str) -> Ref:
    try:
        parts = urlsplit(text)
    except ValueError as e:  # an unbalanced '[' or ']' around the host
        raise InvalidReferenceError(
            text,
            f"it is not a valid web address ({e})",
            hint="Give the model's page address, e.g. https://huggingface.co/org/model.",
        ) from None
    host = (parts.hostname or "").lower()
    path = unquote(parts.path).strip("/")
    for name in hub_names():
        ref = get_hub(name).from_address(host, path)
        if ref is not None:
            break
    else:
        raise InvalidReferenceError(
            text,
            f"addresses on {host or 'that host'} are not model references",
            hint="Only the addresses of a registered hub's site (huggingface.co, "
            "tfhub.dev, kaggle.com/models…) are accepted.",
        )
    if ref.revision is not None:
        _check_revision(text, ref.revision)
    _check_name(text, ref.registry, ref.name, None)
    return ref


def is_path(text: str) -> bool:
    """Whether the text is written as a file path (``./x``, ``../x``, ``/x``, ``~/x``)."""
    text = text.strip()
    return text in (".", "..") or text.startswith(("./", "../", "/", "~", ".\\", "..\\"))


def parse_ref(text: str) -> Ref:
    """Parse ``[registry:]name[@revision]`` into a ``Ref``; raise ``InvalidReferenceError``."""
    if not isinstance(text, str):
        raise InvalidReferenceError(repr(text), "a reference must be a string")
    if len(text) > MAX_REF_LENGTH:
        raise InvalidReferenceError(text[:40] + "…", f"it is over {MAX_REF_LENGTH} characters")
    stripped = text.strip()
    if not stripped:
        raise InvalidReferenceError(text, "it is empty", hint="Give a model name or id.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in stripped):
        raise InvalidReferenceError(text, "it contains control characters")
    if re.match(r"(?i)https?://", stripped):
        return _from_url(stripped)
    if is_path(stripped):
        # A path is never looked up in the catalog (run and convert read folders first).
        exists = os.path.isdir(os.path.expanduser(stripped))
        raise InvalidReferenceError(
            text,
            "it is a folder, not a model name"
            if exists
            else "it is a path, and no such folder exists",
            hint="Only run and convert take a folder; name a model as [registry:]name[@revision].",
        )

    registry: str | None = None
    rest = stripped
    head, sep, tail = stripped.partition(":")
    # "ft:base:org:suffix:id" is an OpenAI fine-tune id, not the registry "ft".
    if sep and _REGISTRY_RE.fullmatch(head) and not (head == "ft" and ":" in tail):
        registry, rest = head, tail

    name, at, revision = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if at:
        if "@" in name:
            raise InvalidReferenceError(text, "it has more than one '@'")
        _check_revision(text, revision)
    _check_name(text, registry, name, revision if at else None)
    return Ref(name=name, registry=registry, revision=revision or None)
