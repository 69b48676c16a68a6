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
* Slow clients: gthread keeps a connection that has sent nothing out of the
  threads, but once a byte has arrived a thread reads until the request is
  complete, and gunicorn has no read timeout of its own. So every accepted
  connection gets one in the kernel (SO_RCVTIMEO, reads only: answers to a
  slow satellite link are never cut off), see PortalThreadWorker. On TCP
  (`portal serve`, clients straight from the network): the request line and
  headers must be in within HEADER_DEADLINE_TCP seconds of the connection's
  acceptance; a body may pause BODY_IDLE_TCP seconds (a satellite link's
  half-minute drop), must keep BODY_MIN_RATE_TCP on average after its first
  minute and end within a time its length allows (at most BODY_LONGEST_TCP);
  and at most a third of a worker's threads read bodies at once, the rest
  being answered 503 with Retry-After before any of their body is read, so
  that pages never wait behind bodies, however cleverly they trickle.
  Behind nginx (the Unix socket of the systemd units) nginx's own
  client_header_timeout, client_body_timeout and limit_conn decide first,
  and READ_IDLE_UNIX only catches a stuck proxy. A tus PATCH body is
  paced by the application itself (portal/web/upload_pace.py:
  PORTAL_UPLOAD_IDLE_SECONDS, a least rate, a longest time), keeping what
  came when it ends one, so that a link that drops goes on where it stopped
  instead of sending again what was on its way; while that watch runs, a
  read may wait as long as the watch allows and a little more.
* Request size is limited here for the request line and headers, by nginx and
  by the app for bodies (PORTAL_MAX_UPLOAD_MIB, PORTAL_MAX_PLAIN_UPLOAD_MIB).
* Worker memory: a worker whose resident memory has grown past
  PORTAL_WORKER_MAX_MEMORY_MIB finishes its requests and is replaced; on a
  host, systemd also caps each process (LimitAS) and the service (MemoryMax).
* Under systemd the listening socket comes from the .socket unit; `portal
  serve` passes --bind.
