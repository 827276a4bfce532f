"""Shared fixtures: apps on SQLite (and PostgreSQL when WACRM_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from connector import create_app
from connector.db import Database, get_db, make_engine, upgrade
from connector.models import Base
from crm_adapters import local
from whatsapp import meta_signature

FIXTURES = Path(__file__).parent / "fixtures"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "vibecoding"
ADMIN_TOKEN = "test-admin-token"
PG_URL = os.environ.get("WACRM_TEST_DATABASE_URL")
ENV_PREFIXES = ("WACRM_", "WHATSAPP_", "HUBSPOT_", "SALESFORCE_", "TWILIO_")

METADATAS = (Base.metadata, local.metadata)
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


def load_fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / f"{name}.json").read_bytes()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIXES) and not key.startswith("WACRM_TEST_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated() -> str:
    assert PG_URL
    engine = make_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for metadata in METADATAS:
            metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    upgrade(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    return PG_URL


def _truncate(url: str) -> None:
    engine = make_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    names = ", ".join(t.name for m in METADATAS for t in m.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a fresh SQLite file, or a truncated PostgreSQL."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_migrated")
        _truncate(url)
        return url
    path = tmp_path / "wacrm.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


def base_config(db_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "QUEUE_IMMEDIATE": True,
        "WACRM_DATABASE_URL": db_url,
        "WACRM_QUEUE_PATH": str(tmp_path / "queue.db"),
        "WACRM_ADMIN_TOKEN": ADMIN_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        **extra,
    }


@pytest.fixture
def app_config(db_url: str, tmp_path: Path) -> dict[str, Any]:
    return base_config(db_url, tmp_path)


@pytest.fixture
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    app = create_app(app_config)
    yield app
    get_db(app).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Database:
    return get_db(app)


class Signer:
    """Signs bodies the way Meta does, for the test app secret."""

    def __init__(self, secret: str = APP_SECRET) -> None:
        self.secret = secret

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "X-Hub-Signature-256": meta_signature(self.secret, body),
            "Content-Type": "application/json",
        }


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
