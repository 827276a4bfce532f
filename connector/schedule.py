"""APScheduler in the background; a lease row makes exactly one process run the jobs."""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select

from connector import jobs, surveys, writeback
from connector.config import schedule_trigger
from connector.db import Database, get_db, insert_ignore
from connector.models import SchedulerLease, utcnow
from connector.queue import get_queue
from connector.settings_ext import file_config_of, settings_of

if TYPE_CHECKING:
    from flask import Flask

    from connector.config import Settings

logger = structlog.get_logger(__name__)
LEASE = "scheduler"
KPI_LEASE = "kpis"  # one write-back run at a time, whoever started it
KPI_RUN_TTL = timedelta(minutes=30)  # a run that died frees its lease after this
KPI_RETRY = timedelta(seconds=5)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire_lease(
    db: Database, holder: str, *, ttl: timedelta, now: datetime, name: str = LEASE
) -> bool:
    """Take or renew the lease; True when ``holder`` owns it until ``now + ttl``."""
    with db.session() as session:
        insert_ignore(
            session,
            SchedulerLease,
            {"name": name, "holder": holder, "expires_at": now + ttl},
            ["name"],
        )
        lease = session.scalars(
            select(SchedulerLease).where(SchedulerLease.name == name).with_for_update()
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


def release_lease(db: Database, holder: str, *, name: str, now: datetime) -> None:
    """Give a lease up early (only if ``holder`` still has it)."""
    with db.session() as session:
        lease = session.get(SchedulerLease, name, with_for_update=True)
        if lease is not None and lease.holder == holder:
            lease.expires_at = now


def run_kpis(
    app: Flask, *, full: bool, holder: str, wait: timedelta = timedelta(0)
) -> writeback.RunStats | None:
    """One KPI write-back run under its own lease (None: another run is in progress).

    The run lease is per call, not per process, so the incremental and the full job (both
    due at 03:00), or ``wacrm kpis compute`` next to the scheduler, never overlap.
    """
    db, run_id = get_db(app), f"{holder}:{uuid.uuid4().hex[:8]}"
    deadline = utcnow() + wait
    while not acquire_lease(db, run_id, ttl=KPI_RUN_TTL, now=utcnow(), name=KPI_LEASE):
        if utcnow() >= deadline:
            return None
        time.sleep(KPI_RETRY.total_seconds())
    try:
        return writeback.run(db, settings_of(app), file_config_of(app), now=utcnow(), full=full)
    finally:
        release_lease(db, run_id, name=KPI_LEASE, now=utcnow())


def kpi_tick(app: Flask, settings: Settings, holder: str, *, full: bool = False) -> bool:
    """The scheduled write-back, on the scheduler lease holder only; True when it ran."""
    if not acquire_lease(get_db(app), holder, ttl=settings.sweep_interval * 3, now=utcnow()):
        return False
    try:  # a full run waits out an incremental one; an incremental one just skips
        stats = run_kpis(app, full=full, holder=holder, wait=KPI_RUN_TTL if full else timedelta(0))
    except Exception:  # e.g. a bad mapping file or the database away: the next beat retries
        logger.exception("kpi_writeback_failed", full=full)
        return False
    return stats is not None


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
    for job_id, schedule, full in (
        ("kpis", settings.kpi_schedule, False),
        ("kpis_full", settings.kpi_full_schedule, True),
    ):
        scheduler.add_job(
            kpi_tick,
            schedule_trigger(schedule),
            args=[app, settings, holder_id()],
            kwargs={"full": full},
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,  # late (a busy pool) still runs, once
        )
    scheduler.start()
    app.extensions["wacrm.scheduler"] = scheduler
    return scheduler
