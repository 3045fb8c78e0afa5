"""Settings from the environment and the config file, with every setting documented.

Precedence, highest first: environment variable, ``config.toml`` in ``MODELPORT_HOME``
(or the file named by ``MODELPORT_CONFIG``), built-in default. ``SETTINGS`` lists
every setting once; the docs and a test are generated from it so they cannot drift.
"""

from __future__ import annotations

import os
import re
import threading
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from modelport.errors import ConfigError

__all__ = [
    "ENVIRONMENT",
    "SETTINGS",
    "EnvVar",
    "SettingSpec",
    "Settings",
    "get_settings",
    "parse_keep_alive",
    "parse_size",
    "parse_speed",
    "reset_settings",
]


@dataclass(frozen=True)
class SettingSpec:
    """One documented setting: its field, env var, config key, default and meaning."""

    field: str
    env: str
    key: str
    default: str
    help: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "home",
        "MODELPORT_HOME",
        "home",
        "the platform's user data dir (e.g. ~/.local/share/modelport)",
        "Folder holding the database, the store and the secrets.",
    ),
    SettingSpec(
        "config_file",
        "MODELPORT_CONFIG",
        "-",
        "$MODELPORT_HOME/config.toml",
        "TOML file whose top-level keys set any setting below by its config key.",
    ),
    SettingSpec(
        "database_url",
        "MODELPORT_DATABASE_URL",
        "database_url",
        "sqlite:///$MODELPORT_HOME/modelport.db",
        "SQLAlchemy URL of the database (user catalog entries, usage, remote sources); "
        "postgresql+psycopg://… shares one catalog between servers.",
    ),
    SettingSpec(
        "store_url",
        "MODELPORT_STORE_URL",
        "store_url",
        "none (the store lives in $MODELPORT_HOME/store)",
        "`s3://bucket/prefix`: keep pulled blobs, manifests and converted models in an "
        "S3-compatible bucket that every server shares, with $MODELPORT_HOME/store as this "
        "machine's cache in front of it (credentials the boto3 way: AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role); needs the `s3` extra.",
    ),
    SettingSpec(
        "s3_endpoint_url",
        "MODELPORT_S3_ENDPOINT_URL",
        "s3_endpoint_url",
        "AWS_ENDPOINT_URL, else AWS S3",
        "Endpoint of the S3-compatible service behind MODELPORT_STORE_URL (MinIO, Ceph, "
        "Cloudflare R2…), e.g. http://minio:9000.",
    ),
    SettingSpec(
        "store_cache_size",
        "MODELPORT_STORE_CACHE_SIZE",
        "store_cache_size",
        "none (no limit)",
        "With MODELPORT_STORE_URL: the most the local cache keeps of the bucket's blobs (e.g. "
        "50GB); past it, the least recently used models leave this machine's cache (never the "
        "bucket).",
    ),
    SettingSpec(
        "bundled_catalog",
        "MODELPORT_BUNDLED_CATALOG",
        "bundled_catalog",
        "true",
        "Load the catalog entries shipped with modelport (set false to start empty).",
    ),
    SettingSpec(
        "catalog_snapshot",
        "MODELPORT_CATALOG_SNAPSHOT",
        "catalog_snapshot",
        "true",
        "Keep the built catalog in $MODELPORT_HOME/catalog.snapshot so that commands start "
        "fast (a SQLite database only; any change to the catalog invalidates it).",
    ),
    SettingSpec(
        "host",
        "MODELPORT_HOST",
        "host",
        "127.0.0.1",
        "Address `modelport serve` listens on.",
    ),
    SettingSpec(
        "port",
        "MODELPORT_PORT",
        "port",
        "8642",
        "Port `modelport serve` listens on.",
    ),
    SettingSpec(
        "api_key",
        "MODELPORT_API_KEY",
        "api_key",
        "none",
        "`modelport serve` requires `Authorization: Bearer <key>` on every route but health "
        "checks when set (also `serve --api-key`).",
    ),
    SettingSpec(
        "cors_origins",
        "MODELPORT_CORS_ORIGINS",
        "cors_origins",
        "none (CORS off)",
        "Comma-separated browser origins `modelport serve` allows cross-origin requests "
        "from (`*` for any).",
    ),
    SettingSpec(
        "keep_alive",
        "MODELPORT_KEEP_ALIVE",
        "keep_alive",
        "5m",
        "How long `modelport serve` keeps a model loaded after its last request (e.g. 30s, "
        "10m, 1h; 0 unloads at once, -1 keeps it forever); a request's `keep_alive` wins.",
    ),
    SettingSpec(
        "max_loaded_models",
        "MODELPORT_MAX_LOADED_MODELS",
        "max_loaded_models",
        "3",
        "Models `modelport serve` keeps loaded at once; loading one more unloads the least "
        "recently used idle one.",
    ),
    SettingSpec(
        "max_memory",
        "MODELPORT_MAX_MEMORY",
        "max_memory",
        "three quarters of the RAM",
        "Memory the loaded models of `modelport serve` may take together (e.g. 8GB); "
        "loading past it unloads the least recently used idle models.",
    ),
    SettingSpec(
        "max_queue",
        "MODELPORT_MAX_QUEUE",
        "max_queue",
        "512",
        "Inputs waiting per model in `modelport serve`; a request past it is answered 429 "
        "with Retry-After.",
    ),
    SettingSpec(
        "batch_wait_ms",
        "MODELPORT_BATCH_WAIT_MS",
        "batch_wait_ms",
        "2",
        "Milliseconds `modelport serve` waits for more requests to batch with one that "
        "arrives at an idle encoder.",
    ),
    SettingSpec(
        "max_batch_tokens",
        "MODELPORT_MAX_BATCH_TOKENS",
        "max_batch_tokens",
        "16384",
        "Tokens one dynamic batch of an encoder may hold in `modelport serve`.",
    ),
    SettingSpec(
        "max_request_bytes",
        "MODELPORT_MAX_REQUEST_BYTES",
        "max_request_bytes",
        "32MB",
        "Largest request body `modelport serve` reads (413 beyond it).",
    ),
    SettingSpec(
        "gpu_memory_gb",
        "MODELPORT_GPU_MEMORY",
        "gpu_memory",
        "detected",
        "Plan for a GPU with this much memory (e.g. 24GB) instead of the detected ones.",
    ),
    SettingSpec(
        "http_timeout",
        "MODELPORT_HTTP_TIMEOUT",
        "http_timeout",
        "30",
        "Seconds a remote catalog or hub may take to connect or to send more bytes before "
        "the command gives up.",
    ),
    SettingSpec(
        "db_busy_timeout",
        "MODELPORT_DB_BUSY_TIMEOUT",
        "db_busy_timeout",
        "10",
        "Seconds to wait for a SQLite database another program holds locked before giving up.",
    ),
    SettingSpec(
        "onnx_zoo_url",
        "MODELPORT_ONNX_ZOO_URL",
        "onnx_zoo_url",
        "https://github.com/onnx/models/raw/main",
        "Base URL of the legacy ONNX Model Zoo: ONNX_HUB_MANIFEST.json and the model files.",
    ),
    SettingSpec(
        "onnx_zoo_org",
        "MODELPORT_ONNX_ZOO_ORG",
        "onnx_zoo_org",
        "onnxmodelzoo",
        "Hugging Face organisation that hosts the ONNX Model Zoo (searched by `onnx:` names).",
    ),
    SettingSpec(
        "kaggle_url",
        "MODELPORT_KAGGLE_URL",
        "kaggle_url",
        "https://api.kaggle.com",
        "Kaggle Models API that `tfhub:` handles are pulled from (through kagglehub).",
    ),
    SettingSpec(
        "tfhub_url",
        "MODELPORT_TFHUB_URL",
        "tfhub_url",
        "https://tfhub.dev",
        "Where old tfhub.dev handles are fetched (`HANDLE?tf-hub-format=compressed`).",
    ),
    SettingSpec(
        "github_url",
        "MODELPORT_GITHUB_URL",
        "github_url",
        "https://github.com",
        "Where PyTorch Hub repository archives are downloaded (`OWNER/REPO/zipball/REF`).",
    ),
    SettingSpec(
        "github_api_url",
        "MODELPORT_GITHUB_API_URL",
        "github_api_url",
        "https://api.github.com",
        "GitHub API resolving PyTorch Hub branches and tags to commits (sends `GITHUB_TOKEN`).",
    ),
    SettingSpec(
        "provider_timeout",
        "MODELPORT_PROVIDER_TIMEOUT",
        "provider_timeout",
        "120",
        "Seconds a hosted provider may take to answer (to its first token when streaming); "
        "`60,anthropic=300` sets a default and per-provider values.",
    ),
    SettingSpec(
        "provider_retries",
        "MODELPORT_PROVIDER_RETRIES",
        "provider_retries",
        "2",
        "How often a call to a hosted provider is retried after a 429 (honouring "
        "`Retry-After`), a 5xx or a lost connection, with exponential backoff.",
    ),
    SettingSpec(
        "provider_access",
        "MODELPORT_PROVIDER_ACCESS",
        "provider_access",
        "auto",
        "How providers with a vendor CLI are reached: `auto` (the CLI when it is installed "
        "and signed in, else the API with a key), `api` or `cli`; `auto,anthropic=api` sets "
        "a default and per-provider values (also `--access`).",
    ),
    SettingSpec(
        "fallbacks",
        "MODELPORT_FALLBACKS",
        "fallbacks",
        "none",
        "Comma-separated models the gateway tries, in order, when the requested one fails "
        "(a request's own `fallbacks` wins).",
    ),
    SettingSpec(
        "daily_budget",
        "MODELPORT_DAILY_BUDGET",
        "daily_budget",
        "none",
        "US dollars: once today's (UTC) recorded spend reaches it, paid calls are refused "
        "(calls of unknown cost are not counted).",
    ),
    SettingSpec(
        "sim_faults",
        "MODELPORT_SIM_FAULTS",
        "sim_faults",
        "none",
        "Fault rates of simulated calls, per kind: `429=0.05,500=0.01,503=0,timeout=0.01,"
        "cut=0.02` (cut: a stream ends mid-answer); a request's `metadata.sim_fault` names one.",
    ),
    SettingSpec(
        "sim_rpm",
        "MODELPORT_SIM_RPM",
        "sim_rpm",
        "none",
        "Requests per minute a simulated model takes before it answers 429 (per model).",
    ),
    SettingSpec(
        "sim_tpm",
        "MODELPORT_SIM_TPM",
        "sim_tpm",
        "none",
        "Tokens per minute (prompt and answer) a simulated model takes before it answers 429.",
    ),
    SettingSpec(
        "simulate",
        "MODELPORT_SIMULATE",
        "simulate",
        "false",
        "Answer every hosted model with its simulation (as `sim:` would), offline and with no "
        "key (also `serve --simulate`).",
    ),
    SettingSpec(
        "sim_speed",
        "MODELPORT_SIM_SPEED",
        "sim_speed",
        "1x",
        "How fast the `sim` provider's simulated models answer: `1x` (their latency "
        "profile), `10x`, `100x` (any factor), or `instant` (no waiting).",
    ),
    SettingSpec(
        "secrets_key",
        "MODELPORT_SECRETS_KEY",
        "secrets_key",
        "none (the OS keyring, else $MODELPORT_HOME/secrets/data.key)",
        "The key store's data key (base64 of 32 bytes), for servers without a keyring; "
        "`modelport keys data-key` prints a new one.",
    ),
    *(
        SettingSpec(
            "provider_urls",
            f"MODELPORT_{name.upper()}_URL",
            f"{name}_url",
            url,
            f"Base URL of the {label} API.",
        )
        for name, (label, url) in {
            "openai": ("OpenAI", "https://api.openai.com/v1"),
            "anthropic": ("Anthropic", "https://api.anthropic.com"),
            "gemini": ("Gemini", "https://generativelanguage.googleapis.com"),
            "cohere": ("Cohere", "https://api.cohere.com"),
            "groq": ("Groq", "https://api.groq.com/openai/v1"),
            "deepseek": ("DeepSeek", "https://api.deepseek.com"),
            "mistral": ("Mistral", "https://api.mistral.ai/v1"),
            "xai": ("xAI", "https://api.x.ai/v1"),
            "together": ("Together AI", "https://api.together.xyz/v1"),
            "fireworks": ("Fireworks AI", "https://api.fireworks.ai/inference/v1"),
            "openrouter": ("OpenRouter", "https://openrouter.ai/api/v1"),
            "perplexity": ("Perplexity", "https://api.perplexity.ai"),
        }.items()
    ),
    SettingSpec(
        "debug",
        "MODELPORT_DEBUG",
        "debug",
        "false",
        "Show full tracebacks instead of one-line errors.",
    ),
)


