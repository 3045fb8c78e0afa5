"""The use-cases of modelport; the CLI, the server and Python callers all go through these.

``catalog`` knows and chooses models, ``store`` pulls and keeps them, ``running`` converts
and runs them, ``usage`` logs every call to a model and its cost. The catalog (pydantic
models) and the database load only when a use-case needs them: `run` of a model it
resolved before starts without either.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

from modelport.api.catalog import (
    MAX_SHRINK,
    ImportReport,
    UpdateReport,
    add_entries,
    add_remote_catalog,
    entry_history,
    export_catalog,
    get_catalog,
    import_catalog,
    query_models,
    recommend,
    record_use,
    remote_catalogs,
    remove_entry,
    remove_remote_catalog,
    resolve_model,
    search_models,
    select_models,
    show_model,
    system_info,
    update_catalogs,
    validate_model,
)
from modelport.api.compare import Comparison, compare_models
from modelport.api.listing import ModelPage, list_catalog
from modelport.api.running import (
    ModelSource,
    check_runnable,
    convert,
    load_model,
    model_source,
    run,
    unload_model,
)
from modelport.api.search import hub_candidates, search_everywhere
from modelport.api.store import (
    execute_plan,
    get_store,
    hub_info,
    hub_ref,
    list_models,
    parse_duration,
    pinned_ref,
    plan_prune,
    plan_remove,
    preflight,
    pull,
    read_stored_file,
    remove,
    search_hub,
    store_stats,
    stored_files,
    stored_model,
    stored_revisions,
    stored_small_files,
    verify_store,
)

#: The use-cases of hosted models, keys, the call log and the database's schema, imported
#: when first asked for: the commands that only look up, pull or run local models start
#: without them.
_LAZY: dict[str, str] = {
    "credentials_for": "modelport.api.keys",
    "data_key": "modelport.api.keys",
    "key_status": "modelport.api.keys",
    "list_keys": "modelport.api.keys",
    "remove_key": "modelport.api.keys",
    "rotate_key": "modelport.api.keys",
    "set_key": "modelport.api.keys",
    "ChatResult": "modelport.api.prompting",
    "ChatStream": "modelport.api.prompting",
    "Conversation": "modelport.api.conversation",
    "Response": "modelport.api.conversation",
    "Target": "modelport.api.prompting",
    "chat": "modelport.api.conversation",
    "chat_completion": "modelport.api.prompting",
    "embed_texts": "modelport.api.prompting",
    "prompt": "modelport.api.conversation",
    "rerank_documents": "modelport.api.prompting",
    "resolve_target": "modelport.api.prompting",
    "stream_completion": "modelport.api.prompting",
    "DatabaseStatus": "modelport.api.database",
    "DatabaseUpgrade": "modelport.api.database",
    "SchemaRevision": "modelport.api.database",
    "database_history": "modelport.api.database",
    "database_status": "modelport.api.database",
    "upgrade_database": "modelport.api.database",
    "CallRecord": "modelport.api.usage",
    "UsageReport": "modelport.api.usage",
    "check_budget": "modelport.api.usage",
    "cost_of": "modelport.api.usage",
    "flush_usage": "modelport.api.usage",
    "record_call": "modelport.api.usage",
    "spent_today": "modelport.api.usage",
    "usage_report": "modelport.api.usage",
}

if TYPE_CHECKING:
    from modelport.api.conversation import Conversation, Response, chat, prompt
    from modelport.api.database import (
        DatabaseStatus,
        DatabaseUpgrade,
        SchemaRevision,
        database_history,
        database_status,
        upgrade_database,
    )
    from modelport.api.keys import (
        credentials_for,
        data_key,
        key_status,
        list_keys,
        remove_key,
        rotate_key,
        set_key,
    )
    from modelport.api.prompting import (
        ChatResult,
        ChatStream,
        Target,
        chat_completion,
        embed_texts,
        rerank_documents,
        resolve_target,
        stream_completion,
    )
    from modelport.api.usage import (
        CallRecord,
        UsageReport,
        check_budget,
        cost_of,
        flush_usage,
        record_call,
        spent_today,
        usage_report,
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "MAX_SHRINK",
    "CallRecord",
    "ChatResult",
    "ChatStream",
    "Comparison",
    "Conversation",
    "DatabaseStatus",
    "DatabaseUpgrade",
    "ImportReport",
    "ModelPage",
    "ModelSource",
    "Response",
    "SchemaRevision",
    "Target",
    "UpdateReport",
    "UsageReport",
    "add_entries",
    "add_remote_catalog",
    "chat",
    "chat_completion",
    "check_budget",
    "check_runnable",
    "compare_models",
    "convert",
    "cost_of",
    "credentials_for",
    "data_key",
    "database_history",
    "database_status",
    "embed_texts",
    "entry_history",
    "execute_plan",
    "export_catalog",
    "flush_usage",
    "get_catalog",
    "get_store",
    "hub_candidates",
    "hub_info",
    "hub_ref",
    "import_catalog",
    "key_status",
    "list_catalog",
    "list_keys",
    "list_models",
    "load_model",
    "model_source",
    "parse_duration",
    "pinned_ref",
    "plan_prune",
    "plan_remove",
    "preflight",
    "prompt",
    "pull",
    "query_models",
    "read_stored_file",
    "recommend",
    "record_call",
    "record_use",
    "remote_catalogs",
    "remove",
    "remove_entry",
    "remove_key",
    "remove_remote_catalog",
    "rerank_documents",
    "reset",
    "resolve_model",
    "resolve_target",
    "rotate_key",
    "run",
    "search_everywhere",
    "search_hub",
    "search_models",
    "select_models",
    "set_key",
    "show_model",
    "spent_today",
    "store_stats",
    "stored_files",
    "stored_model",
    "stored_revisions",
    "stored_small_files",
    "stream_completion",
    "system_info",
    "unload_model",
    "update_catalogs",
    "upgrade_database",
    "usage_report",
    "validate_model",
    "verify_store",
]


def reset() -> None:
    """Forget the loaded catalog, store, models and settings (the next call reads them again).

    The call log's queue is written first, while the settings still name its database.
    """
    from modelport.api import catalog, running, store
    from modelport.settings import reset_settings

    if "modelport.api.usage" in sys.modules:
        sys.modules["modelport.api.usage"]._forget()
    with catalog._lock, store._lock:
        close = getattr(catalog._catalog, "close", None)
        if close is not None:  # the PostgreSQL catalog's listening thread
            close()
        catalog._catalog = None
        store._store = None
        running._loaded.clear()
        if "modelport.api.targets" in sys.modules:
            sys.modules["modelport.api.targets"].forget()
        reset_settings()
        if "modelport.secrets" in sys.modules:
            sys.modules["modelport.secrets"].reset_key_store()
        if "modelport.hubs.base" in sys.modules:
            from modelport.hubs.base import reset_hubs

            reset_hubs()
        if "modelport.providers.base" in sys.modules:
            from modelport.providers.base import reset_providers

            reset_providers()
        if "modelport.db" in sys.modules:
            from modelport.db import dispose_engines

            dispose_engines()
