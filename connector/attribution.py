"""Attribution (DESIGN §4): which campaign and deal a conversation belongs to, and why.

Campaign, the first rule that yields wins (``Conversation.attribution_source``):

1. ``explicit`` — tagged through the API (or by the CRM); never touched by a rule below;
2. ``template`` / ``campaign_send`` — the conversation opened with a campaign's own message
   (a template, or another kind of message) — set when that message is recorded;
3. ``ctwa_referral`` — the Click-to-WhatsApp referral on its first inbound message, its
   ``source_id`` matched against ``Campaign.source_ids`` (no match: the source is still
   ``ctwa_referral``, without a campaign, until a campaign claims that source id);
4. ``template`` — the campaign of the contact's last template send in
   ``[opened_at - window, opened_at)`` that did not fail (on any business number);
5. ``link_click`` — the campaign of the contact's last click on a tracked link made for them
   (``wa_id`` given when it was created) in ``[opened_at - window, opened_at]``.

Rules 2-5 read only what happened up to the opening, so the automatic tag is a pure function
of that history: it is computed when the conversation's first inbound message is stored and
recomputed whenever that history changes (a late message becomes the first inbound, a
campaign claims a referral source id). A higher-ranked signal that arrives late therefore
replaces a lower one; anything that happens after the opening never counts.

Deal (``Conversation.deal_source``): an explicit tag (``explicit``, or ``crm`` when the CRM
set it), else the contact's single open deal (``single_open_deal``) when the first inbound
message arrives or when a CRM pull finds it while the conversation is open. A deal tag, once
set, is never taken away by a rule: deals close, and a won deal must keep its conversations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from connector import kpi_dirty
from connector.db import insert_ignore
from connector.models import (
    Campaign,
    Conversation,
    ConversationStatus,
    Deal,
    DealContact,
    LinkClick,
    Message,
    SenderKind,
    utcnow,
)

EXPLICIT: Final = frozenset({"explicit", "crm"})
SINGLE_OPEN_DEAL: Final = "single_open_deal"
# Meta's referral object says ``source_id``; Twilio forwards it as ``ReferralSourceId``.
_SOURCE_ID_KEYS: Final = ("source_id", "ReferralSourceId")
_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class Choice:
    """What the automatic rules say: a campaign (or none) and why."""

    campaign_id: int | None = None
    source: str | None = None


class Keep:
    """Marker: leave this tag as it is."""


KEEP: Final = Keep()


def on_inbound(session: Session, row: Message, *, window: timedelta) -> None:
    """A stored inbound message: if it is its conversation's first, (re)evaluate the tags."""
    conv = session.get(Conversation, row.conversation_id)
    if conv is None or not _is_first_inbound(session, conv, row):
        return
    refresh_campaign(session, conv, window=window)
    fill_deal(session, conv)


def on_outbound(session: Session, row: Message) -> None:
    """A stored outbound message: a campaign message that opened its conversation tags it."""
    if row.conversation_id is None or row.campaign_id is None:
        return
    conv = session.get(Conversation, row.conversation_id)
    if conv is None or conv.opened_at != row.timestamp or conv.attribution_source in EXPLICIT:
        return
    conv.campaign_id, conv.attribution_source = row.campaign_id, _opener_source(row)


def refresh_campaign(session: Session, conv: Conversation, *, window: timedelta) -> None:
    """Keep the first inbound's referral; apply the automatic rules unless tagged explicitly."""
    opener = _first(session, conv, inbound_only=False)
    first_in = opener if opener is not None and opener.direction == "inbound" else None
    first_in = first_in or _first(session, conv, inbound_only=True)
    conv.referral = (first_in.referral or None) if first_in is not None else None
    if conv.attribution_source in EXPLICIT:
        return
    choice = campaign_choice(session, conv, opener, window=window)
    conv.campaign_id, conv.attribution_source = choice.campaign_id, choice.source


