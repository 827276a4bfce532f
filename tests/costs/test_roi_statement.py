"""The ROI statement end to end: webhooks and the API build the data; API and CLI report.

Timeline (T0 = Monday 2026-03-02 09:00 UTC), all contacts in the UK (+44):
  A  inbound T0, bot reply T0+1 min → resolved by timeout with no human: automated #1
  B  inbound T0+60 min, bot reply T0+61 min → automated #2
  C  two marketing templates at T0+3 d and T0+4 d, delivered; the YAML rate card prices
     UK marketing at 500.00 → messaging cost 1 000.00
  deal D1 (47 000) of contact A, won T0+2 d → last touch: A's conversation

Configuration: setup 3 000, monthly 1 000, 60 minutes saved per automated resolution at
1 500.00/h. Over 2026-03-01 → 2026-09-01 (6 calendar months) that is the seeds' example:
  value  = 47 000 + 2 x 60 / 60 x 1 500 (= 3 000)   = 50 000
  cost   = 3 000 + 6 x 1 000 (= 6 000) + 1 000      = 10 000
  ROI    = (50 000 - 10 000) / 10 000 x 100         = 400 %
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import select

from connector import create_app
from connector.cli import cli
from connector.costs import RATE_CARD_SOURCE
from connector.db import get_db
from connector.models import Contact, Deal, DealContact
from tests.conftest import ADMIN_TOKEN, Signer, base_config
from tests.kpis.timeline import Timeline
from tests.payloads import at

A, B, C = "447700900001", "447700900002", "447700900003"
TEMPLATE = {"name": "spring_sale", "language": "en"}
ROI_SETTINGS = {
    "WACRM_SETUP_COST": "3000",
    "WACRM_MONTHLY_COST": "1000",
    "WACRM_MINUTES_SAVED": "60",
    "WACRM_HOURLY_RATE": "1500",
}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def settings(db_url: str, tmp_path: Path, **extra: str) -> dict[str, Any]:
    card = tmp_path / "wacrm.yaml"
    card.write_text("rate_card:\n  countries:\n    '44': {marketing: 500}\n")
    return base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(card), **ROI_SETTINGS, **extra)


def build(app: Flask) -> None:
    t = Timeline(app.test_client(), Signer(), AUTH, get_db(app))
    t.inbound(A, at(0))
    t.outbound(A, at(1))
    t.inbound(B, at(60))
    t.outbound(B, at(61))
    for day in (3, 4):
        sent = t.outbound(C, at(days=day), template=TEMPLATE)
        t.status(sent, "delivered", at(days=day, minutes=1), wa_id=C, category="marketing")
    with get_db(app).session() as s:
        contact = s.scalars(select(Contact).where(Contact.wa_id == A)).one()
        deal = Deal(key="D1", amount=Decimal(47000), is_won=True, is_closed=True, won_at=at(days=2))
        s.add(deal)
        s.flush()
        s.add(DealContact(deal_id=deal.id, contact_id=contact.id))


@pytest.fixture
def roi_app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(settings(db_url, tmp_path))
    build(app)
    yield app
    get_db(app).dispose()


def test_api_statement_reproduces_the_seeds_example(roi_app: Flask) -> None:
    resp = roi_app.test_client().get(
        "/api/v1/roi", query_string={"from": "2026-03-01", "to": "2026-09-01"}, headers=AUTH
    )
    assert resp.status_code == 200, resp.data
    body = resp.get_json()
    assert body == {
        "from": "2026-03-01T00:00:00Z",
        "to": "2026-09-01T00:00:00Z",
        "currency": "USD",
        "value": {"attributed_revenue": 47000.0, "time_saved_value": 3000.0, "total": 50000.0},
        "costs": {
            "setup": 3000.0,
            "recurring": 6000.0,
            "monthly": 1000.0,
            "months": 6.0,
            "messaging": 1000.0,
            "total": 10000.0,
        },
        "net": 40000.0,
        "roi": 400.0,
        "basis": {
            "automated_resolutions": 2,
            "minutes_saved": 60.0,
            "hourly_rate": 1500.0,
            "rate_card": f"{RATE_CARD_SOURCE}; overridden by WACRM_CONFIG_FILE",
        },
        "baseline": None,
        "change": None,
    }


def test_engine_roi_kpi_agrees_with_the_statement(roi_app: Flask) -> None:
    resp = roi_app.test_client().get(
        "/api/v1/kpis", query_string={"from": "2026-03-01", "to": "2026-09-01"}, headers=AUTH
    )
    kpis = resp.get_json()["kpis"]
    assert (kpis["roi"], kpis["integration_cost"], kpis["time_saved_value"]) == (
        400.0,
        10000.0,
        3000.0,
    )


def test_baseline_is_the_same_length_ending_at_baseline_to(roi_app: Flask) -> None:
    resp = roi_app.test_client().get(
        "/api/v1/roi",
        query_string={"from": "2026-03-01", "to": "2026-09-01", "baseline_to": "2026-03-01"},
        headers=AUTH,
    )
    body = resp.get_json()
    base = body["baseline"]
    # The period lasts 184 days (Mar 31 + Apr 30 + May 31 + Jun 30 + Jul 31 + Aug 31),
    # so the baseline is [2025-08-29, 2026-03-01): 29 Aug → 28 Feb is 6 months (29 Feb
    # clamps to 28), then 1 day of the 29 from 28 Feb to 29 Mar → 6 + 1/29 = 6.034483.
    assert (base["from"], base["to"]) == ("2025-08-29T00:00:00Z", "2026-03-01T00:00:00Z")
    assert base["costs"]["months"] == 6.034483
    # recurring 1 000 x 6.034483 = 6 034.48; + setup 3 000, no messages = 9 034.48
    assert base["costs"] == {
        "setup": 3000.0,
        "recurring": 6034.48,
        "monthly": 1000.0,
        "months": 6.034483,
        "messaging": 0.0,
        "total": 9034.48,
    }
    assert base["value"]["total"] == 0.0
    assert (base["net"], base["roi"]) == (-9034.48, -100.0)  # nothing earned before T0
    assert body["change"] == {
        "value": {"absolute": 50000.0, "relative": None},  # from 0: no relative change
        # 10 000 - 9 034.48 = 965.52; / 9 034.48 x 100 = 10.69 %
        "costs": {"absolute": 965.52, "relative": 10.69},
        # 40 000 - (-9 034.48) = 49 034.48; / 9 034.48 x 100 = 542.7455.. -> 542.75 %
        "net": {"absolute": 49034.48, "relative": 542.75},
        # 400 - (-100) = 500 points; / 100 x 100 = 500 %
        "roi": {"absolute": 500.0, "relative": 500.0},
    }


def test_go_live_is_the_default_baseline_end(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings(db_url, tmp_path, WACRM_GO_LIVE="2026-03-01"))
    try:
        build(app)
        client = app.test_client()
        query = {"from": "2026-03-01", "to": "2026-09-01"}
        body = client.get("/api/v1/roi", query_string=query, headers=AUTH).get_json()
        assert body["baseline"]["to"] == "2026-03-01T00:00:00Z"
        assert body["change"]["roi"] == {"absolute": 500.0, "relative": 500.0}
        query["baseline_to"] = "none"
        body = client.get("/api/v1/roi", query_string=query, headers=AUTH).get_json()
        assert body["baseline"] is None and body["change"] is None
    finally:
        get_db(app).dispose()


def test_dates_are_local_midnights_in_the_account_zone(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings(db_url, tmp_path, WACRM_TIMEZONE="Europe/Berlin"))
    try:
        build(app)
        query = {"from": "2026-03-01", "to": "2026-09-01"}
        body = app.test_client().get("/api/v1/roi", query_string=query, headers=AUTH).get_json()
        # Berlin is UTC+1 on 1 March and UTC+2 (summer time) on 1 September; the period is
        # still six local calendar months.
        assert (body["from"], body["to"]) == ("2026-02-28T23:00:00Z", "2026-08-31T22:00:00Z")
        assert (body["costs"]["months"], body["roi"]) == (6.0, 400.0)
    finally:
        get_db(app).dispose()


def test_default_period_runs_from_the_first_message(roi_app: Flask) -> None:
    body = roi_app.test_client().get("/api/v1/roi", headers=AUTH).get_json()
    assert body["from"] == "2026-03-02T09:00:00Z"  # A's first message at T0
    assert body["value"]["total"] == 50000.0
    assert body["costs"]["messaging"] == 1000.0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "March"}, "from: expected an ISO-8601 date or datetime"),
        ({"from": "2026-09-01", "to": "2026-03-01"}, "period end must be after its start"),
        ({"baseline_to": "soon"}, "baseline_to: expected an ISO-8601 date or datetime"),
    ],
)
def test_bad_parameters_are_400(roi_app: Flask, query: dict[str, str], message: str) -> None:
    resp = roi_app.test_client().get("/api/v1/roi", query_string=query, headers=AUTH)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["message"] == message


def test_roi_needs_a_token(roi_app: Flask) -> None:
    assert roi_app.test_client().get("/api/v1/roi").status_code == 401


def cli_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in settings(db_url, tmp_path).items()
        if k.isupper() and k not in ("TESTING", "QUEUE_IMMEDIATE")
    }


def test_cli_prints_the_statement(roi_app: Flask, db_url: str, tmp_path: Path) -> None:
    args = ["roi", "--from", "2026-03-01", "--to", "2026-09-01"]
    result = CliRunner().invoke(cli, args, env=cli_env(db_url, tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:12] == [
        "ROI statement 2026-03-01T00:00:00Z to 2026-09-01T00:00:00Z (USD)",
        "Value",
        "  attributed revenue      47,000.00",
        "  time saved               3,000.00",
        "  total value             50,000.00",
        "Costs",
        "  setup                    3,000.00",
        "  recurring                6,000.00",
        "  messaging                1,000.00",
        "  integration cost        10,000.00",
        "Net                       40,000.00",
        "ROI                          400.00 %",
    ]
    assert lines[-2:] == [
        "time saved = 2 automated resolutions x 60 min / 60 x 1500/h; "
        "recurring = 1000/month x 6 months",
        f"messaging priced from: {RATE_CARD_SOURCE}; overridden by WACRM_CONFIG_FILE",
    ]


def test_cli_json_with_baseline(roi_app: Flask, db_url: str, tmp_path: Path) -> None:
    args = ["roi", "--from", "2026-03-01", "--to", "2026-09-01", "--baseline-to", "2026-03-01"]
    env = cli_env(db_url, tmp_path)
    as_json = CliRunner().invoke(cli, [*args, "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output)
    assert (body["roi"], body["baseline"]["roi"]) == (400.0, -100.0)
    text = CliRunner().invoke(cli, args, env=env)
    # period, baseline and change columns side by side; ROI changes in percentage points
    lines = text.output.splitlines()
    assert lines[2] == "                             period        baseline          change"
    assert "  recurring                6,000.00        6,034.48          -34.48" in lines
    assert "ROI                          400.00 %       -100.00 %       +500.00 pp" in lines


def test_cli_bad_date_is_reported(roi_app: Flask, db_url: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["roi", "--from", "March"], env=cli_env(db_url, tmp_path))
    assert result.exit_code != 0
    assert "from: expected an ISO-8601 date or datetime" in result.output


def test_empty_database(db_url: str, tmp_path: Path) -> None:
    app = create_app(settings(db_url, tmp_path, WACRM_GO_LIVE="2026-03-01"))
    try:
        client = app.test_client()
        body = client.get("/api/v1/roi", headers=AUTH).get_json()
        # No message yet: the period is [now, now), so no month of recurring cost; the
        # setup cost alone makes ROI (0 - 3 000) / 3 000 x 100 = -100 %. Go-live gives no
        # baseline for a period without length.
        assert body["costs"]["months"] == 0.0 and body["costs"]["total"] == 3000.0
        assert (body["roi"], body["baseline"]) == (-100.0, None)
        resp = client.get("/api/v1/roi", query_string={"baseline_to": "2026-03-01"}, headers=AUTH)
        assert resp.status_code == 400
        assert resp.get_json()["error"]["message"].startswith("baseline_to: the reported period")
    finally:
        get_db(app).dispose()
