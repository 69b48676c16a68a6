"""The WSGI entry point for gunicorn: ``portal.wsgi:app``."""

from portal.app import create_app
from portal.config import environ_snapshot, load_config

app = create_app(load_config(environ_snapshot()))
