"""Chat templates render exactly as transformers' ``apply_chat_template`` renders them."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")
pytest.importorskip("jinja2")

from modelport.errors import ConfigError, InvalidValueError
from modelport.runtime.chat import ChatTemplate
from tests import tiny_models

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city <today> & tomorrow.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "Zürich, 東京 …"}},
            "required": ["city"],
        },
    },
}

CONVERSATIONS: list[list[dict[str, Any]]] = [
    [{"role": "user", "content": "hello world"}],
    [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "who wrote this book?"},
        {"role": "assistant", "content": "ada lovelace"},
        {"role": "user", "content": "and where does she live? 😀"},
    ],
    [
        {"role": "user", "content": "weather in paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "paris"}},
                }
            ],
        },
        {"role": "tool", "content": '{"temperature": 21}'},
        {"role": "tool", "content": '{"sky": "clear"}'},
    ],
]

#: Every feature of transformers' environment: its tojson (no HTML escaping, indent,
#: sort_keys), strftime_now, raise_exception, loopcontrols, trim/lstrip blocks, the
#: {% generation %} tag, special tokens and extra variables.
FEATURES_TEMPLATE = """{{ bos_token }}{% for message in messages %}
    {% if message.role == 'stop' %}{% break %}{% endif %}
    {% if message.role == 'skip' %}{% continue %}{% endif %}
    <{{ message.role }}>
    {% if message.role == 'assistant' %}
{% generation %}{{ message.content }}{% endgeneration %}
    {% else %}
{{ message.content | tojson }}
    {% endif %}
{% endfor %}
{{ messages[0] | tojson(indent=2, sort_keys=True) }}
{% if tools %}{{ tools | tojson }}{% endif %}
{{ additional_special_tokens | join(',') }}|{{ eos_token }}|{{ pad_token }}
year={{ strftime_now('%Y') }}
{% if enable_thinking is defined and not enable_thinking %}no-think{% endif %}
{% if add_generation_prompt %}<assistant>{% endif %}"""


def _transformers(folder: Path, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return str(tokenizer.apply_chat_template(messages, tokenize=False, **kwargs))


@pytest.fixture(scope="module")
def chatml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("chatml")
    tiny_models.chat_tokenizer(folder)
    assert (folder / "chat_template.jinja").exists()  # where transformers saves it now
    return folder


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_chatml_renders_as_transformers(chatml: Path, index: int, generation_prompt: bool) -> None:
    messages = CONVERSATIONS[index]
    ours = ChatTemplate.from_folder(chatml).render(
        messages, add_generation_prompt=generation_prompt
    )
    assert ours == _transformers(chatml, messages, add_generation_prompt=generation_prompt)
    assert ours.endswith("<|im_start|>assistant\n") == generation_prompt


@pytest.mark.parametrize("index", range(len(CONVERSATIONS)))
def test_tools_render_as_transformers(chatml: Path, index: int) -> None:
    messages = CONVERSATIONS[index]
    ours = ChatTemplate.from_folder(chatml).render(messages, tools=[WEATHER_TOOL])
    assert ours == _transformers(chatml, messages, tools=[WEATHER_TOOL], add_generation_prompt=True)
    assert '"Zürich, 東京 …"' in ours  # tojson keeps non-ASCII
    assert "<today> & tomorrow" in ours  # and does not escape HTML


def test_every_environment_feature_renders_as_transformers(tmp_path: Path) -> None:
    tiny_models.chat_tokenizer(tmp_path, template=FEATURES_TEMPLATE)
    messages = [
        {"role": "user", "content": 'Zürich <b> & "quotes" 世界'},
        {"role": "skip", "content": "left out"},
        {"role": "assistant", "content": "an answer"},
        {"role": "stop", "content": ""},
        {"role": "user", "content": "after the break"},
    ]
    ours = ChatTemplate.from_folder(tmp_path).render(
        messages, tools=[WEATHER_TOOL], enable_thinking=False
    )
    theirs = _transformers(
        tmp_path,
        messages,
        tools=[WEATHER_TOOL],
        add_generation_prompt=True,
        enable_thinking=False,
    )
    assert ours == theirs
    assert f"year={datetime.date.today().year}" in ours
    assert "no-think" in ours
    assert "after the break" not in ours and "left out" not in ours
    assert "<|im_start|>,<|im_end|>|<|im_end|>|<|endoftext|>" in ours


@pytest.mark.parametrize("jinja_files", [True, False])
def test_named_templates_pick_default_or_tool_use(tmp_path: Path, jinja_files: bool) -> None:
    tokenizer: Any = tiny_models.chat_tokenizer(tmp_path, template=None)
    tokenizer.chat_template = {
        "default": "{% for m in messages %}[{{ m.content }}]{% endfor %}",
        "tool_use": "{{ tools | length }} tools{% for m in messages %}({{ m.content }}){% endfor %}",
    }
    # transformers 4.5x writes chat_template.jinja + additional_chat_templates/tool_use.jinja;
    # older ones (and save_jinja_files=False) a list of named templates in tokenizer_config.json.
    tokenizer.save_pretrained(str(tmp_path), save_jinja_files=jinja_files)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert isinstance(config.get("chat_template"), list) != jinja_files
    template = ChatTemplate.from_folder(tmp_path)
    messages = CONVERSATIONS[1]
    assert template.render(messages) == _transformers(tmp_path, messages)
    assert template.render(
        messages
    ) == "[You are a pirate.][who wrote this book?][ada lovelace]" + (
        "[and where does she live? 😀]"
    )
    with_tools = template.render(messages, tools=[WEATHER_TOOL])
    assert with_tools == _transformers(tmp_path, messages, tools=[WEATHER_TOOL])
    assert with_tools.startswith("1 tools(")


def test_a_model_without_a_template_says_so(tmp_path: Path) -> None:
    tiny_models.bpe_tokenizer(tmp_path)
    template = ChatTemplate.from_folder(tmp_path, name="tiny-gpt2")
    assert not template.available
    with pytest.raises(InvalidValueError, match="tiny-gpt2 has no chat template"):
        template.render([{"role": "user", "content": "hi"}])


def test_tools_for_a_template_without_tools_name_the_parameter(tmp_path: Path) -> None:
    tiny_models.chat_tokenizer(
        tmp_path, template="{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    )
    template = ChatTemplate.from_folder(tmp_path)
    messages = [{"role": "user", "content": "hi"}]
    assert template.render(messages) == "user: hi\n"
    assert not template.supports("tools")
    with pytest.raises(InvalidValueError, match="`tools`"):
        template.render(messages, tools=[WEATHER_TOOL])
    with pytest.raises(InvalidValueError, match="`documents`"):
        template.render(messages, documents=[{"title": "a", "text": "b"}])


def test_raise_exception_in_a_template_is_bad_input(chatml: Path) -> None:
    template = ChatTemplate.from_folder(chatml)
    assert template.supports("tools")
    with pytest.raises(InvalidValueError, match="at least one message"):
        template.render([])


def test_a_broken_template_is_a_config_error(tmp_path: Path) -> None:
    tiny_models.chat_tokenizer(tmp_path, template="{% for m in messages %}{{ m.content }")
    with pytest.raises(ConfigError, match="not valid jinja"):
        ChatTemplate.from_folder(tmp_path).render([{"role": "user", "content": "hi"}])


def test_conversion_carries_every_template_and_the_generation_config(tmp_path: Path) -> None:
    from modelport.convert.export import _ensure_tokenizer

    source, out = tmp_path / "source", tmp_path / "out"
    tokenizer: Any = tiny_models.chat_tokenizer(source)
    tokenizer.chat_template = {"default": tiny_models.CHATML_TEMPLATE, "tool_use": "{{ tools }}"}
    tokenizer.save_pretrained(str(source))
    (source / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0]}))
    out.mkdir()
    _ensure_tokenizer(source, out, "text-generation")
    assert (out / "chat_template.jinja").exists()
    assert (out / "additional_chat_templates" / "tool_use.jinja").exists()
    assert json.loads((out / "generation_config.json").read_text()) == {"eos_token_id": [2, 0]}
    converted, original = ChatTemplate.from_folder(out), ChatTemplate.from_folder(source)
    for tools in (None, [WEATHER_TOOL]):
        assert converted.render(CONVERSATIONS[1], tools=tools) == original.render(
            CONVERSATIONS[1], tools=tools
        )
