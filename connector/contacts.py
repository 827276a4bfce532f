"""Contact identity: match by wa_id or BSUID, create race-free, merge when both appear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from connector import kpi_dirty
from connector.db import insert_ignore
from connector.models import (
    Contact,
    Conversation,
    DealContact,
    LinkClick,
    Message,
    Survey,
    SurveyResponse,
    TrackedLink,
)
from whatsapp.models import Identity


def _by(session: Session, column: str, value: str | None) -> Contact | None:
    if not value:
        return None
    stmt = select(Contact).where(getattr(Contact, column) == value).with_for_update()
    return session.scalars(stmt).first()


def resolve_contact(session: Session, ident: Identity, seen_at: datetime | None) -> Contact:
    """Find (or create) and lock the contact ``ident`` names, learning any new identifier."""
    if not ident.wa_id and not ident.user_id:
        raise ValueError("identity has neither wa_id nor user_id")
    by_wa, by_user = _by(session, "wa_id", ident.wa_id), _by(session, "user_id", ident.user_id)
    if by_wa is not None and by_user is not None and by_wa.id != by_user.id:
        merge_contacts(session, keep=by_wa, gone=by_user)
    contact = by_wa or by_user
    if contact is None:
        insert_ignore(
            session,
            Contact,
            {"wa_id": ident.wa_id, "user_id": ident.user_id, "marketing_opt_out": False},
        )
        contact = _by(session, "wa_id", ident.wa_id) or _by(session, "user_id", ident.user_id)
        assert contact is not None  # inserted now or by a concurrent writer
    _learn(contact, ident, seen_at)
    return contact


def _learn(contact: Contact, ident: Identity, seen_at: datetime | None) -> None:
    if ident.wa_id and not contact.wa_id:
        contact.wa_id = ident.wa_id
    if ident.user_id and not contact.user_id:
        contact.user_id = ident.user_id
    contact.parent_user_id = contact.parent_user_id or ident.parent_user_id
    # The newest message's profile wins, whatever order the webhooks arrive in.
    if (
        seen_at is not None
        and (ident.name or ident.username)
        and (contact.name_seen_at is None or seen_at >= contact.name_seen_at)
    ):
        contact.name = ident.name or contact.name
        contact.username = ident.username or contact.username
        contact.name_seen_at = seen_at


def merge_contacts(session: Session, *, keep: Contact, gone: Contact) -> None:
    """Fold ``gone`` into ``keep``: the same person seen once by phone, once by BSUID."""
    gone_id = gone.id
    already = select(DealContact.deal_id).where(DealContact.contact_id == keep.id)
    session.execute(
        delete(DealContact)
        .where(DealContact.contact_id == gone.id, DealContact.deal_id.in_(already))
        .execution_options(synchronize_session=False)
    )
    for model in (
        Message,
        Conversation,
        Survey,
        SurveyResponse,
        TrackedLink,
        LinkClick,
        DealContact,
    ):
        session.execute(
            update(model)
            .where(model.contact_id == gone.id)
            .values(contact_id=keep.id)
            .execution_options(synchronize_session=False)
        )
    for attr in ("wa_id", "user_id", "parent_user_id", "username", "name", "name_seen_at"):
        if getattr(keep, attr) is None:
            value = getattr(gone, attr)
            if attr in ("wa_id", "user_id"):
                setattr(gone, attr, None)
                session.flush()
            setattr(keep, attr, value)
    session.delete(gone)
    session.flush()
    session.expire_all()
    # The updates above bypass the session hooks: every conversation of the kept contact
    # (its repeat contacts may have changed), its deals (their touches did) and the folded
    # contact (its values are gone).
    kept = session.execute(
        select(*kpi_dirty.CONVERSATION_COLUMNS).where(Conversation.contact_id == keep.id)
    )
    deals = session.scalars(select(DealContact.deal_id).where(DealContact.contact_id == keep.id))
    extra = [("contact", str(gone_id)), *(("deal", str(d)) for d in deals)]
    kpi_dirty.mark_rows(session, kept.all(), *extra)


def change_number(session: Session, contact: Contact, new_wa_id: str) -> Contact:
    """A ``user_changed_number`` notice: the contact keeps its history under the new number."""
    existing = _by(session, "wa_id", new_wa_id)
    if existing is not None and existing.id != contact.id:
        merge_contacts(session, keep=existing, gone=contact)
        return existing
    contact.wa_id = new_wa_id
    return contact
