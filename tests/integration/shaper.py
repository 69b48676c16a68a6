"""A satellite link on loopback: a user-space TCP proxy that limits rate, adds delay, drops out.

netem is missing on these machines (no kernel module); a user-space proxy
needs neither it nor root, and runs the same everywhere. The link is
modelled in one asyncio loop on its own thread:

* **Rate.** Each direction is one shared link (every connection queues on
  it, as on a real VSAT channel): a chunk read from one side occupies the
  link for ``len(chunk) / rate`` seconds, a token bucket one chunk deep.
  Nothing more is read from that side until the chunk has gone out.
* **Delay.** After it has gone out, a chunk travels for ``delay`` seconds (a
  delay line), then is written to the other side: 400 ms each way gives
  the 800 ms round trips of a geostationary hop. A new connection first
  waits one round trip, as its TCP handshake would take on the real link.
* **Backpressure.** The proxy's sockets have small kernel buffers on both
  sides (``SO_RCVBUF``/``SO_SNDBUF`` of 8 KiB, which Linux doubles) and
  announce a usual Internet segment size; it reads only when the link can
  take more, and holds at most one delay's worth of bytes in flight. So the
  link itself stores little: a sender runs ahead of what reached the server
  only by its own kernel's send buffer (which Linux grows with the
  congestion window, as it would on a real path), never by a whole upload.
* **Outages.** :meth:`Shaper.cut` stops relaying both ways for a while and
  keeps every connection open (new ones are accepted and stay silent), as
  a link that drops does; :meth:`Shaper.reset` aborts every open connection
  with a TCP RST (``SO_LINGER`` 0), on both sides.
* **Counting.** Bytes per direction (what crosses the link: request and
  response lines, headers and bodies; not TCP/IP headers), connections, and
  occurrences of watched byte strings in what clients send (for example
  ``b"POST /submit-plain "``, to count requests to a route), and, if asked
  (``trace=True``), a log of the request lines and tus ``Upload-Offset``
  headers clients send, with the second they crossed the link.

Benchmarks import this too (bench/satellite.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

#: 64 kbit/s, the satellite share a ship's crew gets
SATELLITE_RATE = 64_000
#: one way, so that a round trip takes 800 ms
SATELLITE_DELAY = 0.4
#: kernel buffer asked for on every proxy socket (Linux doubles it)
SOCKET_BUFFER = 8 * 1024
#: the TCP segment size the proxy announces (a usual Internet path's)
SEGMENT = 1400

_UP, _DOWN = "up", "down"
_TRACED = re.compile(
    rb"(?:GET|HEAD|POST|PATCH|PUT|DELETE|OPTIONS) /[!-~]{0,200} HTTP/1\.[01]\r\n"
    rb"|[Uu]pload-[Oo]ffset: [0-9]{1,16}\r\n"
)
_TRACE_TAIL = 256  # longer than anything traced: a match split by a read is still found
T = TypeVar("T")


@dataclass
class _Link:
    """One direction of the link: when it is next free, and what crossed it."""

    rate: float  # bits per second
    delay: float  # seconds, one way
    free_at: float = 0.0
    bytes: int = 0

    def occupy(self, size: int, now: float) -> float:
        """Queue ``size`` bytes on the link; when they have all gone out."""
        self.free_at = max(now, self.free_at) + size * 8 / self.rate
        return self.free_at


@dataclass(eq=False)  # each pair is itself: kept in a set
class _Pair:
    """A client's connection and the proxy's own connection to the server."""

    client: socket.socket
    server: socket.socket | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    closed: bool = False


class Shaper:
    """A shaped link from a loopback port to ``target``; use as a context manager."""

    def __init__(
        self,
        target: tuple[str, int],
        *,
        rate: float = SATELLITE_RATE,
        delay: float = SATELLITE_DELAY,
        buffer: int = SOCKET_BUFFER,
        watch: Iterable[bytes] = (),
        trace: bool = False,
    ) -> None:
        if rate <= 0 or delay < 0:
            raise ValueError("the rate must be positive and the delay not negative")
        self.target = target
        self.rate = rate
        self.delay = delay
        self.buffer = buffer
        # a chunk is at most ~50 ms of link time, so flows share the link finely
        self.chunk = max(256, min(16384, int(rate / 8 * 0.05)))
        self._links = {_UP: _Link(rate, delay), _DOWN: _Link(rate, delay)}
        self._watched = {pattern: 0 for pattern in watch}
        #: (seconds since the link opened, request line or Upload-Offset header)
        self.trace: list[tuple[float, str]] | None = [] if trace else None
        self._opened = time.monotonic()
        self._down_until = 0.0
        self._pairs: set[_Pair] = set()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._listener: socket.socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepting: asyncio.Task[None] | None = None
        self.port = 0

    # --- the test's side --------------------------------------------------------------

    def __enter__(self) -> Shaper:
        """Listen on a free loopback port."""
        self._listener = self._socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        """Abort every connection, stop listening, stop the loop."""
        failure = self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if self._listener is not None:
            self._listener.close()
        self._loop.close()
        if failure is not None:
            raise RuntimeError("the link shaper stopped accepting connections") from failure

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the server, as seen through the link."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def bytes_up(self) -> int:
        """Bytes clients sent through the link (towards the server)."""
        return self._links[_UP].bytes

    @property
    def bytes_down(self) -> int:
        """Bytes the server sent through the link (towards the clients)."""
        return self._links[_DOWN].bytes

    def seen(self, pattern: bytes) -> int:
        """How often a watched byte string crossed the link towards the server."""
        return self._watched[pattern]

    def note(self, text: str) -> None:
        """Put a line of the caller's into the trace (if tracing), at the current second."""
        if self.trace is not None:
            self.trace.append((round(time.monotonic() - self._opened, 2), f"-- {text}"))

    def cut(self, seconds: float) -> None:
        """Relay nothing either way for ``seconds`` from now; connections stay open."""
        self._down_until = time.monotonic() + seconds

    @property
    def is_down(self) -> bool:
        """Whether the link is cut right now."""
        return time.monotonic() < self._down_until

    def reset(self) -> int:
        """Abort every open connection with a TCP RST, both sides; how many were open."""
        return self._call(self._reset_all())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the shaper's loop; its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # --- the loop's side --------------------------------------------------------------

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A satellite path's segment size, not loopback's 64 KiB: the peer's kernel
        # sizes its send buffer by segments, and would otherwise take a megabyte.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SEGMENT)
        return sock

    async def _link_up(self) -> None:
        """Return when the link is not cut (time.monotonic is the loop's clock too)."""
        while (wait := self._down_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """A task the shaper keeps track of, so that stopping can wait for it."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _start(self) -> None:
        self._accepting = self._spawn(self._accept())

    async def _stop(self) -> BaseException | None:
        """Abort every connection and end every task; what broke the accept loop, if anything."""
        failure = None
        if self._accepting is not None and self._accepting.done():
            if not self._accepting.cancelled():
                failure = self._accepting.exception()
        await self._reset_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return failure

    async def _accept(self) -> None:
        assert self._listener is not None
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(self._listener)
            self.connections += 1
            pair = _Pair(client)
            self._pairs.add(pair)
            pair.tasks.append(self._spawn(self._relay(pair)))

    async def _relay(self, pair: _Pair) -> None:
        loop = asyncio.get_running_loop()
        try:
            # The kernel has already completed the client's handshake with the proxy;
            # on the real link its SYN and SYN-ACK take a round trip, and nothing the
            # client sends can cross before that. (A cut link passes no handshake.)
            await self._link_up()
            await asyncio.sleep(2 * self.delay)
            await self._link_up()
            pair.server = self._socket()
            pair.server.setblocking(False)
            await loop.sock_connect(pair.server, self.target)
            up = self._spawn(self._pump(pair, pair.client, pair.server, _UP))
            down = self._spawn(self._pump(pair, pair.server, pair.client, _DOWN))
            pair.tasks += [up, down]
            await asyncio.gather(up, down)
        except (OSError, asyncio.CancelledError):
            self._abort(pair)
            return
        self._close(pair)

    async def _pump(
        self, pair: _Pair, source: socket.socket, sink: socket.socket, direction: str
    ) -> None:
        """Read from ``source`` as the link allows; deliver to ``sink`` after the delay.

        The end of the stream, and a reset from ``source``, travel the link like
        any byte: what was sent before them arrives first, as on a real network.
        """
        loop = asyncio.get_running_loop()
        link = self._links[direction]
        depth = math.ceil(link.rate / 8 * link.delay / self.chunk) + 2
        in_flight: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(maxsize=depth)
        delivery = self._spawn(self._deliver(pair, in_flight, sink))
        tail = b""
        try:
            while True:
                await self._link_up()
                try:
                    data: bytes | None = await loop.sock_recv(source, self.chunk)
                except ConnectionResetError:
                    data = None
                if data is None:
                    await in_flight.put((loop.time() + link.delay, None))
                    break
                if direction == _UP and (self._watched or self.trace is not None):
                    tail = self._watch(tail, data)
                await self._link_up()
                sent = link.occupy(len(data), loop.time())
                await asyncio.sleep(sent - loop.time())
                link.bytes += len(data)
                await in_flight.put((sent + link.delay, data))
                if not data:
                    break
            await delivery
        finally:
            delivery.cancel()

    async def _deliver(
        self, pair: _Pair, in_flight: asyncio.Queue[tuple[float, bytes | None]], sink: socket.socket
    ) -> None:
        """Hand what crossed the link to ``sink`` when it arrives; a reset resets the pair."""
        loop = asyncio.get_running_loop()
        while True:
            arrives, data = await in_flight.get()
            await asyncio.sleep(arrives - loop.time())
            await self._link_up()
            try:
                if data is None:
                    raise ConnectionResetError  # the other side's RST, arriving now
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                await loop.sock_sendall(sink, data)
            except OSError:
                self._abort(pair)
                return

    def _watch(self, tail: bytes, data: bytes) -> bytes:
        """Count watched strings (and trace requests) ending in ``data``; what to keep."""
        text = tail + data
        for pattern in self._watched:
            # a match must end in the new bytes: one inside the tail was counted before
            self._watched[pattern] += text.count(pattern, max(0, len(tail) - len(pattern) + 1))
        if self.trace is not None:
            now = round(time.monotonic() - self._opened, 2)
            for match in _TRACED.finditer(text):
                if match.end() > len(tail):
                    self.trace.append((now, match.group().decode("ascii").strip()))
        keep = max([_TRACE_TAIL, *(len(p) - 1 for p in self._watched)])
        return text[-keep:] if keep else b""

    async def _reset_all(self) -> int:
        pairs = [p for p in self._pairs if not p.closed]
        for pair in pairs:
            self._abort(pair)
        return len(pairs)

    def _abort(self, pair: _Pair) -> None:
        """Close both sides with an RST and stop relaying."""
        if pair.closed:
            return
        for sock in (pair.client, pair.server):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close(pair)

    def _close(self, pair: _Pair) -> None:
        pair.closed = True
        self._pairs.discard(pair)
        current = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for task in pair.tasks:
            if task is not current:
                task.cancel()
        for sock in (pair.client, pair.server):
            if sock is not None and sock.fileno() >= 0:
                # unregister first: a pending sock_recv must not outlive its descriptor,
                # whose number a new connection may get
                loop.remove_reader(sock.fileno())
                loop.remove_writer(sock.fileno())
                sock.close()
