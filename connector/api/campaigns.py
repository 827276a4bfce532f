"""Campaigns: create or update by key, list, detail; tracked links of a campaign."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connector import attribution, links
from connector.api import bp
from connector.api.params import FieldErrors, int_arg, iso, json_body, text_value
from connector.contacts import resolve_contact
from connector.db import get_db, insert_ignore
from connector.errors import NotFound, ValidationFailed
from connector.models import Campaign, Contact, Conversation, LinkClick, TrackedLink, utcnow
from connector.settings_ext import settings_of
from whatsapp.models import Identity

FIELDS: Final = frozenset(
    {"key", "name", "crm_id", "spend", "currency", "source_ids", "template_name"}
)
MAX_SPEND: Final = Decimal("1e16")  # Numeric(18, 2)
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_WA_ID: Final = re.compile(r"^\+?\d{6,20}$")
MAX_URL: Final = 2048


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:128]


def _spend(value: Any, errors: FieldErrors) -> Decimal | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidOperation
        amount = Decimal(str(value))
    except InvalidOperation:
        errors["spend"] = "expected a decimal number"
        return None
    if not amount.is_finite() or amount < 0 or amount >= MAX_SPEND:
        errors["spend"] = "expected a decimal number >= 0"
    elif amount != amount.quantize(Decimal("0.01")):
        errors["spend"] = "at most 2 decimal places"
    return amount


def _source_ids(value: Any, errors: FieldErrors) -> list[str] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and all(
        isinstance(v, str | int) and not isinstance(v, bool) and 0 < len(str(v).strip()) <= 128
        for v in value
    )
    if not ok:
        errors["source_ids"] = "expected a list of ad / referral source ids (strings)"
        return None
    return list(dict.fromkeys(str(v).strip() for v in value)) or None


def _parse(body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Validate a campaign body: (key or None, the fields present and their new values)."""
    errors = FieldErrors.of(body, FIELDS)
    key = text_value(body, "key", errors, limit=128)
    if key is not None and "/" in key:
        errors["key"] = "must not contain '/'"
    values: dict[str, Any] = {}
    if "name" in body:
        values["name"] = text_value(body, "name", errors, limit=256)
        if values["name"] is None:
            errors.setdefault("name", "expected a non-empty string")
    if "crm_id" in body:
        values["crm_id"] = text_value(body, "crm_id", errors, limit=128)
    if "template_name" in body:
        values["template_name"] = text_value(body, "template_name", errors, limit=256)
    if "spend" in body:
        values["spend"] = _spend(body["spend"], errors)
    if "currency" in body:
        values["currency"] = body["currency"]
        if not isinstance(body["currency"], str) or not _CURRENCY.match(body["currency"]):
            errors["currency"] = "expected an ISO 4217 code such as USD"
    if "source_ids" in body:
        values["source_ids"] = _source_ids(body["source_ids"], errors)
    if key is None and "key" not in errors and values.get("name"):
        key = slug(values["name"]) or None
        if key is None:
            errors["key"] = "required: the name has no letters or digits to derive it from"
    if key is None and not errors:
        errors["name"] = "required (or key)"
    errors.check()
    return key, values


def _conflicts(session: Session, campaign_id: int | None, values: dict[str, Any]) -> None:
    """A source id or CRM id must name one campaign, or attribution becomes a coin toss."""
    errors = FieldErrors()
    wanted = set(values.get("source_ids") or [])
    others = select(Campaign).where(Campaign.id != (campaign_id or -1))
    for other in session.scalars(others.where(Campaign.source_ids.is_not(None))):
        taken = sorted(wanted & set(other.source_ids or []))
        if taken:
            errors["source_ids"] = f"{', '.join(taken)} already belong to campaign {other.key}"
    crm_id, crm = values.get("crm_id"), settings_of().crm
    if crm_id is not None:
        holder = session.scalar(
            others.where(Campaign.crm == crm, Campaign.crm_id == crm_id).limit(1)
        )
        if holder is not None:
            errors["crm_id"] = f"already belongs to campaign {holder.key}"
    errors.check()


def campaign_view(campaign: Campaign) -> dict[str, Any]:
    return {
        "key": campaign.key,
        "name": campaign.name,
        "crm": campaign.crm,
        "crm_id": campaign.crm_id,
        "status": campaign.status,
        "spend": float(campaign.spend) if campaign.spend is not None else None,
        "currency": campaign.currency,
        "source_ids": list(campaign.source_ids or []),
        "template_name": campaign.template_name,
        "created_at": iso(campaign.created_at),
        "updated_at": iso(campaign.updated_at),
    }


