"""Portable SQL pieces: epoch seconds, two-value min/max, ratios and percentiles.

Every KPI query is written once and runs unchanged on SQLite and PostgreSQL; the few
spots where the dialects differ are compiled here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Float, Integer, Select, and_, case, func, or_, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.type_api import TypeEngine

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


def tune(session: Session) -> None:
    """PostgreSQL settings for this transaction's analytical queries.

    JIT compiles expressions for seconds before queries that then run for one or two (and
    our queries differ every run), and the default work_mem sends the per-conversation
    sorts to disk.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))


@contextmanager
def index_lookups(conn: Connection, enabled: bool = True) -> Iterator[None]:
    """PostgreSQL: nested loops only, for statements over a few touched conversations.

    On a big table the planner misjudges how many messages a conversation has and would
    rather hash-join a scan of all of them than probe the conversation index.
    """
    nested = enabled and conn.dialect.name == "postgresql"
    if nested:
        conn.execute(text("SET LOCAL enable_hashjoin = off"))
        conn.execute(text("SET LOCAL enable_mergejoin = off"))
    try:
        yield
    finally:
        if nested:
            conn.execute(text("SET LOCAL enable_hashjoin = on"))
            conn.execute(text("SET LOCAL enable_mergejoin = on"))


def seconds(value: datetime) -> float:
    return value.timestamp()


def least(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a <= b, a), else_=b)


def greatest(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a >= b, a), else_=b)


def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def percent(part: float | int | None, whole: float | int | None) -> float | None:
    """``part`` of ``whole`` on 0-100; None when there is nothing to divide by."""
    if not whole:
        return None
    return round(100.0 * float(part or 0) / float(whole), 4)


def put(out: dict[str, dict[str, Any]], key: Any, **values: Any) -> None:
    """Merge ``values`` into the KPIs of ``key`` (keys are strings in every result)."""
    k = str(key)
    row = out.get(k)
    if row is None:
        out[k] = values
    else:
        row.update(values)


def rows_by_key(session: Session, stmt: Select[Any]) -> dict[str, Any]:
    """``{key: row}`` for a statement whose first column is the scope key."""
    return {str(row[0]): row for row in session.execute(stmt)}


@dataclass(frozen=True, slots=True)
class Dist:
    mean: float | None
    median: float | None
    p90: float | None
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "median": self.median, "p90": self.p90, "count": self.count}


EMPTY = Dist(None, None, None, 0)
# Percentiles as tenths, so positions are exact integers in SQL: p·(n-1) = tenths·(n-1)/10.
_TENTHS = {"median": 5, "p90": 9}


def distributions(session: Session, samples: Select[Any]) -> dict[str, Dist]:
    """Mean, median and p90 (linear interpolation, as ``percentile_cont``) per key.

    ``samples`` selects ``(key, value)``. The work is done in SQL, portably: window
    functions return only the (at most two) rows around each percentile position per key.
    PostgreSQL takes ``distributions_of``'s ``percentile_cont`` instead (same numbers).
    """
    s = samples.subquery()
    key, value = s.c[0], s.c[1]
    totals = {
        str(k): (int(n), float(avg))
        for k, n, avg in session.execute(
            select(key, func.count(), func.avg(value)).where(value.is_not(None)).group_by(key)
        )
    }
    if not totals:
        return {}
    ranked = (
        select(
            key.label("k"),
            value.label("v"),
            func.row_number().over(partition_by=key, order_by=value).label("rn"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(value.is_not(None))
        .subquery()
    )
    near = or_(
        *(
            and_(
                (ranked.c.rn - 1) * 10 > tenths * (ranked.c.n - 1) - 10,
                (ranked.c.rn - 1) * 10 < tenths * (ranked.c.n - 1) + 10,
            )
            for tenths in _TENTHS.values()
        )
    )
    picked: dict[str, dict[int, float]] = defaultdict(dict)
    for k, rn, v in session.execute(select(ranked.c.k, ranked.c.rn, ranked.c.v).where(near)):
        picked[str(k)][int(rn) - 1] = float(v)
    out: dict[str, Dist] = {}
    for k, (n, avg) in totals.items():
        ranks = picked[k]
        out[k] = Dist(
            mean=_r(avg),
            median=_r(_interpolate(ranks, n, _TENTHS["median"])),
            p90=_r(_interpolate(ranks, n, _TENTHS["p90"])),
            count=n,
        )
    return out


def distributions_of(
    session: Session, source: Any, key: Any, where: Any, samples: dict[str, tuple[Any, Any]]
) -> dict[str, dict[str, Dist]]:
    """``{name: {key: Dist}}`` for several ``name: (value, condition)`` over one source.

    PostgreSQL: one scan and one grouping, each statistic with its own FILTER. Elsewhere:
    one ``distributions`` per name (the same numbers).
    """
    if session.get_bind().dialect.name != "postgresql":
        return {
            name: distributions(
                session,
                select(key.label("k"), value.label("v"))
                .select_from(source)
                .where(where, value.is_not(None), cond),
            )
            for name, (value, cond) in samples.items()
        }
    columns: list[Any] = [key]
    for value, cond in samples.values():
        picked = and_(value.is_not(None), cond)
        columns += [
            func.count(value).filter(picked),
            func.avg(value).filter(picked),
            func.percentile_cont(0.5).within_group(value).filter(picked),
            func.percentile_cont(0.9).within_group(value).filter(picked),
        ]
    anything = or_(*(and_(v.is_not(None), c) for v, c in samples.values()))
    stmt = select(*columns).select_from(source).where(where, anything).group_by(key)
    out: dict[str, dict[str, Dist]] = {name: {} for name in samples}
    names = list(samples)
    for row in session.execute(stmt):
        k = str(row[0])
        for i, name in enumerate(names):
            n, avg, p50, p90 = row[1 + 4 * i : 5 + 4 * i]
            if n:
                out[name][k] = Dist(mean=_r(avg), median=_r(p50), p90=_r(p90), count=n)
    return out


def _interpolate(ranks: dict[int, float], n: int, tenths: int) -> float:
    pos = Fraction(tenths * (n - 1), 10)
    lo = int(pos)
    hi = lo if pos == lo else lo + 1
    return ranks[lo] + (ranks[hi] - ranks[lo]) * float(pos - lo)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
