"""Work queue on Huey: SqliteHuey embedded, RedisHuey when ``WACRM_REDIS_URL`` is set.

A queue message only says "work on inbox row N"; the database holds the state, so a lost
queue message is re-sent by the sweep (``schedule.py``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from connector import ingest
from connector.db import get_db
from connector.errors import ConnectorError
from connector.models import EventStatus

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import Settings

logger = structlog.get_logger(__name__)


class RetryableProcessing(ConnectorError):
    """Normalising hit a database error; Huey retries the task."""


class EmbeddedConsumer(Consumer):
    """A consumer living inside a web worker: the host process owns the signal handlers."""

    def _set_signal_handlers(self) -> None:
        return None


class Enqueuer:
    """Hands inbox ids to Huey from a background thread, many ids per queue message.

    The webhook's ack then costs a list append instead of a queue round trip. An id still
    in memory when the process dies is not lost: its row is committed, and the sweep
    re-enqueues it.
    """

    def __init__(
        self, send: Callable[[list[int]], Any], *, max_batch: int = 200, linger: float = 0.01
    ) -> None:
        self.send = send
        self.max_batch = max_batch
        self.linger = linger  # under load, a few ms gathers many ids into one message
        self.cond = threading.Condition()
        self.items: list[int] = []
        self.thread: threading.Thread | None = None
        self.pid = 0

    def put(self, event_id: int) -> None:
        with self.cond:
            self.items.append(event_id)
            if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
                self.pid = os.getpid()  # a fork (gunicorn worker) needs its own thread
                self.thread = threading.Thread(target=self._run, name="wacrm-enqueue", daemon=True)
                self.thread.start()
            self.cond.notify()

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until every id handed over has reached the queue (graceful shutdown)."""
        with self.cond:
            self.cond.wait_for(lambda: not self.items, timeout=timeout)

    def _run(self) -> None:
        while True:
            with self.cond:
                self.cond.wait_for(lambda: bool(self.items))
            time.sleep(self.linger)
            with self.cond:
                batch, self.items = self.items[: self.max_batch], self.items[self.max_batch :]
                self.cond.notify_all()
            try:
                self.send(batch)
            except Exception:  # Redis down: the rows are committed, the sweep will resend
                logger.exception("enqueue_failed", count=len(batch))


@dataclass(slots=True)
class Queue:
    huey: Huey
    process: Any  # the Huey task wrapper: process_events(ids)
    enqueuer: Enqueuer

    def enqueue_event(self, event_id: int) -> None:
        if self.huey.immediate:
            self.process([event_id])
        else:
            self.enqueuer.put(event_id)

    def enqueue_events(self, event_ids: list[int]) -> None:
        for start in range(0, len(event_ids), 200):
            self.process(event_ids[start : start + 200])

    def consumer(self, workers: int, *, embedded: bool = False) -> Consumer:
        cls = EmbeddedConsumer if embedded else Consumer
        return cls(
            self.huey,
            workers=workers,
            worker_type="thread",
            periodic=False,
            initial_delay=0.05,
            max_delay=0.5,
            backoff=1.5,
            shutdown_timeout=10,
        )


def queue_path(settings: Settings) -> str:
    if settings.queue_path:
        return settings.queue_path
    if settings.is_sqlite and settings.database_url.startswith("sqlite:///"):
        db_file = Path(settings.database_url.removeprefix("sqlite:///"))
        return str(db_file.with_name(db_file.stem + "-queue.db"))
    return "wacrm-queue.db"


def make_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    if settings.redis_url:
        return RedisHuey("wacrm", url=settings.redis_url, immediate=immediate, results=False)
    return SqliteHuey(
        "wacrm",
        filename=queue_path(settings),
        immediate=immediate,
        results=False,
        fsync=False,
        journal_mode="wal",
        timeout=30,
    )


def init_app(app: Flask, settings: Settings) -> None:
    huey = make_huey(settings, immediate=bool(app.config.get("QUEUE_IMMEDIATE")))
    rules = ingest.Rules.from_settings(settings, app.extensions["wacrm.file_config"])

    # A database error (deadlock, failover) leaves a row pending: retry soon rather than
    # wait for the sweep, which remains the backstop if the retries run out.
    @huey.task(name="process_events", retries=3, retry_delay=2)
    def process_events(event_ids: list[int]) -> None:
        results = ingest.process_batch(
            get_db(app),
            event_ids,
            window=settings.auto_resolve_after,
            max_attempts=settings.max_attempts,
            crm=settings.crm,
            rules=rules,
        )
        pending = [i for i, status in results.items() if status == EventStatus.PENDING]
        if pending:
            raise RetryableProcessing(f"inbox rows {pending} still pending")

    app.extensions["wacrm.queue"] = Queue(huey, process_events, Enqueuer(process_events))


def get_queue(app: Flask) -> Queue:
    queue: Queue = app.extensions["wacrm.queue"]
    return queue
