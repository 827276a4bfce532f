"""CSAT / NPS surveys after resolution, and their answers (DESIGN §4).

Survey traffic never moves conversation KPIs: the question we send and an answer we
recognise are stored as messages with sender kind ``survey`` and no conversation, so
they neither open, extend nor reopen one. The answer lands on the *surveyed*
conversation as a ``survey_responses`` row (one per conversation and kind; the later
answer wins).

Sending is at most once: the ``surveys`` row is committed (unique per conversation and
kind) before the Cloud API call, so two processes, or a crash between the call and its
record, can never send a survey twice. A definite, transient refusal (HTTP 429/5xx,
Meta throttling codes) releases the claim for the next tick; any other refusal, or a
call whose outcome is unknown (timeout), stays recorded in ``surveys.error``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session, aliased

from connector import metrics, outbox
from connector.config import Settings
from connector.config_file import FileConfig, SurveyTexts
from connector.db import Database, insert_ignore
from connector.errors import NotConfigured
from connector.models import (
    Contact,
    Conversation,
    ConversationStatus,
    Message,
    SenderKind,
    Survey,
    SurveyResponse,
)
from connector.outbound import make_client
from connector.statuses import apply_statuses
from whatsapp import WhatsAppClient
from whatsapp.client import SendResult
from whatsapp.errors import WhatsAppApiError
from whatsapp.models import InboundMessage, MessageType

logger = structlog.get_logger(__name__)

# kind → (lowest, highest) score.
SCALES: dict[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10)}
# Meta refuses free-form (non-template) messages 24 h after the customer last wrote.
SERVICE_WINDOW = timedelta(hours=24)
MAX_PER_TICK = 50  # per kind: a tick stays short even when the Cloud API is slow
# Answers coming from WhatsApp itself (the API records "api").
WHATSAPP_SOURCES = ("interactive", "text")
# Meta's webhook timestamps are whole seconds: an answer in the second we sent is valid.
_CLOCK_SLACK = timedelta(seconds=1)
_REPLY_ID = re.compile(r"^survey:(\d+):(\d+)$")
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*(\d{1,2})\s*)?$")
# Definite refusals worth another try: rate limits, throttling and Meta-side outages.
_TRANSIENT_CODES = frozenset({4, 80007, 130429, 131000, 131016, 131048, 131056, 133004})


@dataclass(frozen=True, slots=True)
class _Due:
    conversation_id: int
    contact_id: int
    wa_id: str


# --- answers -------------------------------------------------------------------------


def on_inbound(session: Session, row: Message, msg: InboundMessage) -> bool:
    """If ``row`` answers a survey, store the answer and mark the row ``survey``; True if so.

    Called before the message is placed: a recognised answer joins no conversation.
    """
    found = _match(session, row, msg)
    if found is None:
        return False
    survey, score, source = found
    row.sender_kind = SenderKind.SURVEY
    row.conversation_id = None
    record_answer(
        session,
        conversation_id=survey.conversation_id,
        contact_id=row.contact_id,
        kind=survey.kind,
        score=score,
        answered_at=row.timestamp,
        source=source,
        wamid=row.wamid,
    )
    logger.info("survey_answered", survey_id=survey.id, kind=survey.kind, source=source)
    return True


def _match(session: Session, row: Message, msg: InboundMessage) -> tuple[Survey, int, str] | None:
    """(survey, score, source) for an interactive reply with our id or a plain number."""
    if msg.reply_id is not None:
        parsed = _REPLY_ID.match(msg.reply_id)
        if parsed is None:
            return None
        survey = _live_survey(session, row, survey_id=int(parsed[1]))
        score = int(parsed[2])
        if survey is None or not _on_scale(survey.kind, score):
            return None
        return survey, score, "interactive"
    if msg.type != MessageType.TEXT or msg.text is None:
        return None
    number = _NUMBER.match(msg.text)
    if number is None:
        return None
    survey = _live_survey(session, row, survey_id=None)
    score, out_of = int(number[1]), number[2]
    if survey is None or not _on_scale(survey.kind, score):
        return None
    if out_of is not None and int(out_of) != survey.scale:
        return None
    return survey, score, "text"


def _on_scale(kind: str, score: int) -> bool:
    low, high = SCALES[kind]
    return low <= score <= high


def _live_survey(session: Session, row: Message, *, survey_id: int | None) -> Survey | None:
    """The contact's survey open at the message's time: by id, else the latest unanswered."""
    s, c, r = Survey, Conversation, SurveyResponse
    # Through the conversation: contact merges move conversations, not survey rows.
    stmt = (
        select(s)
        .join(c, c.id == s.conversation_id)
        .where(
            c.contact_id == row.contact_id,
            c.business_number_id == row.business_number_id,
            s.wamid.is_not(None),
            s.error.is_(None),
            s.sent_at < row.timestamp + _CLOCK_SLACK,
            s.expires_at > row.timestamp,
        )
    )
    if survey_id is not None:
        return session.scalars(stmt.where(s.id == survey_id)).first()
    answered = exists().where(
        r.conversation_id == s.conversation_id,
        r.kind == s.kind,
        r.source.in_(WHATSAPP_SOURCES),
    )
    return session.scalars(
        stmt.where(~answered).order_by(s.sent_at.desc(), s.id.desc()).limit(1)
    ).first()


def record_answer(
    session: Session,
    *,
    conversation_id: int,
    contact_id: int,
    kind: str,
    score: int,
    answered_at: datetime,
    source: str,
    wamid: str | None = None,
) -> tuple[SurveyResponse, bool]:
    """Store an answer; the later one (by ``answered_at``) wins. True when this one is stored."""
    values: dict[str, Any] = {
        "conversation_id": conversation_id,
        "contact_id": contact_id,
        "kind": kind,
        "score": score,
        "scale": SCALES[kind][1],
        "answered_at": answered_at,
        "source": source,
        "wamid": wamid,
    }
    inserted = insert_ignore(session, SurveyResponse, values, ["conversation_id", "kind"])
    stored = session.scalars(
        select(SurveyResponse)
        .where(SurveyResponse.conversation_id == conversation_id, SurveyResponse.kind == kind)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if inserted:
        return stored, True
    if answered_at < stored.answered_at:
        return stored, False
    for key, value in values.items():
        setattr(stored, key, value)
    session.flush()
    return stored, True


# --- delivery ------------------------------------------------------------------------


def on_status(session: Session, row: Message) -> None:
    """A status for a survey message: note its delivery (the response-rate denominator)."""
    if row.sender_kind != SenderKind.SURVEY or row.direction != "outbound":
        return
    survey = session.scalars(select(Survey).where(Survey.wamid == row.wamid)).first()
    if survey is None:
        return
    reached = [t for t in (row.delivered_at, row.read_at) if t is not None]
    if reached and (survey.delivered_at is None or min(reached) < survey.delivered_at):
        survey.delivered_at = min(reached)
    if row.failed_at is not None and survey.delivered_at is None and survey.error is None:
        survey.error = f"failed: {row.error_code} {row.error_title or ''}".strip()


# --- sending -------------------------------------------------------------------------


def send_due(db: Database, settings: Settings, file_config: FileConfig, *, now: datetime) -> int:
    """Scheduled job: send the surveys due now; return how many were sent."""
    if not settings.survey_kinds:
        return 0
    try:
        client = make_client(settings)
    except NotConfigured as exc:
        _warn_once(exc.message)
        return 0
    sent = 0
    for kind in settings.survey_kinds:
        with db.session() as session:
            due = _due(session, settings, kind, now)
        for item in due:
            sent += _send_one(db, settings, client, file_config.surveys, item, kind, now)
    if sent:
        logger.info("surveys_sent", count=sent)
    return sent


@functools.cache
def _warn_once(reason: str) -> None:
    logger.warning("surveys_not_sent", reason=reason)


def _due(session: Session, settings: Settings, kind: str, now: datetime) -> list[_Due]:
    """Resolved recently, the contact's latest conversation, customer window still open."""
    c, m, later = Conversation, Message, aliased(Conversation)
    stmt = (
        select(c.id, c.contact_id, Contact.wa_id)
        .join(Contact, Contact.id == c.contact_id)
        .where(
            c.status == ConversationStatus.RESOLVED,
            c.resolved_at >= now - settings.survey_window,
            c.resolved_at <= now,
            c.business_number_id == (settings.phone_number_id or ""),
            Contact.wa_id.is_not(None),
            exists().where(
                m.conversation_id == c.id,
                m.direction == "inbound",
                m.sender_kind == SenderKind.CUSTOMER,
            ),
            ~exists().where(Survey.conversation_id == c.id, Survey.kind == kind),
            ~exists().where(
                later.contact_id == c.contact_id,
                later.business_number_id == c.business_number_id,
                later.opened_at > c.opened_at,
            ),
            _service_window_open(c, now),
        )
        .order_by(c.resolved_at, c.id)
        .limit(MAX_PER_TICK)
    )
    if kind == "nps" and "csat" in settings.survey_kinds:
        # One question at a time: NPS follows an answered CSAT; an ignored CSAT ends it.
        stmt = stmt.where(
            exists().where(SurveyResponse.conversation_id == c.id, SurveyResponse.kind == "csat")
        )
    return [_Due(cid, contact, wa_id) for cid, contact, wa_id in session.execute(stmt)]


