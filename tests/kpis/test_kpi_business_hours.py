"""Business-hours durations across a weekend, a DST change and a holiday.

Schedule: Europe/Berlin, Monday-Friday 09:00-17:00. Europe moves to summer time on Sunday
2026-03-29 (UTC+1 → UTC+2). The customer writes Friday 2026-03-27 16:30 Berlin (15:30Z);
alice answers Monday 2026-03-30 09:30 Berlin (07:30Z).
  wall clock: 15:30Z Friday → 07:30Z Monday = 64 h = 230 400 s
  business:   Friday 16:30-17:00 (30 min) + Monday 09:00-09:30 (30 min) = 3 600 s
A fixed UTC+1 offset would open Monday at 08:00Z, after the reply: 1 800 s — wrong.
With Monday a holiday, only Friday's 30 min count: 1 800 s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector import create_app
from connector.db import get_db
from connector.kpis import KpiOptions
from connector.kpis.business_hours import Calendar
from connector.settings_ext import file_config_of, settings_of
from tests.conftest import base_config
from tests.kpis.timeline import Timeline

WA = "4917600000001"
ASKED = datetime(2026, 3, 27, 15, 30, tzinfo=UTC)
ANSWERED = datetime(2026, 3, 30, 7, 30, tzinfo=UTC)


def _app(db_url: str, tmp_path: Path, holidays: str) -> Any:
    config = tmp_path / "wacrm.yaml"
    days = "".join(f"    {d}: ['09:00-17:00']\n" for d in ("mon", "tue", "wed", "thu", "fri"))
    config.write_text(
        f"business_hours:\n  timezone: Europe/Berlin\n  weekly:\n{days}  holidays: [{holidays}]\n"
    )
    return create_app(
        base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(config), WACRM_AUTO_RESOLVE_AFTER="96h")
    )


@pytest.mark.parametrize(("holidays", "business"), [("", 3600.0), ("2026-03-30", 1800.0)])
def test_frt_across_weekend_and_dst(
    db_url: str, tmp_path: Path, signer: Any, auth: Any, holidays: str, business: float
) -> None:
    app = _app(db_url, tmp_path, holidays)
    try:
        t = Timeline(app.test_client(), signer, auth, get_db(app))
        t.inbound(WA, ASKED)
        t.outbound(WA, ANSWERED, agent_id="alice")
        opts = KpiOptions.from_settings(settings_of(app), file_config_of(app))
        k = t.kpis(opts=opts)["account"]
        assert k["frt"]["mean"] == 230400.0
        assert k["frt_bh"]["mean"] == business
        assert k["frt_human_bh"]["mean"] == business
        assert k["reply_time_bh"]["mean"] == business
        assert k["art_bh"]["mean"] == business  # resolved at the last message (the reply)
    finally:
        get_db(app).dispose()


def test_no_schedule_reports_no_business_hours_variant(
    client: Any, signer: Any, auth: Any, db: Any
) -> None:
    t = Timeline(client, signer, auth, db)
    t.inbound(WA, ASKED)
    t.outbound(WA, datetime(2026, 3, 27, 15, 31, tzinfo=UTC), agent_id="alice")
    k = t.kpis()["account"]
    assert k["frt"]["mean"] == 60.0 and "frt_bh" not in k


def test_calendar_clock_in_python_matches_the_definition() -> None:
    from connector.config_file import BusinessHours

    hours = BusinessHours.model_validate(
        {"timezone": "Europe/Berlin", "weekly": {"mon": ["09:00-17:00"], "fri": ["09:00-17:00"]}}
    )
    cal = Calendar(hours, "UTC", ASKED, ANSWERED)
    assert cal.duration(ASKED, ANSWERED) == 3600.0
    # A span that ends before opening time counts nothing on that day.
    early = datetime(2026, 3, 30, 6, 59, tzinfo=UTC)  # 08:59 Berlin summer time
    assert cal.duration(datetime(2026, 3, 27, 16, 0, tzinfo=UTC), early) == 0.0
