"""The one exception hierarchy of modelport.

Every error carries a user-facing ``message`` and, where there is a next step, a
``hint`` that names CLI flags and commands. The CLI prints ``message`` and ``hint`` on
one line (one JSON object on stderr with ``--json``) and exits with the class's
``exit_code``; the server maps each class to one HTTP status and one JSON shape.

Exit codes of the CLI:

    0    success
    1    an error (every class below unless it says otherwise)
    2    bad usage or bad input: a reference, a value, a task, a hub name, a folder
    3    code the user has not trusted would run; ``validate``: the model does not fit
    4    ``serve``: the port is already in use
    130  interrupted (Ctrl-C)

The tree (a test checks it against the classes):

    ModelportError
     ├── ConfigError                  a setting or the config file is invalid
     ├── DatabaseBusyError            another program holds the database locked too long
     ├── DatabaseUnavailableError     (also ConnectionError) the database server is unreachable
     ├── InvalidReferenceError        (also ValueError) a model reference cannot be parsed
     ├── ModelNotFoundError           (also KeyError) no model matches a name or id
     │    └── AmbiguousModelError     several models match a name equally well
     ├── DuplicateModelError          an id is registered twice
     ├── CatalogError                 a catalog file or catalog operation is invalid
     │    ├── CatalogValidationError  (also ValueError) entries fail the schema
     │    └── CatalogShrinkError      a remote update would drop too many entries
     ├── InvalidValueError            (also ValueError) a number, size or option is out of range
     │    ├── UnknownTaskError        (also ValueError) a pipeline task name is unknown
     │    ├── UnsupportedParameterError  a request parameter this model cannot honour
     │    └── InputTooLongError       an input has more tokens than the model takes
     ├── FolderNotFoundError          (also FileNotFoundError) a model folder path is no folder
     ├── MissingExtraError            (also ImportError) an optional extra is not installed
     ├── RemoteError                  (also ConnectionError) a remote catalog or hub failed
     │    ├── HubUnavailableError     a hub cannot be reached or answers 5xx
     │    │    └── HubTimeoutError    a hub sent nothing for MODELPORT_HTTP_TIMEOUT seconds
     │    ├── HubMetadataError        a hub's metadata holds an impossible value
     │    └── RateLimitedError        a hub answered 429; ``retry_after`` says when to retry
     ├── HubAccessError               (also PermissionError) gated, private or a bad token
     ├── RevisionNotFoundError        (also KeyError) the repo has no such branch, tag or commit
     ├── OfflineError                 offline mode and the model is not complete in the store
     ├── UnsafeFileError              a hub lists a file name that would escape the store
     ├── PickleRefusedError           only pickle weights exist and --allow-pickle was not given
     ├── UntrustedCodeError           (also PermissionError) it would run code not trusted
     ├── IncompatibleModelError       the opset or operators are beyond this runtime
     ├── IntegrityError               a download or a stored blob does not match its digest
     ├── ObjectStoreError             (also ConnectionError) the store's S3 bucket failed a request
     ├── ConversionError              an ONNX export failed or differs from the original
     ├── NotInStoreError              (also KeyError) the model is not in the local store
     ├── PullCancelledError           a pull was cancelled; nothing of it was kept
     ├── UnknownHubError              (also ValueError) no hub is registered under that name
     ├── PortInUseError               ``serve``: the address is already taken
     ├── ServerBusyError              ``serve``: a model's queue is full; retry after a while
     ├── AuthenticationError          ``serve``: a missing or wrong API key
     ├── RequestTooLargeError         ``serve``: a request body past MODELPORT_MAX_REQUEST_BYTES
     ├── ServerNotRunningError        ``ps``/``stop``: no modelport server listens there
     ├── UnknownProviderError         (also ValueError) no hosted provider has that name
     ├── UnsupportedOperationError    (also ValueError) a provider cannot do what was asked
     ├── ProviderError                (also ConnectionError) a hosted provider failed a call
     │    ├── ProviderUnavailableError  unreachable, or a 5xx after the retries
     │    │    └── ProviderTimeoutError  no answer within the provider's timeout
     │    ├── ProviderRateLimitError  429 after the retries; ``retry_after`` says when
     │    ├── ContentFilteredError    the provider refused the content
     │    └── ModelRetiredError       the provider no longer serves the model
     ├── MissingKeyError              no key for a provider anywhere it is looked up
     ├── KeyRejectedError             (also PermissionError) the provider rejected the key
     ├── KeyExpiredError              a stored key is past the expiry date it was set with
     ├── SecretStoreError             the key store cannot be read or written
     └── BudgetExceededError          today's spend reached MODELPORT_DAILY_BUDGET
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AmbiguousModelError",
    "AuthenticationError",
    "BudgetExceededError",
    "CatalogError",
    "CatalogShrinkError",
    "CatalogValidationError",
    "ConfigError",
    "ContentFilteredError",
    "ConversionError",
    "DatabaseBusyError",
    "DatabaseUnavailableError",
    "DuplicateModelError",
    "FolderNotFoundError",
    "HubAccessError",
    "HubMetadataError",
    "HubTimeoutError",
    "HubUnavailableError",
    "IncompatibleModelError",
    "InputTooLongError",
    "IntegrityError",
    "InvalidReferenceError",
    "InvalidValueError",
    "KeyExpiredError",
    "KeyRejectedError",
    "MissingExtraError",
    "MissingKeyError",
    "ModelNotFoundError",
    "ModelRetiredError",
    "ModelportError",
    "NotInStoreError",
    "ObjectStoreError",
    "OfflineError",
    "PickleRefusedError",
    "PortInUseError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "PullCancelledError",
    "RateLimitedError",
    "RemoteError",
    "RequestTooLargeError",
    "RevisionNotFoundError",
    "SecretStoreError",
    "ServerBusyError",
    "ServerNotRunningError",
    "UnknownHubError",
    "UnknownProviderError",
    "UnknownTaskError",
    "UnsafeFileError",
    "UnsupportedOperationError",
    "UnsupportedParameterError",
    "UntrustedCodeError",
]


class ModelportError(Exception):
    """Base class of every error modelport raises on purpose."""

    code: str = "error"
    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and its hint as one sentence pair, for a terminal."""
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message


