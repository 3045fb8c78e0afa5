"""Every setting and every environment variable modelport reads, documented once.

``modelport.settings`` reads them; ``python -m modelport.docs`` writes docs/settings.md from
these tables, and tests check that the code reads nothing they leave out.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ENVIRONMENT", "SETTINGS", "EnvVar", "SettingSpec"]


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
        "postgresql+psycopg://… shares one catalog between servers, each answering from "
        "PostgreSQL's indexes (pg_trgm for fuzzy names) without loading the entries.",
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
