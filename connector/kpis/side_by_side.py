"""KPI computations on PostgreSQL spread over several connections, so every core works.

One connection runs one statement on one core (plus the parallel workers PostgreSQL gives
some plans), and a computation is a few long statements (the sources' fills) followed by
one statement per scope whose rows Python turns into KPIs. Here:

- the fills run on ``WORKERS`` connections at once, into UNLOGGED tables named after the
  caller's backend (``kpi_run<pid>_<source>``), all under the caller's snapshot
  (``pg_export_snapshot``), so they see exactly what the caller's transaction sees; for
  given ids (``keyed``) each connection first loads its own copy of the ids;
- every scope's statement runs on its own connection at once, while the caller reads the
  scopes' rows one scope after another (a bounded queue per scope keeps memory flat);
- the tables are dropped at the end; tables a killed process left behind are dropped by
  the next run (their backend is gone).

The caller's connection never reads the tables, so it holds no lock on them when they are
dropped. Only possible when the caller's transaction has written nothing yet: other
connections cannot see uncommitted rows (``possible``).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from queue import Full, Queue
from threading import Event, Semaphore
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import compiler
from sqlalchemy.sql.util import find_tables

from connector.kpis import utilization
from connector.kpis.business_hours import Calendar
from connector.kpis.query import KeysCopy, Query, keys_loader, load
from connector.kpis.sources import Fill, Sources, fills
from connector.kpis.sql import FETCH, tune

if TYPE_CHECKING:
    from connector.kpis.engine import Plan

logger = structlog.get_logger(__name__)

WORKERS = 2  # connections filling the sources
AHEAD = 6  # scope statements at once (all six: the biggest need not wait for the rest)
SPANS = 2  # statements computing one scope's ids side by side (one per core here)
SPAN_IDS = 4_000  # ...for a scope with at least this many ids
FIRST_SHARE = 0.3  # ...of which the first statement takes this share (see ``_spans``)
RANGE_KEYS = 70_000  # keys per statement of a full recompute's scope with many keys
LANES = 2  # connections running those statements, each one range after another
BLOCKS = 4  # blocks of FETCH rows a scope's reader may run ahead of the caller
STEM = "kpi_run"
_NAME = re.compile(rf"^{STEM}(\d+)_[a-z_]+$")
_SNAPSHOT = re.compile(r"^[0-9A-Fa-f-]+$")
_POLL = 0.2  # seconds a blocked reader waits before checking whether it was stopped


def possible(session: Session) -> bool:
    """PostgreSQL, nothing written in this transaction (flushed or not), and a role that
    may create tables in its schema (temporary tables need less: without it, one
    connection does everything)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    session.flush()
    return bool(
        session.scalar(
            text(
                "SELECT pg_current_xact_id_if_assigned() IS NULL"
                " AND has_schema_privilege(current_schema(), 'CREATE')"
            )
        )
    )


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


# Run first on every connection: loads the keys (all of them, or the tables given).
Prepare = Callable[[Connection, Collection[Any] | None], None]


def _nothing(conn: Connection, tables: Collection[Any] | None = None) -> None:
    pass


@contextmanager
def sources(
    session: Session, q: Query, cal: Calendar | None, prepare: Prepare = _nothing
) -> Iterator[Sources]:
    """The sources of ``q`` filled side by side; dropped on exit."""
    pid, snapshot = _export(session)
    engine = _engine(session)
    _sweep(engine)
    with _filled(engine, pid, snapshot, q, cal, prepare) as src:
        yield src


def groups(
    session: Session,
    queries: Sequence[Query],
    cal: Calendar | None,
    make_plans: Callable[[list[Query], Sources], list[Plan]],
) -> Iterator[tuple[list[Query], Sources, Prepare, list[Plan]]]:
    """For a computation over given ids: each group of ``query.load`` with its sources
    filled side by side (dropped when the next group is asked for, or on close), and its
    plans (``make_plans``, made and compiled while the fills run).

    Another connection loads the ids and the conversations they touch (this transaction
    stays unwritten, so the next computation in it can spread too), and every connection
    that reads them gets its own copy first. All groups see one snapshot."""
    engine = _engine(session)
    pid, snapshot = _export(session)
    with _in_snapshot(engine, snapshot) as conn, Session(bind=conn) as elsewhere:
        loaded = load([replace(q, session=elsewhere) for q in queries])
        prepare = keys_loader(loaded)
    _sweep(engine)
    for found in loaded:
        group = [replace(q, session=session) for q in found]
        made: list[Plan] = []

        def meanwhile(src: Sources, group: list[Query] = group, made: list[Plan] = made) -> None:
            made.extend(make_plans(group, src))
            _compile_ahead(engine, [p.stmt for p in made])

        with _filled(engine, pid, snapshot, group[0], cal, prepare, group, meanwhile) as src:
            yield group, src, prepare, made


