"""gunicorn settings shared by ``wacrm serve`` and the Docker image.

Each web worker also runs queue consumer threads and the (leased) scheduler unless
``WACRM_EMBEDDED=0``, so one container or one ``make run`` is a complete connector.
"""

from __future__ import annotations

import os
from typing import Any

bind = f"{os.environ.get('WACRM_HOST', '127.0.0.1')}:{os.environ.get('WACRM_PORT', '8000')}"
worker_class = "gthread"
threads = int(os.environ.get("WACRM_WEB_THREADS", "4"))
timeout = 60
graceful_timeout = 10
accesslog = None
# Several connectors (or tests) on one machine would fight over one control socket.
control_socket_disable = True


def _embedded() -> bool:
    return os.environ.get("WACRM_EMBEDDED", "1") not in ("0", "false", "no")


def post_worker_init(worker: Any) -> None:
    if _embedded():
        from connector.server import start_background
        from connector.settings_ext import settings_of

        app = worker.wsgi
        start_background(app, consumer_workers=settings_of(app).queue_workers, scheduler=True)


def worker_exit(_server: Any, worker: Any) -> None:
    from flask import Flask

    from connector.server import stop_background

    if isinstance(getattr(worker, "wsgi", None), Flask):
        stop_background(worker.wsgi)
