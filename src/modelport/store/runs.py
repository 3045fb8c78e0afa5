"""What `run` resolved before, readable without the database, and a journal of uses.

`run NAME` resolves a name through the catalog and the store index and converts once;
the answer (which stored revision, which converted artifact) is remembered in
``store/runs.json`` so that the next `run` of the same name, in a new process, loads the
artifact directly. Every entry is checked against the files it names before it is used,
and pulls, removals and catalog changes forget the entries they could make stale. Uses are
appended to ``store/usage.log`` and folded into the index by the next command that opens
the store's database.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.store.layout import StoreLayout

__all__ = ["RememberedRun", "drain_uses", "forget", "lookup", "record_use", "remember"]

RUNS_FILE = "runs.json"
USES_FILE = "usage.log"


@dataclass(frozen=True)
class RememberedRun:
    """A run that can start without the catalog or the database."""

    path: Path
    model_key: str


def _lock(root: Path) -> Any:
    from filelock import FileLock  # only writers lock; a fast run only reads

    (root / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(str(root / "locks" / "runs.lock"))


def _read(root: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((root / RUNS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(root: Path, data: dict[str, dict[str, str]]) -> None:
    tmp = root / f".{RUNS_FILE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, root / RUNS_FILE)


def lookup(root: Path, ref: str, options: str) -> RememberedRun | None:
    """The remembered artifact for a ref and options, if every file it names still exists."""
    entry = _read(root).get(f"{options}|{ref}")
    if not entry:
        return None
    layout = StoreLayout(root)
    try:
        manifest = layout.manifest(entry["registry"], entry["name"], entry["revision"])
        converted = root / "converted" / entry["converted"]
    except (KeyError, ValueError):
        return None
    if not manifest.exists() or not (converted / "modelport.yml").exists():
        return None
    return RememberedRun(converted, f"{entry['registry']}/{entry['name']}@{entry['revision']}")


def remember(
    root: Path, ref: str, options: str, *, registry: str, name: str, revision: str, converted: str
) -> None:
    """Remember what a ref resolved to."""
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root):
        data = _read(root)
        data[f"{options}|{ref}"] = {
            "registry": registry,
            "name": name,
            "revision": revision,
            "converted": converted,
        }
        _write(root, data)


def forget(root: Path, *, registry: str | None = None, name: str | None = None) -> None:
    """Forget remembered runs of one model, or all of them."""
    if not (root / RUNS_FILE).exists():
        return
    with _lock(root):
        data = _read(root)
        kept = {
            k: v
            for k, v in data.items()
            if registry is not None
            and not (v.get("registry") == registry and v.get("name") == name)
        }
        if kept != data:
            _write(root, kept)


def record_use(root: Path, model_key: str, *, journal: str = USES_FILE) -> None:
    """Append a use to the journal (one short write, atomic with O_APPEND)."""
    line = f"{time.time():.3f}\t{model_key}\n".encode()
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def drain_uses(root: Path, *, journal: str = USES_FILE) -> list[str]:
    """Take every journaled use (model keys), emptying the journal."""
    path = root / journal
    if not path.exists():
        return []
    with _lock(root):
        taken = root / f".{journal}.{uuid.uuid4().hex}"
        try:
            os.replace(path, taken)
        except FileNotFoundError:
            return []
        try:
            lines = taken.read_text().splitlines()
        finally:
            taken.unlink(missing_ok=True)
    return [line.split("\t", 1)[1] for line in lines if "\t" in line]
