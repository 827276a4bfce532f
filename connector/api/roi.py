"""``GET /api/v1/roi``: the ROI statement as JSON."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from connector.api import bp
from connector.costs import Prices
from connector.db import get_db
from connector.kpis import KpiOptions
from connector.models import utcnow
from connector.roi_statement import from_request
from connector.settings_ext import file_config_of, settings_of


@bp.get("/roi")
def get_roi() -> dict[str, Any]:
    """Query: from, to, baseline_to (default WACRM_GO_LIVE; ``none`` for no baseline)."""
    settings, file_config = settings_of(), file_config_of()
    opts = KpiOptions.from_settings(settings, file_config)
    card = Prices.from_config(file_config.rate_card, settings.currency)
    args = request.args
    with get_db(current_app).session() as session:
        return from_request(
            session,
            opts,
            args.get("from"),
            args.get("to"),
            args.get("baseline_to"),
            utcnow(),
            rate_card=card.source,
        )
