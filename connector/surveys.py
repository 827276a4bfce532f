"""CSAT / NPS surveys after resolution, and their answers (DESIGN §4)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from connector.models import Message
from whatsapp.models import InboundMessage


def on_inbound(session: Session, row: Message, msg: InboundMessage, *, window: timedelta) -> None:
    """Record a survey answer carried by an inbound message (interactive or plain number)."""


def on_status(session: Session, row: Message) -> None:
    """A status for a survey message: note its delivery (the response-rate denominator)."""
