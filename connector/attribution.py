"""Attribution (DESIGN §4): which campaign and deal a conversation belongs to, and why."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from connector.models import Conversation, Message


def on_inbound(session: Session, row: Message, *, window: timedelta) -> None:
    """Tag the conversation of a stored inbound message (referral, template, link, deal)."""
    conv = session.get(Conversation, row.conversation_id)
    if (
        conv is not None
        and row.referral
        and conv.referral is None
        and conv.opened_at == row.timestamp
    ):
        conv.referral = row.referral
        conv.attribution_source = conv.attribution_source or "ctwa_referral"