class ConfigError(ModelportError):
    """A setting, an environment variable or the config file is invalid."""

    code = "config_error"
    http_status = 500


class DatabaseBusyError(ModelportError):
    """Another program held the database locked past the busy timeout."""

    code = "database_busy"
    http_status = 503

    def __init__(self, where: str, seconds: float) -> None:
        self.where = where
        self.seconds = seconds
        super().__init__(
            f"The database {where} stayed locked by another program for {seconds:g} s.",
            hint="Let the other modelport process finish (or close the program holding it) "
            "and try again, or raise MODELPORT_DB_BUSY_TIMEOUT.",
        )


class DatabaseUnavailableError(ModelportError, ConnectionError):
    """The database server cannot be reached, or dropped the connection (it restarts)."""

    code = "database_unavailable"
    http_status = 503

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(
            f"The database {where} cannot be reached: {reason}",
            hint="Try again in a moment; if it persists, check that the database server runs "
            "and MODELPORT_DATABASE_URL.",
        )


class InvalidReferenceError(ModelportError, ValueError):
    """A model reference does not follow ``[registry:]name[@revision]``."""

    code = "invalid_reference"
    exit_code = 2
    http_status = 400

    def __init__(self, ref: str, reason: str, *, hint: str | None = None) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(
            f"Invalid model reference {ref!r}: {reason}.",
            hint=hint or "Use [registry:]name[@revision], e.g. hf:org/model@main.",
        )


