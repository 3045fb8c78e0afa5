"""The store, playground, usage, keys and system pages in a real browser (Debian's Chromium,
headless, through Playwright) against a real ``modelport serve`` whose Hugging Face Hub is a
loopback server in this process: a pull's progress bar advances to done, a slow pull is
cancelled (by its button, or by leaving the page) and leaves nothing behind, a removal shows
its plan first, the playground embeds and chats through ``/v1``, the usage charts draw, and
keys are set, rotated and removed without ever being shown. Each page passes axe-core in
both themes and is photographed (see ``tests/test_web_ui.py`` for where the pictures go).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import tests.test_web_ui as web_ui
from tests.hf_server import HubServer, serve_hub
from tests.serving import ServerProcess, serve
from tests.test_web_ui import Tab

pytestmark = pytest.mark.slow

# The browser, a tab that may reach only this machine, and where pictures go: as there.
browser = web_ui.browser
shots = web_ui.shots
tab = web_ui.tab

SECRET = "sk-browser-test-0123456789abcdefghijklmnop"
#: Other registries and providers are never reached.
CLOSED = {
    "MODELPORT_ONNX_ZOO_URL": "http://127.0.0.1:9",
    "MODELPORT_KAGGLE_URL": "http://127.0.0.1:9",
    "MODELPORT_GITHUB_URL": "http://127.0.0.1:9",
    "MODELPORT_GITHUB_API_URL": "http://127.0.0.1:9",
}


def weights(seed: int, size: int) -> bytes:
    rnd = hashlib.sha256(str(seed).encode()).digest()
    return (rnd * (size // len(rnd) + 1))[:size]


def add_model(hub: HubServer, repo: str, *, seed: int, size: int) -> int:
    files = {
        "config.json": json.dumps({"model_type": "bert", "seed": seed}).encode(),
        "model.safetensors": weights(seed, size),
        "README.md": b"# tiny\n",
    }
    hub.add_repo(repo, files)
    return sum(len(b) for b in files.values())


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with serve_hub() as server:
        yield server


@pytest.fixture(scope="module")
def server(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("ui-store-home")
    env = {
        **CLOSED,
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home / "hf"),
        # Simulated models answer at their profile's pace: token by token, over ~0.5 s.
        "MODELPORT_SIM_SPEED": "1x",
    }
    with serve(home, "--log-level", "warning", env=env) as process:
        yield process


@pytest.fixture(autouse=True)
def _full_speed(hub: HubServer) -> Iterator[None]:
    yield
    hub.knobs.bytes_per_second = None


def store_files(server: ServerProcess, kind: str) -> list[Path]:
    root = server.home / "store" / kind
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def stored(server: ServerProcess) -> list[str]:
    return [p.parent.name + "/" + p.stem for p in store_files(server, "manifests")]


def start_pull(tab: Tab, server: ServerProcess, ref: str) -> None:
    page = tab.page
    page.goto(f"{server.url}/ui/store")
    page.fill("#pull-ref", ref)
    page.click("#pull-submit")
    page.locator("#pull-job").wait_for()


def progress_value(tab: Tab) -> tuple[float, float]:
    value = tab.page.evaluate(
        "() => { const b = document.getElementById('pull-progress'); return [b.value, b.max]; }"
    )
    return float(value[0]), float(value[1])


# -------------------------------------------------------------------- store


def test_a_pull_shows_its_progress_advancing_to_done(
    hub: HubServer, server: ServerProcess, tab: Tab
) -> None:
    size = add_model(hub, "org/progress", seed=1, size=3_000_000)
    hub.knobs.bytes_per_second = 1_500_000  # two seconds
    start_pull(tab, server, "hf:org/progress")
    seen: list[float] = []
    photographed = False
    deadline = time.monotonic() + 60
    while tab.page.locator("#pull-state").inner_text() != "done":
        assert time.monotonic() < deadline, "the pull did not finish"
        value, maximum = progress_value(tab)
        if 0 < value < maximum:
            seen.append(value / maximum)
            if not photographed:
                tab.shot("store-pull")
                tab.axe()
                photographed = True
        time.sleep(0.1)
    assert len(set(seen)) >= 3, f"the bar did not advance in steps: {seen}"
    assert seen == sorted(seen)
    value, maximum = progress_value(tab)
    assert value == maximum == size
    assert "Pulled hf:org/progress at" in tab.page.locator("#pull-text").inner_text()
    # The table below was refreshed with the new model.
    tab.page.locator("#stored-models tr[data-ref^='hf:org/progress@']").wait_for()
    assert any(name.startswith("progress/") for name in stored(server))
    tab.shot("store", full_page=True)
    tab.axe()


def test_a_cancelled_pull_leaves_nothing_behind(
    hub: HubServer, server: ServerProcess, tab: Tab
) -> None:
    size = add_model(hub, "org/slow", seed=2, size=4_000_000)
    hub.knobs.bytes_per_second = 250_000  # sixteen seconds
    before = stored(server)
    start_pull(tab, server, "hf:org/slow")
    tab.page.wait_for_function(
        "() => document.getElementById('pull-progress').value > 200000", timeout=30_000
    )
    assert store_files(server, "partial")
    tab.page.click("#pull-cancel")
    tab.page.locator("#pull-state", has_text="cancelled").wait_for(timeout=30_000)
    assert "nothing of it was kept" in tab.page.locator("#pull-text").inner_text()
    sent = hub.bytes_sent["model.safetensors"]
    assert sent < size
    assert stored(server) == before
    assert store_files(server, "partial") == []
    time.sleep(1.0)
    assert hub.bytes_sent["model.safetensors"] <= sent + 128 * 1024  # it stopped


def test_leaving_the_page_stops_the_pull(
    hub: HubServer, server: ServerProcess, browser: Any, shots: Path
) -> None:
    add_model(hub, "org/left", seed=3, size=4_000_000)
    hub.knobs.bytes_per_second = 250_000
    before = stored(server)
    tab = Tab(browser, shots, color_scheme="light")
    try:
        start_pull(tab, server, "hf:org/left")
        tab.page.wait_for_function(
            "() => document.getElementById('pull-progress').value > 100000", timeout=30_000
        )
    finally:
        tab.close()  # the stream closes with the page
    deadline = time.monotonic() + 20
    while store_files(server, "partial") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store_files(server, "partial") == []
    sent = hub.bytes_sent["model.safetensors"]
    time.sleep(1.0)
    assert hub.bytes_sent["model.safetensors"] <= sent + 128 * 1024
    assert stored(server) == before


def test_removing_a_model_shows_the_plan_first(
    hub: HubServer, server: ServerProcess, tab: Tab
) -> None:
    add_model(hub, "org/to-remove", seed=4, size=500_000)
    start_pull(tab, server, "hf:org/to-remove")
    tab.page.locator("#pull-state", has_text="done").wait_for(timeout=30_000)
    row = tab.page.locator("#stored-models tr[data-ref^='hf:org/to-remove@']")
    row.wait_for()
    row.get_by_role("link", name=re.compile("^Remove")).click()
    plan = tab.page.locator("#plan")
    plan.wait_for()
    assert "Nothing has been deleted yet." in tab.page.locator("#plan-freed").inner_text()
    assert "hf:org/to-remove" in tab.page.locator("#plan-models").inner_text()
    assert any(name.startswith("to-remove/") for name in stored(server))  # still there
    tab.shot("store-remove-plan")
    tab.axe()
    confirm = tab.page.locator("#plan-confirm")
    assert confirm.inner_text().startswith("Remove, freeing 500.")
    confirm.click()
    tab.page.locator("#done").wait_for()
    assert "Removed 1 model revision" in tab.page.locator("#done").inner_text()
    assert not any(name.startswith("to-remove/") for name in stored(server))
    assert tab.page.locator("#stored-models tr[data-ref^='hf:org/to-remove@']").count() == 0


# -------------------------------------------------------------------- playground


def test_the_playground_embeds_two_sentences_and_streams_a_chat(
    server: ServerProcess, tab: Tab
) -> None:
    page = tab.page
    page.goto(f"{server.url}/ui/playground")
    assert page.locator("#embeddings-model").input_value() == "sim:openai/text-embedding-3-small"
    page.fill("#embeddings-input", "The cat sleeps on the sofa.\nA kitten naps on the couch.")
    page.click("#embeddings-run")
    table = page.locator("#similarity")
    table.wait_for()
    scores = table.locator("td[data-score]").evaluate_all(
        "cells => cells.map(c => parseFloat(c.dataset.score))"
    )
    assert len(scores) == 4
    assert scores[0] == pytest.approx(1.0, abs=1e-3) and scores[3] == pytest.approx(1.0, abs=1e-3)
    assert scores[1] == scores[2] and -1 <= scores[1] < 0.9999
    assert "2 vectors of" in page.locator("#embeddings-meta").inner_text()
    # A streamed chat: the answer grows in the page chunk by chunk.
    assert page.locator("#chat-model").input_value() == "sim:openai/gpt-4o-mini"
    page.evaluate(
        """() => { window.__growth = 0;
          new MutationObserver(() => { window.__growth += 1; }).observe(
            document.getElementById('chat-log'),
            {subtree: true, childList: true, characterData: true}); }"""
    )
    page.fill("#chat-input", "Tell me about model registries.")
    page.click("#chat-send")
    answer = page.locator("#chat-log li.assistant[data-done]")
    answer.wait_for(timeout=60_000)
    text = answer.locator(".content").inner_text()
    assert len(text) > 10
    assert page.evaluate("window.__growth") >= 4, "the answer did not arrive in pieces"
    status = page.locator("#chat-result").inner_text()
    assert "first token after" in status and "tokens" in status
    tab.shot("playground", full_page=True)
    tab.axe()


# -------------------------------------------------------------------- usage


def test_the_usage_charts_draw_after_some_calls(server: ServerProcess, tab: Tab) -> None:
    for model in ("sim:openai/gpt-4o-mini", "sim:openai/gpt-4o"):
        done = httpx.post(
            f"{server.url}/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
            timeout=60,
        )
        assert done.status_code == 200, done.text
    page = tab.page
    page.goto(f"{server.url}/ui/usage?since=1h")
    page.locator("#chart-calls[data-drawn] canvas").wait_for()
    drawn = page.locator(".chart[data-drawn]")
    assert drawn.count() == 4
    series = int(drawn.first.get_attribute("data-drawn") or 0)
    assert series >= 2
    legend = page.locator("#chart-calls .u-legend").inner_text()
    assert "openai/gpt-4o-mini" in legend
    assert "calls" in page.locator("#usage-totals").inner_text()
    tab.shot("usage", full_page=True)
    tab.axe()
    page.select_option("#usage-by", "provider")
    page.wait_for_url(re.compile(r"by=provider"))
    page.locator("#chart-calls[data-drawn] canvas").wait_for()
    assert "sim" in page.locator("#usage-table").inner_text()


# -------------------------------------------------------------------- keys, system


def test_keys_are_set_rotated_and_removed_without_being_shown(
    server: ServerProcess, tab: Tab
) -> None:
    page = tab.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if r.method == "POST" else None)
    page.goto(f"{server.url}/ui/keys")
    page.select_option("#set-provider", "openai")
    page.fill("#set-key", SECRET)
    page.fill("#set-expires", "30d")
    page.click("#set-key-submit")
    message = page.locator("#keys-message")
    message.wait_for()
    assert re.fullmatch(r"Stored the openai key sk-…[a-z0-9]{4}\.", message.inner_text())
    assert SECRET not in page.content()
    assert page.locator("#set-key").input_value() == ""
    assert "the key store" in page.locator("#key-openai").inner_text()
    assert any(SECRET in body for body in sent)  # it went once, in a POST body
    tab.shot("keys")
    tab.axe()
    page.locator("#key-openai summary").click()
    page.fill("#rotate-openai-key", SECRET[:-4] + "wxyz")
    page.fill("#rotate-openai-grace", "1h")
    page.locator("#rotate-openai button[type=submit]").click()
    page.locator("#keys-message", has_text="Rotated the openai key").wait_for()
    assert "sk-…wxyz" in page.locator("#key-openai").inner_text()
    assert SECRET[:-4] not in page.content()
    page.locator("#key-openai summary").click()
    page.get_by_role("button", name="Remove the openai key").click()
    page.locator("#keys-message", has_text="Removed the openai key.").wait_for()
    assert "sk-…" not in page.locator("#key-openai").inner_text()


def test_the_system_page(server: ServerProcess, tab: Tab) -> None:
    tab.page.goto(f"{server.url}/ui/system")
    facts = tab.page.locator("#system-facts").inner_text()
    assert "logical cores" in facts and "GB" in facts
    assert "CPU" in tab.page.locator("#system-providers").inner_text()
    tab.shot("system")
    tab.axe()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_new_pages_pass_axe(
    hub: HubServer, server: ServerProcess, browser: Any, shots: Path, scheme: str
) -> None:
    add_model(hub, "org/axe", seed=5, size=100_000)
    httpx.post(
        f"{server.url}/api/pull", json={"model": "hf.co/org/axe", "stream": False}, timeout=60
    )
    tab = Tab(browser, shots, color_scheme=scheme)
    try:
        for path in (
            "/ui/store",
            "/ui/store/remove?ref=hf:org/axe",
            "/ui/store/prune?max_size=1KB",
            "/ui/store/remove?ref=hf:org/not-pulled",
            "/ui/playground",
            "/ui/usage",
            "/ui/usage?since=1m",
            "/ui/keys",
            "/ui/system",
            "/ui/models/openai/gpt-4o",  # its latency profile: a preset, said so
        ):
            tab.page.goto(f"{server.url}{path}")
            if path == "/ui/usage":
                tab.page.locator(".chart[data-drawn]").first.wait_for()
            tab.axe()
            if scheme == "dark" and path in ("/ui/store", "/ui/usage", "/ui/playground"):
                name = path.rsplit("/", 1)[-1]
                tab.shot(f"{name}-dark")
    finally:
        tab.close()
    assert tab.blocked == []
    # The plan of a model that is not in the store is a 404 page: the console notes it.
    assert [p for p in tab.problems if "404" not in p] == []


def test_the_new_pages_fit_a_phone(server: ServerProcess, browser: Any, shots: Path) -> None:
    tab = Tab(browser, shots, color_scheme="light", viewport={"width": 390, "height": 844})
    try:
        for path in ("/ui/store", "/ui/playground", "/ui/usage", "/ui/keys", "/ui/system"):
            tab.page.goto(f"{server.url}{path}")
            if path == "/ui/usage" and tab.page.locator("#usage-charts").count():
                tab.page.locator(".chart[data-drawn]").first.wait_for()
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
            if path == "/ui/store":
                tab.shot("store-phone")
    finally:
        tab.close()
    assert tab.blocked == [] and tab.problems == []


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    pytest.importorskip("torch")
    pytest.importorskip("optimum.exporters.onnx")
    from tests import tiny_models

    root = tmp_path_factory.mktemp("ui-local-models")
    folders = [
        tiny_models.build_encoder(root / "encoder", "feature-extraction"),
        tiny_models.build_encoder(root / "classifier", "text-classification"),
        tiny_models.build_encoder(root / "reader", "question-answering"),
    ]
    home = tmp_path_factory.mktemp("ui-local-home")
    env = {**CLOSED, "MODELPORT_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(home / "hf")}
    args = [str(f) for f in folders]
    with serve(home, *args, "--log-level", "warning", env=env, startup_s=600) as process:
        yield process


def test_the_playground_runs_local_models_the_server_loaded(
    local_server: ServerProcess, tab: Tab
) -> None:
    page = tab.page
    page.goto(f"{local_server.url}/ui/playground")
    # Local models come first: each section starts with the one that runs its task here.
    assert page.locator("#embeddings-model").input_value() == "encoder"
    assert page.locator("#classify-model").input_value() == "classifier"
    assert page.locator("#qa-model").input_value() == "reader"
    page.fill("#embeddings-input", "ada wrote this book\nthe book was written by ada")
    page.click("#embeddings-run")
    page.locator("#similarity").wait_for()
    scores = page.locator("#similarity td[data-score]").evaluate_all(
        "cells => cells.map(c => parseFloat(c.dataset.score))"
    )
    assert len(scores) == 4 and scores[0] == pytest.approx(1.0, abs=1e-3)
    assert "encoder: 2 vectors of 32 dimensions" in page.locator("#embeddings-meta").inner_text()
    page.click("#classify-run")
    labels = page.locator("#classify-result table.scores tbody tr")
    labels.first.wait_for()
    scores = page.locator("#classify-result td.num").all_inner_texts()
    assert labels.count() == 3  # the tiny classifier has three labels, all scored
    assert all(0.0 <= float(s) <= 1.0 for s in scores)
    page.fill("#qa-question", "who wrote this book")
    page.fill("#qa-context", "ada lovelace wrote this book")
    page.click("#qa-run")
    answer = page.locator("#qa-answer")
    answer.wait_for()
    assert "(score" in answer.inner_text()
    tab.shot("playground-local", full_page=True)
    tab.axe()
