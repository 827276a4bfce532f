"""Campaign attribution rules and their precedence (DESIGN §4), on hand-built timelines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from connector import create_app
from connector.db import Database, get_db
from tests.attribution.attribution_timeline import AD_ID, Story, referral
from tests.conftest import base_config
from tests.payloads import T0, at

A, B, C = "447700900001", "447700900002", "447700900003"


@pytest.fixture
def story(client: FlaskClient, db: Database) -> Story:
    return Story(client, db)


def test_ctwa_referral_tags_the_campaign_that_claims_the_ad(story: Story) -> None:
    story.campaign(name="Summer succulents", source_ids=[AD_ID])
    story.says(A, at(), ad=referral())
    story.says(A, at(minutes=5))  # a second message of the same conversation changes nothing
    (conv,) = story.conversations(A)
    assert (conv["campaign_id"], conv["attribution"]["source"]) == (
        "summer-succulents",
        "ctwa_referral",
    )
    assert conv["attribution"]["referral"]["source_id"] == AD_ID
    assert conv["attribution"]["referral"]["ctwa_clid"] == "Aff-n8ZTODiE79d22KtAwQKj9e"


def test_unmatched_referral_waits_for_a_campaign_to_claim_it(story: Story) -> None:
    story.sends(A, at(days=-2), campaign="newsletter")  # a template 2 days before
    story.says(A, at(), ad=referral("999"))
    # The ad outranks the template even when no campaign claims it yet.
    assert story.tags(A) == [("newsletter", "template"), (None, "ctwa_referral")]
    story.campaign(name="Ads", source_ids=["999"])
    assert story.tags(A)[1] == ("ads", "ctwa_referral")
    story.campaign(key="ads", source_ids=["1000"])  # the ad id moved to no campaign
    assert story.tags(A)[1] == (None, "ctwa_referral")


@pytest.fixture
def window_48h(db_url: str, tmp_path: Path) -> Iterator[Story]:
    app = create_app(base_config(db_url, tmp_path, WACRM_ATTRIBUTION_WINDOW="48h"))
    yield Story(app.test_client(), get_db(app))
    get_db(app).dispose()


def test_template_send_counts_inside_the_window_not_after(window_48h: Story) -> None:
    story = window_48h
    story.sends(A, at(), campaign="spring")
    story.says(A, at(hours=48))  # opened_at - send = 48 h = the window: inside (inclusive)
    story.sends(B, at(), campaign="spring")
    story.says(B, T0 + timedelta(hours=48, seconds=1))  # 48 h + 1 s: just outside
    # Each template opened a business-initiated conversation of its own (tagged by the send).
    assert story.tags(A) == [("spring", "template"), ("spring", "template")]
    assert story.tags(B) == [("spring", "template"), (None, None)]


def test_the_last_template_send_wins_and_failed_or_free_text_sends_do_not_count(
    story: Story,
) -> None:
    story.sends(A, at(), campaign="old")
    story.sends(A, at(days=2), campaign="new")
    story.sends(A, at(days=3), campaign="text-only", template=False)
    story.says(A, at(days=5))
    assert story.tags(A)[-1] == ("new", "template")
    failed = story.sends(B, at(), campaign="spring")
    story.status(failed, "failed", at(minutes=1), B)
    story.says(B, at(days=3))
    assert story.tags(B)[-1] == (None, None)


def test_precedence_referral_then_template_then_link_click(story: Story) -> None:
    story.campaign(name="Ads", source_ids=[AD_ID])
    story.campaign(name="Mail")
    clicked = {who: story.click(story.link("mail", who)) for who in (A, B, C)}
    for who in (A, B):
        story.sends(who, clicked[who] - timedelta(days=2), campaign="spring")
    story.says(A, clicked[A] + timedelta(hours=1), ad=referral())
    story.says(B, clicked[B] + timedelta(hours=1))
    story.says(C, clicked[C] + timedelta(hours=1))
    assert story.tags(A)[-1] == ("ads", "ctwa_referral")  # referral > template > click
    assert story.tags(B)[-1] == ("spring", "template")  # template > the later click
    assert story.tags(C) == [("mail", "link_click")]
    conv_id = story.conversations(A)[-1]["id"]
    tagged = story.tag(conv_id, campaign_id="partner-q2")  # explicit > everything
    assert (tagged["campaign_id"], tagged["attribution"]["source"]) == ("partner-q2", "explicit")


def test_an_opening_campaign_message_outranks_a_referral_in_the_reply(story: Story) -> None:
    story.campaign(name="Ads", source_ids=[AD_ID])
    story.sends(A, at(), campaign="spring")
    story.says(A, at(hours=1))
    story.sends(B, at(), campaign="promo", template=False)
    story.says(B, at(hours=1), ad=referral())
    assert story.tags(A) == [("spring", "template")]
    (conv,) = story.conversations(B)
    assert (conv["campaign_id"], conv["attribution"]["source"]) == ("promo", "campaign_send")
    assert conv["attribution"]["referral"]["source_id"] == AD_ID  # kept for the record


def test_a_late_first_message_with_a_referral_replaces_the_template(story: Story) -> None:
    story.campaign(name="Ads", source_ids=[AD_ID])
    story.sends(A, at(), campaign="spring")
    story.says(A, at(days=2))
    assert story.tags(A)[-1] == ("spring", "template")
    # Delivered late: written 5 minutes earlier, it is the conversation's first message.
    story.says(A, at(days=2) - timedelta(minutes=5), ad=referral())
    assert story.tags(A)[-1] == ("ads", "ctwa_referral")
    # A template sent after the opening is not a touch of this conversation.
    story.sends(A, at(days=2, hours=1), campaign="later")
    assert story.tags(A)[-1] == ("ads", "ctwa_referral")


def test_explicit_tag_is_never_overwritten_and_null_hands_back_to_the_rules(
    story: Story,
) -> None:
    story.sends(A, at(), campaign="spring")
    story.says(A, at(days=2))
    conv_id = story.conversations(A)[-1]["id"]
    tagged = story.tag(conv_id, campaign_id="partner-q2")
    assert (tagged["campaign_id"], tagged["attribution"]["source"]) == ("partner-q2", "explicit")
    assert story.api("get", "/api/v1/campaigns/partner-q2")["key"] == "partner-q2"  # created
    story.campaign(name="Ads", source_ids=[AD_ID])
    story.says(A, at(days=2) - timedelta(minutes=5), ad=referral())  # a late, earlier message
    assert story.tags(A)[-1] == ("partner-q2", "explicit")
    assert story.conversations(A)[-1]["attribution"]["referral"]["source_id"] == AD_ID
    cleared = story.tag(conv_id, campaign_id=None)
    assert (cleared["campaign_id"], cleared["attribution"]["source"]) == ("ads", "ctwa_referral")


def test_re_matching_marks_the_moved_conversations_dirty(story: Story, db: Database) -> None:
    """Re-matching is a bulk update (no session hooks): it marks the scopes of the
    conversations it moves, so the next incremental write-back recomputes them."""
    from sqlalchemy import select

    from connector import kpi_dirty
    from connector.models import Contact, KpiDirty

    story.says(A, at(), ad=referral("999"))
    kpi_dirty.claim(db)  # what the webhook touched is taken by a run
    story.campaign(name="Ads", source_ids=["999"])
    with db.session() as s:
        contact = s.scalar(select(Contact.id).where(Contact.wa_id == A))
        touched = {(d.scope, d.scope_id) for d in s.scalars(select(KpiDirty))}
    assert ("contact", str(contact)) in touched  # only the re-match reaches A's contact
    assert ("account", "account") in touched