def _export(session: Session) -> tuple[int, str]:
    pid, snapshot = session.execute(text("SELECT pg_backend_pid(), pg_export_snapshot()")).one()
    if not _SNAPSHOT.match(snapshot):  # interpolated in SQL: SET takes no parameters
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    return int(pid), str(snapshot)


@contextmanager
def _in_snapshot(engine: Engine, snapshot: str) -> Iterator[Connection]:
    """A connection whose transaction sees what the exporting transaction sees."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        tune(conn)
        yield conn


@contextmanager
def _filled(
    engine: Engine,
    pid: int,
    snapshot: str,
    q: Query,
    cal: Calendar | None,
    prepare: Prepare,
    scoped: Sequence[Query] = (),
    meanwhile: Callable[[Sources], None] | None = None,
) -> Iterator[Sources]:
    """The sources filled; ``meanwhile(sources)`` runs beside the fills, and for each of
    the ``scoped`` queries (their statements run side by side next) a connection beyond
    the fills' is opened then too."""
    src, todo = fills(q, cal, stem=f"{STEM}{pid}", kind="UNLOGGED", scoped=scoped)

    def beside() -> None:
        _warm(engine, sum(span_count(each) for each in scoped) - WORKERS)
        if meanwhile is not None:
            meanwhile(src)

    try:
        _fill(engine, snapshot, todo, prepare, beside)
        yield src
    finally:
        _drop(engine, [name for fill in todo for name in fill.tables])


def _fill(
    engine: Engine, snapshot: str, todo: list[Fill], prepare: Prepare, beside: Callable[[], None]
) -> None:
    """Each worker takes the next fill until none is left; one transaction per worker, in
    the exported snapshot, committed once its fills are done; ``beside`` runs meanwhile
    (the main thread only waits), once every worker is filling: by then the workers hold
    the pool's warm connections, and its Python no longer delays their start."""
    pending = deque(todo)
    filling = Semaphore(0)

    def work() -> None:
        started = False
        try:
            with _in_snapshot(engine, snapshot) as conn:
                loaded: set[Any] = set()
                while pending:
                    try:
                        fill = pending.popleft()
                    except IndexError:  # another worker took the last one
                        break
                    # Only the ids this fill reads, when it needs them: the first fills read
                    # the touched conversations alone and start a few round trips sooner.
                    needed = fill.reads - loaded
                    prepare(conn, needed)
                    loaded |= needed
                    if not started:
                        started = True
                        filling.release()
                    fill.run(conn)
                conn.commit()
        finally:
            if not started:  # a worker that failed early must not hold ``beside`` up
                filling.release()

    def after_start() -> None:
        for _ in range(WORKERS):
            filling.acquire()
        beside()

    with ThreadPoolExecutor(WORKERS + 1, thread_name_prefix="kpi-fill") as pool:
        workers = [pool.submit(work) for _ in range(WORKERS)]
        meanwhile = pool.submit(after_start)
        for future in workers:
            future.result()
        meanwhile.result()


def _compile_ahead(engine: Engine, stmts: Sequence[Any]) -> None:
    """Put the statements in the engine's statement cache, as ``Connection.execute`` would
    (no parameters, no schema translation): the scopes' statements start at once, and a
    statement's compilation (a few hundredths of a second, a tenth for the first one in a
    process) holds the GIL the others need to start theirs. Only an optimisation: on an
    SQLAlchemy whose internals differ, the statements are compiled when they run."""
    dialect = engine.dialect
    try:
        for stmt in stmts:
            stmt._compile_w_cache(
                dialect=dialect,
                compiled_cache=engine._compiled_cache,
                column_keys=[],
                for_executemany=False,
                schema_translate_map=None,
                linting=dialect.compiler_linting | compiler.WARN_LINTING,
            )
    except (AttributeError, TypeError) as exc:
        logger.warning("kpi_compile_ahead_failed", error=str(exc))


