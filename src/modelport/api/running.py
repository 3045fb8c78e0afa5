"""Run use-cases: a model's source folder, conversion to ONNX, loading and running it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelport.api.catalog import record_use, system_info
from modelport.api.store import get_store, pull, stored_model
from modelport.refs import is_path, parse_ref
from modelport.settings import get_settings

if TYPE_CHECKING:
    from modelport.convert.export import ConversionResult
    from modelport.hubs.base import ProgressCallback
    from modelport.runtime.compat import Compatibility
    from modelport.runtime.model import Model
    from modelport.store.store import StoredModel


#: Loaded models by every option that changes what is loaded: the ref, provider, task,
#: optimize, quantize, input shapes and trust.
_loaded: dict[tuple[object, ...], Model] = {}


@dataclass(frozen=True)
class ModelSource:
    """A model folder to convert, and how to identify its content cheaply."""

    folder: Path
    digest: str
    name: str
    task: str | None
    stored: StoredModel | None = None
    pulled: bool = False
    #: For a PyTorch Hub repository: which entry point, with which keyword arguments.
    entrypoint: str | None = None
    entry_kwargs: tuple[tuple[str, object], ...] = ()


def model_source(
    ref: str, *, pull_missing: bool = True, progress: ProgressCallback | None = None
) -> ModelSource:
    """A local folder, or a store model (pulled first when ``pull_missing``)."""
    from modelport.convert.export import source_digest
    from modelport.errors import NotInStoreError
    from modelport.store.layout import tree_digest

    path = Path(ref).expanduser()
    if _is_folder(path):
        digests = get_settings().home / "store" / "digests"
        return ModelSource(path, source_digest(path, cache_dir=digests), path.name, None)
    _refuse_missing_folder(ref, path)
    store = get_store()
    pulled = False
    try:
        stored = stored_model(ref)
    except NotInStoreError:
        if not pull_missing:
            raise
        pull(ref, progress=progress)
        stored = stored_model(ref)
        pulled = True
    if not store.materialize(stored):
        # A shared store's bucket lost some of its files: a pull fetches those again.
        pull(f"{stored.registry}:{stored.name}@{stored.revision}", progress=progress)
    digest = tree_digest((f.path, f.sha256) for f in store.files(stored))
    entrypoint, entry_kwargs = _torch_entry(ref)
    return ModelSource(
        stored.path,
        digest,
        stored.name,
        stored.task,
        stored,
        pulled,
        entrypoint,
        entry_kwargs,
    )


def _is_folder(path: Path) -> bool:
    """Whether a reference names a folder; a name no file system could hold names none."""
    try:
        return path.is_dir()
    except (OSError, ValueError):  # too long, or a NUL byte: it is a name, not a path
        return False


def _refuse_missing_folder(ref: str, path: Path) -> None:
    """``./my-model`` or ``/x/y`` names a folder: never look it up in the catalog."""
    from modelport.errors import FolderNotFoundError

    if is_path(ref):
        raise FolderNotFoundError(ref, is_file=path.exists())


def _torch_entry(ref: str) -> tuple[str | None, tuple[tuple[str, object], ...]]:
    from modelport.hubs.base import get_hub

    # A code hub's reference may name an entry point and its arguments; ask the hub.
    parsed = parse_ref(ref)
    if parsed.hub is None:
        return None, ()
    return get_hub(parsed.hub).entry_call(parsed)


def _check_trusted(source: ModelSource, trust: bool) -> None:
    """Running a PyTorch Hub repository's code needs the user's trust in it."""
    from modelport.errors import UntrustedCodeError
    from modelport.trust import is_trusted

    if source.stored is None or source.stored.registry != "torch" or trust:
        return
    if not is_trusted(source.stored.name):
        ref = f"torch:{source.stored.name}" + (f"/{source.entrypoint}" if source.entrypoint else "")
        raise UntrustedCodeError(ref, source.stored.name)


def convert(
    ref: str,
    *,
    task: str | None = None,
    optimize: bool = False,
    quantize: str | None = None,
    opset: int | None = None,
    progress: ProgressCallback | None = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
) -> ConversionResult:
    """Convert a stored model (pulled if missing) or a local folder to ONNX, cached."""
    source = model_source(ref, progress=progress)
    return _convert_source(
        source,
        task=task,
        optimize=optimize,
        quantize=quantize,
        opset=opset,
        trust=trust,
        input_shapes=input_shapes,
    )


def _convert_source(
    source: ModelSource,
    *,
    task: str | None,
    optimize: bool,
    quantize: str | None,
    opset: int | None = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
) -> ConversionResult:
    from modelport.api.store import shared_store
    from modelport.catalog.tasks import canonical_task
    from modelport.convert.export import DEFAULT_OPSET, conversion_key, convert_folder

    # The store's folder, without opening its database (a warm run needs none).
    out_root = get_settings().home / "store" / "converted"
    # A shared store keeps converted models in its bucket: a stored model converted by one
    # server is fetched by the others, not converted again.
    remote = shared_store() if source.stored is not None else None
    shared = fetched = None
    if remote is not None:
        import hashlib
        import json

        options = conversion_key(
            source.digest,
            task=canonical_task(task) if task else "",
            opset=opset or DEFAULT_OPSET,
            optimize=optimize,
            quantize=quantize,
        )
        asked = [options, source.entrypoint, repr(source.entry_kwargs), list(input_shapes)]
        shared = "converted/" + hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:32]
        fetched = remote.fetch_folder(shared, out_root)
    result = convert_folder(
        source.folder,
        out_root=out_root,
        task=canonical_task(task) if task else None,
        card_task=source.task,
        source=source.digest,
        name=source.name,
        opset=opset or DEFAULT_OPSET,
        optimize=optimize,
        quantize=quantize,
        entrypoint=source.entrypoint,
        entry_kwargs=dict(source.entry_kwargs),
        input_shapes=input_shapes,
        before_code_runs=lambda: _check_trusted(source, trust),
        debug_log=debug_log_path(),
    )
    if remote is not None and shared is not None and (fetched is None or not result.cached):
        remote.keep_folder(shared, result.path)
    return result


def debug_log_path() -> Path:
    """Where what third-party libraries print during a conversion is kept."""
    return get_settings().home / "logs" / "debug.log"


def load_model(
    ref: str,
    *,
    provider: str | None = None,
    optimize: bool = False,
    quantize: str | None = None,
    task: str | None = None,
    trust: bool = False,
    input_shapes: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> Model:
    """A loaded ``Model`` for repeated calls: a spec folder, or pull → convert → load."""
    from modelport.runtime.model import Model
    from modelport.store import runs

    key = (ref, provider, optimize, quantize, task, tuple(input_shapes), trust)
    if key in _loaded:
        return _loaded[key]
    path = Path(ref).expanduser()
    if _is_folder(path) and ((path / "modelport.yml").exists() or (path / "gpux.yml").exists()):
        _refuse_conversion_options(
            ref, optimize=optimize, quantize=quantize, task=task, input_shapes=input_shapes
        )
        model = Model.load(path, provider=provider, graph_cache=_graph_cache())
        _loaded[key] = model
        return model
    root = get_settings().home / "store"
    options = f"task={task};optimize={optimize};quantize={quantize}"
    if input_shapes:
        options += ";shapes=" + ",".join(input_shapes)
    # A run resolved before starts without the catalog or the database.
    remembered = None if _is_folder(path) else runs.lookup(root, ref, options)
    if remembered is not None:
        model = Model.load(remembered.path, provider=provider, graph_cache=_graph_cache())
        runs.record_use(root, remembered.model_key)
        record_use(*_registry_and_name(remembered.model_key))
    else:
        source = model_source(ref, progress=progress)
        result = _convert_source(
            source,
            task=task,
            optimize=optimize,
            quantize=quantize,
            trust=trust,
            input_shapes=input_shapes,
        )
        check_runnable(result.path, provider=provider)
        model = Model.load(result.path, provider=provider, graph_cache=_graph_cache())
        if source.stored is not None:
            store = get_store()
            store.count("run.miss" if source.pulled else "run.hit")
            store.touch(source.stored.key)
            record_use(source.stored.registry, source.stored.name)
            runs.remember(
                root,
                ref,
                options,
                registry=source.stored.registry,
                name=source.stored.name,
                revision=source.stored.revision,
                converted=result.path.name,
            )
    _loaded[key] = model
    return model


def unload_model(model: Model) -> bool:
    """Forget a loaded model, so that its memory is freed once nothing else holds it."""
    keys = [key for key, loaded in _loaded.items() if loaded is model]
    for key in keys:
        del _loaded[key]
    return bool(keys)


def _refuse_conversion_options(
    ref: str, *, optimize: bool, quantize: str | None, task: str | None, input_shapes: Sequence[str]
) -> None:
    """A folder with its spec runs as it is: options that would convert it are refused,
    never dropped."""
    from modelport.errors import InvalidValueError

    given = [
        flag
        for flag, value in (
            ("--optimize", optimize),
            ("--quantize", quantize),
            ("--task", task),
            ("--input-shape", input_shapes),
        )
        if value
    ]
    if given:
        raise InvalidValueError(
            f"{ref} is a model ready to run (it has its spec): "
            f"{', '.join(given)} cannot apply to it.",
            hint="Give them to `modelport convert` with the model it was made from, "
            "or run this folder without them.",
        )


def _graph_cache() -> Path:
    """Where ONNX Runtime's machine-optimized graphs of models outside the store are kept."""
    return get_settings().home / "store" / "ort-cache"