@dataclass(frozen=True)
class EnvVar:
    """An environment variable that is not a setting: read where it is used, or by a library."""

    name: str
    read_by: str
    help: str


#: Every environment variable modelport reads besides ``SETTINGS`` (a test finds each one
#: the code reads and fails if it is missing here), and those its libraries read for it.
ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(
        "MODELPORT_OFFLINE",
        "every hub",
        "Set to 1 to never reach a registry: a pull is served from the store or refused in "
        "one sentence; hub searches are refused.",
    ),
    EnvVar(
        "HF_HUB_OFFLINE",
        "every hub",
        "Hugging Face's name for the same switch; modelport honours it on every hub, not only "
        "`hf:`.",
    ),
    EnvVar("HF_ENDPOINT", "hf, onnx", "Base URL of the Hugging Face Hub (the zoo lives there)."),
    EnvVar(
        "HF_TOKEN",
        "hf, onnx",
        "Hugging Face access token for gated and private repositories (else the one "
        "`hf auth login` saved).",
    ),
    EnvVar(
        "HF_TOKEN_PATH",
        "hf, onnx",
        "File holding the saved Hugging Face token (default `$HF_HOME/token`).",
    ),
    EnvVar(
        "HF_HOME",
        "hf, onnx",
        "Hugging Face's folder, where `hf auth login` saves the token "
        "(default `$XDG_CACHE_HOME/huggingface`).",
    ),
    EnvVar("XDG_CACHE_HOME", "hf, onnx", "The cache folder `HF_HOME` defaults to (`~/.cache`)."),
    EnvVar(
        "GITHUB_TOKEN",
        "torch",
        "GitHub token sent to the GitHub API and archive downloads of PyTorch Hub repositories.",
    ),
    EnvVar("GH_TOKEN", "torch", "Used when `GITHUB_TOKEN` is not set (the GitHub CLI's name)."),
    EnvVar("KAGGLE_USERNAME", "kagglehub", "Kaggle account name for `tfhub:` pulls."),
    EnvVar("KAGGLE_KEY", "kagglehub", "Kaggle API key belonging to `KAGGLE_USERNAME`."),
    EnvVar("KAGGLE_API_TOKEN", "kagglehub", "A Kaggle API token, instead of username and key."),
    EnvVar(
        "KAGGLE_API_ENVIRONMENT",
        "kagglehub",
        "Which Kaggle environment kagglehub talks to; modelport sets it for one call when "
        "`MODELPORT_KAGGLE_URL` is not the production API, and restores it.",
    ),
    EnvVar(
        "AWS_ENDPOINT_URL",
        "the S3 store, boto3",
        "Endpoint of the S3-compatible service when `MODELPORT_S3_ENDPOINT_URL` is not set.",
    ),
    EnvVar("AWS_ACCESS_KEY_ID", "boto3", "Access key of the bucket named by MODELPORT_STORE_URL."),
    EnvVar("AWS_SECRET_ACCESS_KEY", "boto3", "Secret key belonging to `AWS_ACCESS_KEY_ID`."),
    EnvVar("AWS_SESSION_TOKEN", "boto3", "Session token of temporary credentials."),
    EnvVar(
        "AWS_PROFILE",
        "boto3",
        "Profile of `~/.aws/credentials` and `~/.aws/config` to take credentials from.",
    ),
    EnvVar("AWS_DEFAULT_REGION", "boto3", "Region of the bucket (AWS S3)."),
    EnvVar(
        "USE_TF",
        "transformers",
        "modelport sets it to 0 (unless set) before converting, so transformers uses PyTorch.",
    ),
    EnvVar(
        "TF_CPP_MIN_LOG_LEVEL",
        "tensorflow",
        "modelport sets it to 2 (unless set) before converting, to keep TensorFlow's C++ log "
        "quiet.",
    ),
    EnvVar(
        "OPENAI_API_KEY",
        "openai",
        "The openai provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "ANTHROPIC_API_KEY",
        "anthropic",
        "The anthropic provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "GEMINI_API_KEY",
        "gemini",
        "The gemini provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "GOOGLE_API_KEY",
        "gemini",
        "The gemini provider's key when `GEMINI_API_KEY` is not set.",
    ),
    EnvVar(
        "CO_API_KEY",
        "cohere",
        "The cohere provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "COHERE_API_KEY",
        "cohere",
        "The cohere provider's key when `CO_API_KEY` is not set.",
    ),
    EnvVar(
        "GROQ_API_KEY",
        "groq",
        "The groq provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "DEEPSEEK_API_KEY",
        "deepseek",
        "The deepseek provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "MISTRAL_API_KEY",
        "mistral",
        "The mistral provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "XAI_API_KEY",
        "xai",
        "The xai provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "TOGETHER_API_KEY",
        "together",
        "The together provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "FIREWORKS_API_KEY",
        "fireworks",
        "The fireworks provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "OPENROUTER_API_KEY",
        "openrouter",
        "The openrouter provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "PERPLEXITY_API_KEY",
        "perplexity",
        "The perplexity provider's key; wins over a stored key, loses to one given explicitly.",
    ),
    EnvVar(
        "HOME",
        "anthropic, gemini (CLI)",
        "Where the vendor CLIs keep their sign-in (`~/.claude`, `~/.gemini`).",
    ),
    EnvVar(
        "CLAUDE_CONFIG_DIR",
        "anthropic (CLI)",
        "Claude Code's folder, where modelport looks for its sign-in (default `~/.claude`).",
    ),
    EnvVar(
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
        "anthropic (CLI)",
        "modelport sets it for one `claude -p` run from the request's `max_tokens`.",
    ),
    EnvVar(
        "MAX_THINKING_TOKENS",
        "anthropic (CLI)",
        "modelport sets it for one `claude -p` run from the request's `reasoning_effort`.",
    ),
    EnvVar(
        "GEMINI_CLI_HOME",
        "gemini (CLI)",
        "The Gemini CLI's home, where modelport looks for its sign-in (default `~`).",
    ),
    EnvVar(
        "GOOGLE_GENAI_USE_GCA",
        "gemini (CLI)",
        "One of the Gemini CLI's sign-in choices, read to tell whether it is signed in.",
    ),
    EnvVar(
        "GEMINI_CLI_USE_COMPUTE_ADC",
        "gemini (CLI)",
        "One of the Gemini CLI's sign-in choices, read to tell whether it is signed in.",
    ),
    EnvVar(
        "CLOUD_SHELL",
        "gemini (CLI)",
        "Cloud Shell signs the Gemini CLI in; read to tell whether it is signed in.",
    ),
    EnvVar(
        "GOOGLE_GENAI_USE_VERTEXAI",
        "gemini (CLI)",
        "The Gemini CLI on Vertex AI; read to tell whether it is signed in.",
    ),
    EnvVar(
        "GOOGLE_CLOUD_PROJECT",
        "gemini (CLI)",
        "Vertex AI's project for the Gemini CLI; read to tell whether it is signed in.",
    ),
    EnvVar(
        "GOOGLE_CLOUD_LOCATION",
        "gemini (CLI)",
        "Vertex AI's location for the Gemini CLI; read to tell whether it is signed in.",
    ),
    EnvVar(
        "ORT_DISABLE_TELEMETRY",
        "onnxruntime",
        "modelport sets it to 1 (unless set) before ONNX Runtime loads, so that ONNX Runtime "
        "writes no device id under `~/.cache/Microsoft` and starts no telemetry; 0 allows them.",
    ),
)


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("modelport", appauthor=False))


