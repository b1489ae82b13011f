"""``gossip.connections.PeerConnection`` against a tiny echo peer on a real loopback port.

The peer answers ``/X {"n": ...}`` with ``/OK {"echo": n}`` in order and can be told to
misbehave the ways real peers do: answer late or never, refuse, chatter, hang up, stop
reading, stop listening. Waits poll with a deadline or block on futures; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import pairwise
from typing import Any

import pytest

from gossip.auth import Channel
from gossip.client import GossipClient, NodeUnreachable
from gossip.connections import PeerConnection, Reply, taken
from gossip.network import wait_until
from gossip.protocol import decode_frame, encode_frame
from gossip.sends import Address, Send
from gossip.timing import Timing
from tests.networks import free_origin

WAIT = 3.0
HELLO = Channel.for_node(None)[1]
"""The bare hello of an ``--insecure`` node: the echo peer speaks unsealed frames."""
"""Seconds to wait for something that should happen almost at once on loopback."""

BIG = 16 * 1024 * 1024
"""Bytes of a frame no socket buffers can hold, so the writer stays in ``sendall`` until
the peer reads (loopback buffers reach a few MB)."""


def frame(n: int, **wishes: bool) -> Send:
    """Request ``n``; ``err`` asks the echo peer for /ERR, ``chatty`` for a /MSG first.
    The Send's address is a placeholder: a connection writes to its own."""
    return Send(1, ("127.0.0.1", 1), encode_frame("X", {"n": n, **wishes}), "X")


def big_frame(n: int) -> Send:
    """A request too large for the socket buffers (built by hand: encode_frame caps size)."""
    return Send(1, ("127.0.0.1", 1), b'/X {"n":%d,"pad":"%s"}\n' % (n, b"a" * BIG), "X")


class EchoServer:
    """A peer that answers every request in order, with knobs for each way peers fail."""

    def __init__(self, port: int) -> None:
        self.address: Address = ("127.0.0.1", port)
        self.close_after: dict[int, int] = {}
        """Connection number -> frames after which the peer hangs up, leaving the last
        unanswered (0: hang up on accepting)."""
        self.received: list[tuple[int, int]] = []
        """(connection number, n) of every request read, in order."""
        self.accepted = 0
        self.ended = 0
        """Connections over, whichever side closed them."""
        self.stalled = threading.Event()
        """Set once a connection has bytes waiting that the peer, told to stall, left unread."""
        self._reading = threading.Event()
        self._reading.set()
        self._holding = False
        self._owed: dict[socket.socket, list[bytes]] = {}
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener = socket.socket()
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(self.address)
            self._listener.listen()
        except OSError:
            self._listener.close()
            raise
        self._threads = [self._start(self._accept)]

    def hold(self) -> None:
        """Owe replies from now on: a slow peer, or a hung one if never released."""
        with self._lock:
            self._holding = True

    def flush(self) -> None:
        """Send what is owed, each connection's replies in one write, and keep holding."""
        with self._lock:
            self._send_owed()

    def answer_instead(self, data: bytes) -> None:
        """Drop the replies owed and write ``data`` instead on each connection owing some:
        a peer answering a batch its own way (one ``/OK {"acked": n}``, say). Keeps holding."""
        with self._lock:
            owed, self._owed = self._owed, {}
            for conn in owed:
                with contextlib.suppress(OSError):
                    conn.sendall(data)

    def release(self) -> None:
        with self._lock:
            self._holding = False
            self._send_owed()

    def stall(self) -> None:
        """Leave new connections unread until ``resume``, so a sender fills its buffers."""
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def stop_listening(self) -> None:
        """Make the port refuse; shutting the listener down also wakes ``accept``."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def hang_up(self) -> None:
        """Close every connection, as a peer that dies does."""
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.stop_listening()
        self._threads[0].join(WAIT)
        self.resume()
        self.hang_up()
        for thread in self._threads:
            thread.join(WAIT)
        alive = [thread for thread in self._threads if thread.is_alive()]
        assert not alive, f"echo peer threads left running: {alive}"

    def _start(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True, name="echo-peer")
        thread.start()
        return thread

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                number = self.accepted
                self.accepted += 1
                self._conns.append(conn)
            self._threads.append(self._start(self._serve, conn, number))

    def _serve(self, conn: socket.socket, number: int) -> None:
        limit = self.close_after.get(number)
        try:
            conn.sendall(HELLO)
            if not self._reading.is_set():
                conn.recv(1, socket.MSG_PEEK)
                self.stalled.set()
                self._reading.wait()
            with conn.makefile("rb") as stream:
                count = 0
                while limit is None or count < limit:
                    line = stream.readline()
                    if not line.endswith(b"\n"):
                        break
                    count += 1
                    payload = json.loads(line.partition(b" ")[2])
                    with self._lock:
                        self.received.append((number, payload["n"]))
                    if count != limit:
                        self._answer(conn, payload)
        except OSError:
            pass
        finally:
            with self._lock:
                self.ended += 1
                self._owed.pop(conn, None)
            conn.close()

    def _answer(self, conn: socket.socket, payload: dict[str, Any]) -> None:
        n = payload["n"]
        reply = encode_frame("MSG", {"about": n}) if payload.get("chatty") else b""
        if payload.get("err"):
            reply += encode_frame("ERR", {"error": "refused"})
        else:
            reply += encode_frame("OK", {"echo": n})
        with self._lock:
            if self._holding:
                self._owed.setdefault(conn, []).append(reply)
            else:
                conn.sendall(reply)

    def _send_owed(self) -> None:
        owed, self._owed = self._owed, {}
        for conn, replies in owed.items():
            with contextlib.suppress(OSError):
                conn.sendall(b"".join(replies))


class Breaks:
    """The ``unreachable`` callback: records when each break was reported."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self) -> None:
        self.times.append(time.monotonic())

    @property
    def count(self) -> int:
        return len(self.times)


