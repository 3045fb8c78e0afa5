"""modelport: know, choose, pull, convert, run and serve machine-learning models.

The public API is imported lazily so that ``modelport --help`` starts fast.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# ONNX Runtime writes a device id and a telemetry database under ~/.cache/Microsoft (or
# $XDG_CACHE_HOME/Microsoft) as it loads, outside MODELPORT_HOME, unless this is set before
# it loads. Set here, before any modelport module can import it; a user's own value wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_LAZY: dict[str, str] = {
    "AmbiguousModelError": "modelport.errors",
    "Catalog": "modelport.catalog.catalog",
    "CatalogQuery": "modelport.catalog.catalog",
    "ModelEntry": "modelport.catalog.entry",
    "ModelNotFoundError": "modelport.errors",
    "ModelportError": "modelport.errors",
    "Ref": "modelport.refs",
    "add_entries": "modelport.api",
    "chat": "modelport.api",
    "prompt": "modelport.api",
    "get_catalog": "modelport.api",
    "import_catalog": "modelport.api",
    "list_models": "modelport.api",
    "load_model": "modelport.api",
    "run": "modelport.api",
    "convert": "modelport.api",
    "pull": "modelport.api",
    "remove": "modelport.api",
    "parse_ref": "modelport.refs",
    "query_models": "modelport.api",
    "recommend": "modelport.api",
    "resolve_model": "modelport.api",
    "search_models": "modelport.api",
    "select_models": "modelport.api",
    "show_model": "modelport.api",
    "system_info": "modelport.api",
    "validate_model": "modelport.api",
}

# The public API, sorted; a test checks it against _LAZY and the TYPE_CHECKING imports.
__all__ = [
    "AmbiguousModelError",
    "Catalog",
    "CatalogQuery",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelportError",
    "Ref",
    "__version__",
    "add_entries",
    "chat",
    "convert",
    "get_catalog",
    "import_catalog",
    "list_models",
    "load_model",
    "parse_ref",
    "prompt",
    "pull",
    "query_models",
    "recommend",
    "remove",
    "resolve_model",
    "run",
    "search_models",
    "select_models",
    "show_model",
    "system_info",
    "validate_model",
]

if TYPE_CHECKING:  # pragma: no cover
    from modelport.api import (
        add_entries,
        chat,
        convert,
        get_catalog,
        import_catalog,
        list_models,
        load_model,
        prompt,
        pull,
        query_models,
        recommend,
        remove,
        resolve_model,
        run,
        search_models,
        select_models,
        show_model,
        system_info,
        validate_model,
    )
    from modelport.catalog.catalog import Catalog, CatalogQuery
    from modelport.catalog.entry import ModelEntry
    from modelport.errors import AmbiguousModelError, ModelNotFoundError, ModelportError
    from modelport.refs import Ref, parse_ref


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _Package(types.ModuleType):
    """This package, whose public names win over its subpackages of the same name."""

    def __setattr__(self, name: str, value: Any) -> None:
        # Importing ``modelport.convert.export`` makes Python set ``modelport.convert`` to the
        # subpackage, which would hide the public ``convert`` function; the subpackage stays
        # reachable through ``sys.modules`` and every ``from modelport.convert… import``.
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
