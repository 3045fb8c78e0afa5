"""A ``CatalogQuery`` as SQL on PostgreSQL's ``catalog_search`` (revision 0004), and the
order its pages share with the in-process catalog's, so that the two merge."""

from __future__ import annotations

from typing import Any

from modelport.catalog.catalog import CatalogQuery
from modelport.catalog.tasks import canonical_task

__all__ = ["SORT_COLUMNS", "order_key", "where_clause"]

#: The column each sort key orders by (ties by id: the indexes end with it).
SORT_COLUMNS = {
    "id": "lower_id",
    "name": "name_key",
    "provider": "provider",
    "context": "context",
    "price": "price",
    "parameters": "parameters",
    "usage": "usage",
    "release": "release",
}


def where_clause(q: CatalogQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a query (validated by the caller) and its parameters."""
    where = ["NOT pending"]
    params: dict[str, Any] = {}
    if q.capabilities:
        where.append("capabilities @> CAST(:caps AS text[])")
        params["caps"] = list(q.capabilities)
    equal = (
        ("provider", q.provider.lower() if q.provider else None),
        ("category", q.category),
        ("status", q.status),
        ("source", q.source),
    )
    for column, value in equal:
        if value:
            where.append(f"{column} = :{column}")
            params[column] = value
    if q.task:
        where.append("tasks @> ARRAY[CAST(:task AS text)]")
        params["task"] = canonical_task(q.task)
    if q.tag:
        where.append("tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = q.tag.lower()
    if q.ids is not None:
        where.append("id = ANY(:ids)")
        params["ids"] = list(q.ids)
    bounds: tuple[tuple[str, str, float | None], ...] = (
        ("context", ">=", q.min_context),
        ("price", "<=", q.max_price),
        ("vram", "<=", q.max_vram_gb),
    )
    for column, op, bound in bounds:
        if bound is not None:
            where.append(f"{column} {op} :{column}")
            params[column] = bound
    return " AND ".join(where), params


class _Neg:
    """Reverses the order of any comparable value inside a sort key."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Neg) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Neg) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def order_key(value: Any, model_id: str, *, descending: bool) -> tuple[Any, ...]:
    """The order both sides share: known values first (ties by id), unknown ones by id."""
    if value is None:
        return (1, None, model_id)
    return (0, _Neg(value) if descending else value, model_id)
