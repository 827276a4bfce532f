"""A database error while normalising loses nothing: the row stays pending, then fails loudly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from connector import inbox, ingest
from connector.db import Database
from connector.models import EventStatus, WebhookEvent
from tests.conftest import load_fixture

WINDOW = timedelta(hours=24)


def _boom(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("INSERT …", {}, Exception("deadlock detected"))


def _status(db: Database, event_id: int) -> tuple[str, int, str | None]:
    with db.session() as s:
        event = s.get(WebhookEvent, event_id)
        assert event is not None
        return event.status, event.attempts, event.error


def test_db_error_leaves_row_pending_then_recovers(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = inbox.store(
        db,
        provider="meta",
        body=load_fixture("whatsapp", "meta_text"),
        headers={},
        signature_valid=True,
    )
    with monkeypatch.context() as patch:
        patch.setattr(ingest, "record_inbound", _boom)
        assert ingest.process_event(db, event_id, window=WINDOW, max_attempts=3) == "pending"
    status, attempts, error = _status(db, event_id)
    assert (status, attempts) == ("pending", 1) and "deadlock" in (error or "")
    assert ingest.process_event(db, event_id, window=WINDOW, max_attempts=3) == "processed"


def test_row_fails_after_max_attempts(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    event_id = inbox.store(
        db,
        provider="meta",
        body=load_fixture("whatsapp", "meta_text"),
        headers={},
        signature_valid=True,
    )
    monkeypatch.setattr(ingest, "record_inbound", _boom)
    results = [ingest.process_event(db, event_id, window=WINDOW, max_attempts=2) for _ in "ab"]
    assert results == ["pending", EventStatus.FAILED]
    # A failed row is kept with its body; processing it again is a no-op, not a crash.
    assert ingest.process_event(db, event_id, window=WINDOW, max_attempts=2) == "failed"


def test_item_with_bad_data_is_reported_not_fatal(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad(*_args: object, **_kwargs: object) -> None:
        raise ValueError("identity has neither wa_id nor user_id")

    event_id = inbox.store(
        db,
        provider="meta",
        body=load_fixture("whatsapp", "meta_text"),
        headers={},
        signature_valid=True,
    )
    monkeypatch.setattr(ingest, "record_inbound", bad)
    assert ingest.process_event(db, event_id, window=WINDOW, max_attempts=2) == "processed"
    status, _attempts, error = _status(db, event_id)
    assert status == "processed" and "neither wa_id" in (error or "")
