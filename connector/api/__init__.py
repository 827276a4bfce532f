"""Admin HTTP API under ``/api/v1/``: bearer token on every route."""

from __future__ import annotations

import hmac

from flask import Blueprint, request

from connector.errors import Unauthorized
from connector.settings_ext import settings_of

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.before_request
def _require_token() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings_of().admin_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise Unauthorized("missing or invalid bearer token")


from connector.api import (  # noqa: E402,F401  (routes on bp)
    agents,
    assign,
    campaigns,
    conversations,
    kpis,
    mappings,
    messages,
    roi,
    surveys,
    sync,
    tags,
)
