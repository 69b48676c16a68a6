"""The WSGI entry points for gunicorn: ``portal.web.wsgi:app`` and ``portal.web.wsgi:sync_app``.

Each is built on first use, so a listener loads only the application it serves.
"""

from __future__ import annotations

from typing import Any

from portal.config import environ_snapshot, load_config
from portal.web.app import create_app


def __getattr__(name: str) -> Any:
    roles = {"app": "intake", "sync_app": "sync"}
    if name not in roles:
        raise AttributeError(name)
    application = create_app(load_config(environ_snapshot()), roles[name])
    globals()[name] = application
    return application
