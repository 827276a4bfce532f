"""Tracked links: ``/r/<token>`` records a click and redirects (public, no bearer token)."""

from __future__ import annotations

import re
import secrets
from typing import Final

from flask import Blueprint, Response, current_app, redirect, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from connector.db import get_db
from connector.models import Campaign, Contact, LinkClick, TrackedLink, utcnow

bp = Blueprint("links", __name__)

TOKEN_BYTES: Final = 16  # 128 random bits: unguessable, 22 url-safe characters
MAX_TOKEN: Final = 64  # the column's width; anything longer cannot exist
MAX_USER_AGENT: Final = 512
# Link-preview fetchers are not people. WhatsApp builds previews with ``WhatsApp/<version>``
# and Meta's shared ``facebookexternalhit``, fetching as the sender types (before sending).
_PREVIEW_AGENTS: Final = re.compile(
    r"^WhatsApp/|facebookexternalhit|Facebot|Twitterbot|Slackbot|TelegramBot|Discordbot"
    r"|LinkedInBot|SkypeUriPreview|Googlebot|bingbot",
    re.IGNORECASE,
)


def new_link(
    session: Session, campaign: Campaign, url: str, contact: Contact | None
) -> TrackedLink:
    """A fresh tracked link for a campaign, optionally for one recipient."""
    link = TrackedLink(
        token=secrets.token_urlsafe(TOKEN_BYTES),
        url=url,
        campaign_id=campaign.id,
        contact_id=contact.id if contact else None,
        created_at=utcnow(),
    )
    session.add(link)
    session.flush()
    return link


def short_url(token: str, public_url: str | None) -> str:
    """Where the link lives: under ``WACRM_PUBLIC_URL``, else the host the request came to."""
    base = public_url or request.host_url
    return f"{base.rstrip('/')}/r/{token}"


def is_preview(user_agent: str | None) -> bool:
    return bool(user_agent) and _PREVIEW_AGENTS.search(user_agent or "") is not None


@bp.get("/r/<token>")
def follow(token: str) -> BaseResponse:
    """Record a click (not for HEAD or preview fetchers) and redirect to the target."""
    if len(token) > MAX_TOKEN:
        return _not_found()
    agent = request.headers.get("User-Agent")
    with get_db(current_app).session() as session:
        link = session.scalars(select(TrackedLink).where(TrackedLink.token == token)).first()
        if link is None:
            return _not_found()
        target = link.url
        if request.method == "GET" and not is_preview(agent):
            session.add(
                LinkClick(
                    link_id=link.id,
                    campaign_id=link.campaign_id,
                    contact_id=link.contact_id,
                    clicked_at=utcnow(),
                    user_agent=agent[:MAX_USER_AGENT] if agent else None,
                )
            )
    response = redirect(target, 302)
    # Every click must reach us: no caching; the token (a recipient's id) is not leaked onward.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _not_found() -> Response:
    return Response("link not found\n", status=404, mimetype="text/plain")
