"""The YAML file: mistakes stop the start with one line naming each."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import create_app
from connector.errors import ConfigError
from tests.conftest import base_config


@pytest.mark.parametrize(
    ("yaml", "named"),
    [
        (
            "field_mappings:\n  - {kpi: frt, scope: planet, object: contact, field: x}\n",
            "field_mappings[0]",
        ),
        (
            "field_mappings:\n  - {kpi: speed, scope: contact, object: contact, field: x}\n",
            "field_mappings[0]",
        ),
        ("business_hours:\n  weekly: {mon: ['17:00-09:00']}\n", "business_hours.weekly"),
        ("business_hours:\n  weekly: {funday: ['09:00-17:00']}\n", "business_hours.weekly"),
        ("rate_card: [1, 2]\n", "rate_card"),
        ("- just\n- a list\n", "mapping at the top"),
    ],
)
def test_bad_file_is_refused_at_start(db_url: str, tmp_path: Path, yaml: str, named: str) -> None:
    path = tmp_path / "wacrm.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError) as caught:
        create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(path)))
    assert named in str(caught.value)


def test_missing_file_is_named(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        create_app(base_config(db_url, tmp_path, WACRM_CONFIG_FILE=str(tmp_path / "nope.yaml")))
