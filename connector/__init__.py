"""wacrm connector: Flask app factory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask, Response, g, request

from connector import db, errors, logs, queue
from connector.config import Settings
from connector.config_file import FileConfig, load_file_config
from connector.errors import ConfigError

ENV_PREFIXES = ("WACRM_", "WHATSAPP_", "TWILIO_", "HUBSPOT_", "SALESFORCE_")


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: settings from the environment (test_config overrides), then wiring."""
    overrides = dict(test_config or {})
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    env.update({k: v for k, v in overrides.items() if k.startswith(ENV_PREFIXES)})
    settings = Settings.from_env(env)
    app = Flask(__name__)
    app.config.update({k: v for k, v in overrides.items() if not k.startswith(ENV_PREFIXES)})
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["wacrm.settings"] = settings
    app.extensions["wacrm.env"] = env  # adapters read their own settings from it
    app.extensions["wacrm.file_config"] = file_config = load_file_config(settings.config_file)
    _check_mappings(file_config, settings)
    if not app.testing:
        logs.configure(settings.log_level, json=settings.log_json, pii=settings.log_pii)
    db.init_app(app, settings.database_url)
    queue.init_app(app, settings)
    errors.init_app(app)
    _request_ids(app)
    from connector import api, health, links, webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(links.bp)
    return app


def _check_mappings(file_config: FileConfig, settings: Settings) -> None:
    """A bad field mapping in the YAML file stops the start, named, like a bad setting."""
    from connector.mappings import file_errors

    errors = file_errors(file_config.field_mappings, default_crm=settings.crm)
    if errors:
        raise ConfigError([f"WACRM_CONFIG_FILE {settings.config_file}: {e}" for e in errors])


def _request_ids(app: Flask) -> None:
    @app.before_request
    def _bind() -> None:
        g.request_id = request.headers.get("X-Request-Id") or uuid.uuid4().hex
        # Overwrites the previous request's id on this thread; nothing else is bound here.
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _echo(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response