@dataclass(frozen=True)
class Settings:
    """The settings in force for this process."""

    home: Path
    config_file: Path
    database_url: str
    #: ``s3://bucket/prefix`` (normalized: no trailing slash), or None for the local store.
    store_url: str | None = None
    s3_endpoint_url: str | None = None
    #: Bytes of blobs the local cache in front of ``store_url`` keeps; None: no limit.
    store_cache_size: int | None = None
    bundled_catalog: bool = True
    catalog_snapshot: bool = True
    host: str = "127.0.0.1"
    port: int = 8642
    gpu_memory_gb: float | None = None
    http_timeout: float = 30.0
    db_busy_timeout: float = 10.0
    onnx_zoo_url: str = "https://github.com/onnx/models/raw/main"
    onnx_zoo_org: str = "onnxmodelzoo"
    kaggle_url: str = "https://api.kaggle.com"
    tfhub_url: str = "https://tfhub.dev"
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    debug: bool = False
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    #: Seconds; negative keeps models loaded forever.
    keep_alive: float = 300.0
    max_loaded_models: int = 3
    #: Bytes; None means three quarters of the machine's memory.
    max_memory: int | None = None
    max_queue: int = 512
    batch_wait_ms: float = 2.0
    max_batch_tokens: int = 16384
    max_request_bytes: int = 32 * 10**6
    #: Seconds per provider name; ``"*"`` is every other provider's.
    provider_timeout: Mapping[str, float] = field(default_factory=lambda: {"*": 120.0})
    provider_retries: int = 2
    #: ``auto``, ``api`` or ``cli`` per provider name; ``"*"`` is every other provider's.
    provider_access: Mapping[str, str] = field(default_factory=lambda: {"*": "auto"})
    fallbacks: tuple[str, ...] = ()
    daily_budget: float | None = None
    #: How many times faster than their profile simulated models answer; 0 is instant.
    sim_speed: float = 1.0
    simulate: bool = False
    #: A rate per fault kind (429, 500, 503, timeout, cut).
    sim_faults: Mapping[str, float] = field(default_factory=dict)
    sim_rpm: int | None = None
    sim_tpm: int | None = None
    secrets_key: str | None = field(default=None, repr=False)
    #: Base URLs of the built-in providers' APIs, by provider name.
    provider_urls: Mapping[str, str] = field(default_factory=lambda: dict(PROVIDER_URLS))

    def timeout_of(self, provider: str) -> float:
        """Seconds a call to that provider may take."""
        return self.provider_timeout.get(provider, self.provider_timeout.get("*", 120.0))

    def access_of(self, provider: str) -> str:
        """How that provider is reached: auto, api or cli."""
        return self.provider_access.get(provider, self.provider_access.get("*", "auto"))

    @property
    def database_path(self) -> Path | None:
        """The SQLite file behind ``database_url``, or None for another database."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url[len(prefix) :])
        return None


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}.")


def _parse_number(name: str, value: object, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value if isinstance(value, int | float) else str(value))
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, not {value!r}.") from None
    if number < 0:
        raise ConfigError(f"{name} must not be negative, got {value!r}.")
    return number


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str | float | int, *, default_unit: str = "b") -> int:
    """Parse a size like ``24GB``, ``512MiB`` or ``1.5g`` into bytes."""
    from modelport.errors import InvalidValueError

    if isinstance(text, int | float):
        if text < 0:
            raise InvalidValueError(f"Size must not be negative, got {text}.")
        return int(text * _SIZE_UNITS[default_unit])
    raw = str(text).strip().lower().replace(" ", "")
    number = raw.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = raw[len(number) :] or default_unit
    if unit not in _SIZE_UNITS or not number:
        raise InvalidValueError(
            f"Invalid size {text!r}.", hint="Use a number with a unit, e.g. 24GB or 512MiB."
        )
    try:
        value = float(number)
    except ValueError:
        raise InvalidValueError(
            f"Invalid size {text!r}.", hint="Use a number with a unit, e.g. 24GB or 512MiB."
        ) from None
    if value < 0 or value != value or value == float("inf"):
        raise InvalidValueError(f"Size must be a finite, non-negative number, got {text!r}.")
    return int(value * _SIZE_UNITS[unit])


_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_seconds(text: str | float | int, *, default_unit: str | None = "s") -> float:
    """Parse a duration like ``5s``, ``500ms``, ``90m`` or ``30d`` into seconds.

    A bare number is in ``default_unit``; with ``default_unit=None`` a unit is required.
    """
    from modelport.errors import InvalidValueError

    hint = "Use a number and a unit: 500ms, 5s, 90m, 12h, 30d, 2w."
    if isinstance(text, int | float) and not isinstance(text, bool):
        number, unit = float(text), default_unit
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|[smhdw])?\s*", str(text).lower())
        if not match:
            raise InvalidValueError(f"Invalid duration {text!r}.", hint=hint)
        number, unit = float(match.group(1)), match.group(2) or default_unit
    if unit is None:
        raise InvalidValueError(f"Invalid duration {text!r}: it needs a unit.", hint=hint)
    if number < 0 or number == float("inf"):
        raise InvalidValueError(f"A duration must be finite and not negative, got {text!r}.")
    return number * _DURATION_UNITS[unit]


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(
            f"Config file {path} is not valid TOML: {e}.", hint="Fix or remove the file."
        ) from e
    except OSError as e:
        raise ConfigError(f"Config file {path} cannot be read: {e.strerror}.") from e
    known = {spec.key for spec in SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"Config file {path} has unknown key(s): {', '.join(unknown)}.",
            hint="Known keys: " + ", ".join(sorted(k for k in known if k != "-")) + ".",
        )
    return data


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Build the settings from an environment (``os.environ`` by default) and config file."""
    env = dict(os.environ if environ is None else environ)
    home = Path(env["MODELPORT_HOME"]).expanduser() if env.get("MODELPORT_HOME") else None
    if home is None:
        home = _default_home()
    config_file = Path(env.get("MODELPORT_CONFIG") or home / "config.toml").expanduser()
    config = _read_config(config_file)
    if "home" in config and not env.get("MODELPORT_HOME"):
        home = Path(str(config["home"])).expanduser()

    def pick(spec_field: str) -> object | None:
        spec = next(s for s in SETTINGS if s.field == spec_field)
        if env.get(spec.env) not in (None, ""):
            return env[spec.env]
        return config.get(spec.key)

    database_url = str(pick("database_url") or f"sqlite:///{home / 'modelport.db'}")
    values: dict[str, Any] = {
        "home": home,
        "config_file": config_file,
        "database_url": database_url,
    }
    _store(pick, env, values)
    if (raw := pick("bundled_catalog")) is not None:
        values["bundled_catalog"] = _parse_bool("MODELPORT_BUNDLED_CATALOG", raw)
    if (raw := pick("catalog_snapshot")) is not None:
        values["catalog_snapshot"] = _parse_bool("MODELPORT_CATALOG_SNAPSHOT", raw)
    if (raw := pick("host")) is not None:
        values["host"] = str(raw)
    if (raw := pick("port")) is not None:
        port = _parse_number("MODELPORT_PORT", raw, int)
        if not 0 < port < 65536:
            raise ConfigError(f"MODELPORT_PORT must be between 1 and 65535, not {raw!r}.")
        values["port"] = port
    if (raw := pick("gpu_memory_gb")) is not None:
        try:
            values["gpu_memory_gb"] = parse_size(str(raw), default_unit="gb") / 1e9
        except ValueError as e:
            raise ConfigError(f"MODELPORT_GPU_MEMORY is invalid: {e}") from e
    if (raw := pick("http_timeout")) is not None:
        values["http_timeout"] = float(_parse_number("MODELPORT_HTTP_TIMEOUT", raw, float))
    if (raw := pick("db_busy_timeout")) is not None:
        values["db_busy_timeout"] = float(_parse_number("MODELPORT_DB_BUSY_TIMEOUT", raw, float))
    if (raw := pick("onnx_zoo_url")) is not None:
        values["onnx_zoo_url"] = str(raw).rstrip("/")
    if (raw := pick("onnx_zoo_org")) is not None:
        values["onnx_zoo_org"] = str(raw).strip("/")
    for url_field in ("kaggle_url", "tfhub_url", "github_url", "github_api_url"):
        if (raw := pick(url_field)) is not None:
            values[url_field] = str(raw).rstrip("/")
    if (raw := pick("debug")) is not None:
        values["debug"] = _parse_bool("MODELPORT_DEBUG", raw)
    _serving(pick, values)
    _providers(pick, env, config, values)
    return Settings(**values)


