"""gunicorn settings for the members' service (``incident-db serve``).

* No access log: it would be a list of which member's browser asked for
  what, from where.
* The error log goes through web_hardening's LogRedaction: gunicorn writes
  the client's address into its "Invalid request from ip=…" warnings, and a
  traceback can carry whatever a request held; each such line becomes one
  naming only the exception's class.
* No Server header (gunicorn has no setting for it: its response writer is
  given a subclass that leaves the line out).
* gthread: a handful of members, mostly reading pages; threads are enough.
  ``incident-db serve --workers`` sets the worker count (2 by default).
* No X-Forwarded-* header is trusted.
"""

from gunicorn import glogging
from gunicorn.http import wsgi as _gunicorn_wsgi

from web_hardening.logs import LogRedaction


class MembersLogger(glogging.Logger):
    """gunicorn's logger with the redaction on its error log, and no access log."""

    def setup(self, cfg):
        """Set up as gunicorn does (also on SIGUSR1), then add the redaction once."""
        super().setup(cfg)
        if not any(isinstance(f, LogRedaction) for f in self.error_log.filters):
            self.error_log.addFilter(LogRedaction())

    def access(self, resp, req, environ, request_time):
        """Never: see the module's docstring."""


class _NamelessResponse(_gunicorn_wsgi.Response):
    """gunicorn's response writer without its "Server: gunicorn" line."""

    def default_headers(self):
        """gunicorn's status line and headers, less Server."""
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


_gunicorn_wsgi.Response = _NamelessResponse  # gunicorn.http.wsgi.create() builds this

wsgi_app = "incident_db.web.wsgi:app"
accesslog = None  # never log requests
logger_class = MembersLogger
errorlog = "-"
loglevel = "warning"
worker_class = "gthread"
workers = 2
threads = 8
timeout = 60
graceful_timeout = 20
keepalive = 5
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
max_requests = 2000
max_requests_jitter = 200
forwarded_allow_ips = ""  # trust no X-Forwarded-* header
proxy_allow_ips = ""
