"""Hermetic tests: every test gets its own MODELPORT_HOME, working directory and caches.

Every test runs with its working directory in its own ``tmp_path``, and the run fails if
the suite left anything new in the checkout (``git status --porcelain --ignored``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from modelport.catalog.entry import ModelEntry
from modelport.settings import ENVIRONMENT, PROVIDER_URLS
from tests.checkout import ROOT, TREE_KEY, tree_changes, tree_state

#: ``catalog_backend``: a test of the catalog runs on the in-process one and on PostgreSQL.
pytest_plugins = ["tests.catalog_backends"]

FIXTURES = Path(__file__).parent / "fixtures"

# The reference libraries (sentence-transformers, transformers) must use PyTorch even
# though the `tf` extra installs TensorFlow beside it.
os.environ["PYTHON_KEYRING_BACKEND"] = (
    "keyring.backends.fail.Keyring"  # never a developer's keyring
)
os.environ.setdefault("USE_TF", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Property tests check answers, not speed: on a loaded 2-core CI machine a per-example
# deadline or the "input generation is slow" health check fails runs for timing alone.
settings.register_profile("modelport", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("modelport")


@pytest.fixture(scope="session", autouse=True)
def _session_cwd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Session fixtures (models built once for many tests) run before any test's own
    # folder exists: they too write into a temporary working directory.
    before = Path.cwd()
    folder = tmp_path_factory.mktemp("cwd")
    os.chdir(folder)
    yield folder
    os.chdir(before)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import modelport.api as api

    # Whatever code writes into "the current directory" writes into this test's folder.
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("MODELPORT_HOME", str(home))
    for var in (
        "MODELPORT_DATABASE_URL",
        "MODELPORT_CONFIG",
        "MODELPORT_GPU_MEMORY",
        "MODELPORT_BUNDLED_CATALOG",
        "MODELPORT_DEBUG",
        "MODELPORT_HTTP_TIMEOUT",
        "HF_TOKEN",
        "HF_HUB_OFFLINE",
        "MODELPORT_OFFLINE",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "KAGGLE_API_ENVIRONMENT",
        "MODELPORT_SECRETS_KEY",
        "MODELPORT_DAILY_BUDGET",
        "MODELPORT_FALLBACKS",
        "MODELPORT_PROVIDER_ACCESS",
        "MODELPORT_PROVIDER_TIMEOUT",
        "MODELPORT_PROVIDER_RETRIES",
        "MODELPORT_SIM_SPEED",
        "MODELPORT_SIMULATE",
        "MODELPORT_STORE_URL",
        "MODELPORT_S3_ENDPOINT_URL",
        "MODELPORT_STORE_CACHE_SIZE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        *PROVIDER_KEY_VARIABLES,
    ):
        monkeypatch.delenv(var, raising=False)
    # No test reaches a real provider, or the developer's keyring.
    for name in PROVIDER_URLS:
        monkeypatch.setenv(f"MODELPORT_{name.upper()}_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    # Every other registry points at a closed local port unless a test serves it.
    for var in (
        "MODELPORT_ONNX_ZOO_URL",
        "MODELPORT_KAGGLE_URL",
        "MODELPORT_TFHUB_URL",
        "MODELPORT_GITHUB_URL",
        "MODELPORT_GITHUB_API_URL",
    ):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    # Never a developer's AWS credentials or configuration.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # Nothing may reach the real Hub or read the developer's Hugging Face token.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    api.reset()
    yield home
    api.reset()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server on 127.0.0.1 for this session (``tests/postgres.py``).

    Skips where PostgreSQL is not installed, except in CI, where that fails the test.
    """
    from tests.postgres import PostgresServer, binaries, missing_reason

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}: CI tests PostgreSQL (.ci/run installs it).", pytrace=False)
        pytest.skip(reason)
    server = PostgresServer(binaries())  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty PostgreSQL database that this test's modelport uses."""
    import modelport.api as api

    url = str(postgres.create_database())
    monkeypatch.setenv("MODELPORT_DATABASE_URL", url)
    api.reset()
    return url


@pytest.fixture(scope="session")
def s3() -> Iterator[Any]:
    """moto's S3 server on 127.0.0.1 for this session (``tests/s3_server.py``).

    Skips where moto or boto3 is not installed, except in CI, where that fails the test.
    """
    from tests.s3_server import S3Server, missing_reason

    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}: CI tests the S3 store.", pytrace=False)
        pytest.skip(reason)
    server = S3Server()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def bucket(s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new, empty bucket of the S3 server that this test's modelport keeps its store in."""
    import modelport.api as api

    name = str(s3.create_bucket())
    for variable, value in s3.environment(name).items():
        monkeypatch.setenv(variable, value)
    api.reset()
    return name


#: Every provider's conventional key variables (a developer's real keys must not leak in).
PROVIDER_KEY_VARIABLES = tuple(v.name for v in ENVIRONMENT if v.name.endswith("_API_KEY"))


def make_entry(model_id: str = "acme/tiny-model", **fields: Any) -> ModelEntry:
    """A valid entry with sensible defaults; override any field."""
    data: dict[str, Any] = {
        "id": model_id,
        "name": model_id.rsplit("/", 1)[-1],
        "provider": model_id.split("/", 1)[0].lower() if "/" in model_id else "acme",
        "source": "self-hosted",
        "category": "text-llm",
        "tasks": ["text-generation"],
    }
    data.update(fields)
    return ModelEntry.model_validate(data)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Snapshot the checkout before any test runs."""
    session.config.stash[TREE_KEY] = tree_state(ROOT)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if the suite wrote anything into the checkout."""
    new = tree_changes(session.config.stash.get(TREE_KEY, None), tree_state(ROOT))
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "The test suite left files in the checkout:\n" + "\n".join(f"  {n}" for n in new)
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(text, red=True)
        else:  # no terminal plugin (-p no:terminal)
            print(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def anyio_backend() -> str:
    """The event loop of the async tests (``pytest.mark.anyio``)."""
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[Any]:
    """An httpx client of a new ``modelport serve`` app, in process (no socket)."""
    import httpx

    from modelport.server.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
