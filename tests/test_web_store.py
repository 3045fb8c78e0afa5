"""The web UI's store, keys, usage, system and playground pages in-process: each renders what
its use-case returns, every change needs the page's token, a pull streams its progress and
can be cancelled without leaving anything behind, and a removal shows its plan first."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelport.api as api
from modelport.errors import PullCancelledError
from modelport.server.app import create_app
from tests.hf_server import HubServer, serve_hub
from tests.test_web_pages import PAGE, _Elements, words

pytestmark = pytest.mark.anyio

KEY = "server-key-for-the-ui-0123456789"
OPENAI_KEY = "sk-test-abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        api.reset()
        yield server
        server.knobs.bytes_per_second = None


@pytest.fixture
def app() -> Any:
    return create_app()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def weights(seed: int, size: int) -> bytes:
    rnd = hashlib.sha256(str(seed).encode()).digest()
    return (rnd * (size // len(rnd) + 1))[:size]


def add_model(hub: HubServer, repo: str, *, seed: int = 0, size: int = 200_000, **meta: Any) -> int:
    """A small model on the hub; returns the bytes of its files."""
    files = {
        "config.json": json.dumps({"model_type": "bert", "seed": seed}).encode(),
        "model.safetensors": weights(seed, size),
        "README.md": b"# tiny\n",
    }
    hub.add_repo(repo, files, **meta)
    return sum(len(b) for b in files.values())


class _Spaced(_Elements):
    """The page's elements, with a space where each element starts (cells stay apart)."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        super().handle_starttag(tag, attrs)
        self.handle_data(" ")


def parse(text: str) -> _Elements:
    """The page's elements."""
    parser = _Spaced()
    parser.feed(text)
    return parser


async def token(client: httpx.AsyncClient, path: str = "/ui/store") -> str:
    """The page's token (the client keeps the cookie that goes with it)."""
    shown = await client.get(path, headers=PAGE)
    assert shown.status_code == 200, shown.text[:500]
    metas = [
        a for tag, a in parse(shown.text).tags if tag == "meta" and a.get("name") == "csrf-token"
    ]
    return metas[0]["content"]


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of a stream's body: (event name, data)."""
    found = []
    for block in text.split("\n\n"):
        name, data = "message", None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            found.append((name, data))
    return found


def store_files(kind: str) -> list[Path]:
    root = api.get_store().layout.root / kind
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -------------------------------------------------------------------- store page


async def test_the_store_page_shows_models_artifacts_disk_use_and_hit_rates(
    hub: HubServer, client: httpx.AsyncClient
) -> None:
    size = add_model(hub, "org/tiny", pipeline_tag="feature-extraction")
    pulled = api.pull("hf:org/tiny")
    api.pull("hf:org/tiny")  # a second pull is served from the store: a hit
    # A converted artifact, as the converter leaves it: its spec names the source's content.
    from modelport.store.layout import tree_digest

    model = api.stored_model("hf:org/tiny")
    digest = tree_digest((f.path, f.sha256) for f in api.stored_files(model))
    converted = api.get_store().layout.root / "converted" / "abc123"
    converted.mkdir(parents=True)
    (converted / "modelport.yml").write_text(f"source:\n  digest: {digest}\n")
    (converted / "model.onnx").write_bytes(b"\0" * 5000)
    page = await client.get("/ui/store", headers=PAGE)
    assert page.status_code == 200
    found = parse(page.text)
    table = words(found.text["stored-models"])
    assert "hf:org/tiny" in table
    assert pulled.revision[:12] in table
    assert f"{size / 1000:.1f} KB" in table
    assert "feature-extraction" in table
    assert "1 · 5.1 KB (converted)" in table
    stats = api.store_stats()
    shown = words(found.text["store-stats"])
    assert f"Converted to ONNX {stats.converted_size / 1000:.1f} KB in 1 artifact" in shown
    assert words(found.text["pull-hits"]) == "1 of 2 (50%)"
    remove = [
        a["href"]
        for tag, a in found.tags
        if tag == "a" and a.get("href", "").startswith("/ui/store/remove")
    ]
    assert remove == [f"/ui/store/remove?ref=hf%3Aorg/tiny%40{pulled.revision}#plan"]


