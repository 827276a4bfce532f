"""Flushing the outbox to the CRM: batches per operation, typed errors → next action.

Adapters classify failures; this module decides: rate limits wait as told, expired auth
refreshes once, transient errors back off exponentially with jitter (never give up: an
outage delays sync, it never drops it), a record the CRM refuses becomes a dead letter with
the CRM's own words without holding back the rest of its batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, select

from connector import field_writes, outbox
from connector.db import Database
from connector.models import CrmLink, OutboxOp, OutboxStatus, utcnow
from connector.sync_records import build_records
from connector.upserts import dialect_insert
from crm_adapters.base import BatchResult, CrmAdapter, Rejected
from crm_adapters.errors import AuthExpired, CrmError, Permanent, RateLimited, Transient

logger = structlog.get_logger(__name__)
BACKOFF_BASE, BACKOFF_CAP = 2.0, 600.0
LINK_KINDS = {outbox.UPSERT_CONTACT: "contact", outbox.LOG_MESSAGE: "message"}


@dataclass(slots=True)
class FlushReport:
    calls: int = 0
    done: int = 0
    dead: int = 0
    retried: int = 0
    by_op: dict[str, int] = field(default_factory=dict)


def backoff(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter around the nominal delay, capped."""
    nominal = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return nominal * (rng or random).uniform(0.5, 1.5)


