"""Deal tags: explicit (API / CRM) beats the contact's single open deal from the CRM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.crm import build_syncer, pull
from connector.db import Database
from connector.models import Deal
from crm_adapters import local
from tests.attribution.attribution_timeline import Story
from tests.payloads import at

A, B = "447700900011", "447700900012"


@pytest.fixture
def story(client: FlaskClient, db: Database) -> Story:
    return Story(client, db)


class Crm:
    """The built-in CRM: deals are written there and pulled like any CRM's."""

    def __init__(self, app: Flask, db: Database) -> None:
        self.app, self.db = app, db

    def contact(self, wa_id: str) -> int:
        """Sync our contacts to the CRM; return the CRM id of this one."""
        build_syncer(self.app).flush(force=True)
        with self.db.engine.begin() as conn:
            return int(
                conn.execute(
                    select(local.contacts.c.id).where(local.contacts.c.wa_id == wa_id)
                ).scalar_one()
            )

    def deal(self, crm_contact: int, name: str) -> str:
        with self.db.engine.begin() as conn:
            deal_id = conn.execute(
                local.deals.insert()
                .values(
                    name=name,
                    amount=Decimal("500.00"),
                    currency="USD",
                    stage="open",
                    is_closed=False,
                    is_won=False,
                    contact_ids=[crm_contact],
                    fields={},
                    updated_at=datetime.now(UTC).replace(tzinfo=None),
                )
                .returning(local.deals.c.id)
            ).scalar_one()
        pull(self.app, full=True)
        return str(deal_id)

    def close(self, deal_key: str, *, won: bool) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(local.deals)
                .where(local.deals.c.id == int(deal_key))
                .values(is_closed=True, is_won=won, stage="won" if won else "lost")
            )
        pull(self.app, full=True)


@pytest.fixture
def crm(app: Flask, db: Database) -> Crm:
    return Crm(app, db)


def test_single_open_deal_two_open_deals_and_closed_deals(story: Story, crm: Crm) -> None:
    story.says(A, at())
    x = crm.deal(crm.contact(A), "Spring order")
    story.says(A, at(days=3))  # exactly one open deal: tagged with it
    y = crm.deal(crm.contact(A), "Upsell")
    story.says(A, at(days=6))  # two open deals: which one? neither
    crm.close(y, won=False)
    story.says(A, at(days=9))  # x open, y closed: the closed one does not count
    crm.close(x, won=True)
    story.says(A, at(days=12))  # no open deal left
    # The conversation at T0 was long resolved when x was pulled, so the pull left it alone;
    # a won deal keeps the conversations that were tagged with it.
    assert story.deals(A) == [
        (None, None),
        (x, "single_open_deal"),
        (None, None),
        (x, "single_open_deal"),
        (None, None),
    ]


def test_pull_tags_open_conversations_with_their_single_open_deal(
    story: Story, crm: Crm, db: Database
) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    story.says(B, recent - timedelta(days=5))  # resolved by timeout since
    story.says(B, recent)  # still open
    x = crm.deal(crm.contact(B), "Renewal")
    assert story.deals(B) == [(None, None), (x, "single_open_deal")]
    with db.session() as s:
        assert s.scalars(select(Deal.name).where(Deal.key == x)).one() == "Renewal"


def test_explicit_deal_tag_beats_the_open_deal_and_null_hands_back(story: Story, crm: Crm) -> None:
    recent = datetime.now(UTC) - timedelta(hours=1)
    story.says(A, recent)
    (conv_id,) = story.conversation_ids(A)
    tagged = story.tag(conv_id, deal_id="HS-9001")  # not pulled yet: the row is created
    assert (tagged["deal_id"], tagged["attribution"]["deal_source"]) == ("HS-9001", "explicit")
    x = crm.deal(crm.contact(A), "Spring order")  # the pull does not replace an explicit tag
    assert story.deals(A) == [("HS-9001", "explicit")]
    from_crm = story.tag(conv_id, deal_id=9002, source="crm")
    assert (from_crm["deal_id"], from_crm["attribution"]["deal_source"]) == ("9002", "crm")
    cleared = story.tag(conv_id, deal_id=None)
    assert (cleared["deal_id"], cleared["attribution"]["deal_source"]) == (x, "single_open_deal")
    assert cleared["campaign_id"] is None  # the campaign tag was not part of the request