class ModelNotFoundError(ModelportError, KeyError):
    """No model in the catalog matches the given id or name."""

    code = "model_not_found"
    http_status = 404

    def __init__(
        self,
        ref: str,
        *,
        suggestions: Sequence[str] = (),
        message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.ref = ref
        self.suggestions = list(suggestions)
        if hint is None:
            if self.suggestions:
                hint = "Did you mean " + ", ".join(self.suggestions[:5]) + "?"
            else:
                hint = "Run `modelport search QUERY` to find models."
        super().__init__(message or f"No model matches {ref!r}.", hint=hint)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class AmbiguousModelError(ModelNotFoundError):
    """Several models match a name about equally well."""

    code = "ambiguous_model"
    http_status = 409

    def __init__(self, ref: str, *, suggestions: Sequence[str]) -> None:
        super().__init__(
            ref,
            suggestions=suggestions,
            message=f"{ref!r} matches several models.",
            hint="Did you mean " + ", ".join(list(suggestions)[:5]) + "? Use the full id.",
        )


class DuplicateModelError(ModelportError):
    """An id is registered twice where ids must be unique."""

    code = "duplicate_model"
    http_status = 409

    def __init__(self, model_id: str, *, where: str | None = None) -> None:
        self.model_id = model_id
        place = f" in {where}" if where else ""
        super().__init__(
            f"Model id {model_id!r} appears more than once{place}.",
            hint="Give every entry a unique id, or import with --replace to overwrite it.",
        )


class CatalogError(ModelportError):
    """A catalog file or a catalog operation is invalid."""

    code = "catalog_error"
    http_status = 400


class CatalogValidationError(CatalogError, ValueError):
    """Catalog entries fail the schema; ``problems`` holds (JSON path, message) pairs."""

    code = "catalog_invalid"

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        first_path, first_msg = self.problems[0] if self.problems else ("$", "invalid")
        more = len(self.problems) - 1
        extra = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        super().__init__(
            f"{source} is not a valid catalog: {first_path}: {first_msg}{extra}.",
            hint=f"Run `modelport catalog validate {source}` to see every problem.",
        )


class CatalogShrinkError(CatalogError):
    """A remote catalog update would remove more entries than allowed."""

    code = "catalog_shrink"
    http_status = 409

    def __init__(self, source: str, before: int, after: int) -> None:
        self.before = before
        self.after = after
        super().__init__(
            f"Refusing to update {source}: it would shrink from {before} to {after} entries.",
            hint="Check the remote catalog, or pass --force to accept it.",
        )


class InvalidValueError(ModelportError, ValueError):
    """A number, a size, a filter or an option value is out of range or malformed."""

    code = "invalid_value"
    exit_code = 2
    # 400, not 422: the request matched the schema; its value is what cannot be used.
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None, param: str | None = None) -> None:
        super().__init__(message, hint=hint)
        #: The request parameter at fault, where there is one (OpenAI's ``param``).
        self.param = param