def _warm(engine: Engine, n: int) -> None:
    """Open ``n`` connections and give them back to the pool: a new backend's first
    temporary table (its temporary schema, its catalog caches) costs about a tenth of a
    second, which a scope's statement would otherwise wait for."""
    with ExitStack() as opened:
        for _ in range(n):
            conn = opened.enter_context(engine.connect())
            conn.execute(text("CREATE TEMPORARY TABLE kpi_warm (x integer) ON COMMIT DROP"))
            conn.commit()


def stream(
    session: Session, plans: Sequence[Plan], src: Sources, prepare: Prepare = _nothing
) -> Iterator[Iterator[tuple[Query, str, dict[str, Any]]]]:
    """Each plan's keys and KPIs, its statement run on its own connection (a scope with
    many ids: on ``SPANS`` connections, each holding a share of the ids; the key ranges of
    one scope (``ranges``): on ``LANES`` connections, one range after another); in the
    order their first rows arrive (a small scope's rows need not wait behind a big one's).

    Read each before asking for the next: the readers stop when this generator ends.
    """
    engine = _engine(session)
    stop = Event()
    jobs = [job for plan in plans for job in _spans(plan, prepare)]
    boxes: list[Queue[tuple[str, Any]]] = [Queue(maxsize=BLOCKS) for _ in jobs]
    ready: Queue[int] = Queue()  # the index of each job once its first rows are boxed
    lanes = _lanes(jobs)
    pool = ThreadPoolExecutor(max(AHEAD, len(lanes)), thread_name_prefix="kpi-scope")

    def run(lane: list[int]) -> None:
        for i in lane:
            if stop.is_set():
                return
            plan, keys, _ = jobs[i]
            _produce(engine, plan, src, keys, boxes[i], stop, partial(ready.put, i))

    try:
        # The pool starts them in this order, every one at once, the lane with the most
        # ids (or ranges) first: the long pole's statement starts first.
        for lane in lanes:
            pool.submit(run, lane)
        for _ in jobs:
            i = ready.get()
            extra = _take(boxes[i])
            yield jobs[i][0].read(_blocks(boxes[i]), extra)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _lanes(jobs: Sequence[tuple[Plan, Prepare, int]]) -> list[list[int]]:
    """The jobs' indexes as the pool runs them: one lane (connection) per job, but the key
    ranges of a scope dealt out over ``LANES`` lanes in range order, so that while the
    caller reads one range's rows (Python: the long pole of a full recompute) the next
    range is computed (run at once, every range would end together, at the end); the
    lanes with the most work first."""
    ranged: dict[str, list[list[int]]] = {}
    lanes: list[list[int]] = []
    for i, (plan, _, _) in enumerate(jobs):
        q = plan.q
        if q.key_range is None:
            lanes.append([i])
            continue
        dealt = ranged.setdefault(q.scope, [[] for _ in range(LANES)])
        dealt[sum(map(len, dealt)) % LANES].append(i)
    by_ranges = [lane for dealt in ranged.values() for lane in dealt if lane]
    return by_ranges + sorted(lanes, key=lambda lane: -jobs[lane[0]][2])