def parse_keep_alive(value: object, *, name: str = "keep_alive") -> float:
    """Seconds from a keep-alive like Ollama's: ``5m``, ``30s``, a number of seconds, ``-1``
    (forever) or ``0`` (unload at once)."""
    from modelport.errors import InvalidValueError

    if isinstance(value, bool):
        raise InvalidValueError(f"{name} must be a duration like 5m or a number of seconds.")
    if isinstance(value, int | float):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidValueError(f"{name} must be finite, not {value!r}.")
        return -1.0 if number < 0 else number
    text = str(value).strip()
    if text.startswith("-"):
        try:
            parse_seconds(text[1:])
        except InvalidValueError:
            raise InvalidValueError(
                f"{name} must be a duration like 5m or a number of seconds, not {value!r}."
            ) from None
        return -1.0
    try:
        return parse_seconds(text)
    except InvalidValueError:
        raise InvalidValueError(
            f"{name} must be a duration like 5m or a number of seconds, not {value!r}."
        ) from None


#: A bucket name S3 accepts (3 to 63 lower-case letters, digits, dots and hyphens).
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _store(pick: Any, env: Mapping[str, str], values: dict[str, Any]) -> None:
    """Where the store keeps blobs: the local folder, or an S3-compatible bucket."""
    from modelport.errors import InvalidValueError

    if (raw := pick("store_url")) not in (None, ""):
        text = str(raw).strip()
        bucket, _, prefix = text.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        if (
            not text.startswith("s3://")
            or not _BUCKET_RE.fullmatch(bucket)
            or any(part in ("", ".", "..") for part in prefix.split("/") if prefix)
        ):
            raise ConfigError(
                f"MODELPORT_STORE_URL must be s3://BUCKET or s3://BUCKET/PREFIX, not {text!r}.",
                hint="Unset it to keep the store in $MODELPORT_HOME/store.",
            )
        values["store_url"] = f"s3://{bucket}" + (f"/{prefix}" if prefix else "")
    # AWS's own variable names the service too (boto3 reads it; modelport needs to know of
    # it, to address a service of one's own by path, not by a host name per bucket).
    if (raw := pick("s3_endpoint_url") or env.get("AWS_ENDPOINT_URL")) not in (None, ""):
        if not re.match(r"https?://[^/\s]", str(raw)):
            raise ConfigError(
                "MODELPORT_S3_ENDPOINT_URL (or AWS_ENDPOINT_URL) must be an http(s) URL, "
                f"not {str(raw)!r}."
            )
        values["s3_endpoint_url"] = str(raw).rstrip("/")
    if (raw := pick("store_cache_size")) not in (None, ""):
        try:
            values["store_cache_size"] = parse_size(str(raw))
        except InvalidValueError as e:
            raise ConfigError(f"MODELPORT_STORE_CACHE_SIZE is invalid: {e.message}") from None


