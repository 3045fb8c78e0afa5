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
from modelport.setting_specs import ENVIRONMENT, SETTINGS, EnvVar, SettingSpec

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
