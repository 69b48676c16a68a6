"""Settings come from the environment in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from incident_db.config import load_config
from incident_db.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    config = load_config({}, cwd=tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path / 'incidents.sqlite3'}"
    assert (config.link_hours, config.link_nm) == (24.0, 5.0)


def test_the_option_wins_over_the_environment(tmp_path: Path) -> None:
    environ = {"INCIDENT_DB_URL": "sqlite:///env.db", "INCIDENT_DB_LINK_NM": "2.5"}
    assert load_config(environ, cwd=tmp_path).database_url == "sqlite:///env.db"
    assert load_config(environ, cwd=tmp_path, database_url="sqlite:///x").database_url == (
        "sqlite:///x"
    )
    assert load_config(environ, cwd=tmp_path).link_nm == 2.5


@pytest.mark.parametrize("value", ["five", "0", "-1", "nan", "1e9"])
def test_bad_windows_stop_the_program(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="INCIDENT_DB_LINK_HOURS"):
        load_config({"INCIDENT_DB_LINK_HOURS": value}, cwd=tmp_path)
