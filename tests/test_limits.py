"""A node's defences, on a real socket: authentication, the connection cap, and timeouts.

The server runs in this process (no node processes, no housekeeping) with its limits
cut to fractions of a second, so a silent, trickling or non-reading client is dealt
with quickly; each test checks the node keeps serving everyone else meanwhile.
"""

from __future__ import annotations

import itertools
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip import network, render
from gossip.auth import Channel, new_secret
from gossip.client import GossipClient, NodeBusy
from gossip.errors import GossipError
from gossip.network import wait_until
from gossip.node import Node
from gossip.protocol import MAX_MESSAGE_BYTES, Frame, decode_frame, encode_frame, read_line
from gossip.server import MAX_CONNECTIONS, GossipServer
from gossip.state import NetworkState, NodeEntry
from gossip.supervisor import LOG_BACKUPS, LOG_BYTES, node_log
from tests.networks import free_origin

KEY = new_secret()
LIMIT = 0.3
"""Seconds the test server allows for each of its waits."""
WAIT = 10.0
MESSAGES = 2000


def start_server(key: bytes | None) -> GossipServer:
    port = free_origin(1) + 1
    node = Node(1, 3, {}, address=("127.0.0.1", port))
    server = GossipServer(node, ("127.0.0.1", port), key=key)
    server.idle_timeout = server.frame_timeout = server.write_timeout = LIMIT
    threading.Thread(target=server.serve_forever, daemon=True, name="test-node").start()
    return server


@pytest.fixture
def server() -> Iterator[GossipServer]:
    running = start_server(KEY)
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()


class Raw:
    """A hand-driven connection: reads the hello, then sends whatever the test says."""

    def __init__(self, server: GossipServer, key: bytes | None = KEY) -> None:
        self.sock = socket.create_connection(server.server_address[:2], timeout=WAIT)
        self.stream = self.sock.makefile("rb")
        self.channel = Channel.connect(key, self.stream)

    def send(self, command: str, payload: dict[str, object] | None = None) -> bytes:
        """Send a sealed frame; the bytes that went out (to replay them)."""
        sealed = self.channel.send(encode_frame(command, payload))
        self.sock.sendall(sealed)
        return sealed

    def reply(self) -> Frame | None:
        """The next reply, or None if the node closed the connection."""
        line = read_line(self.stream, 1 << 20)
        return None if line is None else self.channel.receive(line)

    def replies(self, count: int) -> list[str]:
        return [frame.command if (frame := self.reply()) else "EOF" for _ in range(count)]

    def ended(self) -> bool:
        """Whether the node has closed the connection (reading up to its end)."""
        try:
            return self.sock.recv(1 << 20) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.stream.close()
        self.sock.close()


def ping(server: GossipServer, key: bytes | None = KEY) -> dict[str, object]:
    return GossipClient(server.server_address[:2], key, timeout=WAIT).request("PING")[-1].payload


def test_a_sealed_request_is_answered_and_an_unsealed_one_refused(server: GossipServer) -> None:
    assert ping(server) == {"node": 1}
    raw = Raw(server)
    raw.sock.sendall(b"/PING {}\n")
    error = decode_frame(read_line(raw.stream) or b"")
    assert error.command == "ERR" and "not authenticated" in error.payload["error"]
    assert raw.ended(), "after a frame it cannot trust, the node hangs up"
    raw.close()


def test_a_frame_replayed_on_another_connection_or_twice_is_refused(
    server: GossipServer,
) -> None:
    first = Raw(server)
    sealed = first.send("PING")
    assert first.replies(1) == ["OK"]
    first.sock.sendall(sealed)
    assert first.replies(1) == ["ERR"], "the same frame twice on one connection"
    first.close()
    second = Raw(server)
    second.sock.sendall(sealed)
    assert second.replies(1) == ["ERR"], "a frame from another connection"
    second.close()
    assert ping(server) == {"node": 1}


def test_a_frame_sealed_with_another_secret_is_refused(server: GossipServer) -> None:
    with pytest.raises(GossipError, match="not authenticated"):
        ping(server, new_secret())
    with pytest.raises(GossipError, match="requires authentication"):
        ping(server, None)


def test_a_well_sealed_bad_frame_is_refused_and_the_connection_goes_on(
    server: GossipServer,
) -> None:
    raw = Raw(server)
    raw.send("NEW", {"text": 5, "relays": "many"})
    raw.send("FROB")
    raw.send("PING")
    assert raw.replies(3) == ["ERR", "ERR", "OK"]
    raw.close()


def test_an_insecure_node_talks_bare_and_refuses_a_client_with_a_secret() -> None:
    insecure = start_server(None)
    try:
        assert ping(insecure, None) == {"node": 1}
        with pytest.raises(GossipError, match="without authentication"):
            ping(insecure, KEY)
        with socket.create_connection(insecure.server_address[:2], timeout=WAIT) as sock:
            stream = sock.makefile("rb")
            assert read_line(stream) == b'/HELLO {"auth":false}\n'
            sock.sendall(b"/PING\n")
            assert read_line(stream) == b'/OK {"node":1}\n', "readable with nc"
            stream.close()
    finally:
        insecure.shutdown()
        insecure.server_close()


def test_silent_connections_are_closed(server: GossipServer) -> None:
    silent = [Raw(server) for _ in range(3)]
    assert all(raw.ended() for raw in silent), "idle connections are closed"
    for raw in silent:
        raw.close()
    assert ping(server) == {"node": 1}


