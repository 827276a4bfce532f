"""Every fixture through the HTTP endpoints of a real running connector, then the demo."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import select

from connector.config import Settings
from connector.demo import run_demo
from connector.models import EventStatus, Message, WebhookEvent
from tests.conftest import ADMIN_TOKEN, FIXTURES, Signer
from tests.e2e.conftest import TWILIO_TOKEN, LiveServer
from whatsapp import parse_twilio, parse_webhook, twilio_signature

WA = FIXTURES / "whatsapp"
RECOGNISED_ONLY = {
    "meta_message_template_status_update",
    "meta_account_update",
    "meta_value_errors",
}


def _post_fixture(server: LiveServer, path: Path) -> requests.Response:
    raw = path.read_bytes()
    if path.name.startswith("twilio_"):
        form = json.loads(raw)["form"]
        url = f"{server.url}/webhooks/twilio"
        return requests.post(
            url,
            data=urlencode(form),
            timeout=10,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, form),
            },
        )
    return requests.post(
        f"{server.url}/webhooks/whatsapp", data=raw, timeout=10, headers=Signer().headers(raw)
    )


def _wamids(path: Path) -> set[str]:
    if path.name.startswith("twilio_"):
        from datetime import UTC, datetime

        result = parse_twilio(json.loads(path.read_bytes())["form"], datetime.now(UTC))
    else:
        result = parse_webhook(path.read_bytes())
    return {m.wamid for m in result.messages} | {s.wamid for s in result.statuses}


def test_every_fixture_over_http(live_server: LiveServer) -> None:
    spec = json.loads((WA / "meta_verification_get.json").read_text())
    resp = requests.get(f"{live_server.url}/webhooks/whatsapp", params=spec["query"], timeout=10)
    assert (resp.status_code, resp.text) == (200, spec["expected_response"]["body"])
    bodies = sorted(p for p in WA.glob("*.json") if p.name != "meta_verification_get.json")
    for path in bodies:
        assert _post_fixture(live_server, path).status_code == 200, path.name
    live_server.wait_processed()
    with live_server.db.session() as s:
        events = s.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        stored = set(s.scalars(select(Message.wamid)))
    assert len(events) == len(bodies)
    for path, event in zip(bodies, events, strict=True):
        expected = EventStatus.IGNORED if path.stem in RECOGNISED_ONLY else EventStatus.PROCESSED
        assert (event.status, event.item_errors) == (expected, 0), (path.name, event.error)
        assert _wamids(path) <= stored, path.name


def test_bad_signature_over_http_is_refused(live_server: LiveServer) -> None:
    raw = (WA / "meta_text.json").read_bytes()
    resp = requests.post(
        f"{live_server.url}/webhooks/whatsapp",
        data=raw,
        timeout=10,
        headers={"X-Hub-Signature-256": "sha256=" + "ab" * 32},
    )
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_signature"


def test_demo_fills_a_running_connector(live_server: LiveServer) -> None:
    settings = Settings.from_env(live_server.env)
    report = run_demo(live_server.url, settings, customers=12, seed=3)
    assert "12 customers" in report
    live_server.wait_processed()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listing = requests.get(
        f"{live_server.url}/api/v1/conversations?per_page=100", headers=auth, timeout=10
    ).json()
    assert listing["total"] >= 12
    tagged = [c for c in listing["items"] if c["campaign_id"] == "spring-sale"]
    assert tagged and all(c["initiated_by"] == "business" for c in tagged)
    agents = requests.get(f"{live_server.url}/api/v1/agents", headers=auth, timeout=10).json()
    assert [(a["name"], a["crm_id"]) for a in agents["agents"]] == [
        ("Ana", "agent-ana"),
        ("Ben", "agent-ben"),
        ("Chloe", "agent-chloe"),
    ]
    with live_server.db.session() as s:
        failed = s.scalars(select(Message).where(Message.status == "failed")).all()
        assert failed and all(m.error_code == 131049 for m in failed)
    before = listing["total"]
    run_demo(live_server.url, settings, customers=12, seed=3)  # same seed: nothing new
    live_server.wait_processed()
    again = requests.get(f"{live_server.url}/api/v1/conversations", headers=auth, timeout=10).json()
    assert again["total"] == before


def test_live_server_syncs_to_the_local_crm(live_server: LiveServer) -> None:
    """Webhook → inbox → conversation → outbox → CRM, all in the running process."""
    import time

    from sqlalchemy import func

    from crm_adapters import local

    raw = (WA / "meta_text.json").read_bytes()
    started = time.monotonic()
    assert (
        requests.post(
            f"{live_server.url}/webhooks/whatsapp",
            data=raw,
            timeout=10,
            headers=Signer().headers(raw),
        ).status_code
        == 200
    )
    deadline = started + 15
    while time.monotonic() < deadline:
        with live_server.db.engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(local.messages)).scalar():
                break
        time.sleep(0.1)
    # Speed is measured by benchmarks/crm_calls.py; here it only has to arrive.
    assert time.monotonic() < deadline, "the message never reached the local CRM"
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    sync = requests.get(f"{live_server.url}/api/v1/sync/status", headers=auth, timeout=10).json()
    assert sync["counts"]["log_message"] == {"done": 1}
