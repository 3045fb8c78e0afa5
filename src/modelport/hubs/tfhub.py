"""TensorFlow Hub, now Kaggle Models (``tfhub:owner/model/framework/variation[/version]``).

Kaggle handles are resolved and downloaded by ``kagglehub`` (credentials from
``KAGGLE_USERNAME``/``KAGGLE_KEY`` or ``KAGGLE_API_TOKEN``, as kagglehub reads them),
into a scratch folder, then kept in the store content-addressed.

kagglehub takes its endpoint from ``KAGGLE_API_ENVIRONMENT`` (a fixed table of Kaggle
hosts), not from a URL. ``_kaggle_endpoint`` is the small adapter that makes
``MODELPORT_KAGGLE_URL`` work: for any URL other than the production API it selects
kagglehub's non-production environment and points that environment's table entry at
the URL, for the duration of one call, under a lock.

Old ``https://tfhub.dev/publisher/model/.../version`` handles (any name whose third part
is not a Kaggle framework) are fetched the way ``tensorflow_hub`` resolves an
``http(s)://`` handle: ``{MODELPORT_TFHUB_URL}/HANDLE?tf-hub-format=compressed``, a tar.gz.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from modelport.errors import (
    HubAccessError,
    HubTimeoutError,
    HubUnavailableError,
    IntegrityError,
    InvalidReferenceError,
    MissingExtraError,
    ModelNotFoundError,
    OfflineError,
    RateLimitedError,
)
from modelport.hubs.base import (
    Fetched,
    Hub,
    HubFile,
    HubModel,
    ProgressCallback,
    PullEvent,
    PullOptions,
    PullTarget,
    Ref,
    offline_mode,
    store_folder,
)

if TYPE_CHECKING:
    from modelport.store.store import Store

__all__ = ["KaggleHandle", "TensorFlowHub", "parse_handle"]

PRODUCTION_URL = "https://api.kaggle.com"
#: Kaggle's framework segment of a model handle (lower-cased).
FRAMEWORKS = {
    "tensorflow2": "tensorFlow2",
    "tensorflow1": "tensorFlow1",
    "tflite": "tfLite",
    "tfjs": "tfJs",
    "pytorch": "pyTorch",
    "jax": "jax",
    "flax": "flax",
    "keras": "keras",
    "transformers": "transformers",
    "onnx": "onnx",
    "scikitlearn": "scikitLearn",
    "gguf": "gguf",
    "ggml": "ggml",
    "gemmacpp": "gemmaCpp",
    "coral": "coral",
    "mxnet": "mxnet",
    "triton": "triton",
    "tensorrtllm": "tensorRtLlm",
    "other": "other",
}
_lock = threading.Lock()
_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?"
_PATH_NAME_RE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


@dataclass(frozen=True)
class KaggleHandle:
    """A model handle: Kaggle's ``owner/model/framework/variation`` or an old tfhub.dev path."""

    path: str
    version: int | None
    kaggle: bool

    @property
    def framework(self) -> str | None:
        """Kaggle's framework name, e.g. ``tensorFlow2``."""
        return FRAMEWORKS[self.path.split("/")[2].lower()] if self.kaggle else None


def parse_handle(name: str) -> KaggleHandle:
    """Split a ``tfhub:`` name into its handle and version."""
    parts = name.strip("/").split("/")
    version: int | None = None
    if len(parts) > 1 and parts[-1].isdigit():
        version = int(parts[-1])
        parts = parts[:-1]
    kaggle = len(parts) == 4 and parts[2].lower() in FRAMEWORKS
    if not kaggle and len(parts) < 2:
        raise InvalidReferenceError(
            f"tfhub:{name}",
            "a handle needs owner/model/framework/variation[/version]",
        )
    if kaggle:
        parts[2] = FRAMEWORKS[parts[2].lower()]
    return KaggleHandle("/".join(parts), version, kaggle)


@contextlib.contextmanager
def _kaggle_endpoint(url: str) -> Iterator[None]:
    """Point kagglehub at ``url`` for the duration of the block (see the module docstring)."""
    with _lock:
        if url.rstrip("/") == PRODUCTION_URL:
            yield
            return
        try:
            from kagglesdk import kaggle_env
        except ImportError:
            raise MissingExtraError("kaggle", feature="Pulling from Kaggle Models") from None

        saved_env = os.environ.get("KAGGLE_API_ENVIRONMENT")
        saved_url = kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL]
        os.environ["KAGGLE_API_ENVIRONMENT"] = "LOCALHOST"
        kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = url.rstrip("/")
        try:
            yield
        finally:
            kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = saved_url
            if saved_env is None:
                os.environ.pop("KAGGLE_API_ENVIRONMENT", None)
            else:
                os.environ["KAGGLE_API_ENVIRONMENT"] = saved_env


