"""Settings are read in one place and unsafe ones stop the portal at start."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from portal.config import ConfigError, load_config


def _secret(data_dir: Path, text: str, mode: int = 0o600) -> None:
    data_dir.mkdir(exist_ok=True)
    path = data_dir / "secret_key"
    path.write_text(text)
    path.chmod(mode)


def test_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="portal init"):
        load_config({}, data_dir=tmp_path)


@pytest.mark.parametrize(
    "text", ["dev", "00" * 32, "abcd" * 4, "not hex at all, clearly not hex at all!!"]
)
def test_refuses_weak_or_malformed_secrets(tmp_path: Path, text: str) -> None:
    _secret(tmp_path, text)
    with pytest.raises(ConfigError):
        load_config({}, data_dir=tmp_path)


def test_refuses_a_secret_others_can_read(tmp_path: Path) -> None:
    _secret(tmp_path, secrets.token_hex(32), mode=0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config({}, data_dir=tmp_path)


def test_defaults(tmp_path: Path) -> None:
    _secret(tmp_path, secrets.token_hex(32))
    config = load_config({}, data_dir=tmp_path)
    assert config.database_url == f"sqlite:///{tmp_path.resolve() / 'portal.sqlite3'}"
    assert config.csrf_time_limit >= 6 * 3600  # a slow satellite upload fits in the window
    assert config.https is False
    assert config.onion_address is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORTAL_MAX_UPLOAD_MIB", "lots"),
        ("PORTAL_MAX_UPLOAD_MIB", "0"),
        ("PORTAL_CSRF_HOURS", "1000"),
        ("PORTAL_ONION_ADDRESS", "example.com"),
        ("PORTAL_ORGANISATION_KEY", "csosig1typo"),
    ],
)
def test_malformed_settings_are_refused(tmp_path: Path, name: str, value: str) -> None:
    _secret(tmp_path, secrets.token_hex(32))
    with pytest.raises(ConfigError, match=name):
        load_config({name: value}, data_dir=tmp_path)


def test_the_runtime_store_is_never_in_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    _secret(data_dir, secrets.token_hex(32))
    default = load_config({}, data_dir=data_dir).runtime_dir
    assert not default.is_relative_to(data_dir.resolve())
    assert default.is_relative_to("/dev/shm")  # tmpfs, one folder per data directory
    per_user = load_config({"XDG_RUNTIME_DIR": "/run/user/7"}, data_dir=data_dir)
    assert per_user.runtime_dir.parent == Path("/run/user/7")
    systemd = load_config({"RUNTIME_DIRECTORY": "/run/cso-portal-intake"}, data_dir=data_dir)
    assert systemd.runtime_dir == Path("/run/cso-portal-intake")
    for inside in (data_dir, data_dir / "run", tmp_path):
        with pytest.raises(ConfigError, match="outside the data directory"):
            load_config({"PORTAL_RUNTIME_DIR": str(inside)}, data_dir=data_dir)