OpenConnection = Callable[..., tuple[PeerConnection, Breaks]]


@pytest.fixture
def server() -> Iterator[EchoServer]:
    echo = EchoServer(free_origin(1) + 1)
    try:
        yield echo
    finally:
        echo.stop()


@pytest.fixture
def refusing() -> Iterator[Address]:
    """A port that refuses: bound, so nobody else can take it, but not listening."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", free_origin(1) + 1))
        yield sock.getsockname()
    finally:
        sock.close()


@pytest.fixture
def open_connection() -> Iterator[OpenConnection]:
    """Opens connections; closes them all afterwards and checks that their threads ended."""
    before = set(threading.enumerate())
    made: list[PeerConnection] = []

    def opener(
        address: Address, kind: Callable[..., PeerConnection] = PeerConnection
    ) -> tuple[PeerConnection, Breaks]:
        breaks = Breaks()
        connection = kind(address, None, breaks)
        made.append(connection)
        return connection, breaks

    def running() -> list[threading.Thread]:
        fresh = set(threading.enumerate()) - before
        return [thread for thread in fresh if thread.name.startswith("connection")]

    try:
        yield opener
    finally:
        for connection in made:
            connection.close()
        assert wait_until(lambda: not running(), WAIT), (
            f"connection threads still running: {running()}"
        )


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event a test parks a thread on; opened at the end so no thread is left parked."""
    event = threading.Event()
    try:
        yield event
    finally:
        event.set()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    executor = ThreadPoolExecutor(4)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def in_flight(server: EchoServer, count: int) -> bool:
    """Wait until the peer has read ``count`` requests: they are in flight, not queued."""
    return wait_until(lambda: len(server.received) >= count, WAIT)


