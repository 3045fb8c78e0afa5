"""What the UI's forms and addresses carry, read into typed values: the filters of the models
page (each wrong value said beside its field) and the editable training and inference
defaults of a model page (turned into the overrides ``validate`` takes, and back into the
CLI command that does the same)."""

from __future__ import annotations

import json
import shlex
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel

__all__ = [
    "DefaultsForm",
    "FormField",
    "ModelFilters",
    "cli_command",
    "cli_command_show",
    "defaults_form",
    "parse_defaults",
    "parse_filters",
]

#: How many rows a page of the models table may have.
PAGE_SIZES = (25, 50, 100, 200)


@dataclass(frozen=True)
class ModelFilters:
    """The models page's query: search text, filters, sort and page."""

    q: str = ""
    source: str = ""
    provider: str = ""
    category: str = ""
    task: str = ""
    status: str = ""
    capabilities: tuple[str, ...] = ()
    min_context: int | None = None
    max_price: float | None = None
    max_vram: float | None = None
    stored: bool = False
    fits: bool = False
    gpu: str = ""
    #: A sort key, or "" for the default: relevance with search text, else id.
    sort: str = ""
    desc: bool = False
    page: int = 1
    per_page: int = 50
    #: Wrong values, by field: said beside the field, and the filter left out.
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        """The first row of the page."""
        return (self.page - 1) * self.per_page

    @property
    def relevance(self) -> bool:
        """Whether the rows are ranked by how well they match the search text."""
        return bool(self.q) and self.sort in ("", "relevance")

    @property
    def active(self) -> int:
        """How many filters narrow the list (the search text aside)."""
        return sum(
            bool(v)
            for v in (
                self.source,
                self.provider,
                self.category,
                self.task,
                self.status,
                self.capabilities,
                self.min_context is not None,
                self.max_price is not None,
                self.max_vram is not None,
                self.stored,
                self.fits,
            )
        )

    def params(self, **change: Any) -> list[tuple[str, str]]:
        """The query parameters of this view (only those set), with ``change`` applied."""
        values: dict[str, Any] = {
            "q": self.q,
            "source": self.source,
            "provider": self.provider,
            "category": self.category,
            "task": self.task,
            "status": self.status,
            "capability": list(self.capabilities),
            "min_context": self.min_context,
            "max_price": self.max_price,
            "max_vram": self.max_vram,
            "stored": self.stored,
            "fits": self.fits,
            "gpu": self.gpu if self.fits else "",
            "sort": self.sort,
            "desc": self.desc,
            "page": self.page,
            "per_page": self.per_page,
        }
        values.update(change)
        pairs: list[tuple[str, str]] = []
        for name, value in values.items():
            if (
                value is None
                or value is False
                or value == ""
                or value == []
                or (name == "page" and value == 1)
                or (name == "per_page" and value == 50)
            ):
                continue
            for one in value if isinstance(value, list) else [value]:
                pairs.append((name, _param(one)))
        return pairs

    def url(self, *, path: str = "/ui/models", **change: Any) -> str:
        """The address of this view, with ``change`` applied (what a shared link holds);
        ``path`` gives another page the same query."""
        query = urlencode(self.params(**change))
        return path + (f"?{query}" if query else "")


def _param(value: Any) -> str:
    if value is True:
        return "1"
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_filters(query: Iterable[tuple[str, str]]) -> ModelFilters:
    """Read the models page's query parameters; a wrong value is noted, never raised."""
    single: dict[str, str] = {}
    capabilities: list[str] = []
    for name, value in query:
        value = value.strip()
        if name == "capability":
            if value and value not in capabilities:
                capabilities.append(value)
        else:
            single[name] = value
    errors: dict[str, str] = {}

    def number(name: str, kind: type[int] | type[float], what: str) -> Any:
        text = single.get(name, "")
        if not text:
            return None
        try:
            value = kind(text)
        except ValueError:
            errors[name] = f"Enter {what}."
            return None
        if value < 0 or value != value or value in (float("inf"), float("-inf")):
            errors[name] = f"Enter {what}."
            return None
        return value

    page = number("page", int, "a page number") or 1
    per_page = number("per_page", int, "a number of rows") or 50
    if per_page not in PAGE_SIZES:
        errors["per_page"] = "Choose " + ", ".join(map(str, PAGE_SIZES)) + " rows per page."
        per_page = 50
    return ModelFilters(
        q=single.get("q", "")[:200],
        source=single.get("source", ""),
        provider=single.get("provider", ""),
        category=single.get("category", ""),
        task=single.get("task", ""),
        status=single.get("status", ""),
        capabilities=tuple(capabilities),
        min_context=number("min_context", int, "a whole number of tokens"),
        max_price=number("max_price", float, "a price in US dollars, like 2.5"),
        max_vram=number("max_vram", float, "a number of gigabytes, like 24"),
        stored=_flag(single.get("stored", "")),
        fits=_flag(single.get("fits", "")),
        gpu=single.get("gpu", ""),
        sort=single.get("sort", ""),
        desc=_flag(single.get("desc", "")),
        page=max(1, page),
        per_page=per_page,
        errors=errors,
    )


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "on", "yes")