def _model_api_service() -> Any:
    """kagglesdk's request types, or the install hint when the ``kaggle`` extra is missing."""
    try:
        from kagglesdk.models.types import model_api_service
    except ImportError:
        raise MissingExtraError("kaggle", feature="Pulling from Kaggle Models") from None
    return model_api_service


def _bound_requests(client: Any, seconds: float) -> None:
    """Give every request of a kagglesdk client a connect and read timeout of ``seconds``.

    kagglesdk sends its API calls with no timeout and has no setting for one, so a stalled
    Kaggle would hang a command forever; a transport adapter fills in the timeout.
    """
    import requests

    class Bounded(requests.adapters.HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = (min(seconds, 10.0), seconds)
            return super().send(request, **kwargs)

    session = client.http_client()._session  # made when the client's block was entered
    for prefix in ("http://", "https://"):
        session.mount(prefix, Bounded())


def _kagglehub() -> Any:
    try:
        import kagglehub
    except ImportError:
        raise MissingExtraError("kaggle", feature="Pulling from Kaggle Models") from None
    import logging

    logging.getLogger("kagglehub").setLevel(logging.WARNING)
    return kagglehub


class TensorFlowHub(Hub):
    """Kaggle Models through kagglehub, and old tfhub.dev handles."""

    name = "tfhub"
    options_refusal = "Kaggle Models and TensorFlow Hub hand out a model version as one download"

    def check_name(self, text: str, name: str, revision: str | None) -> None:
        """A Kaggle handle ``owner/model/framework/variation[/version]`` or a tfhub.dev path."""
        if not _PATH_NAME_RE.fullmatch(name) or ".." in name:
            raise InvalidReferenceError(text, f"{name!r} is not a valid tfhub model name")
        if name.count("/") not in (1, 2, 3, 4, 5):
            raise InvalidReferenceError(
                text,
                "a TensorFlow Hub handle needs owner/model/framework/variation[/version]",
            )

    def from_address(self, host: str, path: str) -> Ref | None:
        """``tfhub.dev/...`` and ``kaggle.com/models/...`` addresses."""
        if host in ("tfhub.dev", "www.tfhub.dev"):
            return Ref(name=path, registry="tfhub")
        if host in ("kaggle.com", "www.kaggle.com") and path.startswith("models/"):
            return Ref(name=path.removeprefix("models/"), registry="tfhub")
        return None

    def pinned(self, name: str, revision: str | None) -> str | None:
        """A version number is one fixed revision."""
        return revision if revision and revision.isdigit() else None

    def store_name(self, name: str) -> str:
        """The handle without its version."""
        return parse_handle(name).path

    def store_ref(self, ref: Ref) -> Ref:
        """The handle, at the version the name ends with."""
        handle = parse_handle(ref.name)
        version = ref.revision or (str(handle.version) if handle.version else None)
        return Ref(handle.path, "tfhub", version)

    @staticmethod
    def _settings() -> Any:
        from modelport.settings import get_settings

        return get_settings()

    def _guard(self, what: str) -> None:
        if offline_mode():
            raise OfflineError(f"Cannot reach Kaggle Models for {what}: offline mode is on.")

    def _translate(self, error: Exception, what: str) -> NoReturn:
        """One place that turns kagglehub's and requests' errors into modelport's."""
        import requests

        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
        if status == 429:
            raise RateLimitedError(hub="Kaggle Models", retry_after=None) from None
        if status in (401, 403):
            raise HubAccessError(
                f"Kaggle Models refused access to {what} (HTTP {status}).",
                ref=what,
                hint="Set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), "
                "and accept the model's license on kaggle.com.",
            ) from None
        if status == 404:
            raise ModelNotFoundError(what, message=f"Kaggle Models has no {what}.") from None
        if type(error).__name__ == "DataCorruptionError":
            raise IntegrityError(
                f"A file of {what} from Kaggle Models does not match its published MD5.",
                hint="Nothing was stored. Try again later.",
            ) from None
        if isinstance(error, requests.Timeout):
            raise HubTimeoutError(
                f"Kaggle Models did not answer for {what}",
                hub="tfhub",
                seconds=self._settings().http_timeout,
            ) from None
        if isinstance(error, requests.RequestException | ConnectionError | OSError):
            raise HubUnavailableError(
                f"Cannot reach Kaggle Models for {what}: {type(error).__name__}.", hub="tfhub"
            ) from None
        raise HubUnavailableError(
            f"Kaggle Models failed for {what}: {type(error).__name__}: {error}", hub="tfhub"
        ) from None

    def _client_call(self, what: str, call: Any) -> Any:
        _kagglehub()  # the install hint when it is missing
        from kagglehub.clients import build_kaggle_client

        self._guard(what)
        with _kaggle_endpoint(self._settings().kaggle_url):
            try:
                with build_kaggle_client() as client:
                    _bound_requests(client, self._settings().http_timeout)
                    return call(client)
            except Exception as e:
                self._translate(e, what)

    def latest_version(self, handle: KaggleHandle) -> int:
        """The newest version of a Kaggle model instance."""
        ApiGetModelInstanceRequest = _model_api_service().ApiGetModelInstanceRequest

        owner, model, _, variation = handle.path.split("/")

        def call(client: Any) -> int:
            from kagglehub.handle import parse_model_handle

            request = ApiGetModelInstanceRequest()
            request.owner_slug = owner
            request.model_slug = model
            request.framework = parse_model_handle(handle.path).framework_enum()
            request.instance_slug = variation
            return int(client.models.model_api_client.get_model_instance(request).version_number)

        return int(self._client_call(f"tfhub:{handle.path}", call))

    # ---------------------------------------------------------------- Hub

    def search(
        self,
        query: str,
        *,
        task: str | None = None,
        library: str | None = None,
        limit: int = 20,
        sort: str | None = None,
    ) -> list[HubModel]:
        """Kaggle models matching the query, one result per TensorFlow/Keras/ONNX variation."""
        ApiListModelsRequest = _model_api_service().ApiListModelsRequest

        def call(client: Any) -> list[HubModel]:
            request = ApiListModelsRequest()
            request.search = query
            request.page_size = min(limit, 50)
            response = client.models.model_api_client.list_models(request)
            out = []
            for model in response.models:
                owner, slug = (model.ref or f"{model.author}/{model.slug}").split("/", 1)
                tags = tuple(getattr(t, "name", "") for t in model.tags or ())
                if task and _task_from_tags(tags) != task:
                    continue
                for instance in model.instances or ():
                    framework = _framework_name(instance.framework)
                    if framework not in ("tensorFlow2", "keras", "onnx", "tfLite"):
                        continue
                    out.append(
                        HubModel(
                            hub="tfhub",
                            id=f"{owner}/{slug}/{framework}/{instance.slug}",
                            revision=str(instance.version_number or ""),
                            task=_task_from_tags(tags),
                            library=framework,
                            tags=tags,
                            license=instance.license_name or None,
                            likes=model.vote_count,
                            card_summary=model.subtitle or None,
                        )
                    )
            return out[:limit]

        return list(self._client_call("model search", call))

    def info(self, ref: Ref, *, store: Store | None = None) -> HubModel:
        """The handle at its version (the newest when none is given)."""
        handle = parse_handle(ref.name)
        version = ref.revision or (str(handle.version) if handle.version else None)
        if handle.kaggle and version is None:
            version = str(self.latest_version(handle))
        files: tuple[HubFile, ...] = ()
        if handle.kaggle:
            files = self._list_files(handle, int(version or 0))
        return HubModel(
            hub="tfhub",
            id=handle.path,
            revision=version or "latest",
            files=files,
            library=handle.framework or "tensorflow",
        )

    def _list_files(self, handle: KaggleHandle, version: int) -> tuple[HubFile, ...]:
        ApiListModelInstanceVersionFilesRequest = (
            _model_api_service().ApiListModelInstanceVersionFilesRequest
        )

        owner, model, _, variation = handle.path.split("/")

        def call(client: Any) -> tuple[HubFile, ...]:
            from kagglehub.handle import parse_model_handle

            request = ApiListModelInstanceVersionFilesRequest()
            request.owner_slug = owner
            request.model_slug = model
            request.framework = parse_model_handle(handle.path).framework_enum()
            request.instance_slug = variation
            request.version_number = version
            response = client.models.model_api_client.list_model_instance_version_files(request)
            return tuple(HubFile(f.name, f.size or None, None, None) for f in response.files)

        return tuple(self._client_call(f"tfhub:{handle.path}", call))

    def resolve(self, ref: Ref, *, store: Store, options: PullOptions) -> PullTarget:
        """The version a handle names, or the newest one Kaggle has."""
        handle = parse_handle(ref.name)
        wanted = (
            options.revision or ref.revision or (str(handle.version) if handle.version else None)
        )
        given = self.described(options, handle.path)
        if wanted is None and given is not None and given.revision.isdigit():
            wanted = given.revision
        if wanted is None and handle.kaggle:
            wanted = str(self.latest_version(handle))
        if wanted is None:
            raise InvalidReferenceError(
                f"tfhub:{handle.path}",
                "an old tfhub.dev handle needs its version",
                hint="Add it: tfhub:google/imagenet/mobilenet_v2_100_224/classification/5.",
            )
        if not wanted.isdigit():
            raise InvalidReferenceError(f"tfhub:{handle.path}@{wanted}", "versions are numbers")
        return PullTarget(
            name=handle.path,
            revision=wanted,
            ref=f"tfhub:{handle.path}/{wanted}",
            requested=wanted,
            refs=("latest",),
            model=HubModel(hub="tfhub", id=handle.path, revision=wanted),
            # The files the preflight listed for this version need not be listed again.
            files=given.files if given is not None and given.revision == wanted else None,
        )

    def fetch(
        self, target: PullTarget, *, store: Store, options: PullOptions, emit: ProgressCallback
    ) -> Fetched:
        """Download the version into scratch space, then keep its files in the blobs."""
        handle = parse_handle(target.name)
        version = int(target.revision)
        scratch = store.layout.tmp()
        scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch) as tmp:
            folder = Path(tmp) / "model"
            if handle.kaggle:
                downloaded = self._download_kaggle(handle, version, folder, emit, target.files)
            else:
                downloaded = self._download_compressed(handle, version, Path(tmp), folder, emit)
            files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
            if not files:
                raise ModelNotFoundError(
                    f"tfhub:{handle.path}",
                    message=f"tfhub:{handle.path}/{version} has no files.",
                )
            library = "tensorflow" if (folder / "saved_model.pb").exists() else handle.framework
            return Fetched(store_folder(store, folder, files, emit=emit), downloaded, library)

    def _download_kaggle(
        self,
        handle: KaggleHandle,
        version: int,
        target: Path,
        emit: ProgressCallback,
        listed: Sequence[HubFile] | None = None,
    ) -> int:
        from modelport.store.layout import safe_relative_path

        listed = listed or self._list_files(handle, version)
        for f in listed:
            try:
                safe_relative_path(f.path)
            except ValueError:
                from modelport.errors import UnsafeFileError

                raise UnsafeFileError(f"tfhub:{handle.path}", f.path) from None
        total = sum(f.size or 0 for f in listed) or None
        emit(PullEvent("downloading", file=handle.path, total=total, completed=0))
        kagglehub = _kagglehub()
        self._guard(f"tfhub:{handle.path}")
        with _kaggle_endpoint(self._settings().kaggle_url):
            try:
                kagglehub.model_download(f"{handle.path}/{version}", output_dir=str(target))
            except Exception as e:
                self._translate(e, f"tfhub:{handle.path}/{version}")
        got = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        emit(PullEvent("downloading", file=handle.path, total=total, completed=got))
        for hidden in list(target.rglob(".kagglehub*")):
            hidden.unlink(missing_ok=True)  # kagglehub's own bookkeeping
        return got

    def _download_compressed(
        self,
        handle: KaggleHandle,
        version: int,
        scratch: Path,
        target: Path,
        emit: ProgressCallback,
    ) -> int:
        from modelport.hubs.archives import download_archive, extract_archive

        self._guard(f"tfhub:{handle.path}")
        what = f"tfhub:{handle.path}/{version}"

        def refuse(response: Any) -> NoReturn:
            if response.status_code == 404:
                raise ModelNotFoundError(what, message=f"TensorFlow Hub has no {what}.")
            raise HubUnavailableError(
                f"TensorFlow Hub answered HTTP {response.status_code} for {what}.", hub="tfhub"
            )

        archive = scratch / "model.tar.gz"
        done = download_archive(
            f"{self._settings().tfhub_url}/{handle.path}/{version}?tf-hub-format=compressed",
            archive,
            label=what,
            hub="TensorFlow Hub",
            emit=emit,
            on_error=refuse,
            timeout=self._settings().http_timeout,
        )
        extract_archive(archive, target, ref=what)
        return done


def _framework_name(value: Any) -> str:
    """Kaggle's enum (``MODEL_FRAMEWORK_TENSOR_FLOW_2``) as its handle segment."""
    raw = getattr(value, "name", str(value)).removeprefix("MODEL_FRAMEWORK_")
    key = re.sub(r"[^a-z0-9]", "", raw.lower())
    return FRAMEWORKS.get(key, raw)


def _task_from_tags(tags: Sequence[str]) -> str | None:
    """The first of Kaggle's tags that names a pipeline task ("Image Classification")."""
    from modelport.catalog.tasks import canonical_task
    from modelport.errors import UnknownTaskError

    for tag in tags:
        try:
            return canonical_task(tag)
        except UnknownTaskError:
            continue
    return None
