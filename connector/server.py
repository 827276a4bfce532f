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
    logger.info("background_started", consumer_workers=consumer_workers, scheduler=scheduler)


def stop_background(app: Flask) -> None:
    consumer = app.extensions.pop("wacrm.consumer", None)
    if consumer is not None:
        consumer.stop(graceful=True)
    scheduler = app.extensions.pop("wacrm.scheduler", None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)


class Server(BaseApplication):  # type: ignore[misc]
    """A gunicorn application built from our app factory, configured in code."""

    def __init__(self, options: dict[str, Any], *, embedded: bool, consumer_workers: int) -> None:
        self.options = options
        self.embedded = embedded
        self.consumer_workers = consumer_workers
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if self.embedded:
            self.cfg.set("post_worker_init", self._post_worker_init)
            self.cfg.set("worker_exit", self._worker_exit)

    def load(self) -> Flask:
        from connector import create_app

        return create_app()

    def _post_worker_init(self, worker: Any) -> None:
        start_background(worker.wsgi, consumer_workers=self.consumer_workers, scheduler=True)

    def _worker_exit(self, _server: Any, worker: Any) -> None:
        if isinstance(getattr(worker, "wsgi", None), Flask):
            stop_background(worker.wsgi)
