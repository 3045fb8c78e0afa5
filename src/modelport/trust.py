"""Sources whose code the user allowed to run: PyTorch Hub repositories (``hubconf.py``).

Kept in the database beside the store index, so servers sharing one database share
one trust list.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelport.errors import InvalidValueError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["TrustedSource", "is_trusted", "trust", "trusted", "untrust"]

_REPO_RE = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TrustedSource:
    """One trusted source and when it was trusted."""

    kind: str
    name: str
    added_at: dt.datetime


def _engine() -> Engine:
    from modelport.db import get_engine
    from modelport.settings import get_settings

    return get_engine(get_settings().database_url)


def _repo(name: str) -> str:
    repo = name.strip().removeprefix("torch:")
    repo = re.sub(r"^https?://github\.com/", "", repo).removesuffix(".git").strip("/")
    repo = repo.split(":", 1)[0]
    if "/" in repo:
        repo = "/".join(repo.split("/")[:2])
    if not _REPO_RE.fullmatch(repo) or ".." in repo:
        raise InvalidValueError(
            f"{name!r} is not a GitHub repository.", hint="Use owner/repo, e.g. pytorch/vision."
        )
    return repo.lower()


def trust(name: str, *, kind: str = "torch") -> str:
    """Allow a repository's code to run; returns its normalized name."""
    from modelport.db import trusted_sources, upsert

    repo = _repo(name)
    with _engine().begin() as conn:
        upsert(
            conn,
            trusted_sources,
            {"kind": kind, "name": repo, "added_at": dt.datetime.now(dt.UTC)},
            keys=["kind", "name"],
            replace=["added_at"],
        )
    return repo


def untrust(name: str, *, kind: str = "torch") -> bool:
    """Stop trusting a repository; returns whether it was trusted."""
    from sqlalchemy import delete

    from modelport.db import trusted_sources

    repo = _repo(name)
    with _engine().begin() as conn:
        result = conn.execute(
            delete(trusted_sources).where(
                trusted_sources.c.kind == kind, trusted_sources.c.name == repo
            )
        )
    return bool(result.rowcount)


def is_trusted(name: str, *, kind: str = "torch") -> bool:
    """Whether the user trusted this repository."""
    from sqlalchemy import select

    from modelport.db import trusted_sources

    repo = _repo(name)
    with _engine().connect() as conn:
        row = conn.execute(
            select(trusted_sources.c.name).where(
                trusted_sources.c.kind == kind, trusted_sources.c.name == repo
            )
        ).first()
    return row is not None


def trusted(kind: str = "torch") -> list[TrustedSource]:
    """Every trusted source of a kind, oldest first."""
    from sqlalchemy import select

    from modelport.db import trusted_sources

    with _engine().connect() as conn:
        rows = conn.execute(
            select(trusted_sources)
            .where(trusted_sources.c.kind == kind)
            .order_by(trusted_sources.c.added_at)
        ).all()
    return [TrustedSource(r.kind, r.name, r.added_at) for r in rows]