def test_the_connection_cap_turns_away_the_next_one_and_serves_again_after(
    server: GossipServer,
) -> None:
    """Every slot held by a connection that has spoken (a client or a peer at work)."""
    server.idle_timeout = WAIT * 10
    held = [Raw(server) for _ in range(MAX_CONNECTIONS)]
    try:
        for raw in held:
            raw.send("PING")
            assert raw.replies(1) == ["OK"]
        with pytest.raises(NodeBusy, match=f"busy: {MAX_CONNECTIONS} connections are open"):
            ping(server)
        held.pop().close()

        def served() -> bool:
            try:
                return ping(server) == {"node": 1}
            except GossipError:
                return False

        assert wait_until(served, WAIT)
    finally:
        for raw in held:
            raw.close()


@pytest.mark.parametrize("spoken", [0, 1, MAX_CONNECTIONS - 8])
def test_silent_connections_make_room_oldest_first(server: GossipServer, spoken: int) -> None:
    """Connections opened and left silent (no secret needed) fill every slot: a newcomer
    takes the slot of the oldest silent one, while those that spoke keep theirs."""
    server.idle_timeout = WAIT * 10
    talkers = [Raw(server) for _ in range(spoken)]
    for raw in talkers:
        raw.send("PING")
        assert raw.replies(1) == ["OK"]
    silent = [Raw(server) for _ in range(MAX_CONNECTIONS - spoken)]
    try:
        assert ping(server) == {"node": 1}, "a client was shut out by silent connections"
        assert silent[0].ended(), "the oldest silent connection kept its slot"
        assert not any(select.select([raw.sock], [], [], 0)[0] for raw in silent[1:])
        for raw in talkers:
            raw.send("PING")
            assert raw.replies(1) == ["OK"], "a connection that spoke lost its slot"
    finally:
        for raw in talkers + silent:
            raw.close()


def test_status_shows_a_node_with_every_slot_taken_as_busy(server: GossipServer) -> None:
    """One node turning connections away does not make ``status`` fail for the network."""
    server.idle_timeout = WAIT * 10
    host, port = server.server_address[:2]
    entries = {
        1: NodeEntry(number=1, host=host, port=port, peers=[2]),
        2: NodeEntry(number=2, host=host, port=free_origin(1) + 1, peers=[1]),  # nothing there
    }
    net = NetworkState(port - 1, 2, "circular", entries, key=KEY)
    held = [Raw(server) for _ in range(MAX_CONNECTIONS)]
    try:
        for raw in held:
            raw.send("PING")
            assert raw.replies(1) == ["OK"]
        rows = network.status(net)
        assert [row.state for row in rows] == ["busy", "down"]
        table = render.status(net, rows, network.parts(network.live_links(rows)), time.time())
        assert re.search(r"^1\s+busy\s", table, re.MULTILINE), table
    finally:
        for raw in held:
            raw.close()


def test_a_trickled_frame_is_cut_off_while_others_are_served(server: GossipServer) -> None:
    raw = Raw(server)
    deadline = time.monotonic() + WAIT
    for byte in itertools.cycle(b"/PING {"):
        answered, _, _ = select.select([raw.sock], [], [], LIMIT / 10)
        if answered:
            break
        raw.sock.sendall(bytes([byte]))
        assert ping(server) == {"node": 1}, "the trickle holds up nobody else"
        assert time.monotonic() < deadline, "the node never cut the trickle off"
    refusal = raw.reply()
    assert refusal is not None and refusal.command == "ERR"
    assert "took over" in refusal.payload["error"]
    assert raw.reply() is None
    raw.close()


def test_a_client_that_stops_reading_is_dropped(
    server: GossipServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A /GET whose replies (16 MB) outgrow both sides' socket buffers, from a client that
    does not read them until the node has given up."""
    for i in range(MESSAGES):
        server.node.submit(f"{i:05d}" + "x" * (MAX_MESSAGE_BYTES - 5), 1)
    raw = Raw(server)
    caplog.set_level(logging.WARNING, logger="gossip.node")
    raw.send("GET", {"which": "all", "peek": True})
    assert wait_until(lambda: "stopped reading" in caplog.text, WAIT)
    assert ping(server) == {"node": 1}
    received = 0
    while chunk := _recv_or_reset(raw.sock):
        received += len(chunk)
    assert received < MESSAGES * MAX_MESSAGE_BYTES, "the node gave up part-way"
    raw.close()


def _recv_or_reset(sock: socket.socket) -> bytes:
    try:
        return sock.recv(1 << 20)
    except ConnectionResetError:
        return b""


def test_a_node_log_rotates_so_a_flood_of_refusals_cannot_fill_the_disk(tmp_path: Path) -> None:
    handler = node_log(tmp_path, 7)
    flood = logging.getLogger("test.flood")
    flood.propagate = False
    flood.addHandler(handler)
    line = "node 7: refused a frame from 127.0.0.1:40000: frame is not authenticated " * 2
    try:
        for _ in range(4 * LOG_BYTES // len(line)):
            flood.warning(line)
    finally:
        flood.removeHandler(handler)
        handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["node-7.log", "node-7.log.1", "node-7.log.2"][: LOG_BACKUPS + 1]
    assert all((tmp_path / name).stat().st_size <= LOG_BYTES for name in files)