"""

import errno
import os
import selectors
import socket
import struct
import threading
import time

from gunicorn import glogging
from gunicorn.http import body as _gunicorn_body
from gunicorn.http import wsgi as _gunicorn_wsgi
from gunicorn.workers.gthread import ThreadWorker

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

#: on TCP (`portal serve` without nginx): seconds any one read of the request line
#: and headers may wait, and the seconds they may take in all, counted from the
#: connection's acceptance (time spent queued for a thread counts too)
READ_IDLE_TCP = 15
HEADER_DEADLINE_TCP = 10
#: seconds any one read of a body may wait. A satellite link drops for half a
#: minute now and then; while it is down the sender's TCP backs off, doubling
#: the wait between retransmissions, so its next segment can come some 15 to
#: 30 s after the link is back. A minute covers the drop and that backoff.
BODY_IDLE_TCP = 60
#: the least average rate of a body (bytes a second), counted after its first
#: BODY_IDLE_TCP seconds (so a drop right at its start is survived too), and the
#: longest a body may take: BODY_IDLE_TCP plus its length at the least rate, at
#: most BODY_LONGEST_TCP (an hour: 25 MiB of plaintext form at 64 kbit/s)
BODY_MIN_RATE_TCP = 512
BODY_LONGEST_TCP = 3600
#: at most this share of a worker's threads (at least one) read request bodies
#: at once; a body beyond it is answered 503 at once, before any of it is read,
#: so that pages never wait behind uploads, however slowly those trickle in
BODY_READERS_SHARE = 3
BUSY_RETRY_AFTER = 5
#: a connection ended by the worker: seconds and bytes it may still be read
#: for, so that the client sees the answer rather than a reset
CLOSE_LINGER_SECONDS = 1.0
CLOSE_LINGER_BYTES = 2 * 1024 * 1024
MAX_LINGERING = 256
#: behind nginx (its Unix socket): above nginx's client_body_timeout (120 s), so
#: nginx's own client timeouts decide; this only catches a stuck proxy
READ_IDLE_UNIX = 150
#: a body the application paces itself: seconds a read may wait beyond its idle limit
#: (the application's watch ends the reading first; this only catches a watch gone wrong)
PACED_MARGIN = 5

_BUSY_TEXT = b"The portal is receiving as many uploads as it can; please send again shortly.\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Retry-After: %d\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\n"
    b"Cache-Control: no-store\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Connection: close\r\n\r\n%s"
) % (BUSY_RETRY_AFTER, len(_BUSY_TEXT), _BUSY_TEXT)

_LINGERING = threading.BoundedSemaphore(MAX_LINGERING)


class _SlowClientError(TimeoutError):
    """A client read too slowly for the rules above; gthread closes the connection."""


class _GuardedSocket:
    """A client socket whose reads keep to the TCP rules above (all else is the socket's).

    gunicorn reads the request line, headers and body through ``recv``; the
    ``pre_request`` hook below marks the end of the headers. Each read gets a
    kernel timeout (SO_RCVTIMEO, so writes to a slow reader are never cut
    off): the idle limit, or what is left of the header or body deadline if
    less. Once the header deadline has passed, a read only takes what has
    already arrived (a request that waited for a thread is all there). A
    body whose pace the application watches itself is announced through
    :meth:`paced_by_application`. While a body is read, the guard holds one
    of its worker's body slots and gives it back once the body is in.
    """

    def __init__(self, sock):
        self._sock = sock
        self._headers_by = time.monotonic() + HEADER_DEADLINE_TCP
        self._body_from = None
        self._body_by = None
        self._body_left = None
        self._body_bytes = 0
        self._paced_idle = None
        self._slot = None
        self._lingered = False

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def start_body(self, length, buffered):
        """The headers are in: from now on the body's rules count.

        ``length`` is its Content-Length (None if chunked), ``buffered`` how
        many of its bytes were read along with the headers.
        """
        self._body_from = time.monotonic()
        self._body_bytes = 0
        allowed = BODY_LONGEST_TCP
        if length is not None:
            allowed = min(allowed, BODY_IDLE_TCP + length / BODY_MIN_RATE_TCP)
            self._body_left = length - buffered
            if self._body_left <= 0:
                self.release_slot()
        self._body_by = self._body_from + allowed

    def hold_slot(self, release):
        """This request reads its body in one of the worker's slots; ``release`` frees it."""
        self._slot = release

    def release_slot(self):
        """The body is in, or the request is over: give its slot back (once)."""
        release, self._slot = self._slot, None
        if release is not None:
            release()

    def next_request(self):
        """A kept-alive connection starts a new request: a new header deadline."""
        self.release_slot()
        self._headers_by = time.monotonic() + HEADER_DEADLINE_TCP
        self._body_from = None
        self._body_by = None
        self._body_left = None
        self._paced_idle = None

    def paced_by_application(self, idle):
        """The application now watches this body's pace itself (a tus PATCH).

        Its watch ends the reading once no bytes came for ``idle`` seconds,
        or too few, or for too long, and keeps what arrived; until this
        request ends, a read may wait ``idle`` seconds and PACED_MARGIN more,
        and the rate and time rules above are left to the watch.
        """
        self._paced_idle = max(float(idle), READ_IDLE_TCP)

    def recv(self, size, *flags):
        now = time.monotonic()
        if self._paced_idle is not None:
            wait = self._paced_idle + PACED_MARGIN
        elif self._body_from is None:
            # past the deadline: only what has arrived already (1 ms)
            wait = max(0.001, min(READ_IDLE_TCP, self._headers_by - now))
        else:
            late = now - self._body_from - BODY_IDLE_TCP
            if late > 0 and self._body_bytes < late * BODY_MIN_RATE_TCP:
                raise _SlowClientError("request body too slow")
            wait = min(BODY_IDLE_TCP, self._body_by - now)
            if wait <= 0:
                raise _SlowClientError("request body too long")
        _read_timeout(self._sock, wait)
        try:
            data = self._sock.recv(size, *flags)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise _SlowClientError("client silent too long") from None
        self._body_bytes += len(data)
        if self._body_left is not None and self._body_bytes >= self._body_left:
            self.release_slot()
        return data

    def linger(self):
        """End the connection without cutting off its answer, on a thread of its own.

        Writing ends at once; what the client still sends is read and
        dropped for a moment (CLOSE_LINGER_SECONDS, CLOSE_LINGER_BYTES), so
        that closing does not reset the connection before the client has
        read the answer. gthread's own closing on its main thread, which
        would wait for those bytes itself, then does nothing: ``shutdown``
        fails, and ``setblocking`` and ``close`` are left to the lingering thread. Past
        MAX_LINGERING connections lingering at once, one is closed at once.
        """
        self._lingered = True
        sock = self._sock
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        if not _LINGERING.acquire(blocking=False):
            sock.close()
            return
        threading.Thread(target=_drain_and_close, args=(sock,), daemon=True).start()

    def shutdown(self, how):
        if self._lingered:
            raise OSError(errno.ENOTCONN, "already closed for writing")
        self._sock.shutdown(how)

    def setblocking(self, flag):
        if not self._lingered:
            self._sock.setblocking(flag)

    def close(self):
        if not self._lingered:
            self._sock.close()


def _drain_and_close(sock):
    """Read and drop what a client still sends, briefly, then close (see ``linger``)."""
    try:
        ends = time.monotonic() + CLOSE_LINGER_SECONDS
        drained = 0
        with selectors.DefaultSelector() as selector:
            selector.register(sock.fileno(), selectors.EVENT_READ)
            while drained < CLOSE_LINGER_BYTES:
                left = ends - time.monotonic()
                if left <= 0 or not selector.select(left):
                    break
                data = sock.recv(65536, socket.MSG_DONTWAIT)
                if not data:
                    break
                drained += len(data)
    except OSError:
        pass
    finally:
        sock.close()
        _LINGERING.release()


def _read_timeout(sock, seconds):
    """Make every read from ``sock`` give up after ``seconds`` (writes are not affected)."""
    whole = int(seconds)
    micro = max(1000, int((seconds - whole) * 1_000_000)) if whole == 0 else 0
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", whole, micro))


def _has_body(req):
    """Whether a request comes with a body to read (its length, or chunked, or until EOF)."""
    reader = getattr(getattr(req, "body", None), "reader", None)
    if isinstance(reader, _gunicorn_body.LengthReader):
        return reader.length > 0
    if isinstance(reader, _gunicorn_body.EOFReader):
        return req.method not in ("GET", "HEAD")
    return reader is not None


class PortalThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, with the read rules above for every TCP client.

    The guard goes round a connection as it is accepted (``enqueue_req``, on
    the worker's main thread), so that its header deadline also counts the
    time it waits for a thread. A new request on it is only one that comes
    once the connection is set up (kept alive, or sent right behind the
    last); gthread handing a connection that sent nothing for a while back
    to its poller, and then to a thread again, is the same request.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._body_slots = threading.BoundedSemaphore(
            max(1, self.cfg.threads // BODY_READERS_SHARE)
        )

    def enqueue_req(self, conn):
        """Guard a newly accepted TCP connection, then queue it as gthread does."""
        if not isinstance(conn.sock, _GuardedSocket):
            try:
                if conn.sock.family != socket.AF_UNIX:
                    conn.sock = _GuardedSocket(conn.sock)
            except OSError:
                pass  # the client has gone already; gthread finds out and closes
        super().enqueue_req(conn)

    def handle(self, conn):
        """Set the connection's read rules, then handle it as gthread does.

        A read that breaks a rule raises; gthread then drops the connection
        (a request half read never reaches the application as complete: its
        reader sees the error and nothing is stored). A TCP connection that
        ends lingers on a thread of its own (``linger``), neither holding this
        one nor gthread's main thread, which would wait up to 2 s on a slow
        client's last bytes.
        """
        guarded = isinstance(conn.sock, _GuardedSocket)
        try:
            if guarded:
                if conn.initialized:
                    conn.sock.next_request()
            elif conn.sock.family == socket.AF_UNIX:
                _read_timeout(conn.sock, READ_IDLE_UNIX)
        except OSError:
            pass  # the client has gone already; gthread finds out and closes
        keep = super().handle(conn)
        if guarded:
            conn.sock.release_slot()
            if not keep:
                conn.sock.linger()
        return keep

    def handle_request(self, req, conn):
        """Handle a request; one with a body only if a body slot is free, else 503 at once."""
        sock = conn.sock
        if not isinstance(sock, _GuardedSocket) or not _has_body(req):
            return super().handle_request(req, conn)
        if not self._body_slots.acquire(blocking=False):
            sock.sendall(_BUSY)
            return False
        sock.hold_slot(self._body_slots.release)
        try:
            return super().handle_request(req, conn)
        finally:
            sock.release_slot()


def pre_request(worker, req):
    """The headers of a request are in: its body's rules apply from here."""
    unreader = getattr(req, "unreader", None)
    sock = getattr(unreader, "sock", None)
    if isinstance(sock, _GuardedSocket):
        reader = getattr(getattr(req, "body", None), "reader", None)
        length = reader.length if isinstance(reader, _gunicorn_body.LengthReader) else None
        sock.start_body(length, len(unreader.buf.getvalue()))


wsgi_app = "portal.web.wsgi:app"
accesslog = None  # never log requests
logger_class = PortalLogger
errorlog = "-"
loglevel = "warning"
worker_class = PortalThreadWorker  # gthread, with read timeouts (see above)
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
