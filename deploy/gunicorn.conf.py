"""gunicorn settings for the portal (`portal serve` and the systemd unit).

No access log at all: it would hold client addresses and user agents.
Threads rather than processes, so that a slow satellite upload occupies one
thread, not a whole worker; request size is limited by the app itself.
"""

import os

wsgi_app = "portal.wsgi:app"
accesslog = None  # never log requests
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
