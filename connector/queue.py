"""Work queue on Huey: SqliteHuey embedded, RedisHuey when ``WACRM_REDIS_URL`` is set.

A queue message only says "work on inbox row N"; the database holds the state, so a lost
queue message is re-sent by the sweep (``schedule.py``).
"""

from __future__ import annotations

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


@dataclass(slots=True)
class Queue:
    huey: Huey
    process: Any  # the Huey task wrapper for ``ingest.process_event``

    def enqueue_event(self, event_id: int) -> None:
        self.process(event_id)

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

    # A database error (deadlock, failover) leaves the row pending: retry soon rather than
    # wait for the sweep, which remains the backstop if the retries run out.
    @huey.task(name="process_event", retries=3, retry_delay=2)
    def process_event(event_id: int) -> str:
        status = ingest.process_event(
            get_db(app),
            event_id,
            window=settings.auto_resolve_after,
            max_attempts=settings.max_attempts,
            crm=settings.crm,
        )
        if status == EventStatus.PENDING:
            raise RetryableProcessing(f"inbox row {event_id} still pending")
        return status

    app.extensions["wacrm.queue"] = Queue(huey, process_event)


def get_queue(app: Flask) -> Queue:
    queue: Queue = app.extensions["wacrm.queue"]
    return queue
