"""A model's chat template, rendered with jinja2 exactly as transformers renders it.

transformers (``utils/chat_template_utils.py``) compiles a template in an
``ImmutableSandboxedEnvironment`` with ``trim_blocks``, ``lstrip_blocks`` and the
``loopcontrols`` extension, a ``tojson`` filter that does not escape HTML,
``raise_exception`` and ``strftime_now``, and renders it with ``messages``, ``tools``,
``documents``, ``add_generation_prompt`` and the tokenizer's special tokens
(``bos_token``, ``eos_token`` …). This module does the same, reading the templates where
transformers finds them: ``chat_template.jinja`` and ``additional_chat_templates/*.jinja``
(how transformers 4.5x saves them), else ``chat_template`` in ``tokenizer_config.json``
(a string, or a list of named templates, as older versions save them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError, InvalidValueError, MissingExtraError
from modelport.runtime.text import tokenizer_config

__all__ = ["ChatTemplate"]

#: The tokenizer attributes transformers passes to every template (``special_tokens_map``).
SPECIAL_TOKENS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
    "additional_special_tokens",
)


def _token_text(value: Any) -> Any:
    """A special token as transformers hands it to a template: its string."""
    if isinstance(value, dict):
        return value.get("content")
    if isinstance(value, list):
        return [_token_text(v) for v in value]
    return value


def _templates(folder: Path, config: Mapping[str, Any]) -> dict[str, str]:
    """The named templates of a folder; files win over ``tokenizer_config.json``."""
    found: dict[str, str] = {}
    if (folder / "chat_template.jinja").is_file():
        found["default"] = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if (folder / "additional_chat_templates").is_dir():
        for path in sorted((folder / "additional_chat_templates").glob("*.jinja")):
            found[path.name.removesuffix(".jinja")] = path.read_text(encoding="utf-8")
    if found:
        return found
    value = config.get("chat_template")
    if isinstance(value, str):
        return {"default": value}
    if isinstance(value, list):
        return {
            str(t["name"]): str(t["template"])
            for t in value
            if isinstance(t, dict) and "name" in t and "template" in t
        }
    return {}


def _special_tokens(config: Mapping[str, Any]) -> dict[str, Any]:
    """The special tokens as transformers' ``special_tokens_map`` (only those set)."""
    merged = dict(config)
    names = list(SPECIAL_TOKENS)
    extra = config.get("extra_special_tokens")
    if isinstance(extra, dict):  # model-specific named tokens (transformers ≥ 4.50)
        merged.update(extra)
        names += [str(k) for k in extra if k not in names]
    tokens = {}
    for name in names:
        value = _token_text(merged.get(name))
        if value:
            tokens[name] = value
    return tokens


def _environment() -> Any:
    """The jinja2 environment of transformers' ``_compile_jinja_template``."""
    try:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise MissingExtraError("run", feature="Rendering chat templates") from None

    class Generation(jinja2.ext.Extension):
        """``{% generation %}…{% endgeneration %}`` (transformers' assistant-mask marker)
        renders its body: only the token masks of training use it."""

        tags = {"generation"}  # noqa: RUF012 (jinja2's own class attribute)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(
                lineno
            )

        def _body(self, caller: Any) -> Any:
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: Any = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        # jinja2's own tojson escapes HTML characters; transformers' does not.
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


class ChatTemplate:
    """The chat templates of a model folder with the special tokens they are rendered with."""

    def __init__(
        self, templates: Mapping[str, str], special_tokens: Mapping[str, Any], *, name: str = ""
    ) -> None:
        self.templates = dict(templates)
        self.special_tokens = dict(special_tokens)
        self.name = name
        self._compiled: dict[str, Any] = {}
        self._variables: dict[str, frozenset[str]] = {}

    @classmethod
    def from_folder(cls, folder: Path, *, name: str | None = None) -> ChatTemplate:
        """The templates and special tokens saved in a model folder (maybe no template)."""
        # tokenizer_config.json over the legacy special_tokens_map.json, as in transformers.
        config = tokenizer_config(folder)
        return cls(_templates(folder, config), _special_tokens(config), name=name or folder.name)

    @property
    def available(self) -> bool:
        """Whether the model has a chat template at all."""
        return bool(self.templates)

    def supports(self, variable: str, *, tools: bool = False) -> bool:
        """Whether the template chosen (with or without tools) reads ``variable``."""
        return variable in self._variables_of(self._choose(tools))

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = True,
        **variables: Any,
    ) -> str:
        """The prompt text of a conversation, as ``tokenizer.apply_chat_template(...,
        tokenize=False)`` gives it; ``variables`` (``enable_thinking`` …) reach the template
        as transformers' extra keyword arguments do, over the special tokens."""
        import jinja2

        key = self._choose(tools is not None)
        template = self._compile(key)
        known = self._variables_of(key)
        for parameter, value in (("tools", tools), ("documents", documents)):
            if value is not None and parameter not in known:
                raise InvalidValueError(
                    f"The chat template of {self.name} does not take `{parameter}`; "
                    "this model cannot use them.",
                    hint=f"Leave out `{parameter}`, or use a model whose chat template "
                    f"supports {parameter}.",
                )
        for document in documents or ():
            if not isinstance(document, Mapping):
                raise InvalidValueError("Each of `documents` must be an object (title, text).")
        context = {**self.special_tokens, **variables}
        try:
            return str(
                template.render(
                    messages=[dict(m) for m in messages],
                    tools=[dict(t) for t in tools] if tools is not None else None,
                    documents=[dict(d) for d in documents] if documents is not None else None,
                    add_generation_prompt=add_generation_prompt,
                    **context,
                )
            )
        except jinja2.exceptions.TemplateError as e:
            # raise_exception(...) in a template ("roles must alternate …") and values it
            # cannot use: the conversation is what is wrong.
            raise InvalidValueError(
                f"The chat template of {self.name} refused the messages: {e}."
            ) from None
        except (TypeError, ValueError, KeyError, AttributeError) as e:
            raise InvalidValueError(
                f"The chat template of {self.name} cannot render these messages: {e}."
            ) from None

    def _choose(self, tools: bool) -> str:
        """The template transformers' ``get_chat_template`` would pick."""
        if not self.templates:
            raise InvalidValueError(
                f"{self.name} has no chat template, so it cannot take chat messages.",
                hint="Send a plain prompt (completions / generate) instead, or use a chat model.",
            )
        if list(self.templates) == ["default"]:
            return "default"
        if tools and "tool_use" in self.templates:
            return "tool_use"
        if "default" in self.templates:
            return "default"
        raise InvalidValueError(
            f"{self.name} has several chat templates and none is the default: "
            + ", ".join(sorted(self.templates))
            + "."
        )

    def _compile(self, key: str) -> Any:
        if key not in self._compiled:
            import jinja2

            try:
                self._compiled[key] = _environment().from_string(self.templates[key])
            except jinja2.exceptions.TemplateSyntaxError as e:
                raise ConfigError(
                    f"The chat template of {self.name} is not valid jinja: {e} (line {e.lineno})."
                ) from None
        return self._compiled[key]

    def _variables_of(self, key: str) -> frozenset[str]:
        """The names the template reads from its context (to tell if it uses ``tools``)."""
        if key not in self._variables:
            import jinja2
            from jinja2 import meta

            try:
                parsed = _environment().parse(self.templates[key])
            except jinja2.exceptions.TemplateSyntaxError:
                self._compile(key)  # raises the ConfigError
                raise
            self._variables[key] = frozenset(meta.find_undeclared_variables(parsed))
        return self._variables[key]
