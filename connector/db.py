"""Engine and sessions per app, SQLite tuned for concurrent writers, Alembic helpers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, bindparam, create_engine, event
from sqlalchemy import inspect as sqlalchemy_inspect
from sqlalchemy.orm import Session, sessionmaker

import migrations
from connector import kpi_dirty
from connector.upserts import dialect_insert

if TYPE_CHECKING:
    from flask import Flask

MIGRATIONS_DIR = Path(migrations.__file__).parent


class ThreadConnections:
    """One raw DBAPI connection per thread, held across requests (the ack's hot path)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = threading.local()
        self.lock = threading.Lock()
        self.all: list[Any] = []

    def get(self) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = self.engine.raw_connection()
            with self.lock:
                self.all.append(conn)
        return conn

    def drop(self) -> None:
        """Forget this thread's connection (after an error): the next get() opens another."""
        conn, self.local.conn = getattr(self.local, "conn", None), None
        if conn is not None:
            with self.lock:
                self.all = [c for c in self.all if c is not conn]
            conn.invalidate()

    def close_all(self) -> None:
        with self.lock:
            conns, self.all = self.all, []
        for conn in conns:
            conn.close()
        self.local = threading.local()


@dataclass(frozen=True, slots=True)
class Database:
    engine: Engine
    sessions: sessionmaker[Session]
    # Single-statement writes on the webhook hot path: one round trip, committed on return.
    autocommit: Engine
    hot: ThreadConnections

    def dispose(self) -> None:
        self.hot.close_all()
        self.engine.dispose()
        self.autocommit.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self.sessions() as session, session.begin():
            yield session


def _tune_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so we can BEGIN IMMEDIATE: writers then
        # queue on busy_timeout instead of failing with "database is locked" on upgrade.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if not immediate:  # an AUTOCOMMIT engine: each statement is its own transaction
        return

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        kwargs.pop("pool_pre_ping", None)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine, immediate=kwargs.get("isolation_level") != "AUTOCOMMIT")
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_database(url: str) -> Database:
    engine = make_engine(url)
    # No pre-ping here: a stale connection fails the INSERT, which inbox.store retries once.
    autocommit = make_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    sessions = sessionmaker(engine, expire_on_commit=False)
    kpi_dirty.track(sessions)  # scopes whose KPIs a commit may change, for the write-back
    return Database(
        engine,
        sessions,
        autocommit,
        ThreadConnections(autocommit),
    )


def get_db(app: Flask) -> Database:
    db: Database = app.extensions["wacrm.db"]
    return db


def init_app(app: Flask, url: str) -> None:
    app.extensions["wacrm.db"] = make_database(url)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (``wacrm db upgrade``)."""
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_IGNORE_STATEMENTS: dict[tuple[str, Any, tuple[str, ...], tuple[str, ...] | None], Any] = {}


def insert_ignore(
    session: Session, model: Any, values: dict[str, Any], conflict: list[str] | None = None
) -> bool:
    """INSERT … ON CONFLICT DO NOTHING on either dialect; True when a row was inserted."""
    dialect = session.get_bind().dialect.name
    key = (dialect, model, tuple(values), tuple(conflict) if conflict else None)
    stmt = _IGNORE_STATEMENTS.get(key)
    if stmt is None:  # built once per shape: values travel as parameters
        stmt = _IGNORE_STATEMENTS[key] = _insert_ignore_statement(
            dialect, model, conflict, list(values)
        )
    return session.execute(stmt, values).first() is not None


def _insert_ignore_statement(
    dialect: str, model: Any, conflict: list[str] | None, columns: list[str]
) -> Any:
    table = sqlalchemy_inspect(model).local_table
    stmt = dialect_insert(dialect, table).values({c: bindparam(c) for c in columns})
    # rowcount is not reliable across drivers for INSERT … RETURNING; a returned key is.
    return stmt.on_conflict_do_nothing(index_elements=conflict).returning(
        *table.primary_key.columns
    )
