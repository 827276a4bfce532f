"""Conversation segmentation (DESIGN §4), driven by the messages' own timestamps.

A conversation is a maximal run of one contact's messages on one business number in which
consecutive messages are at most ``auto_resolve_after`` apart and no explicit resolution
falls between them. That definition depends only on the set of messages and resolutions,
never on arrival order, so a replayed or reordered history segments exactly as it did live.
Placing a message touches only the conversations within ``auto_resolve_after`` of it: a new
message can extend, create or bridge (merge) conversations there, nothing further away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, select, true, update
from sqlalchemy.orm import Session

from connector import kpi_dirty
from connector.models import (
    Conversation,
    ConversationStatus,
    Message,
    ResolvedBy,
    SenderKind,
    Survey,
    SurveyResponse,
)

EXPLICIT = frozenset({ResolvedBy.AGENT, ResolvedBy.API, ResolvedBy.CRM})


@dataclass(slots=True)
class _Segment:
    messages: list[Message] = field(default_factory=list)


def opens_conversation(message: Message) -> bool:
    """System notices (e.g. a changed number) and survey traffic never start a conversation."""
    return message.sender_kind not in (SenderKind.SYSTEM, SenderKind.SURVEY)


def place(session: Session, message: Message, *, window: timedelta, now: datetime) -> None:
    """Put a stored message into the conversation its timestamp belongs to."""
    latest = _latest(session, message)
    if latest is not None and _appends(latest, message, window):
        message.conversation_id = latest.id
        latest.last_message_at = message.timestamp
        refresh_status(latest, window=window, now=now, has_later=False)
        return
    if latest is None or message.timestamp >= latest.last_message_at:
        if not opens_conversation(message):
            return
        if latest is not None:
            refresh_status(latest, window=window, now=now, has_later=True)
        _open(session, message, [], window=window, now=now, has_later=False)
        return
    resegment(session, message, window=window, now=now)


def _latest(session: Session, message: Message) -> Conversation | None:
    return session.scalars(
        select(Conversation)
        .where(
            Conversation.contact_id == message.contact_id,
            Conversation.business_number_id == message.business_number_id,
        )
        .order_by(Conversation.opened_at.desc(), Conversation.id.desc())
        .limit(1)
    ).first()


def _appends(conv: Conversation, message: Message, window: timedelta) -> bool:
    ts = message.timestamp
    if ts < conv.last_message_at or ts - conv.last_message_at > window:
        return False
    return not (
        conv.resolved_by in EXPLICIT and conv.resolved_at is not None and ts > conv.resolved_at
    )


def resegment(session: Session, message: Message, *, window: timedelta, now: datetime) -> None:
    """Re-cut the conversations near ``message`` (general, out-of-order path)."""
    ts = message.timestamp
    convs = list(
        session.scalars(
            select(Conversation)
            .where(
                Conversation.contact_id == message.contact_id,
                Conversation.business_number_id == message.business_number_id,
                Conversation.opened_at <= ts + window,
                Conversation.last_message_at >= ts - window,
            )
            .order_by(Conversation.opened_at, Conversation.id)
        )
    )
    if message.conversation_id is not None and message.conversation_id not in {c.id for c in convs}:
        own = session.get(Conversation, message.conversation_id)
        if own is not None:
            convs.append(own)
    ids = [c.id for c in convs]
    members = (
        list(session.scalars(select(Message).where(Message.conversation_id.in_(ids))))
        if ids
        else []
    )
    if message not in members:
        members.append(message)
    members.sort(key=lambda m: (m.timestamp, m.wamid))
    boundaries = sorted(
        c.resolved_at for c in convs if c.resolved_by in EXPLICIT and c.resolved_at is not None
    )
    segments = _cut(members, boundaries, window)
    _apply(session, segments, convs, window=window, now=now)


def _cut(members: list[Message], boundaries: list[datetime], window: timedelta) -> list[_Segment]:
    segments: list[_Segment] = []
    previous: Message | None = None
    for msg in members:
        fresh = (
            previous is None
            or msg.timestamp - previous.timestamp > window
            or any(previous.timestamp <= b < msg.timestamp for b in boundaries)
        )
        if fresh and not opens_conversation(msg):
            msg.conversation_id = None  # an orphan notice: kept, but opens nothing
            continue
        if fresh:
            segments.append(_Segment())
        segments[-1].messages.append(msg)
        previous = msg
    return segments


def _apply(
    session: Session,
    segments: list[_Segment],
    convs: list[Conversation],
    *,
    window: timedelta,
    now: datetime,
) -> None:
    by_id = {c.id: c for c in convs}
    kept: set[int] = set()
    successor: dict[int, int] = {}
    for index, seg in enumerate(segments):
        has_later = index + 1 < len(segments) or _has_later(session, seg, by_id)
        owners = sorted(
            {
                m.conversation_id
                for m in seg.messages
                if m.conversation_id in by_id and m.conversation_id not in kept
            }
        )
        if not owners:
            _open(
                session,
                seg.messages[0],
                seg.messages[1:],
                window=window,
                now=now,
                has_later=has_later,
            )
            continue
        keeper = by_id[owners[0]]
        kept.add(keeper.id)
        _fill(keeper, seg.messages, [by_id[i] for i in owners[1:]])
        successor.update((i, keeper.id) for i in owners[1:])
        refresh_status(keeper, window=window, now=now, has_later=has_later)
    for conv in convs:
        if conv.id not in kept:
            _retire(session, conv, successor.get(conv.id))


def _has_later(session: Session, seg: _Segment, window_convs: dict[int, Conversation]) -> bool:
    last = seg.messages[-1]
    later = session.scalar(
        select(Conversation.id)
        .where(
            Conversation.contact_id == last.contact_id,
            Conversation.business_number_id == last.business_number_id,
            Conversation.opened_at > last.timestamp,
            Conversation.id.not_in(list(window_convs) or [-1]),
        )
        .limit(1)
    )
    return later is not None


def _fill(keeper: Conversation, messages: list[Message], merged: list[Conversation]) -> None:
    """Make ``keeper`` own ``messages``; take over tags and resolutions of merged rows."""
    first, last = messages[0], messages[-1]
    keeper.opened_at = first.timestamp
    keeper.initiated_by = "customer" if first.direction == "inbound" else "business"
    keeper.last_message_at = last.timestamp
    for msg in messages:
        msg.conversation_id = keeper.id
    for other in merged:
        for attr in (
            "agent_id",
            "deal_id",
            "campaign_id",
            "attribution_source",
            "referral",
            "pricing_conversation_id",
            "pricing_category",
        ):
            if getattr(keeper, attr) is None:
                setattr(keeper, attr, getattr(other, attr))
        if other.resolved_by in EXPLICIT and keeper.resolved_by not in EXPLICIT:
            keeper.resolved_by, keeper.resolved_at = other.resolved_by, other.resolved_at


def _retire(session: Session, conv: Conversation, successor: int | None) -> None:
    """Delete a conversation merged away; its surveys follow the conversation it joined."""
    session.flush()
    session.execute(
        update(Message).where(Message.conversation_id == conv.id).values(conversation_id=None)
    )
    for model in (SurveyResponse, Survey):
        taken = select(model.kind).where(model.conversation_id == successor)
        session.execute(
            delete(model)
            .where(
                model.conversation_id == conv.id,
                true() if successor is None else model.kind.in_(taken),
            )
            .execution_options(synchronize_session=False)
        )
        if successor is not None:
            session.execute(
                update(model)
                .where(model.conversation_id == conv.id)
                .values(conversation_id=successor)
                .execution_options(synchronize_session=False)
            )
    session.delete(conv)


def _open(
    session: Session,
    first: Message,
    rest: list[Message],
    *,
    window: timedelta,
    now: datetime,
    has_later: bool,
) -> Conversation:
    conv = Conversation(
        contact_id=first.contact_id,
        business_number_id=first.business_number_id,
        initiated_by="customer" if first.direction == "inbound" else "business",
        opened_at=first.timestamp,
        last_message_at=(rest[-1] if rest else first).timestamp,
        status=ConversationStatus.OPEN,
    )
    session.add(conv)
    session.flush()
    for msg in [first, *rest]:
        msg.conversation_id = conv.id
    refresh_status(conv, window=window, now=now, has_later=has_later)
    return conv


def refresh_status(
    conv: Conversation, *, window: timedelta, now: datetime, has_later: bool
) -> None:
    """Derive open/resolved: explicit resolutions stick; otherwise idle ⇒ resolved by timeout."""
    if conv.resolved_by in EXPLICIT:
        conv.status = ConversationStatus.RESOLVED
        return
    if has_later or now - conv.last_message_at > window:
        conv.status = ConversationStatus.RESOLVED
        conv.resolved_by = ResolvedBy.TIMEOUT
        conv.resolved_at = conv.last_message_at
    else:
        conv.status = ConversationStatus.OPEN
        conv.resolved_by = None
        conv.resolved_at = None


def resolve(conv: Conversation, *, how: ResolvedBy, at: datetime) -> None:
    """Resolve explicitly; a later inbound message opens a new conversation."""
    if conv.status == ConversationStatus.RESOLVED:
        return
    conv.status = ConversationStatus.RESOLVED
    conv.resolved_by = how
    conv.resolved_at = max(at, conv.last_message_at)


def resolve_idle(session: Session, *, window: timedelta, now: datetime) -> int:
    """Periodic job: resolve conversations idle past the window, at their last message."""
    result = session.execute(
        update(Conversation)
        .where(
            and_(
                Conversation.status == ConversationStatus.OPEN,
                Conversation.last_message_at < now - window,
            )
        )
        .values(
            status=ConversationStatus.RESOLVED,
            resolved_by=ResolvedBy.TIMEOUT,
            resolved_at=Conversation.last_message_at,
        )
        .returning(*kpi_dirty.CONVERSATION_COLUMNS)
        .execution_options(synchronize_session=False)
    )
    # A bulk UPDATE bypasses the session hooks: mark the resolved conversations' scopes.
    rows = result.all()
    if rows:
        kpi_dirty.mark_rows(session, rows)
    return len(rows)