# -------------------------------------------------------------------- defaults forms


@dataclass(frozen=True)
class FormField:
    """One input of a defaults form, described from the pydantic field behind it."""

    name: str
    label: str
    kind: Literal["integer", "number", "checkbox", "select", "text", "list"]
    value: Any
    optional: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""

    @property
    def text(self) -> str:
        """The value as the input shows it."""
        if self.value is None:
            return ""
        if self.kind == "list":
            return ", ".join(self.value)
        if self.kind == "number":
            return f"{self.value:g}"
        return str(self.value)


@dataclass(frozen=True)
class DefaultsForm:
    """A model's training or inference defaults as inputs, grouped (LoRA apart)."""

    purpose: Literal["training", "inference"]
    fields: tuple[FormField, ...]
    groups: tuple[tuple[str, tuple[FormField, ...]], ...]
    #: Whether the catalog gives this model's own defaults (else modelport's generic ones).
    from_catalog: bool


_LABELS = {
    "lr_scheduler": "LR scheduler",
    "max_seq_length": "Max sequence length (tokens)",
    "max_model_len": "Max model length (tokens)",
    "max_tokens": "Max output tokens",
    "learning_rate": "Learning rate",
    "per_device_batch_size": "Batch size per device",
    "gpu_memory_utilization": "GPU memory utilization (share)",
    "warmup_ratio": "Warm-up ratio",
    "top_p": "Top p",
    "r": "Rank (r)",
    "use_rslora": "Rank-stabilized LoRA",
    "target_modules": "Target modules (comma-separated)",
}


def defaults_form(
    purpose: Literal["training", "inference"], defaults: BaseModel | None, model: type[BaseModel]
) -> DefaultsForm:
    """The inputs for ``model`` (TrainingDefaults or InferenceDefaults), prefilled with
    ``defaults`` (the entry's), or with the model's own defaults when it has none."""
    from modelport.catalog.entry import LoraConfig

    values = (defaults or model()).model_dump(mode="json")
    top = tuple(_fields(model, values, prefix="", skip=frozenset({"lora"})))
    groups: list[tuple[str, tuple[FormField, ...]]] = [("", top)]
    every = list(top)
    if "lora" in model.model_fields:
        lora_values = values.get("lora") or LoraConfig().model_dump(mode="json")
        lora = tuple(_fields(LoraConfig, lora_values, prefix="lora."))
        groups.append(("LoRA adapter (lora, qlora)", lora))
        every.extend(lora)
    return DefaultsForm(purpose, tuple(every), tuple(groups), defaults is not None)


