"""Logs carry ids, never phone numbers or message text, unless WACRM_LOG_PII=1."""

from __future__ import annotations

import pytest
import structlog
from flask.testing import FlaskClient

from connector import logs
from tests.conftest import Signer, load_fixture


@pytest.fixture(autouse=True)
def _reset_structlog() -> None:
    yield
    structlog.reset_defaults()


def _drive(client: FlaskClient) -> None:
    body = load_fixture("whatsapp", "meta_text")
    client.post("/webhooks/whatsapp", data=body, headers=Signer().headers(body))
    client.post("/webhooks/whatsapp", data=body, headers={"X-Hub-Signature-256": "sha256=00"})
    structlog.get_logger("probe").warning(
        "probe",
        wa_id="16505551234",
        to="+16505551234",
        note="call +16505551234 now",
        text="secret words",
    )


def test_pii_absent_at_info(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG", json=True, pii=False)
    _drive(client)
    err = capsys.readouterr().err
    assert "signature_refused" in err and "probe" in err
    assert "16505551234" not in err and "secret words" not in err
    assert "Does it come in another color" not in err


def test_pii_logged_when_allowed(client: FlaskClient, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG", json=True, pii=True)
    _drive(client)
    assert "16505551234" in capsys.readouterr().err