async def test_an_empty_store_says_how_to_fill_it(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/store", headers=PAGE)
    assert "The store is empty" in parse(page.text).text["store-empty"]


async def test_removing_shows_the_plan_and_deletes_only_once_confirmed(
    hub: HubServer, client: httpx.AsyncClient
) -> None:
    add_model(hub, "org/one", seed=1)
    add_model(hub, "org/two", seed=2)
    api.pull("hf:org/one")
    api.pull("hf:org/two")
    expected = api.plan_remove("hf:org/one")
    plan = await client.get("/ui/store/remove", params={"ref": "hf:org/one"}, headers=PAGE)
    assert plan.status_code == 200
    found = parse(plan.text)
    assert words(found.text["plan-freed"]) == (
        f"This would free {expected.freed_bytes / 1000:.1f} KB. Nothing has been deleted yet."
    )
    assert (
        "hf:org/one" in found.text["plan-models"] and "hf:org/two" not in found.text["plan-models"]
    )
    assert [m.name for m in api.list_models()] == ["org/two", "org/one"]  # nothing deleted
    form = {
        a["name"]: a.get("value", "")
        for tag, a in found.tags
        if tag == "input" and a.get("type") == "hidden"
    }
    assert set(form) >= {"csrf", "plan", "ref"}
    # A plan that is not the plan now (the store changed since it was shown) is not carried out.
    stale = await client.post("/ui/store/remove", data={**form, "plan": "0" * 32})
    assert stale.status_code == 409
    assert "The store changed" in parse(stale.text).text["plan-changed"]
    assert {m.name for m in api.list_models()} == {"org/one", "org/two"}
    # Without the page's token, nothing happens either.
    forged = await client.post("/ui/store/remove", data={**form, "csrf": "x" * 43})
    assert forged.status_code == 403
    done = await client.post("/ui/store/remove", data=form)
    assert done.status_code == 303
    assert done.headers["location"] == f"/ui/store?removed=1&freed={expected.freed_bytes}#done"
    assert [m.name for m in api.list_models()] == ["org/two"]
    after = await client.get(done.headers["location"], headers=PAGE)
    assert words(parse(after.text).text["done"]) == (
        f"Removed 1 model revision; freed {expected.freed_bytes / 1000:.1f} KB."
    )


async def test_pruning_shows_its_plan_first(hub: HubServer, client: httpx.AsyncClient) -> None:
    add_model(hub, "org/old", seed=3)
    api.pull("hf:org/old")
    plan = await client.get("/ui/store/prune", params={"max_size": "1KB"}, headers=PAGE)
    found = parse(plan.text)
    assert "least recently used" in found.text["plan-models"]
    assert api.list_models()
    form = {
        a["name"]: a.get("value", "")
        for tag, a in found.tags
        if tag == "input" and a.get("type") == "hidden"
    }
    done = await client.post("/ui/store/prune", data=form)
    assert done.status_code == 303 and "pruned=1" in done.headers["location"]
    assert api.list_models() == []
    nothing = await client.get("/ui/store/prune", headers=PAGE)
    assert nothing.status_code == 400
    assert "Nothing to prune by." in parse(nothing.text).text["plan-error"]


async def test_a_pull_streams_its_progress_to_done(
    hub: HubServer, app: Any, client: httpx.AsyncClient
) -> None:
    size = add_model(hub, "org/streamed", size=300_000)
    csrf = await token(client)
    started = await client.post("/ui/store/pulls", data={"csrf": csrf, "ref": "hf:org/streamed"})
    assert started.status_code == 303
    job_id = re.fullmatch(r"/ui/store\?pull=([\w-]+)#pull-status", started.headers["location"])
    assert job_id is not None
    stream = await client.get(f"/ui/store/pulls/{job_id[1]}/events")
    assert stream.headers["content-type"].startswith("text/event-stream")
    got = events(stream.text)
    assert got[-1][0] == "done"
    result = got[-1][1]["result"]
    assert result["ref"] == "hf:org/streamed" and result["size"] == size
    assert result["downloaded"] == size and result["from_store"] is False
    progress = [d for name, d in got if name == "progress"]
    assert progress[-1]["completed"] == progress[-1]["total"] == size
    assert progress[-1]["state"] == "done"
    assert [m.name for m in api.list_models()] == ["org/streamed"]
    # htmx gets the fragment that follows the stream.
    again = await client.post(
        "/ui/store/pulls",
        data={"csrf": csrf, "ref": "hf:org/streamed"},
        headers={"HX-Request": "true", "HX-Target": "pull-status"},
    )
    fragment = parse(again.text)
    job = next(a for tag, a in fragment.tags if a.get("id") == "pull-job")
    assert re.fullmatch(r"/ui/store/pulls/[\w-]+/events", job["data-pull-events"])
    assert "<html" not in again.text


async def test_a_pull_of_a_bad_name_is_one_sentence(
    hub: HubServer, client: httpx.AsyncClient
) -> None:
    csrf = await token(client)
    bad = await client.post(
        "/ui/store/pulls",
        data={"csrf": csrf, "ref": "openai:gpt-4o"},
        headers={"HX-Request": "true", "HX-Target": "pull-status"},
    )
    assert bad.status_code == 200  # htmx swaps only a 2xx answer
    assert "is a hosted API model: there is nothing to pull" in html.unescape(
        parse(bad.text).text["pull-error"]
    )


async def test_a_cancelled_pull_leaves_nothing_behind(
    hub: HubServer, app: Any, client: httpx.AsyncClient
) -> None:
    size = add_model(hub, "org/slow", size=2_000_000, seed=7)
    hub.knobs.bytes_per_second = 400_000  # five seconds for the weights
    csrf = await token(client)
    started = await client.post("/ui/store/pulls", data={"csrf": csrf, "ref": "hf:org/slow"})
    job_id = started.headers["location"].split("pull=")[1].split("#")[0]
    job = app.state.ui_pulls.get(job_id)
    deadline = time.monotonic() + 20
    while job.progress()["completed"] < 100_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.state == "running" and job.progress()["completed"] >= 100_000
    assert store_files("partial"), "the download is under way"
    refused = await client.post(f"/ui/store/pulls/{job_id}/cancel")
    assert refused.status_code == 403 and not job.cancel.is_set()
    cancelled = await client.post(
        f"/ui/store/pulls/{job_id}/cancel",
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert cancelled.status_code == 202
    got = events((await client.get(f"/ui/store/pulls/{job_id}/events")).text)
    assert got[-1] == (
        "cancelled",
        {
            "message": "The pull of hf:org/slow was cancelled; nothing of it was kept.",
            "result": None,
        },
    )
    assert hub.bytes_sent["model.safetensors"] < size
    assert api.list_models() == []
    assert store_files("partial") == []
    assert store_files("blobs") == []  # the small files it had finished went too
    assert store_files("manifests") == []


def test_the_pull_use_case_cancels_and_cleans_up(hub: HubServer) -> None:
    import threading

    add_model(hub, "org/cancel-me", size=1_500_000, seed=9)
    add_model(hub, "org/kept", seed=10)
    api.pull("hf:org/kept")
    kept = store_files("blobs")
    hub.knobs.bytes_per_second = 300_000
    cancel = threading.Event()
    seen: list[str] = []

    def progress(event: Any) -> None:
        seen.append(event.status)
        if (event.completed or 0) > 50_000:
            cancel.set()

    with pytest.raises(PullCancelledError, match="The pull of hf:org/cancel-me was cancelled"):
        api.pull("hf:org/cancel-me", progress=progress, cancel=cancel)
    assert "downloading" in seen and "success" not in seen
    assert [m.name for m in api.list_models()] == ["org/kept"]
    assert store_files("blobs") == kept  # another model's blobs stay
    assert store_files("partial") == []
    # Pulled again, it is fetched whole and verified.
    hub.knobs.bytes_per_second = None
    assert api.pull("hf:org/cancel-me").size > 1_500_000


def test_a_cancelled_pull_of_a_shared_store_leaves_the_bucket_as_it_was(
    hub: HubServer, bucket: str, s3: Any
) -> None:
    import threading

    api.reset()  # the store is the bucket's now
    add_model(hub, "org/shared-kept", seed=11)
    add_model(hub, "org/shared-slow", size=1_500_000, seed=12)
    api.pull("hf:org/shared-kept")
    before = s3.objects(bucket)
    hub.knobs.bytes_per_second = 300_000
    cancel = threading.Event()

    def progress(event: Any) -> None:
        if (event.completed or 0) > 50_000:
            cancel.set()

    with pytest.raises(PullCancelledError):
        api.pull("hf:org/shared-slow", progress=progress, cancel=cancel)
    assert s3.objects(bucket) == before  # nothing published, nothing of the other model gone
    assert [m.name for m in api.list_models()] == ["org/shared-kept"]
    assert store_files("partial") == []


# -------------------------------------------------------------------- forged forms


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}, {"Origin": "null"}],
)
async def test_a_form_from_another_site_changes_nothing(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    csrf = await token(client, "/ui/keys")
    # Even with the token (which another site cannot read), a cross-site post is refused.
    forged = await client.post(
        "/ui/keys",
        data={"csrf": csrf, "action": "set", "provider": "openai", "key": OPENAI_KEY},
        headers=headers,
    )
    assert forged.status_code == 403
    assert api.list_keys() == []
    assert OPENAI_KEY not in forged.text


async def test_the_token_lives_in_a_strict_cookie(client: httpx.AsyncClient) -> None:
    page = await client.get("/ui/keys", headers=PAGE)
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("modelport_csrf=")
    assert "samesite=strict" in cookie.lower() and "httponly" in cookie.lower()
    # The same browser keeps its token from page to page.
    again = await client.get("/ui/store", headers=PAGE)
    assert "set-cookie" not in again.headers
    no_token = await client.post(
        "/ui/keys", data={"action": "set", "provider": "openai", "key": OPENAI_KEY}
    )
    assert no_token.status_code == 403 and api.list_keys() == []


# -------------------------------------------------------------------- keys


async def test_keys_are_set_rotated_and_removed_and_never_shown(client: httpx.AsyncClient) -> None:
    csrf = await token(client, "/ui/keys")
    done = await client.post(
        "/ui/keys",
        data={
            "csrf": csrf,
            "action": "set",
            "provider": "openai",
            "key": OPENAI_KEY,
            "expires": "90d",
        },
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/ui/keys?done=set&provider=openai"
    stored = api.list_keys()
    assert [k.provider for k in stored] == ["openai"]
    page = await client.get(done.headers["location"], headers=PAGE)
    assert OPENAI_KEY not in page.text and OPENAI_KEY[3:20] not in page.text
    found = parse(page.text)
    assert words(found.text["keys-message"]) == f"Stored the openai key {stored[0].masked}."
    row = words(found.text["key-openai"])
    assert stored[0].masked in row and "the key store" in row
    assert (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).strftime("%Y-%m-%d") in row
    new_key = OPENAI_KEY[:-4] + "wxyz"
    rotated = await client.post(
        "/ui/keys",
        data={
            "csrf": csrf,
            "action": "rotate",
            "provider": "openai",
            "key": new_key,
            "grace": "1h",
        },
    )
    assert rotated.status_code == 303
    info = api.list_keys()[0]
    assert info.masked != stored[0].masked and info.previous_until is not None
    page = await client.get(rotated.headers["location"], headers=PAGE)
    assert new_key not in page.text and OPENAI_KEY not in page.text
    assert "The old key stays usable until" in parse(page.text).text["keys-message"]
    removed = await client.post(
        "/ui/keys", data={"csrf": csrf, "action": "remove", "provider": "openai"}
    )
    assert removed.status_code == 303 and api.list_keys() == []


async def test_a_key_form_that_fails_does_not_show_the_key(client: httpx.AsyncClient) -> None:
    csrf = await token(client, "/ui/keys")
    bad = await client.post(
        "/ui/keys",
        data={
            "csrf": csrf,
            "action": "set",
            "provider": "openai",
            "key": OPENAI_KEY,
            "expires": "soon",
        },
    )
    assert bad.status_code == 400
    assert OPENAI_KEY not in bad.text
    assert "--expires" in html.unescape(parse(bad.text).text["keys-error"])
    assert api.list_keys() == []
    unknown = await client.post(
        "/ui/keys", data={"csrf": csrf, "action": "set", "provider": "opneai", "key": OPENAI_KEY}
    )
    assert unknown.status_code == 400 and OPENAI_KEY not in unknown.text


async def test_a_key_from_the_environment_is_said_not_shown(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret-value-123456")
    page = await client.get("/ui/keys", headers=PAGE)
    assert "$ANTHROPIC_API_KEY" in words(parse(page.text).text["key-anthropic"])
    assert "sk-ant-secret-value-123456" not in page.text


# -------------------------------------------------------------------- usage


def _call(model: str, provider: str, started: dt.datetime, **fields: Any) -> Any:
    values: dict[str, Any] = {"input_tokens": 100, "output_tokens": 20, "cost_usd": 0.01}
    values.update(fields)
    return api.CallRecord(
        started_at=started,
        model=model,
        provider=provider,
        access="api",
        origin="python",
        operation="chat",
        latency_ms=values.pop("latency_ms", 200.0),
        **values,
    )


def test_the_timeline_adds_up_calls_per_step_and_group() -> None:
    from modelport.api.usage_timeline import usage_timeline

    now = dt.datetime.now(dt.UTC)
    for record in (
        _call("openai/gpt-4o", "openai", now - dt.timedelta(hours=5), latency_ms=100.0),
        _call("openai/gpt-4o", "openai", now - dt.timedelta(hours=5), latency_ms=300.0),
        _call("anthropic/claude", "anthropic", now - dt.timedelta(hours=1), cost_usd=None),
        _call("openai/gpt-4o", "openai", now - dt.timedelta(days=3)),  # outside the window
    ):
        api.record_call(record)
    timeline = usage_timeline(since="24h", by="model")
    assert timeline.step_s == 3600 and len(timeline.times) in (24, 25)
    series = {s.key: s for s in timeline.series}
    assert list(series) == ["openai/gpt-4o", "anthropic/claude"]
    gpt = series["openai/gpt-4o"]
    assert sum(gpt.calls) == 2 and sum(gpt.tokens) == 240
    step = gpt.calls.index(2)
    assert gpt.latency_ms[step] == 200.0 and gpt.cost_usd[step] == 0.02
    assert (
        timeline.times[step]
        <= now - dt.timedelta(hours=5)
        < timeline.times[step] + dt.timedelta(hours=1)
    )
    assert sum(series["anthropic/claude"].cost_usd) == 0.0  # unknown is not free, nor counted
    years = usage_timeline(since="2000-01-01", steps=50)
    assert len(years.times) <= 51 and years.step_s % 86400 == 0
    assert sum(sum(s.calls) for s in years.series) == 4
    by_provider = usage_timeline(since="7d", by="provider", top=1)
    assert [s.key for s in by_provider.series] == ["other"]  # one series: everything else
    assert sum(by_provider.series[0].calls) == 4


async def test_the_usage_page_charts_what_the_api_reports(client: httpx.AsyncClient) -> None:
    now = dt.datetime.now(dt.UTC)
    api.record_call(_call("openai/gpt-4o", "openai", now - dt.timedelta(minutes=30)))
    api.record_call(_call("sim/x", "sim", now - dt.timedelta(minutes=10), cost_usd=0.0))
    page = await client.get("/ui/usage?since=24h&by=model", headers=PAGE)
    assert page.status_code == 200
    found = parse(page.text)
    data = json.loads(html.unescape(found.text["usage-data"]))
    timeline = (await client.get("/api/v1/usage/timeline?since=24h&by=model")).json()["data"]
    assert data["series"] == timeline["series"] and data["times"] == timeline["times"]
    assert {s["key"] for s in data["series"]} == {"openai/gpt-4o", "sim/x"}
    assert "2 calls" in words(found.text["usage-totals"])
    table = words(found.text["usage-table"])
    assert "openai/gpt-4o" in table and "$0.0100" in table
    charts = [a for tag, a in found.tags if "chart" in a.get("class", "").split()]
    assert [c["data-key"] for c in charts] == ["calls", "tokens", "cost_usd", "latency_ms"]
    assert all(c["role"] == "img" for c in charts)
    empty = await client.get("/ui/usage?since=1m", headers=PAGE)
    assert "No calls in that window" in words(parse(empty.text).text["usage-empty"])
    wrong = await client.get("/ui/usage?since=soon", headers=PAGE)
    assert wrong.status_code == 400 and "Invalid start of the usage window" in html.unescape(
        wrong.text
    )


# -------------------------------------------------------------------- system, playground


async def test_the_system_page_shows_what_system_info_detects(client: httpx.AsyncClient) -> None:
    info = api.system_info()
    page = await client.get("/ui/system", headers=PAGE)
    found = parse(page.text)
    facts = words(found.text["system-facts"])
    assert f"{info.cpu_count} logical cores" in facts
    assert words(found.text["system-ram"]).startswith(f"{info.ram_gb:,.3g} GB")
    shown = words(found.text["system-providers"])
    for provider in info.onnxruntime_providers:
        assert provider in shown
    if not info.gpus:
        assert "No GPU found" in found.text["system-no-gpu"]


async def test_the_playground_offers_local_and_simulated_models_by_task(
    hub: HubServer, client: httpx.AsyncClient
) -> None:
    add_model(hub, "org/encoder", pipeline_tag="feature-extraction")
    add_model(hub, "org/sentiment", seed=4, pipeline_tag="text-classification")
    api.pull("hf:org/encoder")
    api.pull("hf:org/sentiment")
    page = await client.get("/ui/playground", headers=PAGE)
    found = parse(page.text)

    def options(section: str) -> list[str]:
        inside = re.search(rf'<datalist id="{section}-models">(.*?)</datalist>', page.text, re.S)
        assert inside is not None
        return re.findall(r'<option value="([^"]+)"', inside[1])

    assert options("embeddings")[0] == "org/encoder"
    assert "sim:openai/text-embedding-3-small" in options("embeddings")
    assert options("classify") == ["org/sentiment"]
    assert "sim:openai/gpt-4o-mini" in options("chat")
    assert all(not o.startswith("openai/") for o in options("chat"))  # no key, no hosted
    values = {
        a["id"]: a.get("value")
        for tag, a in found.tags
        if tag == "input" and a.get("id", "").endswith("-model")
    }
    assert values["embeddings-model"] == "org/encoder"
    assert values["chat-model"] == "sim:openai/gpt-4o-mini"


async def test_the_playground_calls_v1_with_the_session(client: httpx.AsyncClient) -> None:
    transport = httpx.ASGITransport(app=create_app(api_key=KEY))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as locked:
        body = {"model": "sim:openai/text-embedding-3-small", "input": ["a cat", "a dog"]}
        assert (await locked.post("/v1/embeddings", json=body)).status_code == 401
        signed = await locked.post("/ui/login", data={"key": KEY, "next": "/ui/playground"})
        assert signed.status_code == 303
        page = await locked.get("/ui/playground", headers=PAGE)
        assert page.status_code == 200 and KEY not in page.text
        done = await locked.post("/v1/embeddings", json=body)
        assert done.status_code == 200
        assert len(done.json()["data"]) == 2


# -------------------------------------------------------------------- the model page


async def test_a_latency_profile_that_is_a_preset_says_so(client: httpx.AsyncClient) -> None:
    from modelport.catalog.estimates import latency_profile

    catalog = api.get_catalog()
    without = next(e for e in catalog.values() if e.latency is None)
    page = await client.get(f"/ui/models/{without.id}", headers=PAGE)
    found = parse(page.text)
    preset = latency_profile(without)
    assert f"the {preset.preset} preset for its size, not measured" in words(
        found.text["latency-preset"]
    )
    table = words(found.text["latency"])
    assert f"Preset {preset.preset} (preset by size, not measured)" in table
    assert f"Time to first token {preset.time_to_first_token_ms:,.0f} ms Inter-token" in table
    from tests.conftest import make_entry

    measured = make_entry(
        "acme/measured-model",
        latency={
            "preset": "custom",
            "time_to_first_token_ms": 123,
            "inter_token_latency_ms_mean": 9.5,
            "source_url": "https://example.com/latency",
        },
    )
    api.add_entries([measured])
    page = await client.get(f"/ui/models/{measured.id}", headers=PAGE)
    found = parse(page.text)
    assert "latency-preset" not in found.text
    table = words(found.text["latency"])
    assert "Time to first token 123 ms Inter-token latency 9.5 ms mean" in table
    # The spread was not measured: only it is the preset's.
    assert "Inter-token latency spread 4.0 ms std dev, preset by size, not measured" in table
    assert "https://example.com/latency" in page.text
