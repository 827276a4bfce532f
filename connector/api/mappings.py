"""Field mappings: list, create, change, delete, and check them against the CRM."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from connector import mappings
from connector.api import bp
from connector.api.params import json_body
from connector.crm import build_adapter
from connector.db import get_db
from connector.errors import ApiError, ConfigError
from connector.settings_ext import file_config_of, settings_of


@contextmanager
def _session() -> Iterator[Session]:
    """A session on mappings in step with WACRM_CONFIG_FILE (a bad file answers 500)."""
    with get_db(current_app).session() as session:
        try:
            mappings.sync_file(
                session, file_config_of().field_mappings, default_crm=settings_of().crm
            )
        except ConfigError as exc:
            raise ApiError(exc.message, code="invalid_configuration", status=500) from None
        yield session


@bp.get("/mappings")
def list_mappings() -> dict[str, Any]:
    with _session() as session:
        return {"items": [mappings.view(m) for m in mappings.listed(session)]}


@bp.post("/mappings")
def create_mapping() -> tuple[dict[str, Any], int]:
    """Body: kpi, scope, field, and optionally object, stat, transform, period, crm, enabled."""
    values = mappings.normalise(json_body(), default_crm=settings_of().crm)
    with _session() as session:
        return mappings.view(mappings.add(session, values)), 201


@bp.get("/mappings/<int:mapping_id>")
def get_mapping(mapping_id: int) -> dict[str, Any]:
    with _session() as session:
        return mappings.view(mappings.get(session, mapping_id))


@bp.patch("/mappings/<int:mapping_id>")
def change_mapping(mapping_id: int) -> dict[str, Any]:
    """Any of the create fields; the rest keep their values."""
    body = json_body()
    with _session() as session:
        row = mappings.get(session, mapping_id)
        current = {k: v for k, v in mappings.view(row).items() if k in mappings.EDITABLE}
        values = mappings.normalise({**current, **body}, default_crm=settings_of().crm)
        return mappings.view(mappings.update(session, row, values))


@bp.delete("/mappings/<int:mapping_id>")
def delete_mapping(mapping_id: int) -> tuple[str, int]:
    with _session() as session:
        mappings.remove(session, mappings.get(session, mapping_id))
    return "", 204


@bp.get("/mappings/check")
def check_mappings() -> dict[str, Any]:
    """Problems with the mappings, including fields the CRM lacks (asks the CRM)."""
    settings = settings_of()
    with _session() as session:
        rows = mappings.listed(session)
    problems = mappings.check(
        rows,
        build_adapter(current_app),
        crm=settings.crm,
        business_hours=file_config_of().business_hours is not None,
    )
    return {"problems": problems, "ok": not problems}