def _fields(
    model: type[BaseModel],
    values: Mapping[str, Any],
    *,
    prefix: str,
    skip: frozenset[str] = frozenset(),
) -> Iterable[FormField]:
    import annotated_types

    for name, info in model.model_fields.items():
        if name in skip:
            continue
        annotation, optional = _unwrap(info.annotation)
        minimum = maximum = None
        for meta in _constraints([*info.metadata, *_annotated_metadata(annotation)]):
            if isinstance(meta, annotated_types.Ge | annotated_types.Gt):
                minimum = float(getattr(meta, "ge", getattr(meta, "gt", 0)))
            if isinstance(meta, annotated_types.Le | annotated_types.Lt):
                maximum = float(getattr(meta, "le", getattr(meta, "lt", 0)))
        base = typing.get_args(annotation)[0] if _is_annotated(annotation) else annotation
        kind: Literal["integer", "number", "checkbox", "select", "text", "list"]
        choices: tuple[str, ...] = ()
        if typing.get_origin(base) is Literal:
            kind, choices = "select", tuple(str(c) for c in typing.get_args(base))
        elif base is bool:
            kind = "checkbox"
        elif base is int:
            kind = "integer"
        elif base is float:
            kind = "number"
        elif typing.get_origin(base) is list:
            kind = "list"
        else:
            kind = "text"
        value = values.get(name)
        label = _LABELS.get(name, name.replace("_", " ").capitalize())
        yield FormField(
            prefix + name,
            label,
            kind,
            value,
            optional=optional,
            choices=choices,
            minimum=minimum,
            maximum=maximum,
            help=info.description or "",
        )


def _constraints(metadata: Iterable[Any]) -> Iterable[Any]:
    """Constraint objects, also those inside a ``Field(...)`` of an ``Annotated`` type."""
    for meta in metadata:
        inner = getattr(meta, "metadata", None)
        if isinstance(inner, list):
            yield from inner
        else:
            yield meta


def _is_annotated(annotation: Any) -> bool:
    return typing.get_origin(annotation) is typing.Annotated


def _annotated_metadata(annotation: Any) -> Sequence[Any]:
    return annotation.__metadata__ if _is_annotated(annotation) else ()


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the type without ``| None``, whether None is allowed)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def parse_defaults(
    form: DefaultsForm, submitted: Mapping[str, str]
) -> tuple[str | None, dict[str, Any], dict[str, str]]:
    """(the training method asked for when it changed, the settings that differ from the
    form's prefilled values, wrong values by field).

    Only what the user changed becomes an override, so the CLI command shows just that;
    a changed LoRA setting overrides the whole ``lora`` setting, as ``--set lora=…`` does.
    """
    changed: dict[str, Any] = {}
    lora: dict[str, Any] = {}
    lora_changed = False
    errors: dict[str, str] = {}
    for f in form.fields:
        raw = submitted.get(f.name)
        try:
            value = _read(f, raw)
        except ValueError as e:
            errors[f.name] = str(e)
            continue
        if f.name.startswith("lora."):
            lora[f.name.removeprefix("lora.")] = value
            lora_changed = lora_changed or value != f.value
        elif value != f.value:
            changed[f.name] = value
    method = changed.pop("method", None) if form.purpose == "training" else None
    if lora_changed:
        changed["lora"] = lora
    return method, changed, errors


def _read(f: FormField, raw: str | None) -> Any:
    """One submitted value as its field's type; ValueError says what to enter."""
    if f.kind == "checkbox":
        return raw is not None and _flag(raw or "on")
    text = (raw or "").strip()
    if f.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if not text:
        if f.optional:
            return None
        if f.kind == "text":
            return ""
        raise ValueError("Enter a value.")
    if f.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError("Enter a whole number.") from None
    if f.kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("Enter a number, like 0.0002 or 2e-4.") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("Enter a finite number.")
        return number
    if f.kind == "select" and text not in f.choices:
        raise ValueError("Choose one of: " + ", ".join(f.choices) + ".")
    return text


def cli_command_show(model_id: str) -> str:
    """The ``modelport show`` command for a model."""
    return shlex.join(["modelport", "show", model_id])


def cli_command(
    model_id: str,
    purpose: str,
    *,
    gpu_memory: str | None,
    method: str | None,
    overrides: Mapping[str, Any],
) -> str:
    """The ``modelport validate`` command that checks the same thing."""
    parts = ["modelport", "validate", model_id, "--for", purpose]
    if gpu_memory:
        parts += ["--gpu-memory", gpu_memory]
    if method:
        parts += ["--method", method]
    for name, value in overrides.items():
        # The CLI reads a value as JSON when it parses: a string that would is quoted.
        text = (
            value
            if isinstance(value, str) and not _parses_as_json(value)
            else json.dumps(value, separators=(",", ":"))
        )
        parts += ["--set", f"{name}={text}"]
    return shlex.join(parts)


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
