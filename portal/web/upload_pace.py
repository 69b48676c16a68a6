"""How long a tus PATCH may hold a worker's thread, and the watch that ends it.

A slow or stalled body is ended, keeping what arrived, so that a few
trickling connections cannot tie up every thread (``tus.py`` states the
limits; ``portal/config.py`` reads them).
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from portal.config import Config


@dataclass(frozen=True)
class Pace:
    """When the portal ends the reading of a PATCH body (what arrived is kept).

    A body ends when no piece has arrived for ``idle`` seconds (a dead
    link); when fewer than ``min_rate`` bytes a second arrived over the last
    ``window`` seconds (a trickle: one piece dripped just inside the idle
    limit is far below the rate); or ``longest`` seconds after it began (at
    most until its upload expires). A real link that is up, even a shared
    64 kbit/s one, moves far more than the rate; a PATCH it holds longer
    than ``longest`` is simply followed by the next one, from the offset the
    first one stored.
    """

    idle: float
    min_rate: int
    window: float
    longest: float

    @classmethod
    def of(cls, config: Config, expires_in: float) -> Pace:
        """The pace ``config`` sets, for an upload that expires in ``expires_in`` seconds."""
        return cls(
            idle=config.upload_idle_seconds,
            min_rate=config.upload_min_rate,
            window=2.0 * config.upload_idle_seconds,
            longest=max(0.0, min(float(config.upload_patch_seconds), expires_in)),
        )

    @contextmanager
    def watch(self, sock: object) -> Iterator[Callable[[int], None]]:
        """Under gunicorn, end the body's reading when it breaks the pace.

        Yields "this many bytes arrived". ``sock`` is the connection's socket
        as gunicorn holds it: a plain socket, or, on TCP, the portal's
        worker's guard around one (``portal/deploy/gunicorn_conf.py``), which
        passes ``shutdown`` on and is told that this watch now paces the body
        (its own rules for slow bodies are stricter, and would end a PATCH on
        a link that drops for half a minute). The test client's bodies are
        all there at once and have no socket: nothing is watched.
        """
        shutdown = getattr(sock, "shutdown", None)
        if not callable(shutdown):
            yield lambda _count: None
            return
        handed_over = getattr(sock, "paced_by_application", None)
        if callable(handed_over):
            handed_over(self.idle)
        watch = _BodyWatch(shutdown, self)
        try:
            yield watch.arrived
        finally:
            watch.stop()


class _BodyWatch:
    """Ends the reading of a request body once it breaks its :class:`Pace`.

    A read of the body blocks inside gunicorn until a whole piece is there,
    however slowly its bytes come, so only another thread can end it: a
    timer that, once the pace is broken, shuts the socket for reading. The
    read then returns what had arrived (nothing is lost) and the body ends
    short. The timer wakes at the next moment the pace could be broken, and
    a few times per ``window`` while bytes flow.
    """

    def __init__(self, shutdown: Callable[[int], None], pace: Pace) -> None:
        self._shutdown = shutdown
        self._pace = pace
        now = time.monotonic()
        self._started = now
        self._last = now
        self._total = 0
        #: (when, bytes so far), from the last arrival at or before the window's start
        self._arrivals: deque[tuple[float, int]] = deque([(now, 0)])
        self._lock = threading.Lock()
        self._stopped = False
        self._timer = self._arm(self._wait(now) or 0.0)

    def arrived(self, count: int) -> None:
        """``count`` bytes of the body arrived now."""
        now = time.monotonic()
        with self._lock:
            self._total += count
            self._last = now
            self._arrivals.append((now, self._total))
            self._forget_before(now - self._pace.window)

    def _forget_before(self, horizon: float) -> None:
        while len(self._arrivals) > 1 and self._arrivals[1][0] <= horizon:
            self._arrivals.popleft()

    def _wait(self, now: float) -> float | None:
        """Seconds until the pace is next looked at, or None: it is broken now."""
        pace = self._pace
        ends = self._started + pace.longest
        stalls = self._last + pace.idle
        if now >= ends or now >= stalls:
            return None
        rate_check = self._started + pace.window
        if now >= rate_check:
            self._forget_before(now - pace.window)
            if self._total - self._arrivals[0][1] < pace.min_rate * pace.window:
                return None
            rate_check = now + pace.window / 4
        return min(ends, stalls, rate_check) - now

    def _arm(self, delay: float) -> threading.Timer:
        timer = threading.Timer(delay, self._check)
        timer.daemon = True
        timer.start()
        return timer

    def _check(self) -> None:
        with self._lock:
            if self._stopped:
                return
            wait = self._wait(time.monotonic())
            if wait is not None:
                self._timer = self._arm(wait)
                return
            self._stopped = True
            with suppress(OSError):
                self._shutdown(socket.SHUT_RD)

    def stop(self) -> None:
        """The body has been read (or given up on): never touch the socket again."""
        with self._lock:
            self._stopped = True
            self._timer.cancel()
