"""The write-back job: recompute mapped KPIs of touched scopes, enqueue changed CRM fields.

One run: sync the YAML mappings, claim the dirty scopes (``kpi_dirty.claim``), compute
each (scope, period) the enabled mappings need — only the claimed ids, or every key with
``full`` — store the mapped KPIs in ``kpi_values``, transform them, and fold every field
whose value differs from what the CRM holds (or is about to receive) into one
``write_fields`` outbox operation per record. The sync loop batches those (HubSpot 100,
Salesforce 200 a call). A failed run gives its claim back.

Rolling periods (7d, 30d, 90d, mtd) move without new traffic: the full schedule
recomputes every key, including keys that had a value before and have no data now (their
fields then clear).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector import field_writes, kpi_dirty, mappings, outbox
from connector.config import Settings
from connector.config_file import FileConfig
from connector.db import Database
from connector.kpis import KpiOptions
from connector.kpis.engine import compute_all, compute_many
from connector.models import FieldMapping, KpiValue
from connector.upserts import upsert

logger = structlog.get_logger(__name__)
IDS_PER_COMPUTE = 25_000  # ids go to a temporary table; bounds one computation's memory
Values = dict[str, dict[str, Any]]


@dataclass(slots=True)
class RunStats:
    """What one run did; ``no_record`` counts scope keys with no CRM record to write on."""

    full: bool
    mappings: int = 0
    computed: dict[str, int] = field(default_factory=dict)  # scope → keys computed
    stored: int = 0  # kpi_values rows written
    records: int = 0  # write_fields operations enqueued
    fields: int = 0  # field values in them
    unchanged: int = 0  # values skipped: the CRM has them, or they are on their way
    no_record: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        computed = ", ".join(f"{s} {n}" for s, n in sorted(self.computed.items())) or "none"
        line = (
            f"{'full' if self.full else 'incremental'} run: {self.mappings} mapping(s); "
            f"computed {computed}; enqueued {self.fields} field value(s) on "
            f"{self.records} record(s); {self.unchanged} unchanged"
        )
        if self.no_record:
            missing = ", ".join(f"{s} {n}" for s, n in sorted(self.no_record.items()))
            line += f"; no CRM record for {missing}"
        return line


def run(
    db: Database,
    settings: Settings,
    file_config: FileConfig,
    *,
    now: datetime,
    full: bool = False,
) -> RunStats:
    """One write-back run (the scheduler's job and ``wacrm kpis compute``)."""
    with db.session() as session:
        mappings.sync_file(session, file_config.field_mappings, default_crm=settings.crm)
    taken = kpi_dirty.claim(db)
    try:
        with db.session() as session:
            stats = _run(session, settings, file_config, taken, now=now, full=full)
    except BaseException:
        kpi_dirty.restore(db, taken)
        raise
    log = logger.info if stats.computed else logger.debug  # quiet when nothing was touched
    log("kpi_writeback", **stats.as_dict())
    return stats


def _run(
    session: Session,
    settings: Settings,
    file_config: FileConfig,
    taken: kpi_dirty.Claim,
    *,
    now: datetime,
    full: bool,
) -> RunStats:
    opts = KpiOptions.from_settings(settings, file_config)
    active = list(
        session.scalars(
            select(FieldMapping)
            .where(FieldMapping.crm == settings.crm, FieldMapping.enabled.is_(True))
            .order_by(FieldMapping.id)
        )
    )
    stats = RunStats(full=full, mappings=len(active))
    dirty = _dirty_ids(session, taken)
    groups: dict[tuple[str, str], list[FieldMapping]] = defaultdict(list)
    for mapping in active:
        groups[(mapping.scope, mapping.period)].append(mapping)
    desired: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    wanted: dict[str, dict[str, set[str] | None]] = defaultdict(dict)  # period → scope → ids
    for scope, period in groups:
        ids = None if full or scope in taken.everything else dirty.get(scope, set())
        if ids is None or ids:  # else nothing touched this scope since the last run
            wanted[period][scope] = ids
    for period, scopes in wanted.items():
        computed = dict.fromkeys(scopes, 0)
        # A chunk of keys at a time: a full run over every contact stays in bounded memory.
        for scope, values in _compute(session, opts, scopes, period, now=now):
            group = groups[(scope, period)]
            computed[scope] += len(values)
            stats.stored += _store(session, scope, period, group, values, now=now)
            _targets(session, settings.crm, scope, group, values, desired, stats)
        for scope, count in computed.items():
            stats.computed[scope] = max(stats.computed.get(scope, 0), count)
    _enqueue(session, settings.crm, desired, stats, now=now)
    return stats


def _dirty_ids(session: Session, taken: kpi_dirty.Claim) -> dict[str, set[str]]:
    """Claimed ids per scope, a dirty deal widened to its contacts' conversations."""
    dirty = {scope: set(ids) for scope, ids in taken.ids.items()}
    deals = dirty.get("deal")
    if deals:
        for scope, key in kpi_dirty.widen_deals(session, deals):
            dirty.setdefault(scope, set()).add(key)
    return dirty


def _compute(
    session: Session,
    opts: KpiOptions,
    wanted: dict[str, set[str] | None],
    period_name: str,
    *,
    now: datetime,
) -> Iterator[tuple[str, Values]]:
    """``(scope, KPIs of some of its keys)`` for the ``wanted`` ids of each scope (every key
    when None), the scopes computed together: a full read once for all the scopes that
    want every key, then the ids of every scope in one computation, a chunk of each at a
    time."""
    period = mappings.period_of(period_name, now=now, tz=opts.tz)
    every = [scope for scope, ids in wanted.items() if ids is None]
    few = {scope: sorted(ids) for scope, ids in wanted.items() if ids is not None}
    with _reader(session) as reader:
        seen: dict[str, set[str]] = {scope: set() for scope in every}
        for scope, values in compute_all(reader, opts, every, period, now=now) if every else ():
            seen[scope].update(values)
            yield scope, values
        for scope in every:
            # Keys that had a value but no data any more (a rolling period moved past them).
            few[scope] = sorted(_stored_keys(session, scope, period_name) - seen[scope])
        longest = max((len(ids) for ids in few.values()), default=0)
        for start in range(0, longest, IDS_PER_COMPUTE):
            chunk = {
                scope: ids[start : start + IDS_PER_COMPUTE]
                for scope, ids in few.items()
                if len(ids) > start
            }
            yield from compute_many(reader, opts, chunk, period, now=now).items()


@contextmanager
def _reader(session: Session) -> Iterator[Session]:
    """On PostgreSQL, a session of its own for the computations: this one has written
    (stored values), and a computation in a transaction that wrote cannot spread over
    several connections (``kpis.side_by_side``); what they read is committed already.
    SQLite keeps one session (its transactions take the write lock when they begin)."""
    if session.get_bind().dialect.name != "postgresql":
        yield session
        return
    with Session(session.get_bind()) as reader:
        yield reader


def _stored_keys(session: Session, scope: str, period: str) -> set[str]:
    return set(
        session.scalars(
            select(KpiValue.scope_id)
            .where(KpiValue.scope == scope, KpiValue.period == period)
            .distinct()
        )
    )


def _store(
    session: Session,
    scope: str,
    period: str,
    group: list[FieldMapping],
    values: Values,
    *,
    now: datetime,
) -> int:
    """Upsert the mapped KPIs (durations keep all their stats in ``data``)."""
    kpis = sorted({m.kpi for m in group})
    rows = []
    for key, kv in values.items():
        for kpi in kpis:
            value = kv.get(kpi)
            duration = isinstance(value, dict)
            rows.append(
                {
                    "scope": scope,
                    "scope_id": key,
                    "kpi": kpi,
                    "period": period,
                    "value": value.get("mean") if duration else _number(value),
                    "data": value if duration else None,
                    "computed_at": now,
                }
            )
    stmt = upsert(
        session.get_bind().dialect.name,
        KpiValue,
        ["scope", "scope_id", "kpi", "period"],
        ["value", "data", "computed_at"],
    )
    for start in range(0, len(rows), 500):
        session.execute(stmt, rows[start : start + 500])
    return len(rows)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _targets(
    session: Session,
    crm: str,
    scope: str,
    group: list[FieldMapping],
    values: Values,
    desired: dict[tuple[str, str], dict[str, Any]],
    stats: RunStats,
) -> None:
    """The field values each CRM record should hold, after transforms."""
    records = mappings.record_ids(session, scope, list(values), crm)
    unlinked = len(values) - len(records)
    if unlinked:
        stats.no_record[scope] = max(stats.no_record.get(scope, 0), unlinked)
    for key, crm_id in records.items():
        for m in group:
            value = mappings.transform(mappings.pick(values[key], m.kpi, m.stat), m.transform)
            desired[(m.object_type, crm_id)][m.field] = value


def _enqueue(
    session: Session,
    crm: str,
    desired: dict[tuple[str, str], dict[str, Any]],
    stats: RunStats,
    *,
    now: datetime,
) -> None:
    """One write_fields operation per record, holding only the fields that change."""
    if not desired:
        return
    held = field_writes.accepted(session, crm, desired)
    coming = field_writes.outstanding(session, crm)
    for (object_type, crm_id), fields in sorted(desired.items()):
        changed = {}
        for name, value in fields.items():
            key = (object_type, crm_id, name)
            text = field_writes.as_text(value)
            if key in coming:
                current: str | None = coming[key][1]
            elif key in held:
                current = held[key]
            else:
                current = None  # never written: an empty value needs no write either
            if text == current:
                stats.unchanged += 1
            else:
                changed[name] = value
        if changed:
            outbox.enqueue_fields(
                session, crm, object_type, crm_id, changed, version=_version(now, changed)
            )
            stats.records += 1
            stats.fields += len(changed)


def _version(now: datetime, values: dict[str, Any]) -> str:
    """Unique per run and content: the same values later are a new write, not a no-op."""
    digest = hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:8]
    return f"{now:%Y%m%dT%H%M%S%f}-{digest}"
