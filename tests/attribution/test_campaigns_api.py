"""`/api/v1/campaigns`: create or update by key, list, detail, validation; CRM pulls merge."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.crm import pull
from connector.db import Database
from connector.models import Campaign
from crm_adapters import local
from tests.attribution.attribution_timeline import AD_ID, AUTH


def post(client: FlaskClient, body: Any, expect: int) -> Any:
    resp = client.post("/api/v1/campaigns", json=body, headers=AUTH)
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_create_update_list_and_detail(client: FlaskClient) -> None:
    created = post(
        client,
        {
            "name": "Spring Sale 2026",
            "spend": "1500.50",
            "source_ids": [AD_ID, 1202, AD_ID],
            "template_name": "spring_offer",
            "crm_id": "701",
        },
        201,
    )
    assert created == {
        "key": "spring-sale-2026",
        "name": "Spring Sale 2026",
        "crm": "local",
        "crm_id": "701",
        "status": None,
        "spend": 1500.5,
        "currency": "USD",  # WACRM_CURRENCY's default
        "source_ids": [AD_ID, "1202"],  # strings, duplicates dropped
        "template_name": "spring_offer",
        "created_at": created["created_at"],
        "updated_at": created["updated_at"],
    }
    updated = post(client, {"key": "spring-sale-2026", "spend": 2000, "currency": "EUR"}, 200)
    assert (updated["name"], updated["spend"], updated["currency"]) == (
        "Spring Sale 2026",
        2000.0,
        "EUR",
    )
    assert (
        updated["source_ids"] == [AD_ID, "1202"] and updated["created_at"] == created["created_at"]
    )
    cleared = post(client, {"key": "spring-sale-2026", "spend": None, "source_ids": None}, 200)
    assert (cleared["spend"], cleared["source_ids"]) == (None, [])
    post(client, {"name": "Été \u2014 Ofertas!"}, 201)  # accents fold into the slug
    listing = client.get("/api/v1/campaigns", headers=AUTH).get_json()
    assert listing["total"] == 2
    assert [c["key"] for c in listing["items"]] == ["ete-ofertas", "spring-sale-2026"]
    page = client.get("/api/v1/campaigns?per_page=1&page=2", headers=AUTH).get_json()
    assert [c["key"] for c in page["items"]] == ["spring-sale-2026"]
    detail = client.get("/api/v1/campaigns/spring-sale-2026", headers=AUTH).get_json()
    assert detail["counts"] == {"links": 0, "clicks": 0, "unique_clickers": 0, "conversations": 0}
    missing = client.get("/api/v1/campaigns/nope", headers=AUTH)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"name"}),
        ({"name": ""}, {"name"}),
        ({"name": None}, {"name"}),
        ({"key": "unknown-yet"}, {"name"}),  # creating needs a name
        ({"name": "!!!"}, {"key"}),  # nothing to make a slug from
        ({"key": "a/b", "name": "x"}, {"key"}),
        ({"name": "x", "spend": -1}, {"spend"}),
        ({"name": "x", "spend": "1.005"}, {"spend"}),
        ({"name": "x", "spend": "NaN"}, {"spend"}),
        ({"name": "x", "spend": "ten"}, {"spend"}),
        ({"name": "x", "spend": True}, {"spend"}),
        ({"name": "x", "currency": "usd"}, {"currency"}),
        ({"name": "x", "source_ids": "123"}, {"source_ids"}),
        ({"name": "x", "source_ids": [""]}, {"source_ids"}),
        ({"name": "x", "source_ids": [True]}, {"source_ids"}),
        ({"name": "x", "budget": 10}, {"budget"}),
        ({"name": "x", "spend": -1, "currency": "EURO"}, {"spend", "currency"}),
    ],
)
def test_validation_names_every_bad_field(
    client: FlaskClient, body: dict[str, Any], fields: set[str]
) -> None:
    error = post(client, body, 400)["error"]
    assert error["code"] == "validation_failed"
    assert set(error["details"]["fields"]) == fields
    assert all(f in error["message"] for f in fields)


def test_body_must_be_a_json_object(client: FlaskClient) -> None:
    assert post(client, ["name"], 400)["error"]["message"].startswith("body:")


def test_a_source_id_or_crm_id_names_one_campaign(client: FlaskClient) -> None:
    post(client, {"name": "A", "source_ids": ["1", "2"], "crm_id": "701"}, 201)
    clash = post(client, {"name": "B", "source_ids": ["2", "3"]}, 400)["error"]
    assert clash["details"]["fields"] == {"source_ids": "2 already belong to campaign a"}
    assert (
        "crm_id" in post(client, {"name": "B", "crm_id": "701"}, 400)["error"]["details"]["fields"]
    )
    post(client, {"key": "a", "source_ids": ["2", "1"], "crm_id": "701"}, 200)  # its own ids


def test_campaigns_need_the_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/campaigns").status_code == 401
    assert client.post("/api/v1/campaigns", json={"name": "x"}).status_code == 401


def test_crm_pull_updates_the_campaign_created_through_the_api(
    app: Flask, client: FlaskClient, db: Database
) -> None:
    with db.engine.begin() as conn:
        crm_id = conn.execute(
            local.campaigns.insert()
            .values(
                name="Spring (CRM)",
                status="active",
                spend=Decimal("300"),
                fields={},
                updated_at=datetime(2026, 3, 1),
            )
            .returning(local.campaigns.c.id)
        ).scalar_one()
    post(client, {"name": "Spring", "crm_id": str(crm_id), "source_ids": [AD_ID]}, 201)
    pull(app, full=True)
    with db.session() as s:
        (campaign,) = s.scalars(select(Campaign)).all()  # one row: the pull found ours
        assert (campaign.key, campaign.name, campaign.status) == (
            "spring",
            "Spring (CRM)",
            "active",
        )
        assert (campaign.spend, campaign.source_ids) == (Decimal("300.00"), [AD_ID])
        assert campaign.updated_at == datetime(2026, 3, 1, tzinfo=UTC)