class UnsupportedParameterError(InvalidValueError):
    """A request asks for something this model or endpoint cannot do; never ignored."""

    code = "unsupported_parameter"

    def __init__(self, param: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{param}: {reason}", hint=hint, param=param)


class InputTooLongError(InvalidValueError):
    """An input has more tokens than the model takes."""

    code = "context_length_exceeded"

    def __init__(
        self, model: str, tokens: int, limit: int, *, param: str = "input", what: str = "input"
    ) -> None:
        self.tokens = tokens
        self.limit = limit
        super().__init__(
            f"{model} takes at most {limit} tokens, but the {what} has {tokens}.",
            hint="Shorten the input (or ask for fewer new tokens).",
            param=param,
        )


class UnknownTaskError(InvalidValueError):
    """A pipeline task name is not known."""

    code = "unknown_task"

    def __init__(self, task: str, *, suggestions: Sequence[str] = ()) -> None:
        self.task = task
        hint = (
            "Did you mean " + ", ".join(suggestions[:3]) + "?"
            if suggestions
            else "Run `modelport tasks` to list the known tasks."
        )
        super().__init__(f"Unknown task {task!r}.", hint=hint)


class FolderNotFoundError(ModelportError, FileNotFoundError):
    """A path given as a model folder (``./my-model``, ``/x/y``) is no folder."""

    code = "folder_not_found"
    exit_code = 2
    http_status = 404

    def __init__(self, path: str, *, is_file: bool = False) -> None:
        self.path = path
        if is_file:
            super().__init__(
                f"{path} is a file, not a model folder.",
                hint="Give the folder that holds it (with its modelport.yml, gpux.yml or config).",
            )
            return
        super().__init__(
            f"No such folder: {path}.",
            hint="Check the path; a name without ./ or / is looked up in the catalog.",
        )

    def __str__(self) -> str:  # OSError would otherwise print its own (empty) fields
        return self.message


class MissingExtraError(ModelportError, ImportError):
    """An optional dependency is needed but not installed."""

    code = "missing_extra"
    # A server without the extra cannot do this at all; the request itself was fine.
    http_status = 501

    def __init__(self, extra: str, *, feature: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional {extra!r} dependencies.",
            hint=f"Install them with: pip install 'modelport[{extra}]'",
        )


class RemoteError(ModelportError, ConnectionError):
    """A remote catalog or registry could not be reached or answered badly."""

    code = "remote_error"
    http_status = 502


class HubUnavailableError(RemoteError):
    """A hub cannot be reached, times out, or answers with a server error."""

    code = "hub_unavailable"
    http_status = 503

    def __init__(self, message: str, *, hub: str, hint: str | None = None) -> None:
        self.hub = hub
        super().__init__(message, hint=hint or "Check the network, or try again later.")


class HubTimeoutError(HubUnavailableError):
    """A hub accepted the request, then sent nothing for ``MODELPORT_HTTP_TIMEOUT`` seconds."""

    def __init__(self, what: str, *, hub: str, seconds: float, hint: str | None = None) -> None:
        self.seconds = seconds
        super().__init__(
            f"{what} within {seconds:g} s.",
            hub=hub,
            hint=hint or "Try again later, or raise MODELPORT_HTTP_TIMEOUT (seconds).",
        )


class HubMetadataError(RemoteError):
    """A hub's metadata holds a value no real hub sends: a bad commit, digest or size."""

    code = "hub_bad_metadata"
    http_status = 502

    def __init__(self, *, hub: str, hub_title: str, field: str, value: object, what: str) -> None:
        self.hub = hub
        self.field = field
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(
            f"{hub_title} sent an invalid {field!r} ({shown}): it must be {what}.",
            hint="Nothing was stored; check the hub address (HF_ENDPOINT) or try again later.",
        )


class RateLimitedError(RemoteError):
    """A hub answered 429 Too Many Requests."""

    code = "rate_limited"
    http_status = 429

    def __init__(self, *, hub: str, retry_after: float | None) -> None:
        self.hub = hub
        self.retry_after = retry_after
        when = f" in {retry_after:g} s" if retry_after is not None else " later"
        super().__init__(
            f"{hub} is rate-limiting requests.",
            hint=f"Try again{when}; a token (HF_TOKEN) raises the limit.",
        )


class HubAccessError(ModelportError, PermissionError):
    """The repo is gated or private, or the token is missing or wrong."""

    code = "access_denied"
    http_status = 403

    def __init__(self, message: str, *, ref: str, hint: str | None = None) -> None:
        self.ref = ref
        super().__init__(message, hint=hint)


class RevisionNotFoundError(ModelportError, KeyError):
    """The repo exists but has no such branch, tag or commit."""

    code = "revision_not_found"
    http_status = 404

    def __init__(self, ref: str, revision: str) -> None:
        self.ref = ref
        self.revision = revision
        super().__init__(
            f"{ref} has no revision {revision!r}.",
            hint="Use a branch, a tag or a commit hash that exists, e.g. @main.",
        )

    def __str__(self) -> str:
        return self.message


class OfflineError(ModelportError):
    """Offline mode is on and the model is not complete in the store."""

    code = "offline"
    http_status = 503


class UnsafeFileError(ModelportError):
    """A hub listed a file name that is absolute, would escape the model folder, or that
    no folder can hold beside the others (listed twice, below a file, too long)."""

    code = "unsafe_file_name"
    http_status = 502

    def __init__(self, ref: str, name: str, *, reason: str | None = None) -> None:
        self.ref = ref
        self.name = name
        self.reason = reason
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"Refusing to pull {ref}: the hub lists an unsafe file name {name!r}{why}.",
            hint="Nothing was written. Report the repository to its hub.",
        )