class Syncer:
    """Flushes one CRM's outbox through one adapter."""

    def __init__(
        self,
        db: Database,
        adapter: CrmAdapter,
        *,
        crm: str,
        max_delay: timedelta = timedelta(seconds=2),
        lease: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db, self.adapter, self.crm = db, adapter, crm
        self.max_delay, self.lease, self.clock = max_delay, lease, clock
        # Salesforce packs 5 collections of 200 into one counted /composite call.
        self.batch_size: int = getattr(adapter, "RECORDS_PER_CALL", adapter.MAX_BATCH)

    def flush(self, *, force: bool = False) -> FlushReport:
        """Send every batch that is full or has waited ``max_delay`` (all, with ``force``)."""
        report = FlushReport()
        with self.db.session() as session:
            outbox.release_stale(session, now=self.clock(), lease=self.lease)
        # One batch per operation per round: a slow contact batch (phone matching) must not
        # hold back the messages of contacts the CRM already knows.
        active = list(outbox.OPERATIONS)
        while active:
            for operation in list(active):
                rows = self._claim(operation) if self._ready(operation, force=force) else []
                if not rows:
                    active.remove(operation)
                    continue
                self._send(operation, rows, report)
        return report

    def _due(self) -> Any:
        return (
            OutboxOp.crm == self.crm,
            OutboxOp.status == OutboxStatus.PENDING,
            OutboxOp.next_attempt_at <= self.clock(),
        )

    def _ready(self, operation: str, *, force: bool) -> bool:
        with self.db.session() as session:
            count, oldest, retries = session.execute(
                select(
                    func.count(), func.min(OutboxOp.created_at), func.max(OutboxOp.attempts)
                ).where(*self._due(), OutboxOp.operation == operation)
            ).one()
        if not count:
            return False
        full = count >= self.batch_size
        return force or full or bool(retries) or oldest <= self.clock() - self.max_delay

    def _claim(self, operation: str) -> list[OutboxOp]:
        with self.db.session() as session:
            stmt = (
                select(OutboxOp)
                .where(*self._due(), OutboxOp.operation == operation)
                .order_by(OutboxOp.id)
                .limit(self.adapter.MAX_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(session.scalars(stmt))
            for row in rows:
                row.status, row.claimed_at = OutboxStatus.IN_FLIGHT, self.clock()
            return rows

    def _send(self, operation: str, rows: list[OutboxOp], report: FlushReport) -> None:
        with self.db.session() as session:
            batch = build_records(session, self.crm, operation, rows)
        self._settle_waiting(batch.waiting, batch.dead)
        if not batch.calls:
            return
        try:
            result = self._call_all(operation, batch.calls, report)
        except RateLimited as exc:
            self._reschedule(batch.sent_rows, exc.retry_after, exc, count_attempt=False)
            report.retried += len(batch.sent_rows)
            return
        except Transient as exc:
            self._reschedule(batch.sent_rows, exc.retry_after, exc, count_attempt=True)
            report.retried += len(batch.sent_rows)
            return
        except AuthExpired as exc:  # could not refresh: wait for the operator, never drop
            self._reschedule(batch.sent_rows, None, exc, count_attempt=True)
            report.retried += len(batch.sent_rows)
            return
        self._apply(operation, batch.rows_by_key, result, report)

    def _call_all(
        self, operation: str, calls: list[tuple[str | None, list[Any]]], report: FlushReport
    ) -> BatchResult:
        ok: dict[str, str] = {}
        rejected: list[Rejected] = []
        for object_type, records in calls:
            result = self._call(operation, object_type, records, report)
            ok.update(result.ok)
            rejected.extend(result.rejected)
        return BatchResult(ok=ok, rejected=tuple(rejected))

    def _call(
        self, operation: str, object_type: str | None, records: list[Any], report: FlushReport
    ) -> BatchResult:
        try:
            return self._invoke(operation, object_type, records, report)
        except AuthExpired as expired:
            try:
                self.adapter.refresh_auth()  # once; a second AuthExpired propagates
            except CrmError as exc:  # e.g. a private-app token cannot be refreshed
                raise AuthExpired(f"{expired}; refresh failed: {exc}") from None
            return self._invoke(operation, object_type, records, report)
        except Permanent as exc:
            if len(records) == 1:
                return BatchResult(
                    rejected=(
                        Rejected(key=_key(operation, object_type, records[0]), message=str(exc)),
                    )
                )
            # Find the record the CRM objects to without holding back the others.
            return self._call_all(operation, [(object_type, [r]) for r in records], report)

    def _invoke(
        self, operation: str, object_type: str | None, records: list[Any], report: FlushReport
    ) -> BatchResult:
        report.calls += 1
        if operation == outbox.UPSERT_CONTACT:
            return self.adapter.upsert_contacts(records)
        if operation == outbox.LOG_MESSAGE:
            return self.adapter.log_messages(records)
        return _qualified(object_type or "", self.adapter.write_fields(object_type or "", records))

    def _apply(
        self,
        operation: str,
        rows_by_key: dict[str, list[int]],
        result: BatchResult,
        report: FlushReport,
    ) -> None:
        now, refused = self.clock(), {r.key: r for r in result.rejected}
        all_ids = [i for ids in rows_by_key.values() for i in ids]
        with self.db.session() as session:
            rows = {
                r.id: r for r in session.scalars(select(OutboxOp).where(OutboxOp.id.in_(all_ids)))
            }
            links: list[dict[str, object]] = []
            accepted: list[OutboxOp] = []
            for key, ids in rows_by_key.items():
                for row in (rows[i] for i in ids if i in rows):
                    if key in result.ok:
                        links += self._done(operation, row, result.ok[key], now)
                        accepted.append(row)
                        report.done += 1
                    elif key in refused:
                        _dead(row, refused[key])
                        report.dead += 1
                    else:
                        _retry(row, now, "the CRM returned no result for this record")
                        report.retried += 1
            if links:  # one statement for the whole batch
                session.execute(_link_statement(session), links)
            if operation == outbox.WRITE_FIELDS:  # what each CRM field now holds
                field_writes.record_accepted(session, self.crm, accepted, now)
        report.by_op[operation] = report.by_op.get(operation, 0) + len(rows_by_key)

    def _done(
        self, operation: str, row: OutboxOp, crm_id: str, now: datetime
    ) -> list[dict[str, object]]:
        row.status, row.crm_id, row.done_at, row.last_error = (OutboxStatus.DONE, crm_id, now, None)
        kind = LINK_KINDS.get(operation)
        if kind is None or row.entity_id is None:
            return []
        return [
            {
                "crm": self.crm,
                "kind": kind,
                "local_id": row.entity_id,
                "crm_id": crm_id,
                "synced_at": now,
            }
        ]

    def _reschedule(
        self, ids: list[int], delay: float | None, exc: CrmError, *, count_attempt: bool
    ) -> None:
        now = self.clock()
        with self.db.session() as session:
            for row in session.scalars(select(OutboxOp).where(OutboxOp.id.in_(ids))):
                attempts = row.attempts + 1 if count_attempt else row.attempts
                wait = delay if delay is not None else backoff(attempts)
                row.status, row.attempts = OutboxStatus.PENDING, attempts
                row.next_attempt_at = now + timedelta(seconds=wait)
                row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
        logger.warning(
            "crm_sync_deferred", crm=self.crm, rows=len(ids), error=type(exc).__name__, wait=delay
        )

    def _settle_waiting(self, waiting: list[int], dead: dict[int, str]) -> None:
        now = self.clock()
        with self.db.session() as session:
            for row in session.scalars(select(OutboxOp).where(OutboxOp.id.in_(waiting))):
                row.status, row.next_attempt_at = OutboxStatus.PENDING, now + timedelta(seconds=1)
            for row in session.scalars(select(OutboxOp).where(OutboxOp.id.in_(list(dead)))):
                _dead(row, Rejected(key=row.record_key, message=dead[row.id]))


def _link_statement(session: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for crm_links, executed for many rows at once."""
    return dialect_insert(session.get_bind().dialect.name, CrmLink).on_conflict_do_nothing(
        index_elements=["crm", "kind", "local_id"]
    )


def _key(operation: str, object_type: str | None, record: Any) -> str:
    if operation == outbox.WRITE_FIELDS:
        return f"{object_type}:{record.crm_id}"
    return str(record.key)


def _qualified(object_type: str, result: BatchResult) -> BatchResult:
    """Field writes are keyed ``object:id``: a contact and a deal may share an id."""
    return BatchResult(
        ok={f"{object_type}:{k}": v for k, v in result.ok.items()},
        rejected=tuple(replace(r, key=f"{object_type}:{r.key}") for r in result.rejected),
    )


def _dead(row: OutboxOp, rejected: Rejected) -> None:
    row.status = OutboxStatus.DEAD
    code = f" [{rejected.code}]" if rejected.code else ""
    row.last_error = f"{rejected.message}{code}"[:1000]


def _retry(row: OutboxOp, now: datetime, reason: str) -> None:
    row.attempts += 1
    row.status = OutboxStatus.PENDING
    row.next_attempt_at = now + timedelta(seconds=backoff(row.attempts))
    row.last_error = reason