def _serving(pick: Any, values: dict[str, Any]) -> None:
    """The settings of ``modelport serve``."""
    from modelport.errors import InvalidValueError

    if (raw := pick("api_key")) not in (None, ""):
        values["api_key"] = str(raw)
    if (raw := pick("cors_origins")) is not None:
        values["cors_origins"] = tuple(o.strip() for o in str(raw).split(",") if o.strip())
    if (raw := pick("keep_alive")) is not None:
        try:
            values["keep_alive"] = parse_keep_alive(raw, name="MODELPORT_KEEP_ALIVE")
        except InvalidValueError as e:
            raise ConfigError(e.message) from None
    for name, env in (
        ("max_loaded_models", "MODELPORT_MAX_LOADED_MODELS"),
        ("max_queue", "MODELPORT_MAX_QUEUE"),
        ("max_batch_tokens", "MODELPORT_MAX_BATCH_TOKENS"),
    ):
        if (raw := pick(name)) is not None:
            number = _parse_number(env, raw, int)
            if number < 1:
                raise ConfigError(f"{env} must be at least 1, not {raw!r}.")
            values[name] = number
    if (raw := pick("batch_wait_ms")) is not None:
        values["batch_wait_ms"] = float(_parse_number("MODELPORT_BATCH_WAIT_MS", raw, float))
    for name, env in (
        ("max_memory", "MODELPORT_MAX_MEMORY"),
        ("max_request_bytes", "MODELPORT_MAX_REQUEST_BYTES"),
    ):
        if (raw := pick(name)) is not None:
            try:
                values[name] = parse_size(str(raw))
            except InvalidValueError as e:
                raise ConfigError(f"{env} is invalid: {e.message}") from None


