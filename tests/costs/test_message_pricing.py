"""Pricing every outbound message from its status webhooks (real payload shapes)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from connector import create_app
from connector.db import Database, get_db
from connector.models import Message
from tests.conftest import Signer, base_config, load_fixture
from tests.payloads import at, envelope, inbound, status

UK = "447700900123"


def post(client: FlaskClient, body: bytes) -> None:
    resp = client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))
    assert resp.status_code == 200


def cost(db: Database, wamid: str) -> Decimal | None:
    with db.session() as s:
        row = s.scalars(select(Message).where(Message.wamid == wamid)).one()
        return row.cost


def priced_status(
    wamid: str,
    state: str,
    when: datetime,
    *,
    wa_id: str = UK,
    pricing: dict[str, Any] | None = None,
    conversation: str | None = None,
) -> bytes:
    """A status item as Meta documents it, with any ``pricing`` object."""
    item: dict[str, Any] = {
        "id": wamid,
        "status": state,
        "timestamp": str(int(when.timestamp())),
        "recipient_id": wa_id,
    }
    if pricing is not None:
        item["pricing"] = pricing
    if conversation is not None:
        item["conversation"] = {"id": conversation, "origin": {"type": "marketing"}}
    return envelope({"statuses": [item]})


def test_fixture_pmp_marketing_status_is_priced(client: FlaskClient, db: Database) -> None:
    body = load_fixture("whatsapp", "meta_status_sent_pmp")
    post(client, body)
    wamid = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    # PMP, billable, category marketing, recipient +1 650...: North America marketing.
    assert cost(db, wamid) == Decimal("0.0250")


def test_fixture_cbp_service_status_costs_nothing(client: FlaskClient, db: Database) -> None:
    body = load_fixture("whatsapp", "meta_status_delivered_cbp")
    post(client, body)
    wamid = json.loads(body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    # billable true but category service: service messages are free since Nov 2024.
    assert cost(db, wamid) == Decimal(0)


def test_category_and_country_pick_the_price(client: FlaskClient, db: Database) -> None:
    post(client, status("wamid.uk", "delivered", at(), wa_id=UK, category="utility"))
    post(client, status("wamid.de", "delivered", at(), wa_id="4915112345678", category="marketing"))
    post(client, status("wamid.uz", "delivered", at(), wa_id="998901234567", category="marketing"))
    assert cost(db, "wamid.uk") == Decimal("0.0220")  # UK utility
    assert cost(db, "wamid.de") == Decimal("0.1365")  # Germany marketing
    assert cost(db, "wamid.uz") == Decimal("0.0604")  # no line: "Other" market


def test_free_utility_inside_service_window_costs_zero(client: FlaskClient, db: Database) -> None:
    free = {
        "billable": False,
        "pricing_model": "PMP",
        "type": "free_customer_service",
        "category": "utility",
    }
    post(client, priced_status("wamid.free", "delivered", at(), pricing=free))
    assert cost(db, "wamid.free") == Decimal(0)


def test_pmp_pricing_without_billable_is_charged_by_its_type(
    client: FlaskClient, db: Database
) -> None:
    # ``billable`` is deprecated under per-message pricing; ``type`` alone must do.
    regular = {"pricing_model": "PMP", "type": "regular", "category": "marketing"}
    post(client, priced_status("wamid.reg", "delivered", at(), pricing=regular))
    assert cost(db, "wamid.reg") == Decimal("0.0529")  # UK marketing
    entry = {"pricing_model": "PMP", "type": "free_entry_point", "category": "marketing"}
    post(client, priced_status("wamid.fep", "delivered", at(), pricing=entry))
    assert cost(db, "wamid.fep") == Decimal(0)  # 72 h free entry point window
    unknown = {"pricing_model": "PMP", "type": "someday", "category": "marketing"}
    post(client, priced_status("wamid.new", "delivered", at(), pricing=unknown))
    assert cost(db, "wamid.new") is None  # not guessed: priced when a status says


def test_status_without_pricing_leaves_cost_unknown_until_one_has_it(
    client: FlaskClient, db: Database
) -> None:
    post(client, priced_status("wamid.late", "sent", at()))
    assert cost(db, "wamid.late") is None
    post(client, status("wamid.late", "delivered", at(1), wa_id=UK, category="marketing"))
    assert cost(db, "wamid.late") == Decimal("0.0529")
    # Redelivery and the read status change nothing: pricing is idempotent.
    post(client, status("wamid.late", "delivered", at(1), wa_id=UK, category="marketing"))
    post(client, status("wamid.late", "read", at(2), wa_id=UK, category="marketing"))
    assert cost(db, "wamid.late") == Decimal("0.0529")


def test_failed_before_delivery_is_not_charged(client: FlaskClient, db: Database) -> None:
    post(client, status("wamid.f", "sent", at(), wa_id=UK, category="marketing"))
    assert cost(db, "wamid.f") == Decimal("0.0529")  # expected charge once sent
    failure = [{"code": 131026, "title": "Message undeliverable"}]
    post(client, status("wamid.f", "failed", at(1), wa_id=UK, errors=failure))
    assert cost(db, "wamid.f") == Decimal(0)  # Meta bills delivered messages only


def test_inbound_messages_are_never_priced(client: FlaskClient, db: Database) -> None:
    post(client, inbound("wamid.in", at(), wa_id=UK))
    assert cost(db, "wamid.in") is None


def test_conversation_based_pricing_charges_the_first_message_once(
    client: FlaskClient, db: Database
) -> None:
    cbp = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
    # The later message's status arrives first, then the earlier one's.
    post(client, priced_status("wamid.b", "sent", at(5), pricing=cbp, conversation="conv-1"))
    assert cost(db, "wamid.b") == Decimal("0.0529")
    post(client, priced_status("wamid.a", "sent", at(0), pricing=cbp, conversation="conv-1"))
    # One charge per pricing conversation, on its first message (UK marketing).
    assert (cost(db, "wamid.a"), cost(db, "wamid.b")) == (Decimal("0.0529"), Decimal(0))
    post(client, priced_status("wamid.c", "sent", at(9), pricing=cbp, conversation="conv-2"))
    assert cost(db, "wamid.c") == Decimal("0.0529")


def test_yaml_rate_card_prices_messages(db_url: str, tmp_path: Path) -> None:
    config = tmp_path / "wacrm.yaml"
    config.write_text(
        "rate_card:\n"
        "  source: negotiated BSP rates, 2026\n"
        "  countries:\n"
        "    '44': {marketing: 0.5}\n"
    )
    app = create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(config)))
    try:
        client, db = app.test_client(), get_db(app)
        post(client, status("wamid.y1", "delivered", at(), wa_id=UK, category="marketing"))
        post(client, status("wamid.y2", "delivered", at(), wa_id=UK, category="utility"))
        assert cost(db, "wamid.y1") == Decimal("0.5")
        assert cost(db, "wamid.y2") == Decimal("0.0220")  # built-in line kept
    finally:
        get_db(app).dispose()