def ranges(session: Session, q: Query) -> list[Query]:
    """A full recompute's ``q`` as one query per range of ``RANGE_KEYS`` keys (ids are
    serial: the range between the smallest and the largest key the conversations carry,
    cut evenly), or ``[q]``: for given ids, for a scope with few keys, for the agent (its
    utilization is per agent, not per row) and for business numbers (text keys, few of
    them). The first and last ranges are open, so
    every key is in exactly one of them whatever the bounds."""
    if q.ids is not None or q.scope in ("account", "agent", "phone_number"):
        return [q]
    column = q.conv_column()
    low, high = session.execute(select(func.min(column), func.max(column))).one()
    if low is None or high - low + 1 < 2 * RANGE_KEYS:
        return [q]
    n = -(-(high - low + 1) // RANGE_KEYS)
    cuts = [low + (high - low + 1) * k // n for k in range(1, n)]
    bounds = list(zip([None, *cuts], [*cuts, None], strict=True))
    return [replace(q, key_range=bound) for bound in bounds]


def span_count(q: Query) -> int:
    """How many statements compute ``q``'s ids side by side: one, or ``SPANS`` for a scope
    with at least ``SPAN_IDS`` ids and no per-key extras (utilization is per agent)."""
    many = q.ids is not None and len(q.ids) >= SPAN_IDS
    return SPANS if many and q.scope not in ("account", "agent") else 1


def _spans(plan: Plan, prepare: Prepare) -> list[tuple[Plan, Prepare, int]]:
    """The plan's statement, each with what its connection loads, and its number of ids.

    The statement reads the scope's keys table, which each connection fills itself: with
    a share of the ids each, the same statement computes a share of the keys (the ids are
    disjoint, so are the rows), and the two cores share the long pole's aggregation.

    The first share is the smaller (``FIRST_SHARE``): its rows arrive first and the caller
    turns them into KPIs while the others are still computed (equal shares all ended
    together, and the caller then read every key after the last statement)."""
    q = plan.q
    count = len(q.ids or ())
    n = span_count(q)
    if n == 1 or not isinstance(prepare, KeysCopy):
        return [(plan, prepare, count)]
    values = q.key_values()
    first = max(1, int(len(values) * FIRST_SHARE))
    size = max(1, -(-(len(values) - first) // (n - 1)))
    shares = [values[:first]]
    shares += [values[i : i + size] for i in range(first, len(values), size)]
    return [(plan, prepare.with_ids(q.key_column(), share), len(share)) for share in shares]


def _produce(
    engine: Engine,
    plan: Plan,
    src: Sources,
    prepare: Prepare,
    box: Queue[Any],
    stop: Event,
    announce: Callable[[], None],
) -> None:
    """Run on a pool thread: utilization, then the plan's rows block by block, into ``box``;
    ``announce`` once something past utilization is there (rows, their end or an error)."""
    announced = False

    def put(kind: str, value: Any) -> bool:
        nonlocal announced
        if kind != "extra" and not announced:
            announced = True
            # Boxed before it is announced: the box has room (utilization is all it holds).
            box.put((kind, value))
            announce()
            return True
        while not stop.is_set():
            try:
                box.put((kind, value), timeout=_POLL)
                return True
            except Full:
                continue
        return False

    try:
        with Session(engine) as session:
            tune(session)
            # Its own keys (utilization reads them too) and what its statement reads.
            prepare(session.connection(), {plan.q.keys, *find_tables(plan.stmt)})
            q = replace(plan.q, session=session)
            if not put("extra", utilization.compute(q, src.memo)):
                return
            rows = session.execute(plan.stmt, execution_options={"yield_per": FETCH})
            for block in rows.partitions():
                if not put("rows", block):
                    return
            put("end", None)
    except BaseException as exc:  # handed to the caller, raised there
        put("error", exc)


def _take(box: Queue[tuple[str, Any]]) -> Any:
    kind, value = box.get()
    if kind == "error":
        raise value
    return value


def _blocks(box: Queue[tuple[str, Any]]) -> Iterator[Any]:
    while True:
        kind, value = box.get()
        if kind == "error":
            raise value
        if kind == "end":
            return
        yield from value


def _sweep(engine: Engine) -> None:
    """Drop the tables of runs whose backend is gone (a process killed mid-run)."""
    try:
        with engine.connect() as conn:
            names = conn.scalars(
                text(
                    "SELECT tablename FROM pg_tables"
                    " WHERE schemaname = current_schema() AND tablename LIKE :stem"
                ),
                {"stem": f"{STEM}%"},
            ).all()
            alive = set(conn.scalars(text("SELECT pid FROM pg_stat_activity")))
    except DBAPIError as exc:  # the next run tries again
        logger.warning("kpi_sweep_failed", error=str(exc.orig))
        return
    dead = [n for n in names if (found := _NAME.match(n)) and int(found.group(1)) not in alive]
    if dead:
        _drop(engine, dead)


def _drop(engine: Engine, names: list[str]) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            for name in names:
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
    except DBAPIError as exc:  # left for the next run's sweep
        logger.warning("kpi_drop_failed", tables=names, error=str(exc.orig))
