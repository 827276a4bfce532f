"""CLI: replay (files, folders, idempotence, Twilio history), config errors, db upgrade."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connector.cli import cli
from connector.db import make_database
from connector.models import EventStatus, Message, WebhookEvent
from tests.conftest import FIXTURES, base_config
from tests.payloads import at, inbound

META = sorted(
    p for p in (FIXTURES / "whatsapp").glob("meta_*.json") if p.name != "meta_verification_get.json"
)


def env_for(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in base_config(db_url, tmp_path).items()
        if k.isupper() and k not in ("TESTING", "QUEUE_IMMEDIATE")
    }


def counts(db_url: str) -> dict[str, Any]:
    db = make_database(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with db.session() as s:
        out = {
            "events": s.scalar(select(func.count()).select_from(WebhookEvent)),
            "messages": s.scalar(select(func.count()).select_from(Message)),
            "statuses": dict(
                s.execute(
                    select(WebhookEvent.status, func.count()).group_by(WebhookEvent.status)
                ).all()
            ),
        }
    db.dispose()
    return out


def test_replay_jsonl_is_idempotent(db_url: str, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    lines = [inbound(f"wamid.h{k}", at(minutes=k)) for k in range(20)] + [b"", b"{broken"]
    history.write_bytes(b"\n".join(lines) + b"\n")
    runner = CliRunner()
    first = runner.invoke(cli, ["replay", str(history), "--quiet"], env=env_for(db_url, tmp_path))
    assert first.exit_code == 1, first.output  # one rejected line is reported as a failure
    assert "20 processed" in first.output and "1 rejected" in first.output
    after_first = counts(db_url)
    assert after_first["messages"] == 20
    assert after_first["statuses"] == {EventStatus.PROCESSED: 20, EventStatus.REJECTED: 1}
    again = runner.invoke(cli, ["replay", str(history), "--quiet"], env=env_for(db_url, tmp_path))
    assert "21 already imported" in again.output
    assert counts(db_url) == after_first


def test_replay_folder_of_fixtures_including_twilio(db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "a.json").write_bytes((FIXTURES / "whatsapp" / "meta_order.json").read_bytes())
    twilio = json.loads((FIXTURES / "whatsapp" / "twilio_inbound_text.json").read_text())
    twilio["received_at"] = "2024-05-01T10:00:00Z"  # Twilio sends no timestamp of its own
    (folder / "b.jsonl").write_text(json.dumps(twilio) + "\n")
    result = CliRunner().invoke(
        cli, ["replay", str(folder), "--quiet"], env=env_for(db_url, tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert "2 processed" in result.output
    db = make_database(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with db.session() as s:
        assert {m.provider for m in s.scalars(select(Message))} == {"meta", "twilio"}
        twilio_msg = s.scalars(select(Message).where(Message.provider == "twilio")).one()
        assert twilio_msg.timestamp.isoformat() == "2024-05-01T10:00:00+00:00"
    db.dispose()


def test_replay_every_meta_fixture_in_one_file(db_url: str, tmp_path: Path) -> None:
    history = tmp_path / "all.jsonl"
    history.write_bytes(
        b"\n".join(json.dumps(json.loads(p.read_bytes())).encode() for p in META) + b"\n"
    )
    result = CliRunner().invoke(
        cli, ["replay", str(history), "--quiet"], env=env_for(db_url, tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert f"{len(META)} processed" in result.output


def test_config_errors_name_every_setting(tmp_path: Path) -> None:
    """A bad start fails with one line per setting, before touching anything."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("WACRM_", "WHATSAPP_"))}
    env.update({"WACRM_QUEUE_WORKERS": "many", "WACRM_AUTO_RESOLVE_AFTER": "soon"})
    wacrm = str(Path(sys.executable).with_name("wacrm"))
    done = subprocess.run(
        [wacrm, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "WACRM_QUEUE_WORKERS:" in done.stderr and "WACRM_AUTO_RESOLVE_AFTER:" in done.stderr
    assert "WHATSAPP_APP_SECRET: required but not set" in done.stderr
    assert "Traceback" not in done.stderr


def test_settings_report_each_bad_key() -> None:
    from connector.config import Settings
    from connector.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        Settings.from_env({"WACRM_QUEUE_WORKERS": "many", "WACRM_CRM": "zoho"})
    lines = err.value.errors
    assert any(line.startswith("WACRM_QUEUE_WORKERS:") for line in lines)
    assert any(line.startswith("WACRM_CRM:") for line in lines)
    assert "WHATSAPP_APP_SECRET: required but not set" in lines
    assert "WACRM_ADMIN_TOKEN: required but not set" in lines


def test_secrets_never_in_settings_repr() -> None:
    from connector.config import Settings

    settings = Settings.from_env(
        {
            "WACRM_ADMIN_TOKEN": "tok-123",
            "WHATSAPP_APP_SECRET": "sec-456",
            "WHATSAPP_VERIFY_TOKEN": "ver-789",
        }
    )
    text = repr(settings) + str(settings)
    assert "tok-123" not in text and "sec-456" not in text and "ver-789" not in text


def test_db_upgrade_on_empty_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env_for(url, tmp_path))
    assert result.exit_code == 0, result.output
    assert counts(url)["events"] == 0
