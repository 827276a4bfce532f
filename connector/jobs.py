"""Periodic jobs as plain functions; the scheduler and the CLI both call these."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from connector import conversations, inbox
from connector.db import Database
from connector.queue import Queue

logger = structlog.get_logger(__name__)


def sweep_inbox(db: Database, queue: Queue, *, grace: timedelta, now: datetime) -> int:
    """Re-enqueue inbox rows still pending after ``grace``: nothing acknowledged is lost."""
    ids = inbox.claim_stale(db, older_than=now - grace)
    queue.enqueue_events(ids)
    if ids:
        logger.info("inbox_swept", count=len(ids))
    return len(ids)


def resolve_idle(db: Database, *, window: timedelta, now: datetime) -> int:
    """Resolve conversations idle longer than ``window``, at their last message's time."""
    with db.session() as session:
        count = conversations.resolve_idle(session, window=window, now=now)
    if count:
        logger.info("conversations_auto_resolved", count=count)
    return count
