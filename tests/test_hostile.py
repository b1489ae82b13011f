"""Thousands of malformed, forged and replayed frames thrown at a running network while
real messages flow: no node dies, and every real message still reaches every node."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable
from typing import ClassVar

from gossip import state
from gossip.auth import Channel, Seal, new_secret
from gossip.client import GossipClient
from gossip.network import wait_until
from gossip.protocol import encode_frame
from gossip.sockets import LINGER_ABORT
from tests.networks import Net, Networks

HOSTILE_FRAMES = 3000
REAL_MESSAGES = 60
WAIT = 10.0

BAD_PAYLOADS: list[tuple[str, dict[str, object]]] = [
    ("NEW", {"text": 5, "relays": 1}),
    ("NEW", {"text": "", "relays": 1}),
    ("NEW", {"text": "x" * 9000, "relays": 1}),
    ("NEW", {"text": "hi", "relays": 0}),
    ("NEW", {"text": "hi", "relays": True}),
    ("RELAY", {"id": "../x", "text": "t", "path": [1], "relays": 1, "sent": 0}),
    ("RELAY", {"id": "a", "text": "t", "path": [0], "relays": 1, "sent": 0}),
    ("RELAY", {"id": "a", "text": "t", "path": [1, 1], "relays": 1, "sent": 0}),
    ("RELAY", {"id": "a", "text": "t", "path": ["x"], "relays": 1, "sent": "now"}),
    ("RELAYS", {}),
    ("RELAYS", {"copies": []}),
    ("RELAYS", {"copies": ["x"]}),
    ("RELAYS", {"copies": {"id": "a"}}),
    ("RELAYS", {"copies": [{"id": "a", "text": "t", "path": [0], "relays": 1, "sent": 0}]}),
    (
        "RELAYS",
        {
            "copies": [
                {"id": "a", "text": "t", "path": [1], "relays": 1, "sent": 0},
                {"id": "a", "text": "u", "path": [2], "relays": 1, "sent": 0},
            ]
        },
    ),
    ("GET", {"which": "some"}),
    ("GET", {"peek": "yes"}),
    ("LEAVE", {"node": "one"}),
    ("LEAVE", {"node": -1}),
    ("CONNECT", {"node": 1, "host": 5, "port": 70000}),
    ("INTRODUCE", {"node": 0, "host": "x", "port": 1}),
    ("WALK", {"node": 1, "host": "h", "port": 1, "hops": 0, "visited": [], "any": True}),
    ("WALK", {"node": 1, "host": "h", "port": 1, "hops": 5, "visited": "all", "any": 1}),
    ("JOIN", {"node": 1, "host": "h", "port": 1, "prefer": [-1], "slots": 1}),
    ("SWAP", {"old": "x"}),
    ("SYNC", {"total": 5}),
    ("IDS", {"buckets": [1.5]}),
    ("IDS", {"buckets": [], "after": 7}),
    ("PULL", {"node": 1, "ids": ["bad id!"]}),
    ("PING", {"node": "x"}),
    ("FROB", {}),
    ("HELLO", {}),
    ("OK", {}),
    ("COPY", {}),
]
"""Well-sealed frames of the wrong shape: each must be answered with /ERR."""

BAD_LINES = [
    b"/NEW \xff\xfe\n",
    b"/NEW {not json\n",
    b"/new {}\n",
    b"\n",
    b"NEW {}\n",
    b'/NEW ["a list"]\n',
    b"/NEW " + b"[" * 60000 + b"\n",
    b'/NEW {"text": NaN}\n',
    b'/NEW {"text": "\\ud800", "relays": 1}\n',
]
"""Well-sealed lines that are no frame at all: also answered with /ERR."""


class Hostile:
    """Connects to random nodes and throws bad frames at them; counts what it threw."""

    def __init__(self, net: Net, seed: int) -> None:
        network = net.state
        self.addresses = [e.address for e in network.nodes.values()]
        self.key = network.key
        self.rng = random.Random(seed)
        self.thrown = 0
        self.connections = 0
        self.answers: list[str] = []
        self.captured: list[bytes] = []
        """Genuine sealed frames seen on earlier connections, to replay on later ones."""
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while self.thrown < HOSTILE_FRAMES:
                self.connection()
        except BaseException as exc:  # reported by the test, which runs this in a thread
            self.failure = exc

    def connection(self) -> None:
        """A few sealed bad frames (each must be refused), then one unforgivable ending."""
        address = self.rng.choice(self.addresses)
        with socket.create_connection(address, timeout=WAIT) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ABORT)
            stream = sock.makefile("rb")
            channel = Channel.connect(self.key, stream)
            batch = self.rng.randint(1, 12)
            for _ in range(batch):
                if self.rng.random() < 0.6:
                    command, payload = self.rng.choice(BAD_PAYLOADS)
                    line = encode_frame(command, payload)
                else:
                    line = self.rng.choice(BAD_LINES)
                sealed = channel.send(line)
                sock.sendall(sealed)
            self.captured.append(sealed)
            for _ in range(batch):
                reply = channel.read(stream)
                self.answers.append(reply.command if reply else "EOF")
            self.thrown += batch + 1
            self.connections += 1
            ending = Hostile.huge if self.connections % 50 == 1 else self.rng.choice(self.endings)
            ending(self, sock, channel)
            stream.close()

    def garbage(self, sock: socket.socket, channel: Channel) -> None:
        sock.sendall(self.rng.randbytes(self.rng.randint(1, 300)) + b"\n")

    def forged(self, sock: socket.socket, channel: Channel) -> None:
        """The right nonce and count, the wrong secret."""
        mine = channel.outgoing
        forger = Seal(new_secret(), mine.nonce, mine.direction, mine.count)
        sock.sendall(forger.seal(encode_frame("REMOVE")))

    def replayed(self, sock: socket.socket, channel: Channel) -> None:
        sock.sendall(self.rng.choice(self.captured))

    def unsealed(self, sock: socket.socket, channel: Channel) -> None:
        sock.sendall(encode_frame("REMOVE"))

    def truncated(self, sock: socket.socket, channel: Channel) -> None:
        sock.sendall(channel.send(encode_frame("PING"))[:-10])

    def huge(self, sock: socket.socket, channel: Channel) -> None:
        """A 10 MB line: the node stops reading at its limit and hangs up."""
        with contextlib.suppress(OSError):
            sock.sendall(b"/NEW " + b"x" * 10_000_000)

    endings: ClassVar[list[Callable[[Hostile, socket.socket, Channel], None]]] = [
        garbage,
        forged,
        replayed,
        unsealed,
        truncated,
    ]


def test_no_malformed_frame_harms_a_node_or_stops_a_message(networks: Networks) -> None:
    net = networks.start("random", "-n", "8", "--seed", "5")
    network = net.state
    hostile = Hostile(net, seed=11)
    thrower = threading.Thread(target=hostile.run, daemon=True, name="hostile")
    thrower.start()
    rng = random.Random(3)
    sent = []
    try:
        while thrower.is_alive() or len(sent) < REAL_MESSAGES:
            origin = network.nodes[rng.randint(1, 8)]
            client = GossipClient(origin.address, network.key, timeout=WAIT)
            sent.append(client.post(f"real {len(sent)}").id)
            thrower.join(0.02)  # a steady trickle of real messages for as long as it throws
    finally:
        thrower.join(60)
    assert hostile.failure is None, f"the hostile client itself failed: {hostile.failure!r}"
    assert hostile.thrown >= HOSTILE_FRAMES
    assert set(hostile.answers) == {"ERR"}, "every well-sealed bad frame is answered /ERR"
    assert all(state.pid_alive(e.pid) for e in network.nodes.values()), "a node died"

    missing: dict[int, int] = {}

    def everywhere() -> bool:
        for number in network.nodes:
            held = {v.id for v in net.peek(number)}
            missing[number] = len(set(sent) - held)
        return not any(missing.values())

    assert wait_until(everywhere, 30, interval=0.2), f"real messages missing: {missing}"
    assert len(sent) >= REAL_MESSAGES
    logs = "".join(p.read_text() for p in net.directory.glob("node-*.log"))
    for reason in ("not authenticated", "not valid UTF-8", "unknown command", "exceeds the"):
        assert reason in logs, f"no node logged a refusal for {reason!r}"
    status = net.cli("status", "--json")
    assert status.code == 0, status.err