#: The built-in providers' default base URLs (from their SettingSpec rows).
PROVIDER_URLS: dict[str, str] = {
    spec.key.removesuffix("_url"): spec.default
    for spec in SETTINGS
    if spec.field == "provider_urls"
}

ACCESS_MODES = ("auto", "api", "cli")


def _per_provider(env: str, raw: object, parse: Any) -> dict[str, Any]:
    """``60,anthropic=300`` (or a TOML table) → ``{"*": 60, "anthropic": 300}``."""
    items: list[tuple[str, object]]
    if isinstance(raw, dict):
        items = [(str(k), v) for k, v in raw.items()]
    else:
        items = []
        for part in str(raw).split(","):
            head, sep, text = part.strip().rpartition("=")
            if text.strip():
                items.append((head.strip() if sep else "*", text.strip()))
    out: dict[str, Any] = {}
    for name, value in items:
        if name != "*" and not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name):
            raise ConfigError(f"{env} names an invalid provider {name!r}.")
        out[name] = parse(value)
    return out


def _providers(
    pick: Any, env: dict[str, str], config: dict[str, Any], values: dict[str, Any]
) -> None:
    """The settings of hosted providers: timeouts, retries, access, URLs, budget."""

    def seconds(value: object) -> float:
        number = float(_parse_number("MODELPORT_PROVIDER_TIMEOUT", value, float))
        if number == 0:
            raise ConfigError("MODELPORT_PROVIDER_TIMEOUT must be above 0 seconds.")
        return number

    def access(value: object) -> str:
        text = str(value).strip().lower()
        if text not in ACCESS_MODES:
            raise ConfigError(f"MODELPORT_PROVIDER_ACCESS must be auto, api or cli, not {value!r}.")
        return text

    if (raw := pick("provider_timeout")) is not None:
        values["provider_timeout"] = {"*": 120.0} | _per_provider(
            "MODELPORT_PROVIDER_TIMEOUT", raw, seconds
        )
    if (raw := pick("provider_retries")) is not None:
        values["provider_retries"] = int(_parse_number("MODELPORT_PROVIDER_RETRIES", raw, int))
    if (raw := pick("provider_access")) is not None:
        values["provider_access"] = {"*": "auto"} | _per_provider(
            "MODELPORT_PROVIDER_ACCESS", raw, access
        )
    if (raw := pick("fallbacks")) is not None:
        items = raw if isinstance(raw, list) else str(raw).split(",")
        values["fallbacks"] = tuple(str(m).strip() for m in items if str(m).strip())
    if (raw := pick("daily_budget")) is not None:
        values["daily_budget"] = float(_parse_number("MODELPORT_DAILY_BUDGET", raw, float))
    if (raw := pick("sim_speed")) is not None:
        values["sim_speed"] = parse_speed(raw)
    if (raw := pick("simulate")) is not None:
        values["simulate"] = _parse_bool("MODELPORT_SIMULATE", raw)
    if (raw := pick("sim_faults")) is not None:
        values["sim_faults"] = parse_fault_rates(raw)
    for name, env_name in (("sim_rpm", "MODELPORT_SIM_RPM"), ("sim_tpm", "MODELPORT_SIM_TPM")):
        if (raw := pick(name)) not in (None, ""):
            values[name] = int(_parse_number(env_name, raw, int)) or None
    if (raw := pick("secrets_key")) not in (None, ""):
        values["secrets_key"] = str(raw)
    urls = dict(PROVIDER_URLS)
    for name in PROVIDER_URLS:
        variable = f"MODELPORT_{name.upper()}_URL"
        value = env.get(variable) or config.get(f"{name}_url")
        if value:
            if not re.match(r"https?://", str(value)):
                raise ConfigError(f"{variable} must be an http(s) URL, not {value!r}.")
            urls[name] = str(value).rstrip("/")
    values["provider_urls"] = urls


