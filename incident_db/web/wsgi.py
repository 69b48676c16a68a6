"""gunicorn's entry point: ``incident_db.web.wsgi:app``, built on first use.

``incident-db serve`` has migrated the database and checked the settings
before gunicorn starts; the workers read the same environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from incident_db.web.app import create_app
from incident_db.web.config import load_web_config


def __getattr__(name: str) -> Any:
    if name != "app":
        raise AttributeError(name)
    application = create_app(load_web_config(os.environ, cwd=Path.cwd()))
    globals()[name] = application
    return application
