"""Sync health and dead-letter replay; the built-in CRM's records."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy import func, select

from connector import outbox
from connector.api import bp
from connector.api.params import int_arg, json_body
from connector.db import get_db
from connector.errors import NotFound, ValidationFailed
from connector.settings_ext import settings_of
from crm_adapters import local


@bp.get("/sync/status")
def sync_status() -> dict[str, Any]:
    """Outbox counts by operation and state, oldest pending age, latest dead letters."""
    report = outbox.status(get_db(current_app), settings_of().crm)
    return {"crm": settings_of().crm, **report.as_dict()}


@bp.post("/sync/replay")
def sync_replay() -> dict[str, Any]:
    """``{"id": N}``, ``{"ids": [...]}`` or ``{"all_dead": true}``: dead letters to pending."""
    body = json_body()
    ids = body.get("ids") or ([body["id"]] if "id" in body else [])
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise ValidationFailed("ids: expected a list of integers")
    all_dead = body.get("all_dead") is True
    if not ids and not all_dead:
        raise ValidationFailed('give "id", "ids" or "all_dead": true')
    return {"replayed": outbox.replay(get_db(current_app), ids=ids, all_dead=all_dead)}


_LOCAL_TABLES = {
    "contact": local.contacts,
    "message": local.messages,
    "deal": local.deals,
    "campaign": local.campaigns,
    "user": local.users,
}


@bp.get("/crm/records")
def local_records() -> dict[str, Any]:
    """The built-in CRM's records: ``?object=contact|message|deal|campaign|user``."""
    if settings_of().crm != "local":
        raise NotFound("records are kept in the CRM itself when WACRM_CRM is not local")
    table = _LOCAL_TABLES.get(request.args.get("object", "contact"))
    if table is None:
        raise ValidationFailed(f"object: one of {sorted(_LOCAL_TABLES)}")
    page, per_page = int_arg("page", 1, lo=1, hi=10**6), int_arg("per_page", 50, lo=1, hi=500)
    with get_db(current_app).engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        rows = (
            conn.execute(
                select(table)
                .order_by(table.c.id.desc())
                .offset((page - 1) * per_page)
                .limit(per_page)
            )
            .mappings()
            .all()
        )
    items = [
        {k: (v.isoformat() + "Z" if hasattr(v, "isoformat") else v) for k, v in r.items()}
        for r in rows
    ]
    return {"items": items, "page": page, "per_page": per_page, "total": total}
