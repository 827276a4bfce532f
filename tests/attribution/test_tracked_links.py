"""Tracked links: create per campaign, `GET /r/<token>` records and redirects, attribution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from connector import create_app
from connector.db import Database, get_db
from connector.models import Contact, LinkClick, TrackedLink
from tests.attribution.attribution_timeline import Story
from tests.conftest import base_config

A, B, C, D = "447700900031", "447700900032", "447700900033", "447700900034"
TARGET = "https://shop.example/spring?utm_source=whatsapp"


@pytest.fixture
def story(client: FlaskClient, db: Database) -> Story:
    s = Story(client, db)
    s.campaign(name="Mail")
    return s


def clicks(db: Database) -> list[LinkClick]:
    with db.session() as s:
        rows = list(s.scalars(select(LinkClick).order_by(LinkClick.id)))
        s.expunge_all()
        return rows


def test_a_recipient_link_redirects_and_records_the_click(
    client: FlaskClient, db: Database, story: Story
) -> None:
    made = story.api(
        "post", "/api/v1/campaigns/mail/links", {"url": TARGET, "wa_id": A}, expect=201
    )
    token = made["token"]
    assert len(token) >= 22  # secrets.token_urlsafe(16): 128 random bits
    assert made == {
        "token": token,
        "url": TARGET,
        "short_url": f"http://localhost/r/{token}",  # no WACRM_PUBLIC_URL: the request host
        "campaign_id": "mail",
        "wa_id": A,
        "created_at": made["created_at"],
    }
    agent = "Mozilla/5.0 " + "x" * 600
    resp = client.get(f"/r/{token}", headers={"User-Agent": agent})  # no bearer token needed
    assert (resp.status_code, resp.headers["Location"]) == (302, TARGET)
    assert resp.headers["Cache-Control"] == "no-store"
    (click,) = clicks(db)
    with db.session() as s:
        link = s.scalars(select(TrackedLink)).one()
        contact = s.scalars(select(Contact).where(Contact.wa_id == A)).one()  # created for it
        assert (click.link_id, click.campaign_id, click.contact_id) == (
            link.id,
            link.campaign_id,
            contact.id,
        )
    assert click.user_agent == agent[:512]
    client.get(f"/r/{token}")  # a second click by the same recipient
    detail = story.api("get", "/api/v1/campaigns/mail")
    assert detail["counts"] == {"links": 1, "clicks": 2, "unique_clickers": 1, "conversations": 0}
    listed = story.api("get", "/api/v1/campaigns/mail/links")
    assert [(i["token"], i["wa_id"], i["clicks"]) for i in listed["items"]] == [(token, A, 2)]


@pytest.mark.parametrize(
    "agent",
    ["WhatsApp/2.23.18.78 i", "facebookexternalhit/1.1", "TelegramBot (like TwitterBot)"],
)
def test_link_previews_redirect_without_counting(
    client: FlaskClient, db: Database, story: Story, agent: str
) -> None:
    token = story.link("mail", A, TARGET)
    resp = client.get(f"/r/{token}", headers={"User-Agent": agent})
    assert (resp.status_code, resp.headers["Location"]) == (302, TARGET)
    head = client.head(f"/r/{token}", headers={"User-Agent": "Mozilla/5.0"})
    assert head.status_code == 302
    assert clicks(db) == []


def test_unknown_token_is_a_plain_404(client: FlaskClient) -> None:
    for token in ("nope", "x" * 300):
        resp = client.get(f"/r/{token}")
        assert resp.status_code == 404 and resp.mimetype == "text/plain"
        assert resp.get_data(as_text=True) == "link not found\n"


@pytest.fixture
def public(db_url: str, tmp_path: Path) -> Iterator[Story]:
    app = create_app(base_config(db_url, tmp_path, WACRM_PUBLIC_URL="https://go.example.com/"))
    yield Story(app.test_client(), get_db(app))
    get_db(app).dispose()


def test_short_url_uses_the_public_url(public: Story) -> None:
    public.campaign(name="Mail")
    made = public.api("post", "/api/v1/campaigns/mail/links", {"url": TARGET}, expect=201)
    assert made["short_url"] == f"https://go.example.com/r/{made['token']}"
    assert made["wa_id"] is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"url"}),
        ({"url": "javascript:alert(1)"}, {"url"}),
        ({"url": "ftp://files.example/x"}, {"url"}),
        ({"url": "https://"}, {"url"}),
        ({"url": "https://shop.example/a b"}, {"url"}),
        ({"url": "http://[::1"}, {"url"}),
        ({"url": 42}, {"url"}),
        ({"url": "https://x.example/" + "a" * 2048}, {"url"}),
        ({"url": TARGET, "wa_id": "call me"}, {"wa_id"}),
        ({"url": TARGET, "contact": A}, {"contact"}),
    ],
)
def test_link_bodies_are_validated(story: Story, body: dict[str, Any], fields: set[str]) -> None:
    error = story.api("post", "/api/v1/campaigns/mail/links", body, expect=400)["error"]
    assert set(error["details"]["fields"]) == fields


def test_links_of_an_unknown_campaign_are_404(story: Story) -> None:
    story.api("post", "/api/v1/campaigns/nope/links", {"url": TARGET}, expect=404)
    story.api("get", "/api/v1/campaigns/nope/links", expect=404)


def test_a_click_attributes_the_next_conversation_within_the_window(
    story: Story, db: Database
) -> None:
    window = timedelta(days=30)  # WACRM_ATTRIBUTION_WINDOW's default
    clicked = {who: story.click(story.link("mail", who)) for who in (A, B, C)}
    generic = story.click(story.link("mail", None))  # nobody's link: no contact to credit
    story.says(A, clicked[A] + timedelta(hours=1))
    # Webhook timestamps are whole seconds: + window floors to at most 1 s inside the edge,
    # + window + 2 s floors to more than 1 s outside it.
    story.says(B, clicked[B] + window)
    story.says(C, clicked[C] + window + timedelta(seconds=2))
    story.says(D, generic + timedelta(hours=1))
    assert story.tags(A) == [("mail", "link_click")]
    assert story.tags(B) == [("mail", "link_click")]
    assert story.tags(C) == [(None, None)]
    assert story.tags(D) == [(None, None)]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(LinkClick)) == 4


def test_a_click_after_the_conversation_opened_does_not_count(story: Story) -> None:
    token = story.link("mail", A)
    opened = story.click(story.link("mail", B))  # any recent instant to build around
    story.says(A, opened - timedelta(minutes=10))
    story.click(token)
    story.says(A, opened + timedelta(minutes=5))  # same conversation, opened before the click
    assert story.tags(A) == [(None, None)]
