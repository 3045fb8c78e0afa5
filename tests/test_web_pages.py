"""The web UI in-process: pages and fragments rendered from the same use-cases as the JSON
API, the root's redirect for browsers, the offline docs, and signing in with the API key."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

import modelport.api as api
from modelport.server.app import create_app

pytestmark = pytest.mark.anyio

PAGE = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
STATIC = Path(api.__file__).parents[1] / "server" / "web" / "static"


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each element with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        if tag not in ("input", "meta", "link", "br", "img", "option"):
            self._open.append((tag, values.get("id")))
            if values.get("id"):
                self.text.setdefault(values["id"], "")

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, _ = self._open.pop()
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, element_id in self._open:
            if element_id:
                self.text[element_id] += data


def parse(text: str) -> _Elements:
    """The page's elements."""
    parser = _Elements()
    parser.feed(text)
    return parser


def words(text: str) -> str:
    """Text with its whitespace collapsed."""
    return " ".join(text.split())


def rows(text: str) -> list[str]:
    """The model ids of a models table, in order."""
    return [a["value"] for tag, a in parse(text).tags if tag == "input" and a.get("name") == "m"]


# -------------------------------------------------------------------- root and docs


async def test_a_browser_opening_the_root_lands_on_the_ui(client: httpx.AsyncClient) -> None:
    page = await client.get("/", headers=PAGE)
    assert page.status_code == 307
    assert page.headers["location"] == "/ui/models"
    # A JSON client keeps today's links; HEAD keeps answering Ollama's probe.
    links = await client.get("/")
    assert links.json()["links"]["docs"] == "/docs"
    assert (await client.head("/")).status_code == 200
    assert (await client.get("/ui", headers=PAGE)).headers["location"] == "/ui/models"


def _third_party() -> dict[str, dict[str, str]]:
    doc = json.loads((STATIC / "THIRD_PARTY.json").read_text())
    return {f["file"]: f for f in doc["files"]}


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        ("/docs", {"vendor/swagger-ui-bundle.js", "vendor/swagger-ui.css"}),
        ("/redoc", {"vendor/redoc.standalone.js"}),
    ],
)
async def test_the_docs_load_only_files_of_the_package(
    client: httpx.AsyncClient, path: str, assets: set[str]
) -> None:
    page = await client.get(path, headers=PAGE)
    assert page.status_code == 200
    addresses = [
        a.get("src") or a.get("href") or ""
        for tag, a in parse(page.text).tags
        if tag in ("script", "link")
    ]
    assert addresses
    assert all(a.startswith("/ui/static/") for a in addresses if a), addresses
    assert "fonts.googleapis" not in page.text
    files = {urlsplit(a).path.removeprefix("/ui/static/") for a in addresses if a}
    assert assets <= files
    known = _third_party()
    for name in assets:
        served = await client.get(f"/ui/static/{name}")
        assert served.status_code == 200
        assert hashlib.sha256(served.content).hexdigest() == known[name]["sha256"]


def test_every_vendored_file_is_recorded_with_its_version_license_and_digest() -> None:
    known = _third_party()
    vendored = {f"vendor/{p.name}" for p in (STATIC / "vendor").iterdir()}
    assert vendored == set(known)
    for name, record in known.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == record["sha256"]
        assert re.fullmatch(r"\d+\.\d+\.\d+", record["version"])
        assert record["source"].startswith("https://registry.npmjs.org/")
        assert record["license"]
        for license_file in record["license_files"]:
            assert (STATIC / license_file).stat().st_size > 0
    assert {r["package"] for r in known.values()} == {
        "htmx.org",
        "uplot",
        "swagger-ui-dist",
        "redoc",
    }


def test_the_wheel_ships_every_template_and_static_file() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).parents[1]
    patterns = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["modelport"]
    package = root / "src" / "modelport"
    web = package / "server" / "web"
    files = [
        p.relative_to(package).as_posix()
        for p in web.rglob("*")
        if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
    ]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert missing == []


# -------------------------------------------------------------------- models page


async def test_the_models_page_lists_the_catalog_in_pages(client: httpx.AsyncClient) -> None:
    total = len(api.get_catalog())
    page = await client.get("/ui/models", headers=PAGE)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert words(parse(page.text).text["count"]) == f"1–50 of {total:,} models"
    first = rows(page.text)
    assert len(first) == 50
    assert first == sorted(first, key=str.lower)
    second = await client.get("/ui/models?page=2&per_page=25", headers=PAGE)
    assert words(parse(second.text).text["count"]) == f"26–50 of {total:,} models"
    assert rows(second.text) == first[25:50]