#: The fault kinds ``MODELPORT_SIM_FAULTS`` takes.
SIM_FAULT_KINDS = ("429", "500", "503", "timeout", "cut")


def parse_fault_rates(value: object) -> dict[str, float]:
    """``429=0.05,cut=0.02`` (or a TOML table) → ``{"429": 0.05, "cut": 0.02}``."""
    items = (
        value.items()
        if isinstance(value, dict)
        else (part.strip().partition("=")[::2] for part in str(value).split(",") if part.strip())
    )
    rates: dict[str, float] = {}
    for kind, raw in items:
        kind = str(kind).strip()
        if kind not in SIM_FAULT_KINDS:
            raise ConfigError(
                f"MODELPORT_SIM_FAULTS names an unknown fault {kind!r}; "
                f"the kinds are {', '.join(SIM_FAULT_KINDS)}."
            )
        try:
            rate = float(raw)
        except (TypeError, ValueError):
            rate = -1.0
        if not 0 <= rate <= 1:
            raise ConfigError(f"MODELPORT_SIM_FAULTS: the rate of {kind} must be 0 to 1.")
        rates[kind] = rate
    if sum(rates.values()) > 1:
        raise ConfigError("MODELPORT_SIM_FAULTS: the rates add up to more than 1.")
    return rates


def parse_speed(value: object) -> float:
    """A simulation speed: ``1x``, ``10x``, ``2.5`` (times faster), or ``instant`` (0)."""
    text = str(value).strip().lower()
    if text == "instant":
        return 0.0
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*x?", text)
    number = float(match.group(1)) if match else 0.0
    if number <= 0 or number == float("inf"):
        raise ConfigError(
            f"MODELPORT_SIM_SPEED must be a factor like 1x, 10x or 100x, or instant, not {value!r}."
        )
    return number


def environment_key(names: Sequence[str]) -> tuple[str, str] | None:
    """The first of these environment variables that is set, and its value (a provider's
    conventional key variables, read at call time so that a key set later is seen)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return name, value
    return None


_lock = threading.Lock()
_settings: Settings | None = None


def get_settings() -> Settings:
    """The settings of this process, loaded once."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = load_settings()
        return _settings


def reset_settings() -> None:
    """Forget the loaded settings so the next ``get_settings`` reads them again."""
    global _settings
    with _lock:
        _settings = None


def setting_fields() -> list[str]:
    """The names of the Settings fields that are user-facing settings."""
    return [f.name for f in fields(Settings)]
