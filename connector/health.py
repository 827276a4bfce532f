"""Liveness, readiness (DB reachable, migrations current) and Prometheus metrics."""

from __future__ import annotations

import functools
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from connector.db import current_revision, get_db, head_revision
from connector.settings_ext import settings_of

bp = Blueprint("health", __name__)


@functools.cache
def _head(url: str) -> str | None:
    return head_revision(url)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    db = get_db(current_app)
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = current_revision(db.engine)
    except Exception as exc:  # any driver error means "not ready", with the reason
        return {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"}, 503
    head = _head(settings_of().database_url)
    body = {
        "status": "ok" if current == head else "unavailable",
        "database": "ok",
        "migration": {"current": current, "head": head},
    }
    return body, 200 if current == head else 503


@bp.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), content_type=CONTENT_TYPE_LATEST)