def _service_window_open(c: type[Conversation], now: datetime) -> Any:
    """Any customer message, a survey answer included, opens the 24 h window."""
    m = aliased(Message)
    last_inbound = (
        select(func.max(m.timestamp))
        .where(
            m.contact_id == c.contact_id,
            m.business_number_id == c.business_number_id,
            m.direction == "inbound",
            m.sender_kind.in_((SenderKind.CUSTOMER, SenderKind.SURVEY)),
        )
        .scalar_subquery()
    )
    return last_inbound > now - SERVICE_WINDOW


def _send_one(
    db: Database,
    settings: Settings,
    client: WhatsAppClient,
    texts: SurveyTexts,
    item: _Due,
    kind: str,
    now: datetime,
) -> int:
    survey_id = _claim(db, settings, item, kind, now)
    if survey_id is None:
        return 0  # another process claimed it first
    log = logger.bind(survey_id=survey_id, kind=kind, conversation_id=item.conversation_id)
    text = texts.csat if kind == "csat" else texts.nps
    try:
        if kind == "csat":
            payload = csat_list(survey_id, text)
            result = client.send_interactive(item.wa_id, payload)
            raw: dict[str, Any] = {"interactive": payload}
        else:
            result = client.send_text(item.wa_id, text)
            raw = {"text": text}
    except WhatsAppApiError as exc:
        metrics.SENDS.labels("error").inc()
        _refused(db, survey_id, exc)
        log.warning("survey_refused", code=exc.code, http_status=exc.http_status)
        return 0
    metrics.SENDS.labels("sent").inc()
    _record_sent(db, settings, survey_id, item, result, text=text, raw=raw, now=now)
    log.info("survey_sent")
    return 1


