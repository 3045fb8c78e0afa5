"""Model references: ``[registry:]name[@revision]``.

Examples::

    hf:sentence-transformers/all-MiniLM-L6-v2@main
    sentence-transformers/all-MiniLM-L6-v2          (a bare org/name means hf:)
    onnx:resnet50
    tfhub:google/bert/tensorFlow2/en-uncased-l-12-h-768-a-12/3
    torch:pytorch/vision:v0.10.0/resnet18
    openai:gpt-4o                                   (a hosted API model)
    llama 8b                                        (a bare name, looked up in the catalog)

``parse_ref`` accepts the old ``https://tfhub.dev/...``, Kaggle Models and Hugging Face
addresses and maps them. ``str(ref)`` gives the canonical text, and
``parse_ref(str(ref)) == ref`` for every reference ``parse_ref`` returns.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from modelport.errors import InvalidReferenceError

__all__ = ["HUB_REGISTRIES", "Ref", "TorchRef", "is_path", "parse_ref", "parse_torch_name"]

#: Registries whose models can be pulled into the store (hosted API providers are
#: registries too, but catalog-only).
HUB_REGISTRIES = ("hf", "onnx", "tfhub", "torch")

MAX_REF_LENGTH = 512

_REGISTRY_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_HF_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})?")
_PATH_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_TORCH_NAME_RE = re.compile(
    rf"(?P<owner>{_SEGMENT})/(?P<repo>{_SEGMENT})(?::(?P<ref>[A-Za-z0-9_.][A-Za-z0-9_./-]*?))?"
    rf"(?:/(?P<entry>{_SEGMENT})(?:\?(?P<kwargs>[A-Za-z0-9_.=&,%+-]*))?)?"
)
_API_NAME_RE = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.:/+-]*[A-Za-z0-9_.+])?")
_QUERY_RE = re.compile(r"[A-Za-z0-9_.:/+ -]+")
_REVISION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")


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


def _check_name(text: str, registry: str | None, name: str) -> None:
    if not name:
        raise InvalidReferenceError(text, "the model name is empty")
    if registry == "hf":
        if not _HF_NAME_RE.fullmatch(name) or ".." in name or "--" in name:
            raise InvalidReferenceError(
                text,
                f"{name!r} is not a Hugging Face repo id",
                hint="Use org/name or name, e.g. hf:sentence-transformers/all-MiniLM-L6-v2.",
            )
        if any(len(part) > 96 for part in name.split("/")):
            raise InvalidReferenceError(text, "a part of the repo id is over 96 characters")
    elif registry in ("onnx", "tfhub"):
        if not _PATH_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid {registry} model name")
        if registry == "tfhub" and name.count("/") not in (1, 2, 3, 4, 5):
            raise InvalidReferenceError(
                text,
                "a TensorFlow Hub handle needs owner/model/framework/variation[/version]",
            )
    elif registry == "torch":
        if not _TORCH_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(
                text,
                f"{name!r} is not a PyTorch Hub reference",
                hint="Use torch:owner/repo[:ref]/entrypoint, "
                "e.g. torch:pytorch/vision:v0.10.0/resnet18.",
            )
    elif registry is not None:
        if not _API_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid model name")
    elif not _QUERY_RE.fullmatch(name) or name != name.strip() or "  " in name or ".." in name:
        raise InvalidReferenceError(
            text,
            "a model name may hold only letters, digits, spaces and - _ . : / +",
        )


@dataclass(frozen=True, order=True)
class Ref:
    """A parsed model reference."""

    name: str
    registry: str | None = None
    revision: str | None = None

    def __str__(self) -> str:
        text = f"{self.registry}:{self.name}" if self.registry else self.name
        if self.revision:
            text += f"@{self.revision}"
        return text

    @property
    def is_repo_id(self) -> bool:
        """Whether the name has the ``org/name`` shape of a Hugging Face repo id."""
        return _HF_NAME_RE.fullmatch(self.name) is not None and "/" in self.name

    @property
    def hub(self) -> str | None:
        """The hub to pull from: the explicit registry, or ``hf`` for a bare ``org/name``."""
        if self.registry in HUB_REGISTRIES:
            return self.registry
        if self.registry is None and self.is_repo_id:
            return "hf"
        return None

    def with_revision(self, revision: str | None) -> Ref:
        """The same reference at another revision."""
        return Ref(name=self.name, registry=self.registry, revision=revision)


def _from_url(text: str) -> Ref:
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path).strip("/")
    if host in ("tfhub.dev", "www.tfhub.dev"):
        ref = Ref(name=path, registry="tfhub")
    elif host in ("kaggle.com", "www.kaggle.com") and path.startswith("models/"):
        ref = Ref(name=path.removeprefix("models/"), registry="tfhub")
    elif host in ("huggingface.co", "hf.co", "www.huggingface.co"):
        segments = path.split("/")
        revision = None
        if len(segments) >= 4 and segments[2] in ("tree", "blob", "resolve"):
            revision = segments[3]
        ref = Ref(name="/".join(segments[:2]), registry="hf", revision=revision)
    else:
        raise InvalidReferenceError(
            text,
            f"addresses on {host or 'that host'} are not model references",
            hint="Only tfhub.dev, kaggle.com/models and huggingface.co addresses are accepted.",
        )
    _check_name(text, ref.registry, ref.name)
    if ref.revision is not None:
        _check_revision(text, ref.revision)
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
    if sep and _REGISTRY_RE.fullmatch(head) and head != "ft":
        registry, rest = head, tail

    name, at, revision = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if at:
        if registry == "torch":
            raise InvalidReferenceError(
                text,
                "PyTorch Hub references put the git ref after ':', not '@'",
                hint="Use torch:owner/repo:ref/entrypoint.",
            )
        if "@" in name:
            raise InvalidReferenceError(text, "it has more than one '@'")
        _check_revision(text, revision)
    _check_name(text, registry, name)
    return Ref(name=name, registry=registry, revision=revision or None)


@dataclass(frozen=True)
class TorchRef:
    """The parts of a PyTorch Hub name: ``owner/repo[:ref][/entrypoint[?kwargs]]``."""

    owner: str
    repo: str
    git_ref: str | None = None
    entrypoint: str | None = None
    kwargs: tuple[tuple[str, object], ...] = ()

    @property
    def repo_id(self) -> str:
        """``owner/repo``."""
        return f"{self.owner}/{self.repo}"


def _kwarg_value(text: str) -> object:
    from urllib.parse import unquote

    value = unquote(text)
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parse_torch_name(name: str) -> TorchRef:
    """Split a ``torch:`` name; keyword arguments become ints, floats, bools or strings."""
    match = _TORCH_NAME_RE.fullmatch(name)
    if match is None or ".." in name:
        raise InvalidReferenceError(
            f"torch:{name}",
            f"{name!r} is not a PyTorch Hub reference",
            hint="Use torch:owner/repo[:ref][/entrypoint], e.g. torch:pytorch/vision/resnet18.",
        )
    kwargs: list[tuple[str, object]] = []
    for part in (match["kwargs"] or "").split("&"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.isidentifier():
            raise InvalidReferenceError(
                f"torch:{name}", f"{part!r} is not a keyword argument (use key=value)"
            )
        kwargs.append((key, _kwarg_value(value)))
    return TorchRef(match["owner"], match["repo"], match["ref"], match["entry"], tuple(kwargs))
