"""INSERT … ON CONFLICT on either database: the dialect's own insert construct."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(dialect: str, target: Any) -> Any:
    """An ``INSERT`` with the ON CONFLICT clauses of ``dialect`` (PostgreSQL or SQLite)."""
    return (postgresql if dialect == "postgresql" else sqlite).insert(target)


def upsert(dialect: str, model: Any, keys: list[str], update: list[str]) -> Any:
    """INSERT … ON CONFLICT (``keys``) DO UPDATE the ``update`` columns, for many rows."""
    stmt = dialect_insert(dialect, model)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in update}
    )
