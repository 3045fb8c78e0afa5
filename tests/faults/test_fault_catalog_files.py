"""Any catalog file is either refused in one sentence (CatalogError) or loads into entries
that every catalog operation can use: ranking, selection, memory and cost estimates,
validation, and JSON output.

Documents are real bundled entries with random parts replaced by any JSON value (deep
nesting, numbers of thousands of digits, 1e400, NaN, strings, lists, objects), wrapped as
a list or an object. (Fixed cases: tests/test_bad_input.py.)
``MODELPORT_FAULT_EXAMPLES`` sets how many documents hypothesis tries (default 200; the
CLI half tries a quarter of them).
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelport.catalog.catalog import SORT_KEYS, Catalog, CatalogQuery
from modelport.catalog.estimates import (
    estimate_cost,
    estimate_inference_memory,
    estimate_training_memory,
)
from modelport.catalog.loader import dump_catalog, load_bundled_entries, parse_catalog
from modelport.catalog.selection import select_models
from modelport.errors import CatalogError, InvalidValueError
from modelport.hardware import GPU, SystemInfo
from modelport.validation import validate_model
from tests.test_cli import run

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("MODELPORT_FAULT_EXAMPLES", "200"))
MACHINE = SystemInfo(
    os="Linux",
    python="3.11",
    cpu="x86_64",
    cpu_count=8,
    ram_gb=64.0,
    gpus=(GPU(name="NVIDIA H100", vendor="nvidia", memory_gb=80.0, compute_capability="9.0"),),
)


def _seeds() -> list[dict[str, Any]]:
    """Real entries that use most fields: self-hosted with an architecture and training
    defaults, hosted with prices and latencies, a mixture of experts, a deprecated one."""
    entries = load_bundled_entries()
    picks = [
        max(entries, key=lambda e: len(json.dumps(e.to_json_dict()))),
        next(e for e in entries if e.pricing and e.is_api),
        next(e for e in entries if e.moe),
        next(e for e in entries if e.deprecation),
    ]
    seeds = [e.to_json_dict() for e in picks]
    seeds[1]["latency"] = {  # no bundled entry has one yet
        "time_to_first_token_ms": 300,
        "inter_token_latency_ms_mean": 20,
        "inter_token_latency_ms_std": 5,
        "reasoning_multiplier": 3,
    }
    return seeds


SEEDS = _seeds()

# Placeholders, written as text after json.dumps: what Python's json cannot write itself.
_BIG = st.integers(4000, 6000).map(lambda n: f"@@BIG{n}@@")
_HUGE_FLOAT = st.sampled_from(["@@FLOAT1e400@@", "@@FLOAT-1e400@@", "@@FLOAT1e-400@@"])
_DEEP = st.integers(1, 3000).map(lambda n: f"@@DEEP{n}@@")
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**80), 2**80)
    | st.sampled_from([0, -1, 10**15, 10**16, 10**30, 2**63, -(2**63)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | _BIG
    | _HUGE_FLOAT
    | _DEEP
)
# Numbers where an entry has one: edges of every range, and far past them.
_NUMBERS = (
    st.integers(0, 10**6)
    | st.floats(0, 1e6)
    | st.integers(-(2**70), 2**70)
    | st.sampled_from([0, 1, -1, 10**9, 10**12, 10**15, 10**15 + 1, 2**53 + 1, 10**30])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1e-300, 5e-324, 1e6, 1e300, 1.7976931348623157e308])
    | (_BIG | _HUGE_FLOAT)
)
_TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "a\nb", "../x", "text-generation"])
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _slots(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _slots(item, (*path, index))
    return found


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return doc


@st.composite
def catalog_texts(draw: st.DrawFn) -> str:
    """A catalog document: real entries with random parts replaced, as JSON text."""
    entries = [
        copy.deepcopy(e) for e in draw(st.lists(st.sampled_from(SEEDS), min_size=1, max_size=2))
    ]
    for index, entry in enumerate(entries):
        entry["id"] = f"{entry['id']}-{index}"
    doc: Any = entries
    if draw(st.booleans()):
        doc = {"schema_version": 1, "entries": entries}
        if draw(st.booleans()):
            doc[draw(st.text(max_size=8))] = draw(_VALUES)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc)
        kind = draw(
            st.sampled_from(["any", "drop", "text", "number", "number", "number", "number"])
        )
        if kind == "any":  # the whole document only now and then
            path = draw(st.sampled_from((draw(st.integers(0, 9)) and slots[1:]) or slots))
            doc = _put(doc, path, draw(_VALUES))
            continue
        if kind == "drop":
            keyed = [s for s in slots if s and isinstance(s[-1], str)]
            if keyed:
                path = draw(st.sampled_from(keyed))
                del _get(doc, path[:-1])[path[-1]]
            continue
        wanted = (int, float) if kind == "number" else str
        typed = [
            s
            for s in slots
            if isinstance(_get(doc, s), wanted) and not isinstance(_get(doc, s), bool)
        ]
        if typed:
            doc = _put(
                doc, draw(st.sampled_from(typed)), draw(_NUMBERS if kind == "number" else _TEXT)
            )
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    while "@@" in text:
        start = text.index('"@@')
        end = text.index('@@"', start + 3) + 3
        token = text[start + 3 : end - 3]
        if token.startswith("BIG"):
            value = "9" * int(token[3:])
        elif token.startswith("FLOAT"):
            value = token[5:]
        else:
            depth = int(token[4:])
            value = "[" * depth + "]" * depth
        text = text[:start] + value + text[end:]
    if draw(st.integers(0, 9)) == 0:  # now and then, a document cut short
        text = text[: draw(st.integers(1, max(len(text) - 1, 1)))]
    return text


def _use(entries: tuple[Any, ...]) -> None:
    """Everything the catalog does with entries, none of which may fail unexpectedly."""
    for entry in entries:
        data = entry.to_json_dict()
        assert entry.model_validate(json.loads(json.dumps(data, allow_nan=False))) == entry
        for purpose in ("inference", "training"):
            validate_model(entry, MACHINE, purpose=purpose)
        try:
            memory = estimate_inference_memory(entry)
            assert math.isfinite(memory.weights_gb + memory.kv_cache_gb + memory.overhead_gb)
            estimate_training_memory(entry)
        except InvalidValueError:  # no parameter count: said in one sentence
            pass
        cost = estimate_cost(entry, input_tokens=10**9, output_tokens=10**9)
        assert cost is None or math.isfinite(cost.total_usd)
    catalog = Catalog(list(entries))
    for key in SORT_KEYS:
        catalog.query(CatalogQuery(sort=key, descending=True))
    for task in {t for e in entries for t in e.tasks}:
        select_models(catalog, task, fits_this_machine=True, system=MACHINE)
    reparsed = parse_catalog(dump_catalog(entries), source="again")
    assert reparsed.entries == entries


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"entries": [], "a\\nb": 1}', '$["a\\nb"]'),
        (
            '[{"id": "acme/x", "name": "x", "provider": "acme", "source": "api", '
            '"category": "text-llm", "tasks": [], "pricing": {"per\\nunit": 1}}]',
            '$[0].pricing["per\\nunit"]',
        ),
    ],
    ids=["top-level", "entry"],
)
def test_a_key_holding_a_newline_is_quoted_in_the_one_line_error(text: str, path: str) -> None:
    with pytest.raises(CatalogError) as refused:
        parse_catalog(text, source="keys.json")
    assert "\n" not in refused.value.one_line()
    assert f"keys.json is not a valid catalog: {path}: " in refused.value.message


def test_any_catalog_text_loads_usable_entries_or_is_one_sentence() -> None:
    loaded = refused = 0

    @settings(max_examples=EXAMPLES, database=None)
    @given(catalog_texts())
    def check(text: str) -> None:
        nonlocal loaded, refused
        try:
            parsed = parse_catalog(text, source="fuzz.json")
        except CatalogError as e:
            refused += 1
            assert "\n" not in e.one_line(), e.one_line()
            return
        loaded += 1
        _use(parsed.entries)

    check()
    assert refused > 0  # the documents reach both outcomes
    assert loaded + refused >= EXAMPLES // 2


def test_any_catalog_file_is_validated_by_the_cli_in_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fuzz.json"

    @settings(max_examples=max(EXAMPLES // 4, 5), database=None)
    @given(catalog_texts())
    def check(text: str) -> None:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, _, err = run(capsys, "catalog", "validate", str(path))
        assert code in (0, 1), err
        assert "Traceback" not in err and "Unexpected" not in err, err
        if code:
            assert err.strip().count("\n") == 0, err

    check()