def campaign_choice(
    session: Session, conv: Conversation, opener: Message | None, *, window: timedelta
) -> Choice:
    """Rules 2-5 of the module docstring, in rank order (``conv.referral`` is current)."""
    if opener is not None and opener.direction == "outbound" and opener.campaign_id is not None:
        return Choice(opener.campaign_id, _opener_source(opener))
    if conv.referral:
        source_id = referral_source_id(conv.referral)
        return Choice(campaign_for_source(session, source_id), "ctwa_referral")
    since = conv.opened_at - window
    template = session.scalar(
        select(Message.campaign_id)
        .where(
            Message.contact_id == conv.contact_id,
            Message.direction == "outbound",
            Message.is_template.is_(True),
            Message.campaign_id.is_not(None),
            or_(Message.status.is_(None), Message.status != "failed"),
            Message.timestamp >= since,
            Message.timestamp < conv.opened_at,
        )
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(1)
    )
    if template is not None:
        return Choice(template, "template")
    click = session.scalar(
        select(LinkClick.campaign_id)
        .where(
            LinkClick.contact_id == conv.contact_id,
            LinkClick.campaign_id.is_not(None),
            LinkClick.clicked_at >= since,
            LinkClick.clicked_at <= conv.opened_at,
        )
        .order_by(LinkClick.clicked_at.desc(), LinkClick.id.desc())
        .limit(1)
    )
    return Choice(click, "link_click") if click is not None else Choice()


def _opener_source(opener: Message) -> str:
    return "template" if opener.is_template else "campaign_send"


def _first(session: Session, conv: Conversation, *, inbound_only: bool) -> Message | None:
    stmt = select(Message).where(Message.conversation_id == conv.id)
    if inbound_only:
        stmt = stmt.where(Message.direction == "inbound", Message.sender_kind != SenderKind.SYSTEM)
    return session.scalars(stmt.order_by(Message.timestamp, Message.wamid).limit(1)).first()


def _is_first_inbound(session: Session, conv: Conversation, row: Message) -> bool:
    # The cheap common case: a later message of a customer-initiated conversation.
    if conv.initiated_by == "customer" and row.timestamp > conv.opened_at:
        return False
    earlier = session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conv.id,
            Message.direction == "inbound",
            Message.sender_kind != SenderKind.SYSTEM,
            Message.id != row.id,
            or_(
                Message.timestamp < row.timestamp,
                and_(Message.timestamp == row.timestamp, Message.wamid < row.wamid),
            ),
        )
        .limit(1)
    )
    return earlier is None


def referral_source_id(referral: dict[str, Any] | None) -> str | None:
    """The ad / post id of a stored referral (Meta or Twilio shape)."""
    for key in _SOURCE_ID_KEYS:
        value = (referral or {}).get(key)
        if value not in (None, ""):
            return str(value)
    return None


def campaign_for_source(session: Session, source_id: str | None) -> int | None:
    """The campaign that claims a referral source id (the oldest, if several do)."""
    if not source_id:
        return None
    # Campaigns are few; matching in Python keeps the JSON list portable across dialects.
    rows = session.execute(
        select(Campaign.id, Campaign.source_ids)
        .where(Campaign.source_ids.is_not(None))
        .order_by(Campaign.id)
    )
    return next((cid for cid, ids in rows if ids and source_id in ids), None)


def rematch_referrals(session: Session, campaign: Campaign) -> None:
    """A campaign's source ids changed: re-match conversations opened by those ads."""
    sid = func.coalesce(*(Conversation.referral[k].as_string() for k in _SOURCE_ID_KEYS))
    ids = list(campaign.source_ids or [])
    by_ad = Conversation.attribution_source == "ctwa_referral"
    dropped = or_(sid.is_(None), sid.not_in(ids)) if ids else true()
    moved = session.execute(
        update(Conversation)
        .where(by_ad, Conversation.campaign_id == campaign.id, dropped)
        .values(campaign_id=None)
        .returning(*kpi_dirty.CONVERSATION_COLUMNS)
        .execution_options(synchronize_session="fetch")
    ).all()
    if ids:
        moved += session.execute(
            update(Conversation)
            .where(by_ad, Conversation.campaign_id.is_(None), sid.in_(ids))
            .values(campaign_id=campaign.id)
            .returning(*kpi_dirty.CONVERSATION_COLUMNS)
            .execution_options(synchronize_session="fetch")
        ).all()
    if moved:  # bulk updates bypass the session hooks
        kpi_dirty.mark_rows(session, moved, ("campaign", str(campaign.id)))


