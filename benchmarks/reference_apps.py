"""Reference receivers for ``benchmarks/ingest.py``, served by gunicorn like the product.

* ``bare_app()``: the POST view only returns 200 (the framework's ceiling).
* ``minimal_app()``: checks ``X-Hub-Signature-256`` (``hmac.compare_digest``), parses the
  JSON body, INSERTs the body and the received time and COMMITs on a persistent per-thread
  connection, then returns 200: the floor of what any correct receiver must do.

Environment (read by the factories):
    BENCH_DATABASE_URL  ``postgresql://...`` (psycopg 3) or a SQLite file path.
    BENCH_APP_SECRET    the Meta app secret the bodies are signed with.
    BENCH_TABLE         the table to insert into (default ``bench_inbox``; created by the runner).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask, request

PATH = "/webhooks/whatsapp"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TABLE = "bench_inbox"


def bare_app() -> Flask:
    """A Flask app whose webhook view does nothing but return 200."""
    app = Flask("bench_bare")

    @app.post(PATH)
    def receive() -> tuple[str, int]:
        return "", 200

    return app


def minimal_app() -> Flask:
    """Verify, parse, one INSERT + COMMIT, 200: the minimal durable receiver."""
    secret = os.environ["BENCH_APP_SECRET"].encode()
    insert = _inserter(
        os.environ["BENCH_DATABASE_URL"], os.environ.get("BENCH_TABLE", DEFAULT_TABLE)
    )
    app = Flask("bench_minimal")

    @app.post(PATH)
    def receive() -> tuple[str, int]:
        body = request.get_data()
        if not _signature_ok(secret, body, request.headers.get("X-Hub-Signature-256")):
            return "bad signature", 401
        try:
            json.loads(body)
        except ValueError:
            return "bad json", 400
        insert(body)
        return "", 200

    return app


def _signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header[len(SIGNATURE_PREFIX) :].encode(), expected.encode())


def _inserter(url: str, table: str) -> Callable[[bytes], None]:
    """A function that inserts one row and commits, on this thread's own connection."""
    if url.startswith(("postgresql://", "postgres://")):
        return _per_thread(lambda: _pg_connect(url), _pg_insert(table))
    path = url.removeprefix("sqlite:///")
    return _per_thread(lambda: _sqlite_connect(path), _sqlite_insert(table))


def _per_thread(
    connect: Callable[[], Any], write: Callable[[Any, bytes], None]
) -> Callable[[bytes], None]:
    local = threading.local()

    def insert(body: bytes) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect()
        write(conn, body)

    return insert


def _pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=False)


def _pg_insert(table: str) -> Callable[[Any, bytes], None]:
    sql = f"INSERT INTO {table} (body, received_at) VALUES (%s, %s)"

    def write(conn: Any, body: bytes) -> None:
        conn.execute(sql, (body, datetime.now(UTC)))
        conn.commit()

    return write


def _sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _sqlite_insert(table: str) -> Callable[[Any, bytes], None]:
    sql = f"INSERT INTO {table} (body, received_at) VALUES (?, ?)"

    def write(conn: Any, body: bytes) -> None:
        conn.execute(sql, (body, datetime.now(UTC).isoformat()))
        conn.commit()

    return write
