"""The web UI in a real browser: Debian's Chromium, headless, driven by Playwright, against a
real ``modelport serve`` process, with every request that would leave the machine refused.

Each page is checked with axe-core (no serious or critical violations, in both themes), and
photographed: into ``$MODELPORT_SCREENSHOTS`` when set (``scripts/screenshots.py`` sets it
to a temporary folder and copies the pictures to ``docs/screenshots/``), else into the
test's own temporary folder, so that a test run never writes into the checkout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.serving import ServerProcess, serve

sync_api = pytest.importorskip("playwright.sync_api")
axe_package = pytest.importorskip("axe_playwright_python")

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "the browser tests drive Debian's chromium: apt-get install -y chromium",
        allow_module_level=True,
    )

pytestmark = pytest.mark.slow

KEY = "ui-test-key-0123456789abcdef"
AXE = (Path(axe_package.__file__).parent / "axe.min.js").read_text()
#: Nothing reaches a registry or a provider: the pages must work offline.
OFFLINE = {
    "MODELPORT_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_ENDPOINT": "http://127.0.0.1:9",
    "MODELPORT_ONNX_ZOO_URL": "http://127.0.0.1:9",
    "MODELPORT_KAGGLE_URL": "http://127.0.0.1:9",
    "MODELPORT_GITHUB_URL": "http://127.0.0.1:9",
    "MODELPORT_GITHUB_API_URL": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("ui-home")
    env = {**OFFLINE, "HF_HOME": str(home / "hf")}
    with serve(home, "--log-level", "warning", env=env) as process:
        yield process


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("ui-locked-home")
    env = {**OFFLINE, "HF_HOME": str(home / "hf")}
    with serve(home, "--log-level", "warning", env=env, api_key=KEY) as process:
        yield process


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


class Tab:
    """A page in a fresh browser context that may reach only this machine, and what it
    tried to reach elsewhere or complained about."""

    def __init__(self, browser: Any, shots: Path, **context: Any) -> None:
        self.context = browser.new_context(
            **{"viewport": {"width": 1280, "height": 900}, **context}
        )
        self.blocked: list[str] = []
        self.problems: list[str] = []
        self.shots = shots
        self.context.route("**/*", self._only_loopback)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _console(self, message: Any) -> None:
        # A search superseded by the next keystroke is aborted on purpose (hx-sync
        # replace): htmx logs the abort as an error, which it is not.
        if message.type == "error" and not message.text.startswith(
            ("htmx:afterRequest", "htmx:sendAbort")
        ):
            self.problems.append(f"console {message.type}: {message.text}")

    def _only_loopback(self, route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def shot(self, name: str, *, full_page: bool = False) -> None:
        """Photograph the page as ``name``.png."""
        self.page.screenshot(path=str(self.shots / f"{name}.png"), full_page=full_page)

    def axe(self) -> None:
        """Fail on any serious or critical accessibility violation axe-core finds."""
        self.page.evaluate(
            AXE
        )  # through the DevTools protocol: the page's CSP allows no inline script
        result = self.page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
        bad = [
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], f"{self.page.url}:\n" + "\n".join(bad)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    chosen = os.environ.get("MODELPORT_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def tab(browser: Any, shots: Path) -> Iterator[Tab]:
    opened = Tab(browser, shots, color_scheme="light")
    yield opened
    opened.close()
    assert opened.blocked == [], "the UI reached beyond this machine"
    assert opened.problems == []


def count_text(tab: Tab) -> str:
    return " ".join(tab.page.locator("#count").inner_text().split())


def listed(tab: Tab) -> list[str]:
    return tab.page.locator("#results input[name=m]").evaluate_all("els => els.map(e => e.value)")


def query(tab: Tab) -> dict[str, list[str]]:
    return parse_qs(urlsplit(tab.page.url).query)


# -------------------------------------------------------------------- models


def test_a_typo_gets_a_suggestion_that_leads_to_the_model(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{server.url}/")  # a browser opening the server lands on the models
    assert page.url == f"{server.url}/ui/models"
    tab.shot("models")
    page.locator("#q").press_sequentially("clade sonet", delay=40)
    page.wait_for_url(re.compile(r"q=clade\+sonet$"))
    # The suggestions come after the table, for the text as finally typed.
    page.locator("#did-you-mean .spelling", has_text="claude sonnet").wait_for()
    tab.shot("models-did-you-mean")
    tab.axe()
    first = page.locator("#did-you-mean a.suggestion").first
    target = first.inner_text()
    assert target.startswith("anthropic/claude-sonnet")
    first.click()
    page.wait_for_url(f"**/ui/models/{target}")
    assert page.locator("h1").inner_text()
    assert page.locator("#prices").inner_text().count("USD per 1M") >= 2
    tab.shot("model-api", full_page=True)
    tab.axe()
    # Back: the search as it was, from the browser's history.
    page.go_back()
    page.wait_for_url(re.compile(r"q=clade\+sonet"))
    assert page.locator("#q").input_value() == "clade sonet"


def test_filters_live_in_the_address_and_survive_a_reload(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{server.url}/ui/models")
    everything = count_text(tab)
    page.select_option("#f-source", "api")
    page.wait_for_url(re.compile(r"source=api"))
    page.select_option("#f-provider", "openai")
    page.wait_for_url(re.compile(r"provider=openai"))
    page.locator("input[name=capability][value=vision]").check()
    page.wait_for_url(re.compile(r"capability=vision"))
    page.select_option("#f-per_page", "200")
    page.wait_for_url(re.compile(r"per_page=200"))
    narrowed = count_text(tab)
    assert narrowed != everything
    rows = listed(tab)
    assert rows and all(r.startswith("openai/") for r in rows)
    page.get_by_role("link", name=re.compile(r"^Price")).click()
    page.wait_for_url(re.compile(r"sort=price"))
    sorted_rows = listed(tab)
    assert sorted(sorted_rows) == sorted(rows) and sorted_rows != rows
    assert query(tab) == {
        "source": ["api"],
        "provider": ["openai"],
        "capability": ["vision"],
        "sort": ["price"],
        "per_page": ["200"],
    }
    # The address alone rebuilds the view: reloaded, and opened in another tab.
    shared = page.url
    page.reload()
    assert count_text(tab) == narrowed
    assert listed(tab) == sorted_rows
    assert page.locator("#f-source").input_value() == "api"
    assert page.locator("#f-provider").input_value() == "openai"
    assert page.locator("input[name=capability][value=vision]").is_checked()
    assert page.locator("th[aria-sort]").inner_text().startswith("Price")
    other = tab.context.new_page()
    other.goto(shared)
    assert (
        other.locator("#results input[name=m]").evaluate_all("els => els.map(e => e.value)")
        == sorted_rows
    )
    other.close()
    tab.shot("models-filtered", full_page=False)
    tab.axe()


def test_the_defaults_form_says_fits_and_does_not_fit(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{server.url}/ui/models/meta-llama/Llama-3.1-8B")
    page.fill("#inference-gpu", "80GB")
    page.click("#validate-inference")
    fit = page.locator("#fit-inference")
    fit.wait_for()
    assert fit.inner_text().strip() == "✓ fits"
    assert "Weights" in page.locator("#verdict-inference table").inner_text()
    page.fill("#inference-gpu", "1GB")
    page.fill("#inference-max_model_len", "4096")
    page.click("#validate-inference")
    page.wait_for_function(
        "() => document.querySelector('#fit-inference').textContent.includes('does not fit')"
    )
    assert page.locator("#verdict-inference .suggestions li").count() >= 1
    command = page.locator("#defaults-cli-inference").text_content()
    assert command == (
        "modelport validate meta-llama/Llama-3.1-8B --for inference --gpu-memory 1GB "
        "--set max_model_len=4096"
    )
    page.get_by_role("button", name="Copy command").last.click()
    page.locator("#defaults-cli-inference-status").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == command
    page.fill("#training-gpu", "80GB")
    page.select_option("#training-method", "qlora")
    page.click("#validate-training")
    page.locator("#fit-training").wait_for()
    assert page.locator("#fit-training").inner_text().strip() in ("✓ fits", "! tight")
    assert "--method qlora" in (page.locator("#defaults-cli-training").text_content() or "")
    page.locator("#h-defaults").scroll_into_view_if_needed()
    tab.shot("model", full_page=True)
    tab.axe()


def test_compare_two_models_with_the_differences_marked(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{server.url}/ui/models?q=gpt-4o")
    boxes = page.locator("#results input[name=m]")
    chosen = [boxes.nth(0).get_attribute("value"), boxes.nth(1).get_attribute("value")]
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(r"/ui/compare\?m="))
    assert query(tab)["m"] == chosen
    table = page.locator("#comparison")
    assert table.locator("thead th").count() == 3
    differing = table.locator("tr.differs th[scope=row]").all_inner_texts()
    assert differing, "two different models differ somewhere"
    same = table.locator("tbody tr:not(.differs) th[scope=row]").all_inner_texts()
    assert "Provider" in same  # both are OpenAI's
    background = table.locator("tr.differs td").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    plain = table.locator("tbody tr:not(.differs) td").first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert background != plain
    tab.shot("compare", full_page=True)
    tab.axe()


# -------------------------------------------------------------------- docs, themes, a11y


def test_docs_and_redoc_render_with_the_network_blocked(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{server.url}/docs")
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(timeout=30_000)
    assert "modelport" in title.inner_text()
    page.locator(".opblock-tag").first.wait_for()
    tab.shot("docs")
    page.goto(f"{server.url}/redoc")
    heading = page.locator("h1", has_text="modelport")
    heading.wait_for(timeout=30_000)
    tab.shot("redoc")
    # ReDoc's sidebar asks for its vendor's logo: the page's policy refuses it before any
    # request is made. Nothing else may complain, and (the tab fixture checks) nothing may
    # have tried to leave this machine.
    refused = [p for p in tab.problems if "cdn.redoc.ly" in p]
    assert all("Content Security Policy" in p for p in refused)
    tab.problems[:] = [p for p in tab.problems if p not in refused]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_passes_axe(
    server: ServerProcess, locked: ServerProcess, browser: Any, shots: Path, scheme: str
) -> None:
    tab = Tab(browser, shots, color_scheme=scheme)
    try:
        for path in (
            "/ui/models",
            "/ui/models?q=qqqzzzxxx",
            "/ui/models/sentence-transformers/all-MiniLM-L6-v2",
            "/ui/models/openai/gpt-4o",
            "/ui/compare?m=openai/gpt-4o&m=meta-llama/Llama-3.1-8B&m=minilm",
            "/ui/compare",
            "/ui/models/not-a-model-at-all",
        ):
            tab.page.goto(f"{server.url}{path}")
            tab.axe()
        tab.page.goto(f"{locked.url}/ui/models")
        assert "/ui/login" in tab.page.url
        tab.axe()
        if scheme == "dark":
            tab.page.goto(f"{server.url}/ui/models/meta-llama/Llama-3.1-8B")
            tab.shot("model-dark")
        # Keyboard: the first Tab shows the skip link, with a visible focus ring.
        tab.page.goto(f"{server.url}/ui/models")
        tab.page.keyboard.press("Tab")
        focused = tab.page.evaluate(
            "() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.className, s.outlineStyle, parseFloat(s.outlineWidth),"
            " e.getBoundingClientRect().top]; }"
        )
        assert focused[0] == "skip"
        assert focused[1] != "none" and focused[2] >= 2
        assert focused[3] >= 0
    finally:
        tab.close()
    assert tab.blocked == []
    # 404 pages log their status in the console; nothing else may complain.
    assert [p for p in tab.problems if "404" not in p] == []


def test_the_theme_toggle_switches_and_is_remembered(server: ServerProcess, tab: Tab) -> None:
    page = tab.page
    page.goto(f"{server.url}/ui/models")

    def background() -> str:
        return str(page.evaluate("getComputedStyle(document.documentElement).backgroundColor"))

    toggle = page.locator("#theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "false"
    light = background()
    assert light == "rgb(255, 255, 255)"
    toggle.click()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert toggle.get_attribute("aria-pressed") == "true"
    assert background() == "rgb(18, 20, 23)"
    page.reload()
    assert background() == "rgb(18, 20, 23)"  # remembered on this browser
    tab.shot("models-dark")
    tab.axe()
    page.locator("#theme-toggle").click()
    assert background() == light


def test_a_phone_gets_the_table_first_and_no_sideways_scroll(
    server: ServerProcess, browser: Any, shots: Path
) -> None:
    tab = Tab(browser, shots, color_scheme="light", viewport={"width": 390, "height": 844})
    try:
        tab.page.goto(f"{server.url}/ui/models")
        assert tab.page.evaluate("document.getElementById('facets').open") is False
        width = tab.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        tab.shot("phone")
        tab.axe()
    finally:
        tab.close()
    assert tab.blocked == []


# -------------------------------------------------------------------- the key


def test_the_ui_asks_for_the_key_once_and_keeps_only_a_session(
    locked: ServerProcess, tab: Tab
) -> None:
    page = tab.page
    page.goto(f"{locked.url}/ui/models?q=llama")
    page.wait_for_url("**/ui/login?next=*")
    tab.shot("login")
    page.fill("#key", "not the key")
    page.click("button[type=submit]:has-text('Sign in')")
    assert page.locator("[role=alert]").inner_text() == "That is not this server's API key."
    assert page.locator("#key").get_attribute("aria-invalid") == "true"
    # The wrong key was answered 401, as the browser notes: that is the one expected complaint.
    assert len(tab.problems) == 1 and "status of 401" in tab.problems[0]
    tab.problems.clear()
    page.fill("#key", KEY)
    page.click("button[type=submit]:has-text('Sign in')")
    page.wait_for_url(re.compile(r"/ui/models\?q=llama$"))
    assert page.locator("#results input[name=m]").count() > 0
    cookies = {c["name"]: c for c in tab.context.cookies()}
    session = cookies["modelport_session"]
    assert session["httpOnly"] is True
    assert KEY not in session["value"]
    assert page.evaluate("document.cookie") == ""  # no script can read the session
    for path in ("/ui/models/openai/gpt-4o", "/ui/compare?m=gpt-4o&m=gpt-4o-mini", "/docs"):
        page.goto(f"{locked.url}{path}")
        assert "/ui/login" not in page.url
        assert KEY not in page.content()
    page.goto(f"{locked.url}/ui/models")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/login")
    page.goto(f"{locked.url}/ui/models")
    assert "/ui/login" in page.url