def single_open_deal(session: Session, contact_id: int) -> int | None:
    """The contact's open deal when there is exactly one, else None."""
    ids = session.scalars(
        select(DealContact.deal_id)
        .join(Deal, Deal.id == DealContact.deal_id)
        .where(DealContact.contact_id == contact_id, Deal.is_closed.is_(False))
        .limit(2)
    ).all()
    return ids[0] if len(ids) == 1 else None


def fill_deal(session: Session, conv: Conversation) -> None:
    """Tag an untagged conversation with its contact's single open deal."""
    if conv.deal_id is not None or conv.deal_source in EXPLICIT:
        return
    deal_id = single_open_deal(session, conv.contact_id)
    if deal_id is not None:
        conv.deal_id, conv.deal_source = deal_id, SINGLE_OPEN_DEAL


def on_deals_pulled(session: Session, deal_keys: Iterable[str]) -> int:
    """After a CRM pull: open, untagged conversations of those deals' contacts get their
    contact's single open deal. Returns how many conversations were tagged."""
    keys, tagged = list(deal_keys), 0
    for start in range(0, len(keys), _CHUNK):
        contacts = (
            select(DealContact.contact_id)
            .join(Deal, Deal.id == DealContact.deal_id)
            .where(Deal.key.in_(keys[start : start + _CHUNK]))
        )
        singles = session.execute(
            select(DealContact.contact_id, func.min(DealContact.deal_id))
            .join(Deal, Deal.id == DealContact.deal_id)
            .where(DealContact.contact_id.in_(contacts), Deal.is_closed.is_(False))
            .group_by(DealContact.contact_id)
            .having(func.count() == 1)
        ).all()
        for contact_id, deal_id in singles:
            result = session.execute(
                update(Conversation)
                .where(
                    Conversation.contact_id == contact_id,
                    Conversation.status == ConversationStatus.OPEN,
                    Conversation.deal_id.is_(None),
                )
                .values(deal_id=deal_id, deal_source=SINGLE_OPEN_DEAL)
                .execution_options(synchronize_session="fetch")
            )
            tagged += result.rowcount or 0  # type: ignore[attr-defined]
    return tagged


def tag(
    session: Session,
    conv: Conversation,
    *,
    campaign_key: str | Keep | None = KEEP,
    deal_key: str | Keep | None = KEEP,
    from_crm: bool = False,
    window: timedelta,
) -> None:
    """Explicit tags. A key unknown so far creates its row (a tag may precede the CRM pull);
    None removes the explicit tag and hands the conversation back to the automatic rules."""
    if not isinstance(campaign_key, Keep):
        if campaign_key is None:
            conv.campaign_id, conv.attribution_source = None, None
            refresh_campaign(session, conv, window=window)
        else:
            conv.campaign_id, conv.attribution_source = (
                _campaign_id(session, campaign_key),
                "explicit",
            )
    if not isinstance(deal_key, Keep):
        if deal_key is None:
            conv.deal_id, conv.deal_source = None, None
            fill_deal(session, conv)
        else:
            conv.deal_id = _deal_id(session, deal_key)
            conv.deal_source = "crm" if from_crm else "explicit"


def _campaign_id(session: Session, key: str) -> int:
    insert_ignore(session, Campaign, {"key": key, "created_at": utcnow()}, ["key"])
    found = session.scalar(select(Campaign.id).where(Campaign.key == key))
    assert found is not None  # inserted now or by a concurrent writer
    return found


def _deal_id(session: Session, key: str) -> int:
    insert_ignore(session, Deal, {"key": key, "is_closed": False, "is_won": False}, ["key"])
    found = session.scalar(select(Deal.id).where(Deal.key == key))
    assert found is not None
    return found