def _registry_and_name(model_key: str) -> tuple[str, str]:
    """``hf/org/name@revision`` (a store key) → ``("hf", "org/name")``."""
    registry, _, rest = model_key.partition("/")
    return registry, rest.rsplit("@", 1)[0]


def run(ref: str, inputs: Any, *, provider: str | None = None, **options: Any) -> Any:
    """Run a model on inputs: resolve → pull if missing → convert if missing → load → infer."""
    return load_model(ref, provider=provider)(inputs, **options)


def check_runnable(path: Path, *, provider: str | None = None) -> Compatibility | None:
    """Refuse a model this machine cannot run (opset, operators, memory), with the reason."""
    from modelport.errors import IncompatibleModelError
    from modelport.runtime.compat import check_model
    from modelport.runtime.providers import onnxruntime, provider_order

    model_file = path / "model.onnx" if path.is_dir() else path
    if not model_file.exists():
        return None
    result = check_model(
        model_file,
        providers=provider_order(onnxruntime().get_available_providers(), provider),
        system=system_info(),
        # The answer is kept with the artifact (never in a folder of the user's).
        cache=model_file.with_name(f".{model_file.name}.compat.json")
        if model_file.resolve().is_relative_to(get_settings().home.resolve())
        else None,
    )
    if not result.ok:
        raise IncompatibleModelError(
            f"{path.name} cannot run here: " + "; ".join(result.problems) + ".",
            hint="See `modelport compare` for models that fit this machine.",
        )
    return result
