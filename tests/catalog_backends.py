"""The catalog's two backends for one test: the in-process ``Catalog`` (SQLite's) and the
``PostgresCatalog`` on a real PostgreSQL, with the same entries stored there as user
entries. A test taking ``catalog_backend`` runs on both; ``memory_only`` keeps one that
changes the catalog in place (``register``, ``clear``) to the in-process one, where the
catalog itself holds the entries."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from modelport.catalog.catalog import Catalog
from modelport.catalog.entry import ModelEntry

MakeCatalog = Callable[[Iterable[ModelEntry]], Catalog]

memory_only = pytest.mark.parametrize("catalog_backend", ["memory"], indirect=True)


@pytest.fixture(params=["memory", "postgresql"])
def catalog_backend(request: pytest.FixtureRequest) -> MakeCatalog:
    """A function making a catalog of entries on this test's backend."""
    if request.param == "memory":
        return Catalog
    url = str(request.getfixturevalue("postgres_url"))

    def make(entries: Iterable[ModelEntry]) -> Catalog:
        from modelport import db
        from modelport.catalog.persistence import CatalogRepository
        from modelport.catalog.pgcatalog import PostgresCatalog

        repo = CatalogRepository(db.get_engine(url))
        repo.save(list(entries), origin="user")
        catalog = PostgresCatalog(repo.engine)
        catalog.on_usage(repo.add_usage)  # as ``get_catalog`` wires it
        return catalog

    return make