def csat_list(survey_id: int, question: str) -> dict[str, Any]:
    """The CSAT question as an interactive list: 5 rows (reply buttons stop at 3)."""
    rows = [
        {
            "id": f"survey:{survey_id}:{score}",
            "title": f"{score} " + "\N{WHITE MEDIUM STAR}" * score,
        }
        for score in range(5, 0, -1)
    ]
    return {
        "type": "list",
        "body": {"text": question},
        # Language-neutral: the wording the customer reads is the configured question.
        "action": {"button": "1 - 5 \N{WHITE MEDIUM STAR}", "sections": [{"rows": rows}]},
    }


def _claim(db: Database, settings: Settings, item: _Due, kind: str, now: datetime) -> int | None:
    """Commit the survey row before the call: its unique key makes the send at most once."""
    with db.session() as session:
        values = {
            "conversation_id": item.conversation_id,
            "contact_id": item.contact_id,
            "kind": kind,
            "scale": SCALES[kind][1],
            "sent_at": now,
            "expires_at": now + settings.survey_window,
        }
        if not insert_ignore(session, Survey, values, ["conversation_id", "kind"]):
            return None
        return session.scalar(
            select(Survey.id).where(
                Survey.conversation_id == item.conversation_id, Survey.kind == kind
            )
        )


def _refused(db: Database, survey_id: int, exc: WhatsAppApiError) -> None:
    """Transient refusal: release the claim for the next tick. Otherwise keep the reason."""
    transient = exc.http_status is not None and (
        exc.http_status == 429 or exc.http_status >= 500 or exc.code in _TRANSIENT_CODES
    )
    with db.session() as session:
        if transient:
            session.execute(delete(Survey).where(Survey.id == survey_id))
            return
        survey = session.get(Survey, survey_id)
        if survey is not None:
            code = f"{exc.code} " if exc.code is not None else ""
            survey.error = f"{code}{exc.message}"[:2000]


def _record_sent(
    db: Database,
    settings: Settings,
    survey_id: int,
    item: _Due,
    result: SendResult,
    *,
    text: str,
    raw: dict[str, Any],
    now: datetime,
) -> None:
    """Store the wamid and the outbound message, so its status webhooks find them."""
    with db.session() as session:
        survey = session.get(Survey, survey_id)
        if survey is not None:
            survey.wamid = result.wamid
        row = session.scalars(select(Message).where(Message.wamid == result.wamid)).first()
        if row is None:
            row = Message(wamid=result.wamid, provider="meta", direction="outbound")
            session.add(row)
        else:  # a status webhook beat us to it and stored it as unknown
            _detach(session, row)
        row.business_number_id = settings.phone_number_id or ""
        row.contact_id = item.contact_id
        row.type = "interactive" if "interactive" in raw else "text"
        row.text, row.raw, row.is_template = text, raw, False
        row.sender_kind = SenderKind.SURVEY
        row.conversation_id = None
        row.timestamp = now
        session.flush()
        apply_statuses(session, row, own_clock=False)
        on_status(session, row)
        outbox.enqueue_message(session, settings.crm, row)
        metrics.MESSAGES.labels("outbound").inc()


def _detach(session: Session, row: Message) -> None:
    """Take a survey message out of the conversation a racing status placed it in."""
    conv_id, row.conversation_id = row.conversation_id, None
    if conv_id is None:
        return
    session.flush()
    last = session.scalar(
        select(func.max(Message.timestamp)).where(Message.conversation_id == conv_id)
    )
    conv = session.get(Conversation, conv_id)
    if conv is None:
        return
    if last is None:
        session.delete(conv)
    else:
        conv.last_message_at = last