@bp.post("/campaigns")
def upsert_campaign() -> tuple[dict[str, Any], int]:
    """Create a campaign (201), or update the one with this key (200)."""
    key, values = _parse(json_body())
    settings = settings_of()
    with get_db(current_app).session() as session:
        existing = session.scalar(select(Campaign.id).where(Campaign.key == key))
        if existing is None and not values.get("name"):
            raise ValidationFailed("name: required", details={"fields": {"name": "required"}})
        _conflicts(session, existing, values)
        now = utcnow()
        created = insert_ignore(
            session,
            Campaign,
            {"key": key, "created_at": now, "currency": settings.currency},
            ["key"],
        )
        campaign = session.scalars(select(Campaign).where(Campaign.key == key)).one()
        for field, value in values.items():
            setattr(campaign, field, value)
        if "crm_id" in values:  # so a CRM pull finds this row by (crm, crm_id)
            campaign.crm = settings.crm if values["crm_id"] is not None else None
        campaign.updated_at = now
        if "source_ids" in values:
            session.flush()
            attribution.rematch_referrals(session, campaign)
        return campaign_view(campaign), 201 if created else 200


@bp.get("/campaigns")
def list_campaigns() -> dict[str, Any]:
    page, per_page = int_arg("page", 1, lo=1, hi=10**6), int_arg("per_page", 50, lo=1, hi=500)
    with get_db(current_app).session() as session:
        total = session.scalar(select(func.count()).select_from(Campaign)) or 0
        rows = session.scalars(
            select(Campaign)
            .order_by(Campaign.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
        items = [campaign_view(c) for c in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


@bp.get("/campaigns/<key>")
def get_campaign(key: str) -> dict[str, Any]:
    """The campaign and its tracking counts (links, clicks, unique clickers, conversations)."""
    with get_db(current_app).session() as session:
        campaign = _load(session, key)
        clicks = select(
            func.count(LinkClick.id), func.count(func.distinct(LinkClick.contact_id))
        ).where(LinkClick.campaign_id == campaign.id)
        n_clicks, clickers = session.execute(clicks).one()
        counts = {
            "links": session.scalar(
                select(func.count()).where(TrackedLink.campaign_id == campaign.id)
            ),
            "clicks": n_clicks,
            "unique_clickers": clickers,
            "conversations": session.scalar(
                select(func.count()).where(Conversation.campaign_id == campaign.id)
            ),
        }
        return {**campaign_view(campaign), "counts": counts}


@bp.post("/campaigns/<key>/links")
def create_link(key: str) -> tuple[dict[str, Any], int]:
    """A tracked link to ``url``; with ``wa_id``, one recipient's own link."""
    body = json_body()
    errors = FieldErrors.of(body, {"url", "wa_id"})
    url, wa_id = body.get("url"), body.get("wa_id")
    if not _is_web_url(url):
        errors["url"] = f"expected an http(s) URL of at most {MAX_URL} characters"
    if wa_id is not None and not (isinstance(wa_id, str) and _WA_ID.match(wa_id)):
        errors["wa_id"] = "expected the recipient's wa_id (digits, E.164)"
    errors.check()
    with get_db(current_app).session() as session:
        campaign = _load(session, key)
        contact = (
            resolve_contact(session, Identity(wa_id=wa_id.lstrip("+")), None) if wa_id else None
        )
        link = links.new_link(session, campaign, url, contact)
        return link_view(link, campaign, contact), 201


@bp.get("/campaigns/<key>/links")
def list_links(key: str) -> dict[str, Any]:
    page, per_page = int_arg("page", 1, lo=1, hi=10**6), int_arg("per_page", 50, lo=1, hi=500)
    with get_db(current_app).session() as session:
        campaign = _load(session, key)
        clicks = (
            select(func.count(LinkClick.id))
            .where(LinkClick.link_id == TrackedLink.id)
            .scalar_subquery()
        )
        stmt = select(TrackedLink, Contact, clicks).outerjoin(
            Contact, Contact.id == TrackedLink.contact_id
        )
        stmt = stmt.where(TrackedLink.campaign_id == campaign.id)
        total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        rows = session.execute(
            stmt.order_by(TrackedLink.id.desc()).offset((page - 1) * per_page).limit(per_page)
        )
        items = [{**link_view(link, campaign, c), "clicks": n} for link, c, n in rows]
    return {"items": items, "page": page, "per_page": per_page, "total": total}


def link_view(link: TrackedLink, campaign: Campaign, contact: Contact | None) -> dict[str, Any]:
    return {
        "token": link.token,
        "url": link.url,
        "short_url": links.short_url(link.token, settings_of().public_url),
        "campaign_id": campaign.key,
        "wa_id": contact.wa_id if contact else None,
        "created_at": iso(link.created_at),
    }


def _is_web_url(url: Any) -> bool:
    if not isinstance(url, str) or len(url) > MAX_URL or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        return parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def _load(session: Session, key: str) -> Campaign:
    campaign = session.scalars(select(Campaign).where(Campaign.key == key)).first()
    if campaign is None:
        raise NotFound(f"campaign {key} not found")
    return campaign
