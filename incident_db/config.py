"""All incident-db settings, read from the environment in one place.

Nothing else in ``incident_db`` reads environment variables. A command-line
option, where there is one, wins over the environment.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from incident_db.errors import ConfigError

DEFAULT_FILE = "incidents.sqlite3"


@dataclass(frozen=True)
class Config:
    """The settings of one run. Build with :func:`load_config`."""

    database_url: str
    link_hours: float = 24.0
    link_nm: float = 5.0


def _positive(environ: Mapping[str, str], name: str, default: float, high: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or not 0 < value <= high:
        raise ConfigError(f"{name} must be above 0 and at most {high:g}")
    return value


def load_config(
    environ: Mapping[str, str], *, cwd: Path, database_url: str | None = None
) -> Config:
    """Settings from ``environ``: ``INCIDENT_DB_URL``, ``INCIDENT_DB_LINK_HOURS``, ``…_NM``.

    Without a URL the database is ``incidents.sqlite3`` in ``cwd``.
    """
    url = database_url or environ.get("INCIDENT_DB_URL") or f"sqlite:///{cwd / DEFAULT_FILE}"
    return Config(
        database_url=url,
        link_hours=_positive(environ, "INCIDENT_DB_LINK_HOURS", 24.0, 24.0 * 30),
        link_nm=_positive(environ, "INCIDENT_DB_LINK_NM", 5.0, 500.0),
    )
