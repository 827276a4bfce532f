"""A real connector (`wacrm serve`: gunicorn + consumer + scheduler) on a free local port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from connector.db import Database, make_database
from tests.conftest import ADMIN_TOKEN, APP_SECRET, VERIFY_TOKEN

TWILIO_TOKEN = "e2e-twilio-token"
WACRM = str(Path(sys.executable).with_name("wacrm"))


@dataclass(frozen=True, slots=True)
class LiveServer:
    url: str
    db: Database
    env: dict[str, str]

    def wait_processed(self, timeout: float = 30.0) -> None:
        """Block until the consumer has worked through every inbox row."""
        from sqlalchemy import func, select

        from connector.models import EventStatus, WebhookEvent

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.db.session() as s:
                pending = s.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.status == EventStatus.PENDING)
                )
            if pending == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"{pending} inbox rows still pending after {timeout}s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(db_url: str, tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WACRM_", "WHATSAPP_"))}
    env.update(
        {
            "WACRM_DATABASE_URL": db_url,
            "WACRM_QUEUE_PATH": str(tmp_path / "queue.db"),
            "WACRM_ADMIN_TOKEN": ADMIN_TOKEN,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "WACRM_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "WACRM_SWEEP_INTERVAL": "1s",
            "WACRM_LOG_LEVEL": "WARNING",
            "WACRM_PORT": str(port),
        }
    )
    redis_url = os.environ.get("WACRM_TEST_REDIS_URL")
    if redis_url and not db_url.startswith("sqlite"):
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        env["WACRM_REDIS_URL"] = redis_url
    return env


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    env = server_env(db_url, tmp_path, port)
    subprocess.run([WACRM, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [WACRM, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    db = make_database(
        env["WACRM_DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    )
    try:
        _wait_up(url, proc, tmp_path / "server.log")
        yield LiveServer(url, db, env)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        db.dispose()


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server did not become ready:\n{log.read_text()}")