def test_replies_settle_futures_in_the_order_sent(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """Replies carry no request id: only FIFO order ties a reply to its request."""
    connection, breaks = open_connection(server.address)
    server.hold()
    settled: list[int] = []
    futures = []
    for n in range(10):
        future = connection.submit(frame(n))
        future.add_done_callback(lambda _, n=n: settled.append(n))
        futures.append(future)
    assert in_flight(server, 10)
    server.release()
    assert [future.result(WAIT) for future in futures] == [{"echo": n} for n in range(10)]
    assert wait_until(lambda: len(settled) == 10, WAIT)
    assert settled == list(range(10))
    assert breaks.count == 0


def test_concurrent_submits_each_get_their_own_reply(
    server: EchoServer, open_connection: OpenConnection, pool: ThreadPoolExecutor
) -> None:
    """Threads racing to submit must not split a request from its place in the queue."""
    connection, breaks = open_connection(server.address)
    start = threading.Barrier(4)

    def submit_many(thread: int) -> list[tuple[int, Future[Reply]]]:
        start.wait(WAIT)
        return [(n, connection.submit(frame(n))) for n in range(thread * 1000, thread * 1000 + 50)]

    batches = list(pool.map(submit_many, range(4)))
    for batch in batches:
        assert [future.result(WAIT) for _, future in batch] == [{"echo": n} for n, _ in batch]
    arrived = [n for _, n in server.received]
    for batch in batches:
        sent = [n for n, _ in batch]
        assert [n for n in arrived if sent[0] <= n <= sent[-1]] == sent
    assert breaks.count == 0
    assert server.accepted == 1


def test_requests_queued_while_the_writer_is_busy_all_go_out_in_order(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """Frames queued behind a blocked ``sendall`` leave together afterwards. The batch
    itself is not asserted: TCP may split or merge it, so the peer cannot count it."""
    connection, breaks = open_connection(server.address)
    server.stall()
    big = connection.submit(big_frame(0))
    assert server.stalled.wait(WAIT)
    small = [connection.submit(frame(n)) for n in range(1, 21)]
    server.resume()
    assert big.result(WAIT) == {"echo": 0}
    assert [future.result(WAIT) for future in small] == [{"echo": n} for n in range(1, 21)]
    assert [n for _, n in server.received] == list(range(21))
    assert breaks.count == 0


def test_the_deciding_thread_never_waits_on_a_full_socket_and_order_holds(
    server: EchoServer, open_connection: OpenConnection, pool: ThreadPoolExecutor
) -> None:
    """On an idle connection the submitting thread writes itself, without blocking: what
    the socket does not take, the writer finishes, and later requests queue behind it."""
    connection, breaks = open_connection(server.address)
    server.stall()
    first = connection.submit(frame(0))
    assert server.stalled.wait(WAIT)
    assert wait_until(lambda: not connection._busy(), WAIT), "frame 0 went out: idle again"
    big = pool.submit(connection.submit, big_frame(1)).result(WAIT)  # returns, unread
    small = [connection.submit(frame(n)) for n in range(2, 22)]
    server.resume()
    assert first.result(WAIT) == {"echo": 0}
    assert big.result(WAIT) == {"echo": 1}
    assert [future.result(WAIT) for future in small] == [{"echo": n} for n in range(2, 22)]
    assert [n for _, n in server.received] == list(range(22))
    assert breaks.count == 0


def test_err_reply_arrives_as_a_refusal(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """A refusal arrived (not None), takes its request's place in the order, and is no
    taking of the request: a client's message a peer refused is not on its way."""
    connection, breaks = open_connection(server.address)
    futures = [
        connection.submit(frame(1)),
        connection.submit(frame(2, err=True)),
        connection.submit(frame(3)),
    ]
    results = [future.result(WAIT) for future in futures]
    assert results == [{"echo": 1}, {"error": "refused"}, {"echo": 3}]
    assert [taken(r) for r in results] == [True, False, True]
    assert breaks.count == 0


def test_frames_before_a_reply_are_skipped(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """A /MSG before the reply must not be taken for the reply and shift every later one."""
    connection, breaks = open_connection(server.address)
    server.hold()
    futures = [
        connection.submit(frame(1, chatty=True)),
        connection.submit(frame(2)),
        connection.submit(frame(3, chatty=True, err=True)),
        connection.submit(frame(4, chatty=True)),
    ]
    assert in_flight(server, 4)
    server.release()
    results = [future.result(WAIT) for future in futures]
    assert results == [{"echo": 1}, {"echo": 2}, {"error": "refused"}, {"echo": 4}]
    assert breaks.count == 0


def test_hang_up_fails_requests_in_flight_and_reconnects(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """What was in flight is lost (None), the break is reported once, and the connection heals."""
    connection, breaks = open_connection(server.address)
    server.close_after = {0: 3}
    answered = connection.submit(frame(1))
    assert answered.result(WAIT) == {"echo": 1}
    server.hold()
    lost = [connection.submit(frame(2)), connection.submit(frame(3))]
    assert [future.result(WAIT) for future in lost] == [None, None]
    assert wait_until(lambda: breaks.count >= 1, WAIT)
    server.release()
    assert connection.submit(frame(4)).result(WAIT) == {"echo": 4}
    assert server.accepted == 2
    assert server.received[-1] == (1, 4)
    assert breaks.count == 1


def test_a_peer_closing_an_idle_connection_is_no_sign_of_death(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """Nodes close connections that idle too long; the connection reconnects without a report,
    and only a reconnection the port refuses would count against the peer."""
    connection, breaks = open_connection(server.address)
    assert connection.request(frame(1), WAIT) == {"echo": 1}
    server.hang_up()
    assert wait_until(lambda: server.accepted == 2, WAIT), "it reconnects at once"
    assert connection.request(frame(2), WAIT) == {"echo": 2}
    assert server.received[-1] == (1, 2)
    assert breaks.count == 0


def test_refused_port_fails_the_request_and_reports_it(
    refusing: Address, open_connection: OpenConnection
) -> None:
    """A killed peer's port refuses: the quickest sign of death, reported for each attempt."""
    connection, breaks = open_connection(refusing)
    assert connection.submit(frame(1)).result(WAIT) is None
    assert breaks.count == 1
    assert connection.request(frame(2), WAIT) is None
    assert breaks.count == 2


def test_reconnect_attempts_back_off(server: EchoServer, open_connection: OpenConnection) -> None:
    """A dead peer is retried ever more slowly, not in a tight loop. Only ordering and a
    generous count are asserted: attempts come at about 0, 0.05, 0.1, 0.2, 0.4 s."""
    connection, breaks = open_connection(server.address)
    assert connection.submit(frame(1)).result(WAIT) == {"echo": 1}
    server.stop_listening()
    server.hang_up()
    assert wait_until(lambda: breaks.count >= 6, 5.0)
    assert breaks.count < 10
    attempts = sorted(breaks.times)[1:]
    gaps = [later - earlier for earlier, later in pairwise(attempts)]
    assert gaps[-1] > gaps[0]


def test_watchdog_breaks_a_connection_owing_overdue_replies(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """A hung peer keeps the connection open, so only the watchdog notices it."""
    connection, breaks = open_connection(server.address)
    server.hold()
    pending = connection.submit(frame(1))
    assert in_flight(server, 1)
    connection.check(time.monotonic())
    assert not pending.done()
    connection.check(time.monotonic() + Timing.reply_timeout + 1)
    assert pending.result(0) is None
    assert breaks.count == 1
    assert wait_until(lambda: server.accepted == 2, WAIT)
    assert wait_until(lambda: server.ended == 1, WAIT)


def test_watchdog_leaves_an_idle_connection_alone(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """An idle connection owes nothing, however long it has been quiet."""
    connection, breaks = open_connection(server.address)
    assert connection.submit(frame(1)).result(WAIT) == {"echo": 1}
    connection.check(time.monotonic() + Timing.reply_timeout + 1)
    assert connection.submit(frame(2)).result(WAIT) == {"echo": 2}
    assert breaks.count == 0
    assert server.accepted == 1


def test_close_fails_queued_and_in_flight_requests(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """Closing is for good: nothing is left waiting, and it is no sign the peer died."""
    connection, breaks = open_connection(server.address)
    server.stall()
    sending = connection.submit(big_frame(0))
    assert server.stalled.wait(WAIT)
    queued = [connection.submit(frame(n)) for n in range(1, 4)]
    connection.close()
    assert [future.result(0) for future in [sending, *queued]] == [None] * 4
    late = connection.submit(frame(4))
    assert late.done()
    assert late.result(0) is None
    server.resume()
    assert wait_until(lambda: server.ended == 1, WAIT)
    assert server.accepted == 1
    assert breaks.count == 0


def test_request_returns_the_reply(server: EchoServer, open_connection: OpenConnection) -> None:
    connection, _ = open_connection(server.address)
    assert connection.request(frame(7), WAIT) == {"echo": 7}


def test_request_times_out_without_upsetting_the_order(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """A reply that comes after its request gave up must not be handed to the next one."""
    connection, breaks = open_connection(server.address)
    server.hold()
    assert connection.request(frame(1), 0.1) is None
    server.release()
    assert connection.request(frame(2), WAIT) == {"echo": 2}
    assert breaks.count == 0


class LateWriter(PeerConnection):
    """A connection whose writer, once connected, waits for ``resume``: the reader runs first,
    as the scheduler may let it when a peer accepts and at once hangs up."""

    def __init__(
        self, address: Address, key: None, unreachable: Breaks, resume: threading.Event
    ) -> None:
        self.resume = resume
        super().__init__(address, key, unreachable)

    def _connect(self) -> bool:
        connected = super()._connect()
        self.resume.wait(WAIT)
        return connected


def test_a_hang_up_right_after_connecting_strands_no_request(
    server: EchoServer, open_connection: OpenConnection, gate: threading.Event
) -> None:
    """Requests queued when the first connection broke must still settle, at the latest
    when the watchdog runs (it is called here with a time past every deadline)."""
    connection, _ = open_connection(server.address, partial(LateWriter, resume=gate))
    server.close_after = {0: 0}
    first = connection.submit(frame(1))
    assert wait_until(lambda: server.ended == 1, WAIT)
    second = connection.submit(frame(2))
    gate.set()
    overdue = time.monotonic() + Timing.reply_timeout + 1

    def settled() -> bool:
        connection.check(overdue)
        return first.done() and second.done()

    assert wait_until(settled, WAIT)
    assert first.result(0) in (None, {"echo": 1})
    assert second.result(0) in (None, {"echo": 2})


def test_replies_left_from_a_broken_connection_do_not_settle_new_requests(
    server: EchoServer, open_connection: OpenConnection, gate: threading.Event
) -> None:
    """The reader is parked in a done-callback with the second reply already buffered
    while the watchdog breaks the connection and a new request goes out on a new connection."""
    connection, _ = open_connection(server.address)
    server.hold()
    first, second = connection.submit(frame(1)), connection.submit(frame(2))
    assert in_flight(server, 2)
    readers: list[threading.Thread] = []

    def park_reader(_: Future[Reply]) -> None:
        readers.append(threading.current_thread())
        gate.wait(WAIT)

    first.add_done_callback(park_reader)
    server.flush()
    assert wait_until(lambda: bool(readers), WAIT)
    connection.check(time.monotonic() + Timing.reply_timeout + 1)
    assert second.result(0) is None
    third = connection.submit(frame(3))
    assert in_flight(server, 3)
    gate.set()
    readers[0].join(WAIT)
    server.release()
    assert third.result(WAIT) == {"echo": 3}


def test_close_during_a_connection_attempt_reports_nothing(
    server: EchoServer,
    open_connection: OpenConnection,
    gate: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """close() is no sign the peer died, even while the writer is still connecting."""
    connect = socket.create_connection
    writers: list[threading.Thread] = []

    def slow_connect(*args: Any, **kwargs: Any) -> socket.socket:
        writers.append(threading.current_thread())
        gate.wait(WAIT)
        return connect(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", slow_connect)
    connection, breaks = open_connection(server.address)
    pending = connection.submit(frame(1))
    assert wait_until(lambda: bool(writers), WAIT)
    connection.close()
    assert pending.result(0) is None
    gate.set()
    writers[0].join(WAIT)
    assert not writers[0].is_alive()
    assert breaks.count == 0


# Batches: cumulative acks and the settled callback


class Settlements:
    """The ``settled`` callback: records each batch as (n, reply) pairs, and whether any of
    the futures given in ``watch`` were already set when it came."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, Reply]]] = []
        self.watch: list[Future[Reply]] = []
        self.futures_set_first = False

    def __call__(self, outcomes: list[tuple[Send, Reply]]) -> None:
        self.futures_set_first |= any(future.done() for future in self.watch)
        self.batches.append([(decode_frame(send.frame).payload["n"], r) for send, r in outcomes])


def settling(settlements: Settlements) -> Callable[..., PeerConnection]:
    return partial(PeerConnection, settled=settlements)


def ok(**payload: Any) -> bytes:
    return encode_frame("OK", payload)


def test_one_counted_ok_settles_that_many_requests_in_one_batch(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    settlements = Settlements()
    connection, breaks = open_connection(server.address, settling(settlements))
    server.hold()
    futures = [connection.submit(frame(n)) for n in range(4)]
    settlements.watch = futures
    assert in_flight(server, 4)
    server.answer_instead(ok(acked=4))
    assert [future.result(WAIT) for future in futures] == [{}] * 4
    assert settlements.batches == [[(n, {}) for n in range(4)]], "one call for the batch"
    assert not settlements.futures_set_first, "the batch is reported before its futures"
    server.release()
    assert connection.request(frame(5), WAIT) == {"echo": 5}, "the order still holds"
    assert breaks.count == 0
    assert server.accepted == 1


def test_counted_and_single_replies_settle_in_order(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """Each reply frame settles the oldest requests in flight: a count, a refusal, a payload."""
    settlements = Settlements()
    connection, breaks = open_connection(server.address, settling(settlements))
    server.hold()
    futures = [connection.submit(frame(n)) for n in range(7)]
    assert in_flight(server, 7)
    chatter = encode_frame("MSG", {"about": 0})
    replies = [ok(acked=2), encode_frame("ERR", {"error": "no"}), chatter, ok(echo="x")]
    server.answer_instead(b"".join([*replies, ok(acked=3)]))
    no = {"error": "no"}
    assert [future.result(WAIT) for future in futures] == [{}, {}, no, {"echo": "x"}, {}, {}, {}]
    assert settlements.batches == [
        [(0, {}), (1, {})],
        [(2, no)],
        [(3, {"echo": "x"})],
        [(4, {}), (5, {}), (6, {})],
    ]
    assert breaks.count == 0


@pytest.mark.parametrize("count", [0, 1, -3, True, 2.0, "2"])
def test_an_ok_that_counts_nothing_valid_settles_one_request(
    server: EchoServer, open_connection: OpenConnection, count: Any
) -> None:
    """Only a whole number over one counts; anything else answers one request, as a payload."""
    connection, breaks = open_connection(server.address)
    server.hold()
    first, second = connection.submit(frame(1)), connection.submit(frame(2))
    assert in_flight(server, 2)
    server.answer_instead(ok(acked=count) + ok(echo=2))
    assert first.result(WAIT) == {"acked": count}
    assert second.result(WAIT) == {"echo": 2}
    assert breaks.count == 0


def test_an_ack_for_more_than_is_in_flight_breaks_the_connection(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    """A peer that acks what was never sent has lost the order: nothing it says can be tied
    to a request any more, so what was in flight fails, and the connection starts afresh."""
    settlements = Settlements()
    connection, breaks = open_connection(server.address, settling(settlements))
    server.hold()
    asked = connection.submit(frame(0))
    connection.submit_all([frame(1)])
    assert in_flight(server, 2)
    server.answer_instead(ok(acked=3))
    assert asked.result(WAIT) is None
    assert wait_until(lambda: breaks.count == 1, WAIT)
    assert settlements.batches == [[(0, None), (1, None)]]
    server.release()
    assert connection.request(frame(2), WAIT) == {"echo": 2}
    assert server.accepted == 2
    assert breaks.count == 1


def test_submit_all_gives_no_futures_and_reports_through_settled(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    settlements = Settlements()
    connection, breaks = open_connection(server.address, settling(settlements))
    server.hold()
    assert connection.submit_all([frame(n) for n in range(3)]) is None
    assert in_flight(server, 3)
    server.flush()  # a reply each
    assert wait_until(lambda: len(settlements.batches) == 3, WAIT)
    connection.submit_all([frame(n) for n in range(3, 6)])
    assert in_flight(server, 6)
    server.answer_instead(ok(acked=3))
    assert wait_until(lambda: len(settlements.batches) == 4, WAIT)
    assert settlements.batches == [
        [(0, {"echo": 0})],
        [(1, {"echo": 1})],
        [(2, {"echo": 2})],
        [(3, {}), (4, {}), (5, {})],
    ]
    assert [n for _, n in server.received] == list(range(6))
    assert breaks.count == 0


def test_submit_all_after_close_settles_at_once_as_not_arrived(
    server: EchoServer, open_connection: OpenConnection
) -> None:
    settlements = Settlements()
    connection, breaks = open_connection(server.address, settling(settlements))
    connection.close()
    connection.submit_all([frame(1), frame(2)])
    assert settlements.batches == [[(1, None), (2, None)]]
    assert breaks.count == 0


def test_requests_queued_on_a_refused_port_are_reported_in_one_batch(
    refusing: Address, open_connection: OpenConnection
) -> None:
    """Whatever was queued when connecting failed fails together: one call, every send."""
    settlements = Settlements()
    connection, breaks = open_connection(refusing, settling(settlements))
    connection.submit_all([frame(n) for n in range(3)])
    assert wait_until(lambda: bool(settlements.batches), WAIT)
    assert settlements.batches == [[(0, None), (1, None), (2, None)]]
    assert breaks.count >= 1


@contextlib.contextmanager
def tarpit() -> Iterator[Address]:
    """A server that answers every connection with a hello trickling in a byte at a time,
    never ending it: each read waits less than a timeout, and the whole never comes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()
    held: list[socket.socket] = []

    def trickle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(b"/HELLO ")
            while not stop.wait(0.05):
                conn.sendall(b" ")

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                held.append(conn)
                threading.Thread(target=trickle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()
    finally:
        stop.set()
        listener.close()
        for conn in held:
            conn.close()


def test_a_client_gives_up_on_a_node_that_trickles_within_its_timeout() -> None:
    """Each recv waited less than the timeout, so a trickle held the caller for ever (a
    node's outbox threads, eight of them, all held by one such peer)."""
    with tarpit() as address:
        client = GossipClient(address, None, timeout=0.5)
        began = time.monotonic()
        with pytest.raises(NodeUnreachable, match="timed out"):
            client.status()
        assert time.monotonic() - began < 3


def test_a_peer_whose_hello_trickles_is_unreachable() -> None:
    """A peer connection's writer hung in the handshake: the peer was never dropped, and
    every copy for it queued."""
    with tarpit() as address:
        lost = threading.Event()
        connection = PeerConnection(address, None, lost.set, reply_timeout=0.5)
        try:
            connection.submit_all([Send(2, address, encode_frame("PING"), "PING")])
            assert lost.wait(5), "the connection never gave up on the handshake"
        finally:
            connection.close()
