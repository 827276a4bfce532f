"""``wacrm serve``: gunicorn running the app, with queue consumer and scheduler embedded."""

from __future__ import annotations

from typing import Any

import structlog
from flask import Flask
from gunicorn.app.base import BaseApplication

from connector.queue import get_queue
from connector.settings_ext import settings_of

logger = structlog.get_logger(__name__)


def start_background(app: Flask, *, consumer_workers: int, scheduler: bool) -> None:
    """Run the Huey consumer threads (and the scheduler) inside this process."""
    from connector import schedule

    settings = settings_of(app)
    if consumer_workers > 0:
        consumer = get_queue(app).consumer(consumer_workers, embedded=True)
        consumer.start()
        app.extensions["wacrm.consumer"] = consumer
    if scheduler:
        schedule.start(app, settings)
    start_sync(app)
    logger.info("background_started", consumer_workers=consumer_workers, scheduler=scheduler)


def start_sync(app: Flask) -> None:
    """The outbox flusher thread (one per process; rows are claimed, never sent twice)."""
    from connector.crm import SyncLoop, check_crm_config

    check_crm_config(app)
    loop = SyncLoop(app)
    loop.start()
    app.extensions["wacrm.sync_loop"] = loop


def stop_background(app: Flask) -> None:
    get_queue(app).enqueuer.drain()
    loop = app.extensions.pop("wacrm.sync_loop", None)
    if loop is not None:
        loop.stop()
    consumer = app.extensions.pop("wacrm.consumer", None)
    if consumer is not None:
        consumer.stop(graceful=True)
    scheduler = app.extensions.pop("wacrm.scheduler", None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)


class Server(BaseApplication):  # type: ignore[misc]
    """gunicorn running our app factory with ``gunicorn_conf.py`` plus command-line options."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        from connector import gunicorn_conf

        shared = {k: v for k, v in vars(gunicorn_conf).items() if k in self.cfg.settings}
        for key, value in {**shared, **self.options}.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from connector import create_app

        return create_app()
