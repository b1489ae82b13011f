"""Long-lived TCP connections to a node's peers: a hop costs a write, not a connection.

Each peer gets one connection, a send queue and two threads. The thread that decides a
request writes it itself when the connection is idle (no hand-off per copy); otherwise the
writer thread writes whatever is queued in a single system call. The other reads the
replies, which a node writes in the order the requests came, and settles each request's
future. A broken connection is reconnected with backoff; requests that were in flight on
it fail (a copy sent twice is harmless, as nodes ignore a walk they already recorded),
queued ones go out on the new connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from gossip.auth import Channel
from gossip.commands import REPLY_ENDS, Command
from gossip.protocol import FrameError, acked
from gossip.sends import Address, Send
from gossip.sockets import LINGER_ABORT, timed_stream
from gossip.timing import Timing

log = logging.getLogger("gossip.node")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 1.0
"""Seconds between attempts to reconnect a broken connection: doubling from first to max."""

Reply = dict[str, Any] | None
"""A reply's payload, or None when the request did not arrive. A refusal (``/ERR``) arrived:
its payload holds the ``error``."""


def taken(reply: Reply) -> bool:
    """Whether the peer took the request: its reply came, and it was no refusal."""
    return reply is not None and "error" not in reply


def refusal(payload: dict[str, Any]) -> dict[str, Any]:
    """The reply of an ``/ERR`` frame, whatever its payload held: always with an ``error``."""
    return {"error": str(payload.get("error") or "refused")}


Settled = Callable[[list[tuple[Send, Reply]]], None]
"""Told how a batch of requests went, before their futures are set."""


class PeerConnection:
    """The connection to one peer; ``submit`` queues a request and returns its future."""

    def __init__(
        self,
        address: Address,
        key: bytes | None,
        unreachable: Callable[[], None],
        reply_timeout: float = Timing.reply_timeout,
        settled: Settled | None = None,
    ) -> None:
        self.address = address
        self.reply_timeout = reply_timeout
        """Seconds the connection may owe replies without one coming before it counts as
        broken: long enough for a node of a large network still busy starting up."""
        self.key = key
        self._unreachable = unreachable
        """Called, outside any lock, each time the connection breaks or connecting fails: one
        sign that the peer is dead."""
        self._settled = settled
        """Called, outside any lock, with every batch of requests a reply (or a break)
        settles: one call for many copies, instead of a callback each."""
        self._queue: deque[tuple[Send, Future[Reply] | None]] = deque()
        self._inflight: deque[tuple[Send, Future[Reply] | None]] = deque()
        self._oldest = 0.0
        """When the connection last made progress while owing replies: the write that started
        owing, or the latest reply (monotonic)."""
        self._wake = threading.Condition()
        self._closed = False
        self._retry = False
        """The connection broke: reconnect even with nothing to send."""
        self._writing = False
        """A thread is sealing or writing requests: one at a time, so they go out in order."""
        self._rest = b""
        """Sealed requests the socket did not take at once: the writer sends them first."""
        self._sock: socket.socket | None = None
        self._channel: Channel | None = None
        """The seals of the current connection, set with ``_sock``."""
        threading.Thread(target=self._write, daemon=True, name="connection").start()

    def submit(self, send: Send) -> Future[Reply]:
        future: Future[Reply] = Future()
        self._enqueue([(send, future)])
        return future

    def submit_all(self, sends: list[Send]) -> None:
        """Queue these requests at once (one wake-up of the writer), with no future each:
        how they went only goes to ``settled`` (the hot path: relayed copies)."""
        self._enqueue([(send, None) for send in sends])

    def _enqueue(self, entries: list[tuple[Send, Future[Reply] | None]]) -> None:
        """Write the requests from this thread if the connection is up and idle, else
        queue them for the writer.

        The write never blocks this thread (a node's handler, which must keep reading its
        own connection): what the socket does not take at once, the writer finishes.
        """
        with self._wake:
            if self._closed:
                direct = None
            elif self._sock is None or self._channel is None or self._busy():
                self._queue.extend(entries)
                self._wake.notify()
                return
            else:
                direct = self._sock
                self._writing = True
                if not self._inflight:
                    self._oldest = time.monotonic()
                self._inflight.extend(entries)
                data = b"".join(self._channel.send(send.frame) for send, _ in entries)
        if direct is None:
            self._settle([(send, future, None) for send, future in entries])
            return
        try:
            written = direct.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            written = 0
        except OSError:
            written = len(data)
            self._drop(direct)
        with self._wake:
            self._writing = False
            if written < len(data) and self._sock is direct:
                self._rest = data[written:]
            if self._queue or self._rest or self._retry:
                self._wake.notify()  # the writer waited for this write (and reconnects)

    def _settle(self, outcomes: list[tuple[Send, Future[Reply] | None, Reply]]) -> None:
        """Report a batch of outcomes, then set the futures there are."""
        if self._settled is not None and outcomes:
            self._settled([(send, reply) for send, _, reply in outcomes])
        for _, future, reply in outcomes:
            if future is not None:
                future.set_result(reply)

    def check(self, now: float) -> None:
        """Count the connection as broken if a reply is overdue (``now`` is monotonic).

        Reads never time out, as an idle connection owes nothing; this watchdog, called by
        the node's housekeeping, is what notices a peer that stopped answering.
        """
        with self._wake:
            overdue = bool(self._inflight) and now - self._oldest > self.reply_timeout
        if overdue:
            self._drop()

    def close(self) -> None:
        """Stop for good: fail whatever is queued, drop the connection."""
        with self._wake:
            self._closed = True
            pending, self._queue = list(self._queue), deque()
            self._wake.notify()
        self._settle([(send, future, None) for send, future in pending])
        self._drop()

    def request(self, send: Send, timeout: float) -> Reply:
        """Send one request and wait for its reply (None if it did not come in time)."""
        try:
            return self.submit(send).result(timeout)
        except TimeoutError:
            return None

    def _busy(self) -> bool:
        """Requests wait, or a thread writes: new ones queue behind them. Hold ``_wake``."""
        return bool(self._queue or self._rest or self._writing)

    def _write(self) -> None:
        backoff = BACKOFF_FIRST
        while True:
            with self._wake:
                while (self._writing or not (self._queue or self._retry or self._rest)) and (
                    not self._closed
                ):
                    self._wake.wait()
                if self._closed:
                    return
                rest, self._rest = self._rest, b""
                sock = self._sock
                self._writing = bool(rest) and sock is not None
            if rest and sock is not None:
                self._send_all(sock, rest)
                continue
            if self._sock is None and not self._connect():
                if self._closed:
                    return
                self._unreachable()
                self._fail_queued()
                with self._wake:
                    self._wake.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                continue
            backoff = BACKOFF_FIRST
            with self._wake:
                sock, channel = self._sock, self._channel
                if sock is None or channel is None or self._writing:
                    continue  # it broke again before anything went out on it
                self._retry = False
                batch, self._queue = list(self._queue), deque()
                if not batch:
                    continue
                if not self._inflight:
                    self._oldest = time.monotonic()
                self._inflight.extend(batch)
                self._writing = True
                data = b"".join(channel.send(send.frame) for send, _ in batch)
            self._send_all(sock, data)

    def _send_all(self, sock: socket.socket, data: bytes) -> None:
        """Write ``data`` whole, waiting as long as it takes (the writer's own thread)."""
        try:
            sock.sendall(data)
        except OSError:
            self._drop(sock)
        with self._wake:
            self._writing = False

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection(self.address, timeout=self.reply_timeout)
        except (OSError, UnicodeError):  # UnicodeError: a host name no resolver takes
            return False
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader, stream = timed_stream(sock)
        reader.deadline = time.monotonic() + self.reply_timeout  # a hello that trickles in
        try:
            channel = Channel.connect(self.key, stream)
            reader.deadline = None  # from here, the watchdog (``check``) notices silence
        except (OSError, FrameError) as exc:
            if isinstance(exc, FrameError):  # a wrong secret, say: worth a line in the log
                log.warning("connection to %s:%d refused: %s", *self.address, exc)
            stream.close()
            sock.close()
            return False
        sock.settimeout(None)
        with self._wake:
            if self._closed:
                stream.close()
                sock.close()
                return False
            self._sock, self._channel = sock, channel
        threading.Thread(
            target=self._read, args=(sock, stream, channel), daemon=True, name="connection-read"
        ).start()
        return True

    def _read(self, sock: socket.socket, stream: Any, channel: Channel) -> None:
        """Settle in-flight requests in order as their replies come; stop when it breaks."""
        with stream:
            while True:
                try:
                    frame = channel.read(stream)
                except (OSError, FrameError):
                    break
                if frame is None:
                    with self._wake:
                        idle = not self._inflight
                    if idle:  # the peer closed a connection that owed nothing: it idled out
                        self._drop(sock, quietly=True)
                        return
                    break
                if frame.command not in REPLY_ENDS:
                    continue  # /MSGS-like frames belong to the reply that follows
                payload = frame.payload if frame.command == Command.OK else refusal(frame.payload)
                count = acked(payload)
                if count > 1:
                    payload = {}
                with self._wake:
                    if self._sock is not sock or len(self._inflight) < count:
                        break  # a connection given up on, or a peer that acks too much
                    done = [self._inflight.popleft() for _ in range(count)]
                    self._oldest = time.monotonic()
                self._settle([(send, future, payload) for send, future in done])
        self._drop(sock)

    def _drop(self, sock: socket.socket | None = None, quietly: bool = False) -> None:
        """The connection broke: forget the connection (if it is still ``sock``), fail what was
        in flight on it, report it once (unless ``quietly``: a connection closed while idle),
        and reconnect at once to see whether the peer is still there (a killed peer's
        port refuses, which is the quickest sign of death).
        """
        with self._wake:
            current = self._sock
            if (sock is not None and current is not sock) or current is None:
                return
            self._sock, self._channel = None, None
            self._rest = b""
            lost, self._inflight = list(self._inflight), deque()
            self._retry = not self._closed
            self._wake.notify()
        with contextlib.suppress(OSError):
            current.shutdown(socket.SHUT_RDWR)  # wakes a reader or writer blocked on it
        with contextlib.suppress(OSError):
            current.close()
        self._settle([(send, future, None) for send, future in lost])
        if not self._closed and not quietly:
            self._unreachable()

    def _fail_queued(self) -> None:
        with self._wake:
            pending, self._queue = list(self._queue), deque()
        self._settle([(send, future, None) for send, future in pending])
