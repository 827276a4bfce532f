"""Field mappings: validation, transforms, periods, the YAML sync, CRM records, API, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector import create_app, kpi_dirty, mappings
from connector.cli import cli
from connector.config_file import MappingSpec
from connector.crm import build_adapter
from connector.db import Database, get_db
from connector.errors import ConfigError, ValidationFailed
from connector.models import Campaign, CrmLink, Deal, FieldMapping, KpiDirty, utcnow
from crm_adapters.base import FieldSpec
from tests.conftest import ADMIN_TOKEN, base_config

YAML = """
field_mappings:
  - {kpi: frt, stat: median, scope: contact, object: contacts, field: wa_frt_minutes,
     transform: seconds_to_minutes}
  - {kpi: csat, scope: deal, object: Opportunity, field: WA_CSAT__c, period: 30d}
"""


def env_for(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        k: str(v)
        for k, v in base_config(db_url, tmp_path, **extra).items()
        if k.isupper() and k not in ("TESTING", "QUEUE_IMMEDIATE")
    }


@pytest.fixture
def yaml_app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    path = tmp_path / "wacrm.yaml"
    path.write_text(YAML)
    app = create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(path)))
    yield app
    get_db(app).dispose()


def norm(**raw: Any) -> dict[str, Any]:
    return mappings.normalise(raw, default_crm="hubspot")


# -- validation --------------------------------------------------------------------------


def test_defaults_object_from_scope_and_crm_from_settings() -> None:
    assert norm(kpi="csat", scope="contact", field="wa_csat") == {
        "kpi": "csat",
        "stat": "mean",  # ignored for a scalar KPI
        "scope": "contact",
        "crm": "hubspot",
        "object_type": "contact",
        "field": "wa_csat",
        "transform": "none",
        "period": "all",
        "enabled": True,
    }


@pytest.mark.parametrize(
    ("scope", "alias", "canonical"),
    [
        ("contact", "contacts", "contact"),  # HubSpot's object name
        ("contact", "Lead", "contact"),  # Salesforce, with SALESFORCE_CONTACT_OBJECT=Lead
        ("deal", "Opportunity", "deal"),
        ("deal", "deals", "deal"),
        ("campaign", "Campaign", "campaign"),
        ("agent", "User", "user"),
    ],
)
def test_crm_object_names_are_accepted_as_aliases(scope: str, alias: str, canonical: str) -> None:
    assert norm(kpi="frt", scope=scope, object=alias, field="f")["object_type"] == canonical


@pytest.mark.parametrize("scope", ["account", "phone_number"])
def test_scopes_without_a_crm_record_are_refused_clearly(scope: str) -> None:
    with pytest.raises(ValidationFailed, match="has no CRM record; map agent, campaign"):
        norm(kpi="frt", scope=scope, field="f")


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as caught:
        norm(
            kpi="first_response",
            stat="p95",
            scope="deal",
            object="contacts",
            field="",
            transform="seconds_to_minutes,halve",
            period="ytd",
            colour="red",
        )
    assert set(caught.value.details["fields"]) == {
        "kpi",
        "stat",
        "object",
        "field",
        "transform",
        "period",
        "colour",
    }
    assert (
        caught.value.details["fields"]["object"]
        == "deal KPIs are written on deal records, not contact"
    )


# -- values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "steps", "expected"),
    [
        (90.0, "seconds_to_minutes", 1.5),  # 90 s / 60
        (5400.0, "seconds_to_hours", 1.5),  # 5 400 s / 3 600
        (87.5, "percent_to_ratio", 0.875),  # HubSpot percentage properties hold 0-1
        (100.0, "seconds_to_minutes,round2", 1.67),  # 100 / 60 = 1.666… → 1.67
        (2.5, "round", 3),  # half up, not Python's half-even 2
        (-12.5, "round", -13),  # NPS: half away from zero
        (1.005, "round2", 1.01),  # decimal rounding, not the binary 1.00499…
        (None, "seconds_to_minutes", None),  # no samples: an empty field
        (7, "none", 7),
    ],
)
def test_transforms(value: float | None, steps: str, expected: float | None) -> None:
    assert mappings.transform(value, steps) == expected


def test_pick_takes_a_durations_stat_or_the_scalar() -> None:
    kpis = {"frt": {"mean": 60.0, "median": 45.0, "p90": 120.0, "count": 4}, "csat": 75.0}
    assert mappings.pick(kpis, "frt", "median") == 45.0
    assert mappings.pick(kpis, "frt", "count") == 4
    assert mappings.pick(kpis, "csat", "p90") == 75.0
    assert mappings.pick(kpis, "nps", "mean") is None


def test_periods_end_at_the_run_and_mtd_starts_at_local_midnight() -> None:
    from zoneinfo import ZoneInfo

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 18:00 on 2 March in Tokyo (UTC+9)
    tokyo = ZoneInfo("Asia/Tokyo")
    week = mappings.period_of("7d", now=now, tz=tokyo)
    assert (week.start, week.end) == (datetime(2026, 2, 23, 9, 0, tzinfo=UTC), now)
    mtd = mappings.period_of("mtd", now=now, tz=tokyo)
    # 1 March 00:00 JST = 28 February 15:00 UTC
    assert mtd.start == datetime(2026, 2, 28, 15, 0, tzinfo=UTC) and mtd.end == now
    assert (mappings.period_of("all", now=now, tz=tokyo).start, mtd.end) == (None, now)


# -- the YAML file -------------------------------------------------------------------------


def rows(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as s:
        return [
            (m.kpi, m.stat, m.scope, m.object_type, m.field, m.transform, m.period, m.source)
            for m in s.scalars(select(FieldMapping).order_by(FieldMapping.field))
        ]


def specs(text: str) -> list[MappingSpec]:
    import yaml

    return [MappingSpec.model_validate(s) for s in yaml.safe_load(text)["field_mappings"]]


FRT_ROW = (
    "frt",
    "median",
    "contact",
    "contact",
    "wa_frt_minutes",
    "seconds_to_minutes",
    "all",
    "yaml",
)


def test_the_file_is_synced_then_followed(db: Database) -> None:
    with db.session() as s:
        assert mappings.sync_file(s, specs(YAML), default_crm="local") == 2
    assert rows(db) == [
        ("csat", "mean", "deal", "deal", "WA_CSAT__c", "none", "30d", "yaml"),
        FRT_ROW,
    ]
    with db.session() as s:  # unchanged: nothing written
        assert mappings.sync_file(s, specs(YAML), default_crm="local") == 0
    changed = (
        "field_mappings:\n"
        "  - {kpi: frt, stat: p90, scope: contact, object: contact, field: wa_frt_minutes}\n"
    )
    with db.session() as s:  # one changed, one gone from the file
        assert mappings.sync_file(s, specs(changed), default_crm="local") == 2
    assert rows(db) == [
        ("frt", "p90", "contact", "contact", "wa_frt_minutes", "none", "all", "yaml")
    ]


def test_the_file_takes_over_a_target_the_api_held(db: Database) -> None:
    with db.session() as s:
        mappings.add(s, norm(kpi="nps", scope="contact", field="wa_frt_minutes", crm="local"))
        mappings.sync_file(s, specs(YAML), default_crm="local")
    assert FRT_ROW in rows(db)


def test_a_bad_file_names_every_bad_entry(db: Database) -> None:
    bad = specs(
        "field_mappings:\n"
        "  - {kpi: frt, scope: account, object: contact, field: a}\n"
        "  - {kpi: frt, scope: contact, object: contact, field: b}\n"
        "  - {kpi: nope, scope: contact, object: contact, field: c}\n"
    )
    with pytest.raises(ConfigError) as caught, db.session() as s:
        mappings.sync_file(s, bad, default_crm="local")
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "WACRM_CONFIG_FILE field_mappings[0]",
        "WACRM_CONFIG_FILE field_mappings[2]",
    ]


def test_a_new_mapping_asks_for_its_whole_scope(db: Database) -> None:
    with db.session() as s:
        mappings.add(s, norm(kpi="csat", scope="campaign", field="wa_csat", crm="local"))
    with db.session() as s:
        assert {(d.scope, d.scope_id) for d in s.scalars(select(KpiDirty))} == {
            ("campaign", kpi_dirty.ALL)
        }


# -- CRM records ---------------------------------------------------------------------------


def test_each_scope_key_resolves_to_its_crm_record(db: Database) -> None:
    now = utcnow()
    with db.session() as s:
        s.add_all(
            [
                CrmLink(crm="hubspot", kind="contact", local_id=1, crm_id="hs-501", synced_at=now),
                CrmLink(crm="salesforce", kind="contact", local_id=2, crm_id="003X", synced_at=now),
                Deal(id=7, key="9001", crm="hubspot"),
                Deal(id=8, key="api-tag-only"),  # tagged by the API, never pulled
                Campaign(id=3, key="spring", crm="hubspot", crm_id="c-77"),
                Campaign(id=4, key="no-crm"),
            ]
        )
    with db.session() as s:
        assert mappings.record_ids(s, "contact", ["1", "2", "3"], "hubspot") == {"1": "hs-501"}
        assert mappings.record_ids(s, "deal", ["7", "8"], "hubspot") == {"7": "9001"}
        assert mappings.record_ids(s, "campaign", ["3", "4"], "hubspot") == {"3": "c-77"}
        # Agents are not linked to CRM users yet: nothing to write on.
        assert mappings.record_ids(s, "agent", ["1"], "hubspot") == {}


# -- API -----------------------------------------------------------------------------------


def test_api_create_list_change_delete(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {"kpi": "frt", "stat": "p90", "scope": "contact", "field": "wa_frt_p90"}
    created = client.post("/api/v1/mappings", json=body, headers=auth)
    assert created.status_code == 201, created.json
    item = created.json
    assert (item["crm"], item["object"], item["source"], item["stat"]) == (
        "local",
        "contact",
        "api",
        "p90",
    )
    again = client.post("/api/v1/mappings", json=body, headers=auth)
    assert again.status_code == 400 and "already receives frt" in again.json["error"]["message"]
    bad = client.post("/api/v1/mappings", json={**body, "scope": "account"}, headers=auth)
    assert bad.json["error"]["details"]["fields"]["scope"].startswith("the account has no CRM")
    path = f"/api/v1/mappings/{item['id']}"
    changed = client.patch(
        path, json={"transform": "seconds_to_minutes", "enabled": False}, headers=auth
    )
    assert changed.status_code == 200, changed.json
    assert (changed.json["transform"], changed.json["enabled"], changed.json["stat"]) == (
        "seconds_to_minutes",
        False,
        "p90",
    )
    assert [m["id"] for m in client.get("/api/v1/mappings", headers=auth).json["items"]] == [
        item["id"]
    ]
    assert client.delete(path, headers=auth).status_code == 204
    assert client.get(path, headers=auth).status_code == 404
    assert client.get("/api/v1/mappings", headers=auth).json == {"items": []}


def test_api_needs_a_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/mappings").status_code == 401


def test_file_mappings_are_read_only_through_the_api(yaml_app: Flask) -> None:
    client, auth = yaml_app.test_client(), {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    items = client.get("/api/v1/mappings", headers=auth).json["items"]
    assert [(m["field"], m["source"]) for m in items] == [
        ("wa_frt_minutes", "yaml"),
        ("WA_CSAT__c", "yaml"),
    ]
    refused = client.delete(f"/api/v1/mappings/{items[0]['id']}", headers=auth)
    assert refused.status_code == 400
    assert "comes from WACRM_CONFIG_FILE" in refused.json["error"]["message"]


def test_api_check_asks_the_crm_for_each_field(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    for field in ("wa_frt_minutes", "wa_label"):
        body = {"kpi": "frt", "scope": "contact", "field": field}
        assert client.post("/api/v1/mappings", json=body, headers=auth).status_code == 201
    report = client.get("/api/v1/mappings/check", headers=auth).json
    assert report["ok"] is False
    assert [p.split(": ", 1)[1] for p in report["problems"]] == [
        "the CRM has no such field (wacrm crm provision?)",
        "the CRM has no such field (wacrm crm provision?)",
    ]
    build_adapter(app).provision_fields(
        [
            FieldSpec(object_type="contact", name="wa_frt_minutes", label="FRT", type="number"),
            FieldSpec(object_type="contact", name="wa_label", label="Label", type="string"),
        ]
    )
    report = client.get("/api/v1/mappings/check", headers=auth).json
    assert report["problems"] == [
        "mapping 2 (frt -> contact.wa_label on local): the field is string, expected a number"
    ]


# -- CLI -----------------------------------------------------------------------------------


def test_cli_add_list_validate_remove(db_url: str, tmp_path: Path) -> None:
    runner, env = CliRunner(), env_for(db_url, tmp_path)
    added = runner.invoke(
        cli,
        [
            "mappings",
            "add",
            "--kpi",
            "csat",
            "--scope",
            "contact",
            "--field",
            "wa_csat",
            "--transform",
            "percent_to_ratio",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "-> local:contact.wa_csat  [percent_to_ratio]" in added.output
    refused = runner.invoke(
        cli, ["mappings", "add", "--kpi", "csat", "--scope", "account", "--field", "x"], env=env
    )
    assert refused.exit_code == 2  # click refuses a scope outside contact|deal|campaign|agent
    listed = runner.invoke(cli, ["mappings", "list", "--json"], env=env)
    assert [m["field"] for m in json.loads(listed.output)] == ["wa_csat"]
    checked = runner.invoke(cli, ["mappings", "validate"], env=env)
    assert checked.exit_code == 1
    assert "contact.wa_csat on local): the CRM has no such field" in checked.output
    removed = runner.invoke(cli, ["mappings", "remove", "1"], env=env)
    assert removed.exit_code == 0 and "mapping 1 removed" in removed.output
    assert "no mappings" in runner.invoke(cli, ["mappings", "list"], env=env).output


def test_cli_provision_creates_the_mapped_kpi_fields(db_url: str, tmp_path: Path) -> None:
    """`wacrm crm provision` creates a number field for every mapping, disabled ones too
    (once per object and field); `wacrm crm check` reports them until then."""
    runner, env = CliRunner(), env_for(db_url, tmp_path)
    for args in (
        ["--kpi", "frt", "--stat", "median", "--scope", "contact", "--field", "wa_frt"],
        ["--kpi", "csat", "--scope", "deal", "--field", "wa_csat_30d", "--period", "30d"],
        ["--kpi", "nps", "--scope", "contact", "--field", "wa_nps", "--disabled"],
    ):
        added = runner.invoke(cli, ["mappings", "add", *args], env=env)
        assert added.exit_code == 0, added.output
    missing = runner.invoke(cli, ["crm", "check"], env=env)
    assert missing.exit_code == 1
    assert "missing: contact.wa_frt (number)" in missing.output
    assert "missing: deal.wa_csat_30d (number)" in missing.output
    assert "missing: contact.wa_nps (number)" in missing.output  # to be enabled later
    created = runner.invoke(cli, ["crm", "provision"], env=env)
    assert created.exit_code == 0, created.output
    fields = "whatsapp_wa_id, whatsapp_message_id, wa_frt, wa_csat_30d, wa_nps"
    assert f"created 5 field(s): {fields}" in created.output
    checked = runner.invoke(cli, ["crm", "check"], env=env)
    assert checked.exit_code == 0 and "all fields present" in checked.output
    validated = runner.invoke(cli, ["mappings", "validate"], env=env)
    assert validated.exit_code == 0, validated.output


def test_mapped_field_labels_name_the_kpi() -> None:
    from connector.models import FieldMapping
    from connector.provision import mapped_fields

    def row(**kw: Any) -> FieldMapping:
        base = {"kpi": "frt", "stat": "median", "scope": "contact", "crm": "hubspot"}
        base |= {"object_type": "contact", "field": "wa_frt", "period": "all", "enabled": True}
        return FieldMapping(**(base | kw))

    specs = mapped_fields(
        [
            row(),
            row(scope="contact", period="30d"),  # the same field twice: one spec
            row(kpi="csat", stat="mean", field="wa_csat", period="7d"),
            row(field="sf_frt__c", crm="salesforce"),  # another CRM's
            row(kpi="nps", field="wa_nps", enabled=False),
        ],
        "hubspot",
    )
    assert [(s.name, s.label, s.type) for s in specs] == [
        ("wa_frt", "WhatsApp frt median", "number"),
        ("wa_csat", "WhatsApp csat 7d", "number"),
        ("wa_nps", "WhatsApp nps", "number"),
    ]


def test_cli_reports_a_bad_file_and_exits_2(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("field_mappings:\n  - {kpi: frt, scope: account, object: contact, field: x}\n")
    result = CliRunner().invoke(
        cli, ["mappings", "list"], env=env_for(db_url, tmp_path, WACRM_CONFIG_FILE=str(path))
    )
    assert isinstance(result.exception, ConfigError)
    assert "field_mappings[0]: scope: the account has no CRM record" in str(result.exception)
