"""APScheduler in the background; a lease row makes exactly one process run the jobs."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from connector import jobs, surveys
from connector.db import Database, get_db, insert_ignore
from connector.models import SchedulerLease, utcnow
from connector.queue import get_queue
from connector.settings_ext import file_config_of

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import Settings

logger = structlog.get_logger(__name__)
LEASE = "scheduler"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(db: Database, holder: str, *, ttl: timedelta, now: datetime) -> bool:
    """Take or renew the lease; True when ``holder`` owns it until ``now + ttl``."""
    with db.session() as session:
        insert_ignore(
            session,
            SchedulerLease,
            {"name": LEASE, "holder": holder, "expires_at": now + ttl},
            ["name"],
        )
        lease = session.scalars(
            select(SchedulerLease).where(SchedulerLease.name == LEASE).with_for_update()
        ).one()
        if lease.holder != holder and lease.expires_at > now:
            return False
        lease.holder, lease.expires_at = holder, now + ttl
        return True


def tick(app: Flask, settings: Settings, holder: str) -> None:
    """One scheduler beat: run the periodic jobs if this process holds the lease."""
    db, now = get_db(app), utcnow()
    if not acquire_lease(db, holder, ttl=settings.sweep_interval * 3, now=now):
        return
    with app.app_context():
        jobs.sweep_inbox(db, get_queue(app), grace=settings.sweep_grace, now=now)
        jobs.resolve_idle(db, window=settings.auto_resolve_after, now=now)
        surveys.send_due(db, settings, file_config_of(app), now=now)


def pull_tick(app: Flask, settings: Settings, holder: str) -> None:
    """Pull deals and campaigns from the CRM, on the lease holder only."""
    from connector.crm import pull

    if acquire_lease(get_db(app), holder, ttl=settings.sweep_interval * 3, now=utcnow()):
        try:
            pull(app)
        except Exception:  # the CRM may be down: the next beat tries again
            logger.exception("crm_pull_failed")


def start(app: Flask, settings: Settings) -> BackgroundScheduler:
    """Start the background scheduler (``wacrm serve`` and ``wacrm scheduler``)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    beats = (
        ("tick", tick, settings.sweep_interval, utcnow()),
        ("pull", pull_tick, settings.pull_interval, None),
    )
    for job_id, job, every, first in beats:
        scheduler.add_job(
            job,
            "interval",
            args=[app, settings, holder_id()],
            id=job_id,
            seconds=every.total_seconds(),
            max_instances=1,
            coalesce=True,
            **({"next_run_time": first} if first else {}),
        )
    scheduler.start()
    app.extensions["wacrm.scheduler"] = scheduler
    return scheduler
