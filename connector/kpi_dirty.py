"""Which KPI scopes may have changed since the last write-back run (table ``kpi_dirty``).

Session events note the scopes of the rows a flush writes (and of rows ``insert_ignore``
adds with Core statements); at commit one sorted ``INSERT … ON CONFLICT DO NOTHING``
(executemany, one round trip) records them in the same transaction as the data, so a
committed change is never missed and a rolled-back one leaves nothing behind. However many
flushes and savepoints a transaction has, it writes once; sorted keys mean two ingest
transactions never wait on each other in opposite orders (no deadlocks on PostgreSQL).
An existing row is left alone: no row lock, so concurrent ingest never queues on the hot
``account`` key.

What a row touches (besides ``account``, which every change touches):

- conversation: its contact, agent, campaign, deal and business number (``phone_number``);
  a new customer-initiated conversation also touches the scopes of the contact's
  conversations resolved within ``FCR_LOOKBACK`` before it (their FCR may flip);
- message: its conversation's scopes, plus its own contact, agent, campaign and number;
- survey and survey response: their conversation's scopes and contact;
- link click: its campaign and contact; campaign: itself; agent presence: its agent;
- deal and deal↔contact link: the deal. The job widens a dirty deal to its contacts and
  their (or its tagged) conversations' scopes when it runs (``widen_deals``): by then every
  link of a CRM pull is committed, and the pull itself stays cheap.

A changed scope column touches the old and the new value (a transfer dirties both agents).
Bulk UPDATEs bypass the ORM, so they mark what they change themselves (``mark_rows``):
``conversations.resolve_idle`` the conversations it resolves, ``contacts.merge_contacts``
every conversation and deal of the kept contact and the folded contact itself,
``attribution.rematch_referrals`` the conversations it moves and the campaign. Tagging a
pulled deal's open conversations is covered by ``widen_deals``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, delete, event, func, inspect, or_, select, text
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.base import NO_VALUE

from connector.models import (
    AgentPresence,
    Campaign,
    Conversation,
    Deal,
    DealContact,
    KpiDirty,
    LinkClick,
    Message,
    Survey,
    SurveyResponse,
    utcnow,
)
from connector.upserts import dialect_insert

if TYPE_CHECKING:
    from sqlalchemy.orm import InstanceState, sessionmaker

    from connector.db import Database

logger = structlog.get_logger(__name__)

ACCOUNT = "account"
ALL = "*"  # scope_id meaning "every key of this scope" (a new mapping, a failed full claim)
Key = tuple[str, str]
# FCR looks for a repeat within WACRM_FCR_WINDOW (7 days by default); the hook has no
# settings, so it looks back further than any usual window. Longer windows are exact only
# after the nightly full recompute.
FCR_LOOKBACK = timedelta(days=31)
CHUNK = 500  # rows per INSERT, ids per IN list: far below SQLite's 32 766 variables
# More dirty ids than this in one scope: recompute the scope in full (one scan beats a
# huge IN list, and the claim stays small in memory).
FULL_THRESHOLD = 20_000
SETTLE_TIMEOUT = 5.0  # seconds to wait for transactions older than the claim (PostgreSQL)
_PENDING = "wacrm.kpi_dirty"

# Scope → the conversation column that names it.
CONVERSATION_SCOPES = {
    "contact": "contact_id",
    "agent": "agent_id",
    "campaign": "campaign_id",
    "deal": "deal_id",
    "phone_number": "business_number_id",
}
CONVERSATION_COLUMNS = [getattr(Conversation, c) for c in CONVERSATION_SCOPES.values()]


@dataclass(slots=True)
class _Pending:
    """What one transaction touched so far; SQL lookups wait until its commit."""

    keys: set[Key] = field(default_factory=set)
    conversations: set[int] = field(default_factory=set)  # scopes still to look up
    repeats: dict[int, datetime] = field(default_factory=dict)  # contact → new conv opened

    def touch(self, scope: str, values: Iterable[Any]) -> None:
        self.keys.update((scope, str(v)) for v in values if v is not None)


Get = Callable[[str], tuple[Any, ...]]  # attribute → its value now (and before, if changed)
Handler = Callable[[_Pending, Get, bool], None]


def _state_values(state: InstanceState[Any]) -> Get:
    """Values of a flushed object, now and before this flush (never loads anything)."""

    def get(attr: str) -> tuple[Any, ...]:
        now = state.dict.get(attr)
        before = state.committed_state.get(attr, NO_VALUE)
        return (now,) if before is NO_VALUE or before == now else (now, before)

    return get


def _param_values(params: Mapping[str, Any]) -> Get:
    """Values of a row inserted by a Core statement (``insert_ignore``)."""
    return lambda attr: (params.get(attr),)


def _conversation(p: _Pending, get: Get, is_new: bool) -> None:
    for scope, attr in CONVERSATION_SCOPES.items():
        p.touch(scope, get(attr))
    if is_new and get("initiated_by")[0] == "customer" and get("opened_at")[0] is not None:
        contact, opened = get("contact_id")[0], get("opened_at")[0]
        p.repeats[contact] = min(opened, p.repeats.get(contact, opened))


def _message(p: _Pending, get: Get, is_new: bool) -> None:
    for scope, attr in (
        ("contact", "contact_id"),
        ("agent", "agent_id"),
        ("campaign", "campaign_id"),
        ("phone_number", "business_number_id"),
    ):
        p.touch(scope, get(attr))
    p.conversations.update(v for v in get("conversation_id") if v is not None)


def _surveyed(p: _Pending, get: Get, is_new: bool) -> None:
    p.touch("contact", get("contact_id"))
    p.conversations.update(v for v in get("conversation_id") if v is not None)


def _click(p: _Pending, get: Get, is_new: bool) -> None:
    p.touch("campaign", get("campaign_id"))
    p.touch("contact", get("contact_id"))


def _own(scope: str, attr: str) -> Handler:
    def handler(p: _Pending, get: Get, is_new: bool) -> None:
        p.touch(scope, get(attr))

    return handler


_HANDLERS: dict[type[Any], Handler] = {
    Conversation: _conversation,
    Message: _message,
    Survey: _surveyed,
    SurveyResponse: _surveyed,
    LinkClick: _click,
    Campaign: _own("campaign", "id"),
    Deal: _own("deal", "id"),
    DealContact: _own("deal", "deal_id"),
    AgentPresence: _own("agent", "agent_id"),
}
_TABLES: dict[Any, Handler] = {model.__table__: h for model, h in _HANDLERS.items()}


def track(sessions: sessionmaker[Session]) -> None:
    """Install the hooks on every session ``sessions`` makes (``make_database`` does this)."""
    event.listen(sessions, "after_flush", _after_flush)
    event.listen(sessions, "do_orm_execute", _on_execute)
    event.listen(sessions, "before_commit", _before_commit)
    event.listen(sessions, "after_transaction_end", _after_transaction_end)


def _pending(session: Session) -> _Pending:
    found: _Pending | None = session.info.get(_PENDING)
    if found is None:
        found = session.info[_PENDING] = _Pending()
    return found


def _after_flush(session: Session, _context: Any) -> None:
    for objects, kind in ((session.new, "new"), (session.dirty, "dirty"), (session.deleted, "")):
        for obj in objects:
            handler = _HANDLERS.get(type(obj))
            if handler is None:
                continue
            if kind == "dirty" and not session.is_modified(obj, include_collections=False):
                continue  # attributes assigned their own value: nothing was written
            handler(_pending(session), _state_values(inspect(obj)), kind == "new")
    pending: _Pending | None = session.info.get(_PENDING)
    if pending is not None and pending.conversations:
        _from_identity_map(session, pending)


def _on_execute(state: ORMExecuteState) -> None:
    """Rows inserted by Core statements (``insert_ignore``) never pass through a flush."""
    if not state.is_insert:
        return
    handler = _TABLES.get(getattr(state.statement, "table", None))
    if handler is None:
        return
    params = state.parameters
    for row in params if isinstance(params, list | tuple) else [params or {}]:
        handler(_pending(state.session), _param_values(row), True)


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: its touches go with the enclosing transaction
    session.flush()  # the commit's own final flush would come after this hook
    pending: _Pending | None = session.info.pop(_PENDING, None)
    if pending is None:
        return
    pending.keys.add((ACCOUNT, ACCOUNT))
    _expand(session, pending)
    mark(session, pending.keys)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # committed (already written) or rolled back (void)
        session.info.pop(_PENDING, None)


def _from_identity_map(session: Session, p: _Pending) -> None:
    """Conversations still in memory give their scopes for free (the identity map is weak,
    so this runs at each flush, while ingest still holds the conversation it placed)."""
    for cid in list(p.conversations):
        conv = session.identity_map.get(session.identity_key(Conversation, cid))
        values = inspect(conv).dict if conv is not None else {}
        if all(c in values for c in CONVERSATION_SCOPES.values()):
            for scope, attr in CONVERSATION_SCOPES.items():
                p.touch(scope, [values[attr]])
            p.conversations.discard(cid)


def _expand(session: Session, p: _Pending) -> None:
    """Scopes that need a lookup: the conversations of messages and survey answers not in
    memory, and the conversations a new one may turn into repeat contacts."""
    missing = sorted(p.conversations)
    conn = session.connection()
    for start in range(0, len(missing), CHUNK):
        rows = conn.execute(
            select(*CONVERSATION_COLUMNS).where(Conversation.id.in_(missing[start : start + CHUNK]))
        )
        p.keys |= conversation_keys(rows)
    if p.repeats:
        p.keys |= _earlier_resolved(conn, p.repeats)


def _earlier_resolved(conn: Connection, repeats: dict[int, datetime]) -> set[Key]:
    contacts, keys = sorted(repeats), set()
    for start in range(0, len(contacts), CHUNK):
        chunk = contacts[start : start + CHUNK]
        first, last = min(repeats[c] for c in chunk), max(repeats[c] for c in chunk)
        rows = conn.execute(
            select(*CONVERSATION_COLUMNS).where(
                Conversation.contact_id.in_(chunk),
                Conversation.resolved_at >= first - FCR_LOOKBACK,
                Conversation.resolved_at <= last,
            )
        )
        keys |= conversation_keys(rows)
    return keys


def conversation_keys(rows: Iterable[Any]) -> set[Key]:
    """Scope keys of conversation rows (contact, agent, campaign, deal, number columns)."""
    keys: set[Key] = set()
    for row in rows:
        for scope, value in zip(CONVERSATION_SCOPES, row, strict=True):
            if value is not None:
                keys.add((scope, str(value)))
    return keys


def mark(session: Session, keys: Iterable[Key], *, at: datetime | None = None) -> None:
    """Record scopes as touched; keys already dirty keep their row (and first touch time)."""
    when = at or utcnow()
    rows = [{"scope": s, "scope_id": i, "touched_at": when} for s, i in sorted(set(keys))]
    if not rows:
        return
    conn = session.connection()
    stmt = _insert_ignore(conn.dialect.name)
    # One cached statement, executemany: psycopg pipelines the rows in one round trip and
    # SQLite steps one prepared statement; rows stay in sorted order either way. (A literal
    # multi-row VALUES was measured slower: it is compiled again for each row count.)
    for start in range(0, len(rows), CHUNK):
        conn.execute(stmt, rows[start : start + CHUNK])


def mark_rows(session: Session, rows: Iterable[Any], *extra: Key) -> None:
    """After a bulk UPDATE, which bypasses the session hooks: the scopes of the
    conversation rows it returned (``CONVERSATION_COLUMNS``), the account and ``extra``."""
    mark(session, conversation_keys(rows) | {(ACCOUNT, ACCOUNT), *extra})


@functools.cache
def _insert_ignore(dialect: str) -> Any:
    return dialect_insert(dialect, KpiDirty).on_conflict_do_nothing()


@dataclass(frozen=True, slots=True)
class Claim:
    """The dirty rows one run took: ids per scope, and scopes to recompute in full."""

    ids: dict[str, frozenset[str]]
    everything: frozenset[str] = frozenset()

    def keys(self) -> list[Key]:
        return [(scope, i) for scope, ids in self.ids.items() for i in ids]

    def __bool__(self) -> bool:
        return bool(self.ids or self.everything)


def claim(db: Database, *, threshold: int = FULL_THRESHOLD) -> Claim:
    """Take (delete) every dirty row before computing, so a touch during the run stays dirty.

    Deleting afterwards would lose a touch that arrived mid-run on a scope already dirty:
    its insert is ignored and the row then deleted. On PostgreSQL a writer that inserted
    before the delete may commit after it, so the claim also waits for the transactions
    older than itself (``_settle``); on SQLite the delete waits for writers anyway.
    """
    ids: dict[str, frozenset[str]] = {}
    everything: set[str] = set()
    with db.session() as session:
        counts = session.execute(
            select(KpiDirty.scope, func.count()).group_by(KpiDirty.scope)
        ).all()
        for scope, count in counts:
            stmt = delete(KpiDirty).where(KpiDirty.scope == scope)
            if count > threshold:
                session.execute(stmt, execution_options={"synchronize_session": False})
                everything.add(scope)
            else:
                found = session.scalars(
                    stmt.returning(KpiDirty.scope_id),
                    execution_options={"synchronize_session": False},
                )
                ids[scope] = frozenset(found)
                if ALL in ids[scope]:
                    everything.add(scope)
                    del ids[scope]
        xid = _xid(session) if counts else None
    if xid is not None:
        _settle(db, xid)
    return Claim(ids, frozenset(everything))


def restore(db: Database, taken: Claim) -> None:
    """Put a claim back after a failed run, so the next run tries the same scopes."""
    with db.session() as session:
        mark(session, [*taken.keys(), *((scope, ALL) for scope in taken.everything)])


def _xid(session: Session) -> str | None:
    if session.get_bind().dialect.name != "postgresql":
        return None
    return str(session.scalar(text("SELECT pg_current_xact_id()::text")))


def _settle(db: Database, xid: str, *, timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until every transaction of this database that started before ``xid`` has ended.

    Only this database's: the cluster-wide snapshot horizon would also wait for a long
    transaction of another database on the same server.
    """
    check = text(
        "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity a"
        " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
        " AND a.backend_xid IS NOT NULL"
        " AND age(a.backend_xid) > age(CAST(CAST(:xid AS xid8) AS xid)))"
    )
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while not conn.execute(check, {"xid": xid}).scalar():
            conn.rollback()  # a fresh snapshot on the next check
            if time.monotonic() > deadline:
                logger.warning("kpi_dirty_settle_timeout", seconds=timeout)
                return
            time.sleep(0.02)


def widen_deals(session: Session, deal_ids: Collection[str]) -> set[Key]:
    """A deal changed: its contacts and their conversations' scopes (revenue, conversion)."""
    ids = sorted(int(i) for i in deal_ids if i.isdigit())
    keys: set[Key] = set()
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        contacts = select(DealContact.contact_id).where(DealContact.deal_id.in_(chunk))
        rows = session.execute(
            select(*CONVERSATION_COLUMNS).where(
                or_(Conversation.contact_id.in_(contacts), Conversation.deal_id.in_(chunk))
            )
        )
        keys |= conversation_keys(rows)
        keys.update(("contact", str(c)) for c in session.scalars(contacts))
    return keys