class PickleRefusedError(ModelportError):
    """Only pickle-based weights exist and pickles were not allowed."""

    code = "pickle_refused"
    http_status = 400

    def __init__(self, ref: str, files: list[str]) -> None:
        self.ref = ref
        self.files = files
        shown = ", ".join(files[:3]) + (" …" if len(files) > 3 else "")
        super().__init__(
            f"{ref} publishes only pickle weights ({shown}), which can run code when loaded.",
            hint="If you trust its author, pass --allow-pickle.",
        )


class UntrustedCodeError(ModelportError, PermissionError):
    """Loading the model would run code from a source the user has not trusted."""

    code = "untrusted_code"
    exit_code = 3
    http_status = 403

    def __init__(self, ref: str, source: str, *, what: str = "its hubconf.py") -> None:
        self.ref = ref
        self.source = source
        super().__init__(
            f"{ref} runs code from {what}, and {source} is not trusted.",
            hint=f"If you trust {source}, run: modelport trust {source} (or pass --trust once).",
        )


class IncompatibleModelError(ModelportError):
    """The model cannot run here: its opset or operators are beyond this runtime."""

    code = "incompatible_model"
    http_status = 422


class IntegrityError(ModelportError):
    """Downloaded or stored bytes do not match the digest the hub published."""

    code = "integrity_error"
    http_status = 502


class NotInStoreError(ModelportError, KeyError):
    """The model is not in the local store."""

    code = "not_in_store"
    http_status = 404

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(
            f"{ref} is not in the local store.", hint=f"Pull it first: modelport pull {ref}"
        )

    def __str__(self) -> str:
        return self.message


class PullCancelledError(ModelportError):
    """A pull was cancelled before it finished (the web UI's Cancel, a closed stream); the
    files it had begun or finished for that model were deleted."""

    code = "pull_cancelled"
    http_status = 409

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(
            f"The pull of {ref} was cancelled; nothing of it was kept.",
            hint=f"Pull it again to fetch it: modelport pull {ref}",
        )


class ObjectStoreError(ModelportError, ConnectionError):
    """The S3-compatible bucket behind ``MODELPORT_STORE_URL`` cannot be reached, refuses
    access, or answered a request with an error."""

    code = "object_store_error"
    http_status = 503


class UnknownHubError(ModelportError, ValueError):
    """No hub is registered under that name."""

    code = "unknown_hub"
    exit_code = 2
    http_status = 400

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(
            f"No hub named {name!r}.", hint="Known hubs: " + ", ".join(sorted(known)) + "."
        )


class ConversionError(ModelportError):
    """An ONNX export failed, or its outputs differ from the original model's."""

    code = "conversion_failed"
    http_status = 422


class PortInUseError(ModelportError):
    """``serve`` cannot listen: another process holds the address."""

    code = "port_in_use"
    exit_code = 4

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"Cannot serve on {host}:{port}: the port is already in use.",
            hint="Stop what listens there, or pick another one with --port.",
        )


class ServerBusyError(ModelportError):
    """A served model's queue is full: the request is refused rather than kept waiting."""

    code = "server_busy"
    http_status = 429

    def __init__(self, model: str, waiting: int, *, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"{model} has {waiting} inputs waiting, as many as MODELPORT_MAX_QUEUE allows.",
            hint=f"Retry in {retry_after:g} s, or raise MODELPORT_MAX_QUEUE.",
        )


class AuthenticationError(ModelportError):
    """A request to a server started with an API key lacks it or carries another one."""

    code = "invalid_api_key"
    http_status = 401

    def __init__(self, *, given: bool) -> None:
        super().__init__(
            "The API key is wrong." if given else "This server requires an API key.",
            hint="Send `Authorization: Bearer <key>` with the key the server was started "
            "with (MODELPORT_API_KEY or --api-key).",
        )


class RequestTooLargeError(ModelportError):
    """A request body is larger than the server reads."""

    code = "request_too_large"
    http_status = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit:,} bytes.",
            hint="Send fewer or shorter inputs per request, or raise "
            "MODELPORT_MAX_REQUEST_BYTES on the server.",
        )


