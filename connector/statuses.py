"""Fold a message's status events into its delivery fields (furthest state, every time)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.models import Message, MessageStatusEvent

RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "deleted": 5, "failed": 6}
_TIME_FIELDS = {
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "failed": "failed_at",
}


def apply_statuses(session: Session, row: Message, *, own_clock: bool) -> None:
    """Recompute ``row``'s status fields from all its events; order of arrival is irrelevant.

    With ``own_clock`` (a message we did not send ourselves) the message's time is its
    ``sent`` status time, or the earliest status time known.
    """
    events = list(
        session.scalars(select(MessageStatusEvent).where(MessageStatusEvent.wamid == row.wamid))
    )
    if not events:
        return
    known = [e for e in events if e.status in RANK]
    if known:
        row.status = max(known, key=lambda e: (RANK[e.status], e.timestamp)).status
    for event in events:
        attr = _TIME_FIELDS.get(event.status)
        if attr is not None:
            setattr(row, attr, event.timestamp)
        if event.status == "failed":
            row.error_code, row.error_title = event.error_code, event.error_title
    priced = sorted((e for e in events if e.pricing_category), key=lambda e: RANK.get(e.status, 9))
    if priced:
        row.pricing_category = priced[0].pricing_category
        row.pricing_model = priced[0].pricing_model
        row.billable = priced[0].billable
    if own_clock:
        sent = row.sent_at
        row.timestamp = sent if sent is not None else min(e.timestamp for e in events)
