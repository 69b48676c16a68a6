"""gunicorn settings for the portal (`portal serve` and the systemd units).

`portal deploy-configs` installs this file unchanged as
/etc/cso-portal/gunicorn.conf.py; the numbers come from the environment
(/etc/cso-portal/portal.env on a host).

* No access log at all: it would hold client addresses and user agents.
* The error log goes through the portal's LogRedaction (portal/web/security.py):
  gunicorn writes the client's address and the offending request text into
  its "Invalid request from ip=…" warnings, and tracebacks carry exception
  messages; each such line becomes one naming only the exception's class.
* No Server header: gunicorn has no setting for it, so its response writer is
  given a subclass that leaves the line out (tests/security pins this down).
* Threads rather than processes (gthread): a slow satellite upload occupies
  one thread, not a whole worker, and a HEAD can report an upload's stored
  offset while its PATCH is still streaming in on another thread. nginx in
  front buffers one-shot encrypted uploads (/submit) completely before
  passing them on; the bodies it streams through (plaintext forms, tus
  PATCHes) may each hold at most a third of the threads, so slow clients
  cannot take every thread from pages and acknowledgements.
* Compression: the application gzips its own pages, styles, modules and
  JSON (portal/web/compression.py), so `portal serve` needs nothing in front.
* Request size is limited here for the request line and headers, by nginx and
  by the app for bodies (PORTAL_MAX_UPLOAD_MIB, PORTAL_MAX_PLAIN_UPLOAD_MIB).
* Worker memory: a worker whose resident memory has grown past
  PORTAL_WORKER_MAX_MEMORY_MIB finishes its requests and is replaced; on a
  host, systemd also caps each process (LimitAS) and the service (MemoryMax).
* Under systemd the listening socket comes from the .socket unit; `portal
  serve` passes --bind.
"""

import os

from gunicorn import glogging
from gunicorn.http import wsgi as _gunicorn_wsgi

from portal.web.security import LogRedaction


class PortalLogger(glogging.Logger):
    """gunicorn's logger with the portal's redaction on its error log, and no access log."""

    def setup(self, cfg):
        """Set up as gunicorn does (also on SIGUSR1), then add the redaction once."""
        super().setup(cfg)
        if not any(isinstance(f, LogRedaction) for f in self.error_log.filters):
            self.error_log.addFilter(LogRedaction())

    def access(self, resp, req, environ, request_time):
        """Never: an access log is a list of who reported when."""


class _AnonymousResponse(_gunicorn_wsgi.Response):
    """gunicorn's response writer without its "Server: gunicorn" line."""

    def default_headers(self):
        """gunicorn's status line and headers, less Server."""
        return [h for h in super().default_headers() if not h.lower().startswith("server:")]


_gunicorn_wsgi.Response = _AnonymousResponse  # gunicorn.http.wsgi.create() builds this

wsgi_app = "portal.web.wsgi:app"
accesslog = None  # never log requests
logger_class = PortalLogger
errorlog = "-"
loglevel = "warning"
worker_class = "gthread"
workers = int(os.environ.get("PORTAL_WORKERS", "2"))
threads = int(os.environ.get("PORTAL_THREADS", "16"))
timeout = 120  # a worker's heartbeat, not a request deadline, under gthread
graceful_timeout = 30
keepalive = 5
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
max_requests = 2000  # recycle workers: bounds any slow memory growth
max_requests_jitter = 200
forwarded_allow_ips = ""  # trust no X-Forwarded-* header
proxy_allow_ips = ""

_PAGE = os.sysconf("SC_PAGE_SIZE")
_MAX_RSS = int(os.environ.get("PORTAL_WORKER_MAX_MEMORY_MIB", "1024")) * 1024 * 1024


def _resident_bytes():
    """This process's resident memory now (not its peak)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE


def post_request(worker, req, environ, resp):
    """Retire a worker that has grown too large, once its requests are done."""
    if worker.alive and _resident_bytes() > _MAX_RSS:
        worker.log.warning(
            "worker %s uses more than %d MiB; replacing it", worker.pid, _MAX_RSS >> 20
        )
        worker.alive = False
