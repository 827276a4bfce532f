"""Portable SQL pieces: epoch seconds, two-value min/max, ratios, percentiles, parts.

Every KPI query is written once and runs unchanged on SQLite and PostgreSQL; the few
spots where the dialects differ are compiled here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Select,
    and_,
    any_,
    case,
    cast,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.type_api import TypeEngine

FETCH = 2_000  # rows per round trip while streaming a scope's keys

# Durations are floats computed from timestamps: compare against targets with this slack so
# a value equal to the target by the clock is not lost to binary rounding.
EPSILON = 0.0005


class epoch(FunctionElement[float]):
    """Seconds since 1970 of a naive-UTC timestamp column."""

    type: TypeEngine[float] = Float()
    inherit_cache = True


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS FLOAT)"


class ifloor(FunctionElement[int]):
    """Floor of a non-negative number, as an integer."""

    type: TypeEngine[int] = Integer()
    inherit_cache = True


@compiles(ifloor, "sqlite")
def _ifloor_sqlite(element: ifloor, compiler: Any, **kw: Any) -> str:
    # SQLite's math functions are optional; truncation is floor for non-negative values.
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(ifloor)
def _ifloor_default(element: ifloor, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS BIGINT)"


class array_of(FunctionElement[list[int]]):
    """PostgreSQL ``ARRAY(select)``: the ids a subquery selects, as one array value."""

    type: TypeEngine[list[int]] = postgresql.ARRAY(BigInteger())
    inherit_cache = True

    def __init__(self, select_: Select[Any]) -> None:
        super().__init__(select_.scalar_subquery())


@compiles(array_of)
def _array_of(element: array_of, compiler: Any, **kw: Any) -> str:
    # The clause list renders the scalar subquery in parentheses: ARRAY((SELECT …)) would
    # be an array of one value, so the subquery's own parentheses are ARRAY's.
    return f"ARRAY{compiler.process(element.clauses.clauses[0], **kw)}"


def any_id(column: Any, ids: Select[Any]) -> ColumnElement[bool]:
    """``column = ANY(ARRAY(ids))`` (PostgreSQL): one index scan over the sorted ids. As
    ``IN (SELECT …)`` the planner sizes what each id matches from sampled distinct counts
    (60 messages per conversation where there are 10 at 1 M conversations) and, past some
    30 000 ids, would rather scan the whole table."""
    return column == any_(array_of(ids))


class CreateTableAs(Executable, ClauseElement):
    """``CREATE TEMPORARY|UNLOGGED TABLE name AS select``.

    Unlike INSERT … SELECT, PostgreSQL may run the select with parallel workers.
    """

    inherit_cache = False

    def __init__(self, name: str, select_: Select[Any], kind: str = "TEMPORARY") -> None:
        self.name = name
        self.select = select_
        self.kind = kind


@compiles(CreateTableAs)
def _create_table_as(element: CreateTableAs, compiler: Any, **kw: Any) -> str:
    name = compiler.preparer.quote(element.name)
    return f"CREATE {element.kind} TABLE {name} AS {compiler.process(element.select, **kw)}"


def tune(session: Session | Connection) -> None:
    """PostgreSQL settings for this transaction's analytical queries.

    JIT compiles expressions for seconds before queries that then run for one or two (and
    our queries differ every run), and the default work_mem sends the per-conversation
    sorts to disk.
    """
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        # Results are streamed through a cursor, and all of its rows are wanted: without
        # this the planner optimises for the first tenth (nested loops over every key).
        session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))


@contextmanager
def index_lookups(conn: Connection, enabled: bool = True) -> Iterator[None]:
    """PostgreSQL: nested loops only, for statements over a few touched conversations.

    On a big table the planner misjudges how many messages a conversation has and would
    rather hash-join a scan of all of them than probe the conversation index.
    """
    with _disabled(conn, ("hashjoin", "mergejoin") if enabled else ()):
        yield


@contextmanager
def whole_tables(conn: Connection) -> Iterator[None]:
    """PostgreSQL: no nested loops, for statements that read every row of what they join.

    The planner cannot estimate how many rows survive a filter on window-function results
    (the human-ended waits: millions, estimated at thousands) and would probe an index
    once per row.
    """
    with _disabled(conn, ("nestloop",)):
        yield


@contextmanager
def _disabled(conn: Connection, methods: tuple[str, ...]) -> Iterator[None]:
    if conn.dialect.name != "postgresql":
        methods = ()
    for method in methods:
        conn.execute(text(f"SET LOCAL enable_{method} = off"))
    try:
        yield
    finally:
        for method in methods:
            conn.execute(text(f"SET LOCAL enable_{method} = on"))


def seconds(value: datetime) -> float:
    return value.timestamp()


def least(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a <= b, a), else_=b)


def greatest(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a >= b, a), else_=b)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    # FILTER (SQLite 3.30+) skips the rows instead of summing a CASE over each of them.
    return func.count().filter(condition)


def total(column: Any) -> ColumnElement[int]:
    """The sum of a count column, as an integer. PostgreSQL sums bigints as numeric, which
    psycopg turns into Decimals: slower to fetch and to compute with, once per count and
    key (half a million contacts in a full recompute)."""
    return cast(func.sum(column), BigInteger)


def percent(part: float | int | None, whole: float | int | None) -> float | None:
    """``part`` of ``whole`` on 0-100; None when there is nothing to divide by."""
    if not whole:
        return None
    # The commonest answers for a key with a few conversations, without round()'s cost.
    if not part:
        return 0.0
    if part == whole:
        return 100.0
    value = 100.0 * float(part) / float(whole)
    return value if value.is_integer() else round(value, 4)


@dataclass(frozen=True, slots=True)
class Part:
    """One family's aggregates for one scope.

    ``stmt`` selects the scope key (labelled ``k``, one row per key) and then the part's
    columns, the first of them never NULL for a key the part has a row for (a count);
    ``read`` turns those columns of one key into KPI values.
    The engine joins every part of a scope on the key into one statement (see ``engine``).
    """

    stmt: Select[Any]
    read: Callable[[Sequence[Any]], dict[str, Any]]


# A duration with no samples.
EMPTY = {"mean": None, "median": None, "p90": None, "count": 0}
# Percentiles as tenths, so positions are exact integers in SQL: p·(n-1) = tenths·(n-1)/10.
_TENTHS = {"median": 5, "p90": 9}


def distribution_parts(
    dialect: str, source: Any, key: Any, where: Any, samples: dict[str, tuple[Any, Any]]
) -> list[Part]:
    """Count, mean, median and p90 (linear interpolation, as ``percentile_cont``) per key of
    each ``name: (value, condition)`` over one source.

    PostgreSQL: one grouping with ``percentile_cont`` and a FILTER per statistic.
    Elsewhere, portably: per name, window functions rank the values of each key and the
    (at most two) values around each percentile position are interpolated in SQL.
    """
    if dialect != "postgresql":
        return [
            _ranked_part(source, key, where, name, value, cond)
            for name, (value, cond) in samples.items()
        ]
    columns: list[Any] = [key.label("k")]
    for value, cond in samples.values():
        picked = and_(value.is_not(None), cond)
        # Both percentiles from one sort of the key's values (PostgreSQL computes an
        # aggregate written twice once).
        fractions = postgresql.array([tenths / 10 for tenths in _TENTHS.values()])
        both = func.percentile_cont(fractions).within_group(value).filter(picked)
        both = type_coerce(both, postgresql.ARRAY(Float))
        columns += [func.count(value).filter(picked), func.avg(value).filter(picked)]
        columns += [both[1], both[2]]
    anything = or_(*(and_(v.is_not(None), c) for v, c in samples.values()))
    stmt = select(*columns).select_from(source).where(where, anything).group_by(key)
    return [Part(stmt, _dist_reader(list(samples)))]


def _ranked_part(source: Any, key: Any, where: Any, name: str, value: Any, cond: Any) -> Part:
    ranked = (
        select(
            key.label("k"),
            value.label("v"),
            func.row_number().over(partition_by=key, order_by=value).label("rn"),
            func.count().over(partition_by=key).label("n"),
        )
        .select_from(source)
        .where(where, value.is_not(None), cond)
        .subquery(f"ranked_{name}")
    )
    r = ranked.c

    def at(tenths: int) -> Any:
        span = (r.n - 1) * tenths
        lo = ifloor(span / 10.0)
        rest = span - lo * 10  # position = lo + rest/10
        low = func.max(case((r.rn - 1 == lo, r.v)))
        high = func.max(case((r.rn - 1 == lo + case((rest > 0, 1), else_=0), r.v)))
        return low + (high - low) * (rest / 10.0)

    stmt = select(
        r.k, func.max(r.n), func.avg(r.v), at(_TENTHS["median"]), at(_TENTHS["p90"])
    ).group_by(r.k)
    return Part(stmt, _dist_reader([name]))


def _dist_reader(names: list[str]) -> Callable[[Sequence[Any]], dict[str, Any]]:
    """Reads (count, mean, median, p90) per name."""

    at = [(4 * i, name) for i, name in enumerate(names)]

    def read(row: Sequence[Any]) -> dict[str, Any]:
        # Run once per key and name of a scope's keys (half a million contacts): the
        # statistics are read by position, each rounded once.
        out = {}
        for i, name in at:
            n = row[i]
            if not n:
                continue
            mean, median, p90 = row[i + 1], row[i + 2], row[i + 3]
            if mean == median == p90:  # one sample, or all alike: round once
                same = _r(mean)
                out[name] = {"mean": same, "median": same, "p90": same, "count": n}
            else:
                out[name] = {"mean": _r(mean), "median": _r(median), "p90": _r(p90), "count": n}
        return out

    return read


def _r(value: float | None) -> float | None:
    # Whole seconds are common (WhatsApp timestamps are whole seconds) and need no round().
    if value is None or (type(value) is float and value.is_integer()):
        return value
    return round(value, 3)
