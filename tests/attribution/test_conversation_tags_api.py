"""`POST /api/v1/conversations/<id>/tags`: body validation, 404, the summary it answers."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.db import Database
from connector.models import Campaign, Deal
from tests.attribution.attribution_timeline import AUTH, Story
from tests.payloads import at

A = "447700900021"


@pytest.fixture
def conv_id(client: FlaskClient, db: Database) -> int:
    story = Story(client, db)
    story.says(A, at())
    (only,) = story.conversation_ids(A)
    return only


def tag(client: FlaskClient, conv_id: int, body: Any, expect: int) -> Any:
    resp = client.post(f"/api/v1/conversations/{conv_id}/tags", json=body, headers=AUTH)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_tags_answer_the_conversation_summary_and_create_unknown_keys(
    client: FlaskClient, db: Database, conv_id: int
) -> None:
    summary = tag(client, conv_id, {"deal_id": "D-1", "campaign_id": "spring"}, 200)
    assert summary["id"] == conv_id and summary["contact"]["wa_id"] == A
    assert (summary["deal_id"], summary["campaign_id"]) == ("D-1", "spring")
    assert summary["attribution"] == {
        "source": "explicit",
        "deal_source": "explicit",
        "referral": None,
    }
    with db.session() as s:
        assert s.scalars(select(Deal.key)).all() == ["D-1"]
        assert s.scalars(select(Campaign.key)).all() == ["spring"]
    # Only the keys present change.
    again = tag(client, conv_id, {"campaign_id": None}, 200)
    assert (again["deal_id"], again["campaign_id"], again["attribution"]["source"]) == (
        "D-1",
        None,
        None,
    )
    detail = client.get(f"/api/v1/conversations/{conv_id}", headers=AUTH).get_json()
    assert detail["attribution"]["deal_source"] == "explicit"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"deal_id", "campaign_id"}),
        ({"source": "crm"}, {"deal_id", "campaign_id"}),
        ({"deal": "D-1"}, {"deal", "deal_id", "campaign_id"}),
        ({"deal_id": "D-1", "extra": 1}, {"extra"}),
        ({"deal_id": ""}, {"deal_id"}),
        ({"deal_id": True}, {"deal_id"}),
        ({"campaign_id": ["spring"]}, {"campaign_id"}),
        ({"campaign_id": "x" * 129}, {"campaign_id"}),
        ({"deal_id": "D-1", "source": "hubspot"}, {"source"}),
    ],
)
def test_bad_bodies_name_their_fields(
    client: FlaskClient, conv_id: int, body: dict[str, Any], fields: set[str]
) -> None:
    error = tag(client, conv_id, body, 400)["error"]
    assert error["code"] == "validation_failed" and set(error["details"]["fields"]) == fields


def test_not_an_object_unknown_conversation_and_no_token(client: FlaskClient, conv_id: int) -> None:
    assert tag(client, conv_id, ["deal_id"], 400)["error"]["message"].startswith("body:")
    assert tag(client, 999_999, {"deal_id": "D-1"}, 404)["error"]["code"] == "not_found"
    resp = client.post(f"/api/v1/conversations/{conv_id}/tags", json={"deal_id": "D-1"})
    assert resp.status_code == 401
