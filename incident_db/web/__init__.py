"""The members' web service (``incident-db serve``): passkey sign-in, roles, audit log.

``app.create_app(config)`` builds it; ``config.load_web_config`` reads its
settings; ``wsgi`` is gunicorn's entry point.
"""