async def test_filters_match_the_registry_api(client: httpx.AsyncClient) -> None:
    query = "source=api&provider=openai&capability=vision&min_context=100000&sort=price&desc=1"
    page = await client.get(f"/ui/models?{query}&per_page=100", headers=PAGE)
    listed = rows(page.text)
    assert listed
    registry = await client.get(f"/api/v1/registry/models?{query}&limit=100")
    assert listed == [m["id"] for m in registry.json()["data"]]
    total = registry.json()["meta"]["total"]
    assert words(parse(page.text).text["count"]).endswith(f"of {total:,} models")
    # The filters show as set in the form, so the address reproduces the view.
    tags = parse(page.text).tags
    checked = {a["value"] for t, a in tags if t == "input" and "checked" in a}
    assert "vision" in checked
    assert ("input", "100000") in {
        (t, a.get("value")) for t, a in tags if a.get("name") == "min_context"
    }


async def test_htmx_gets_only_the_results_and_the_address_to_push(
    client: httpx.AsyncClient,
) -> None:
    fragment = await client.get(
        "/ui/models?q=minilm&source=&provider=&per_page=50",
        headers={**PAGE, "HX-Request": "true", "HX-Target": "results"},
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "<html" not in fragment.text
    # Empty fields are left out of the address a user shares.
    assert fragment.headers["hx-push-url"] == "/ui/models?q=minilm"
    assert rows(fragment.text)[0] == "sentence-transformers/all-MiniLM-L6-v2"
    assert fragment.headers["vary"].startswith("HX-Request")


async def test_a_typo_gets_a_did_you_mean(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/models?q=clade+sonet", headers=PAGE)
    found = parse(page.text)
    assert "Did you mean" in found.text["did-you-mean"]
    spelling = [a["href"] for t, a in found.tags if t == "a" and a.get("class") == "spelling"]
    assert spelling == ["/ui/models?q=claude+sonnet"]
    suggested = [a["href"] for t, a in found.tags if t == "a" and a.get("class") == "suggestion"]
    assert suggested
    assert all(h.startswith("/ui/models/anthropic/claude-sonnet") for h in suggested)
    # Known words need no correction: no suggestion box.
    plain = await client.get("/ui/models?q=claude+sonnet", headers=PAGE)
    assert 'id="did-you-mean"' not in plain.text
    # As-you-type, the table comes at once and asks for the suggestions after.
    fragment = await client.get(
        "/ui/models?q=clade+sonet&provider=anthropic",
        headers={**PAGE, "HX-Request": "true", "HX-Target": "results"},
    )
    slot = [a for t, a in parse(fragment.text).tags if a.get("id") == "did-you-mean-slot"]
    assert slot[0]["hx-get"] == "/ui/suggest?q=clade+sonet&provider=anthropic"
    # It swaps only itself, and pushes no address of its own into the history.
    assert (slot[0]["hx-target"], slot[0]["hx-push-url"]) == ("this", "false")
    assert slot[0]["hx-sync"] == "closest form:abort"  # never aborts the next search
    assert rows(fragment.text)
    later = await client.get(slot[0]["hx-get"], headers={**PAGE, "HX-Request": "true"})
    links = [a["href"] for t, a in parse(later.text).tags if t == "a"]
    assert links[0] == "/ui/models?q=claude+sonnet&provider=anthropic"
    assert links[1:] == suggested


async def test_nothing_matching_says_so_and_suggests(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/models?q=qqqzzzxxx", headers=PAGE)
    assert words(parse(page.text).text["count"]) == "No model matches “qqqzzzxxx”."
    assert rows(page.text) == []


async def test_wrong_filter_values_are_said_beside_their_field(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/ui/models?min_context=lots&capability=telepathy", headers=PAGE)
    assert page.status_code == 200
    found = parse(page.text)
    assert found.text["f-min_context-error"] == "Enter a whole number of tokens."
    assert any(
        a.get("aria-invalid") == "true" for t, a in found.tags if a.get("id") == "f-min_context"
    )
    alert = [a for t, a in found.tags if a.get("role") == "alert"]
    assert alert
    assert "Unknown capability 'telepathy'." in html.unescape(page.text)


async def test_sorting_by_price_puts_unknown_prices_last(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/models?sort=price&per_page=200&source=api", headers=PAGE)
    catalog = api.get_catalog()
    prices = [
        catalog[i].pricing.blended_per_1m_tokens() if catalog[i].pricing else None
        for i in rows(page.text)
    ]
    known = [p for p in prices if p is not None]
    assert known == sorted(known)
    assert prices[: len(known)] == known
    header = [a for t, a in parse(page.text).tags if t == "th" and a.get("aria-sort")]
    assert header[0]["aria-sort"] == "ascending"


async def test_in_the_store_and_fits_here(client: httpx.AsyncClient) -> None:
    from tests.hf_server import serve_hub
    from tests.test_pull import tiny_files

    empty = await client.get("/ui/models?stored=1", headers=PAGE)
    assert rows(empty.text) == []
    with serve_hub() as hub, pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_ENDPOINT", hub.url)
        api.reset()
        hub.add_repo("sentence-transformers/all-MiniLM-L6-v2", tiny_files())
        api.pull("minilm")
    stored = await client.get("/ui/models?stored=1", headers=PAGE)
    assert rows(stored.text) == ["sentence-transformers/all-MiniLM-L6-v2"]
    assert "in the store" in stored.text
    big = await client.get("/ui/models?fits=1&gpu=80GB&provider=meta&per_page=100", headers=PAGE)
    small = await client.get("/ui/models?fits=1&gpu=1GB&provider=meta&per_page=100", headers=PAGE)
    assert "meta-llama/Llama-3.1-8B" in rows(big.text)
    assert "meta-llama/Llama-3.1-8B" not in rows(small.text)
    assert set(rows(small.text)) < set(rows(big.text))
    model = await client.get("/ui/models/sentence-transformers/all-MiniLM-L6-v2", headers=PAGE)
    assert 'id="revisions"' in model.text


# -------------------------------------------------------------------- a model


async def test_a_model_page_shows_every_fact_with_its_unit_and_source(
    client: httpx.AsyncClient,
) -> None:
    entry = api.get_catalog()["meta-llama/Llama-3.1-8B"]
    page = await client.get("/ui/models/meta-llama/Llama-3.1-8B", headers=PAGE)
    assert page.status_code == 200
    facts = words(parse(page.text).text["facts"])
    assert "Context window 131,072 tokens" in facts
    assert "Parameters 8,030,000,000 (8.0B) parameters" in facts
    assert "Max output unknown tokens" in facts  # unknown, never zero
    req = words(parse(page.text).text["requirements"])
    assert f"Minimum GPU memory {entry.requirements.min_vram_gb:g} GB" in req
    assert f"as of {entry.as_of.isoformat()}" in page.text
    assert f'href="{entry.source_url}"' in page.text
    badges = {
        a["data-capability"]: a["class"] for t, a in parse(page.text).tags if "data-capability" in a
    }
    assert len(badges) == 24
    assert badges["chat"] == "badge yes"
    assert badges["vision"] == "badge no"
    assert badges["tool_calling"] == "badge unknown"
    entry_json = html.unescape(parse(page.text).text["entry-json"])
    assert json.loads(entry_json) == entry.to_json_dict()
    assert "context_window: 131072" in html.unescape(parse(page.text).text["entry-yaml"])
    assert parse(page.text).text["entry-cli"] == "modelport show meta-llama/Llama-3.1-8B"


async def test_an_api_model_shows_prices_per_unit(client: httpx.AsyncClient) -> None:
    entry = api.get_catalog()["openai/gpt-4o"]
    page = await client.get("/ui/models/openai/gpt-4o", headers=PAGE)
    prices = words(parse(page.text).text["prices"])
    assert f"Input ${entry.pricing.input_per_1m_tokens:,.2f} USD per 1M input tokens" in prices
    assert f"Output ${entry.pricing.output_per_1m_tokens:,.2f} USD per 1M output tokens" in prices
    assert "Blended (3:1)" in prices
    if entry.pricing.as_of:
        assert f"as of {entry.pricing.as_of.isoformat()}" in page.text


async def test_a_name_leads_to_the_id_and_an_unknown_one_to_suggestions(
    client: httpx.AsyncClient,
) -> None:
    alias = await client.get("/ui/models/minilm", headers=PAGE)
    assert alias.status_code == 307
    assert alias.headers["location"] == "/ui/models/sentence-transformers/all-MiniLM-L6-v2"
    missing = await client.get("/ui/models/openai/gpt-4o-mnii", headers=PAGE)
    assert missing.status_code == 404
    assert "text/html" in missing.headers["content-type"]
    assert 'href="/ui/models/openai/gpt-4o-mini"' in missing.text


def _form(model: str, gpu: str, **changed: str) -> dict[str, str]:
    form = {
        "model": model,
        "gpu_memory": gpu,
        "max_model_len": "8192",
        "dtype": "bfloat16",
        "gpu_memory_utilization": "0.9",
        "quantization": "",
        "tensor_parallel_size": "1",
        "temperature": "",
        "top_p": "",
        "max_tokens": "",
    }
    form.update(changed)
    return form


HX_INFERENCE = {"HX-Request": "true", "HX-Target": "verdict-inference"}


async def test_validating_the_inference_defaults(client: httpx.AsyncClient) -> None:
    model = "meta-llama/Llama-3.1-8B"
    fits = await client.post(
        "/ui/validate/inference", data=_form(model, "80GB"), headers=HX_INFERENCE
    )
    found = parse(fits.text)
    assert found.text["fit-inference"].strip() == "✓ fits"
    # The same verdict the JSON API gives for the same question.
    same = await client.post(
        "/api/v1/registry/validate/inference", json={"model": model, "gpu_memory": "80GB"}
    )
    total = same.json()["data"]["estimate"]["total_gb"]
    assert f"<strong>{total:g}</strong>" in fits.text
    assert found.text["defaults-cli-inference"] == (
        f"modelport validate {model} --for inference --gpu-memory 80GB"
    )
    tiny = await client.post(
        "/ui/validate/inference",
        data=_form(model, "1GB", max_model_len="4096"),
        headers=HX_INFERENCE,
    )
    found = parse(tiny.text)
    assert found.text["fit-inference"].strip() == "✗ does not fit"
    assert "What would make it fit" in tiny.text
    assert found.text["defaults-cli-inference"] == (
        f"modelport validate {model} --for inference --gpu-memory 1GB --set max_model_len=4096"
    )
    assert json.loads(html.unescape(found.text["defaults-json-inference"]))["max_model_len"] == 4096


async def test_validating_the_training_defaults_and_a_wrong_value(
    client: httpx.AsyncClient,
) -> None:
    model = "meta-llama/Llama-3.1-8B"
    page = await client.get(f"/ui/models/{model}", headers=PAGE)
    tags = parse(page.text).tags
    form = {
        a["name"]: a.get("value", "")
        for t, a in tags
        if t == "input" and a.get("id", "").startswith("training-") and a.get("type") != "checkbox"
    }
    form.update(
        {
            a["name"]: "on"
            for t, a in tags
            if a.get("id", "").startswith("training-") and "checked" in a
        }
    )
    form.update({"method": "qlora", "optimizer": "adamw_8bit", "lr_scheduler": "linear"})
    form.update({"selective_loss": "responses_only", "model": model, "gpu_memory": "24GB"})
    headers = {"HX-Request": "true", "HX-Target": "verdict-training"}
    done = await client.post("/ui/validate/training", data=form, headers=headers)
    found = parse(done.text)
    assert found.text["fit-training"].strip() in ("✓ fits", "! tight")
    assert found.text["defaults-cli-training"] == (
        f"modelport validate {model} --for training --gpu-memory 24GB --method qlora"
    )
    wrong = await client.post(
        "/ui/validate/training", data={**form, "learning_rate": "fast"}, headers=headers
    )
    assert "Learning rate: Enter a number, like 0.0002 or 2e-4." in wrong.text
    # Without JavaScript the form posts to the same address and gets the whole page back.
    whole = await client.post("/ui/validate/training", data=form, headers=PAGE)
    assert whole.text.lstrip().startswith("<!doctype html>")
    assert 'id="fit-training"' in whole.text


# -------------------------------------------------------------------- compare


async def test_compare_marks_the_facts_that_differ(client: httpx.AsyncClient) -> None:
    page = await client.get(
        "/ui/compare?m=openai/gpt-4o&m=anthropic/claude-sonnet-4-5", headers=PAGE
    )
    assert page.status_code == 200
    table = page.text[page.text.index('id="comparison"') :]
    provider = re.search(
        r"<tr([^>]*)>\s*<th scope=\"row\">(.*?)</th>", table[table.index("Provider") - 200 :], re.S
    )
    assert provider and 'class="differs"' in provider.group(1)
    source = re.search(r'<tr>\s*<th scope="row">Source</th>', table)
    assert source  # both are API models: not marked
    only = await client.get(
        "/ui/compare?m=openai/gpt-4o&m=anthropic/claude-sonnet-4-5&diff=1", headers=PAGE
    )
    assert '<th scope="row">Source</th>' not in only.text
    one = await client.get("/ui/compare?m=openai/gpt-4o", headers=PAGE)
    assert "Compare takes 2 to 4 models, got 1." in one.text


# -------------------------------------------------------------------- signing in

KEY = "s3cret-key-for-the-ui-0123"


@pytest.fixture
async def locked() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(api_key=KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def test_a_server_with_a_key_asks_a_browser_for_it_once(locked: httpx.AsyncClient) -> None:
    page = await locked.get("/ui/models?q=llama", headers=PAGE)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/login?next=%2Fui%2Fmodels%3Fq%3Dllama"
    # An API client is refused as before, in JSON.
    refused = await locked.get("/api/v1/registry/models")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    # The form and the static files need no key.
    form = await locked.get("/ui/login?next=/ui/models", headers=PAGE)
    assert form.status_code == 200
    assert (await locked.get("/ui/static/app.css")).status_code == 200
    wrong = await locked.post("/ui/login", data={"key": "guess", "next": "/ui/models"})
    assert wrong.status_code == 401
    assert "That is not this server's API key." in html.unescape(wrong.text)
    assert "guess" not in wrong.text
    right = await locked.post("/ui/login", data={"key": KEY, "next": "/ui/models?q=llama"})
    assert right.status_code == 303
    assert right.headers["location"] == "/ui/models?q=llama"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith("modelport_session=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert KEY not in cookie
    # Signed in: every page, and the API the docs call, answer; the key is in none of them.
    for path in ("/ui/models", "/ui/models/openai/gpt-4o", "/ui/compare", "/docs"):
        shown = await locked.get(path, headers=PAGE)
        assert shown.status_code == 200, path
        assert KEY not in shown.text
    assert (await locked.get("/api/v1/registry/models")).status_code == 200
    out = await locked.post("/ui/logout")
    assert out.headers["location"] == "/ui/login"
    assert (await locked.get("/ui/models", headers=PAGE)).status_code == 303


async def test_a_forged_or_foreign_session_is_no_session(locked: httpx.AsyncClient) -> None:
    from modelport.server.security import Sessions

    locked.cookies.set("modelport_session", Sessions("another-key").issue())
    page = await locked.get("/ui/models", headers=PAGE)
    assert page.status_code == 303
    htmx = await locked.get(
        "/ui/models?q=x",
        headers={"HX-Request": "true", "HX-Current-URL": "http://test/ui/models?q=x"},
    )
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == "/ui/login?next=%2Fui%2Fmodels%3Fq%3Dx"


async def test_signing_in_never_leads_to_another_site(locked: httpx.AsyncClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        done = await locked.post("/ui/login", data={"key": KEY, "next": target})
        assert done.headers["location"] == "/ui/models", target


def test_sessions_expire_and_hide_their_key() -> None:
    from modelport.server.security import Sessions

    sessions = Sessions(KEY)
    token = sessions.issue(now=1000.0)
    assert sessions.valid(token, now=1000.0 + 60)
    assert not sessions.valid(token, now=1000.0 + Sessions.LIFETIME_S + 1)
    body, _, signature = token.rpartition(".")
    assert not sessions.valid(f"{body}.{signature[:-2]}xx", now=1000.0)
    assert not sessions.valid("v1.99999999999.nonce", now=1000.0)
    assert KEY not in repr(sessions)
    assert KEY not in token


async def test_a_server_without_a_key_has_no_sign_in(client: httpx.AsyncClient) -> None:
    done = await client.get("/ui/login?next=/ui/compare", headers=PAGE)
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/compare"
    page = await client.get("/ui/models", headers=PAGE)
    assert "Sign out" not in page.text


# -------------------------------------------------------------------- the use-case


def test_listing_ranks_or_sorts_search_hits_and_spells() -> None:
    ranked = api.list_catalog(text="claude sonnet", limit=50)
    by_price = api.list_catalog(text="claude sonnet", sort="price", rank=False, limit=50)
    assert {e.id for e in ranked.models} == {e.id for e in by_price.models}
    prices = [e.pricing.blended_per_1m_tokens() for e in by_price.models if e.pricing]
    assert prices == sorted(prices)
    assert ranked.spelling is None and ranked.suggestions == ()
    typo = api.list_catalog(text="clade sonet")
    assert typo.spelling == "claude sonnet"
    assert typo.suggestions == ()  # a name lookup only when asked for
    typo = api.list_catalog(text="clade sonet", suggest=True)
    assert typo.suggestions and all("claude-sonnet" in s for s in typo.suggestions)
    assert api.list_catalog(text="qqqzzzxxx", suggest=True).suggestions == ()


def test_listing_refuses_an_unknown_sort_even_when_ranking() -> None:
    from modelport.errors import InvalidValueError

    with pytest.raises(InvalidValueError, match="Cannot sort by 'size'"):
        api.list_catalog(text="llama", sort="size")