class ServerNotRunningError(ModelportError):
    """No modelport server answers at the configured address."""

    code = "server_not_running"
    http_status = 503

    def __init__(self, url: str) -> None:
        super().__init__(
            f"No modelport server answers at {url}.",
            hint="Start one with `modelport serve`, or set MODELPORT_HOST/MODELPORT_PORT "
            "to where it listens.",
        )


class UnknownProviderError(ModelportError, ValueError):
    """No hosted provider is registered under a name."""

    code = "unknown_provider"
    exit_code = 2
    http_status = 400

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        super().__init__(
            f"No hosted provider is called {name!r}.",
            hint="Known providers: " + ", ".join(sorted(known)) + ".",
        )


class UnsupportedOperationError(ModelportError, ValueError):
    """A provider or model cannot do what was asked (embeddings of a chat-only API...)."""

    code = "unsupported_operation"
    exit_code = 2
    http_status = 400

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)


class ProviderError(ModelportError, ConnectionError):
    """A hosted provider failed a call; ``provider`` is its name, ``status`` its HTTP status."""

    code = "provider_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        super().__init__(message, hint=hint)


class ProviderUnavailableError(ProviderError):
    """A provider cannot be reached or kept answering 5xx through the retries."""

    code = "provider_unavailable"
    http_status = 503


class ProviderTimeoutError(ProviderUnavailableError):
    """A provider sent no answer within its timeout."""

    code = "provider_timeout"
    http_status = 504


class ProviderRateLimitError(ProviderError):
    """A provider kept answering 429 through the retries; ``retry_after`` is in seconds."""

    code = "provider_rate_limited"
    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider, status=429, hint=hint)


class ContentFilteredError(ProviderError):
    """The provider refused the request or the answer with its content filter."""

    code = "content_filtered"
    http_status = 400


class ModelRetiredError(ProviderError):
    """The provider no longer serves a model (or never did under that name)."""

    code = "model_retired"
    http_status = 404


class MissingKeyError(ModelportError):
    """No key for a provider: none given, none in its environment variables, none stored."""

    code = "missing_key"
    http_status = 401

    def __init__(self, provider: str, label: str, env_vars: Sequence[str]) -> None:
        self.provider = provider
        where = " or ".join(env_vars[:2])
        super().__init__(
            f"No {label} key is set.",
            hint=f"Set one with `modelport keys set {provider}`"
            + (f", or in {where}." if where else "."),
        )


class KeyRejectedError(ModelportError, PermissionError):
    """A provider answered 401 or 403 to the key it was sent."""

    code = "key_rejected"
    http_status = 401

    def __init__(self, provider: str, label: str, status: int, *, source: str) -> None:
        self.provider = provider
        self.status = status
        self.source = source
        super().__init__(
            f"The {label} key is rejected ({status}).",
            hint=f"Set one with `modelport keys set {provider}` (the key came from {source}).",
        )


class KeyExpiredError(ModelportError):
    """A stored key is past the expiry date it was set with."""

    code = "key_expired"
    http_status = 401

    def __init__(self, provider: str, expired: str) -> None:
        self.provider = provider
        super().__init__(
            f"The stored {provider} key expired on {expired}.",
            hint=f"Set a new one with `modelport keys rotate {provider}`.",
        )


class SecretStoreError(ModelportError):
    """The encrypted key store cannot be read (another data key, a damaged file) or written."""

    code = "secret_store_error"
    http_status = 500


class BudgetExceededError(ModelportError):
    """Today's recorded spend reached the daily budget: further paid calls are refused."""

    code = "budget_exceeded"
    http_status = 402

    def __init__(self, spent: float, budget: float) -> None:
        self.spent = spent
        self.budget = budget
        super().__init__(
            f"Today's spend (${spent:.4f}) reached the daily budget of ${budget:.2f}.",
            hint="Raise MODELPORT_DAILY_BUDGET, wait for tomorrow (UTC), or use a local model.",
        )
