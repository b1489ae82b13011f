"""How fast the design card's shape can go with no gossip logic in it: a calibration.

Each of N processes runs a ``socketserver.ThreadingTCPServer`` whose handler reads
lines, and reaches its peers (a random 3-regular graph) as a client over one long-lived
connection each, as gossip's nodes do. A line is ``<id>\\n``; a process that sees an id
for the first time stamps it and writes it to every peer, straight from the handler's
thread. No JSON, no seal, no path, no acknowledgement, no store: what is left is the
shape itself (a thread per connection, the interpreter lock, a system call per write).

With ``--essentials`` each copy also carries what the protocol cannot do without, and
nothing else: a JSON frame (id, text, walk, relays, sent time) sealed with HMAC-SHA256
and a count per connection, checked and decoded (orjson) by the receiver, which records
the walk and its arrival, and passes it on to every peer not on the walk that it has not
sent the message to yet; the origin puts a client's message in SQLite and fsyncs it
before the first copy goes out. That bounds what a leaner node could reach in this shape.

    uv run python benchmarks/shape.py [--nodes 16] [--messages 2000] [--port-origin 31000]
                                      [--essentials]

It prints messages fully delivered per second (one client writing as fast as it can;
not with ``--essentials``, whose origin fsyncs each message) and the latency from the
origin taking a message until every process holds it, p50 and p99 of 200.
"""

from __future__ import annotations

import quiet  # noqa: F401  (first: a Ctrl-C while the rest imports)

# isort: split
import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import queue
import signal
import socket
import socketserver
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from harness import Failed, Parser, at_least, guarded, uninterrupted

KEY = os.urandom(32)
"""The secret every process seals with (forked: they share it)."""


def seal_of(count: int, body: bytes) -> bytes:
    """HMAC-SHA256 of a connection's ``count``-th frame, in hex, as gossip's seals are."""
    return hmac.new(KEY, count.to_bytes(8, "big") + body, hashlib.sha256).hexdigest().encode()


class Held:
    """What a process holds of one message: when it first came, every walk, who got it."""

    __slots__ = ("first", "sent_to", "walks")

    def __init__(self, first: float) -> None:
        self.first = first
        self.walks: list[tuple[tuple[int, ...], float]] = []
        self.sent_to: set[int] = set()


class Relay(socketserver.StreamRequestHandler):
    """One connection's lines: new ids are stamped and written to every peer."""

    server: ShapeServer

    def handle(self) -> None:
        server = self.server
        for line in self.rfile:
            if line.startswith(b"?"):
                self.wfile.write(server.answer(line))
                continue
            key = line.strip().decode()
            with server.lock:
                if key in server.seen:
                    continue
                server.seen[key] = Held(time.time())
            for peer in server.peers:
                peer.send(line)


class EssentialRelay(socketserver.StreamRequestHandler):
    """One connection's lines with the protocol's essentials: ``+<id>`` is a client's new
    message, anything else a sealed copy from a peer."""

    server: ShapeServer

    def handle(self) -> None:
        server = self.server
        count = 0
        for line in self.rfile:
            if line.startswith(b"?"):
                self.wfile.write(server.answer(line))
            elif line.startswith(b"+"):
                server.submit(line[1:].strip().decode())
            else:
                body, _, seal = line.rstrip(b"\n").rpartition(b" #")
                if not hmac.compare_digest(seal, seal_of(count, body)):
                    return
                count += 1
                copy = orjson.loads(body)
                server.take(copy["id"], copy["text"], tuple(copy["path"]), copy["sent"])


class Peer:
    """A long-lived connection to a peer; writes from many threads, one at a time."""

    def __init__(self, number: int, port: int) -> None:
        self.number = number
        self.port = port
        self.sock: socket.socket | None = None
        self.count = 0
        self.lock = threading.Lock()

    def send(self, line: bytes) -> None:
        with self.lock:
            self._connected().sendall(line)

    def send_sealed(self, body: bytes) -> None:
        with self.lock:
            sock = self._connected()
            sock.sendall(body + b" #" + seal_of(self.count, body) + b"\n")
            self.count += 1

    def _connected(self) -> socket.socket:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock


class ShapeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, number: int, port: int, peers: dict[int, int], store: Path | None) -> None:
        super().__init__(("127.0.0.1", port), Relay if store is None else EssentialRelay)
        self.number = number
        self.seen: dict[str, Held] = {}
        self.lock = threading.Lock()
        self.peers = [Peer(n, p) for n, p in peers.items()]
        self.store = store
        self.db: sqlite3.Connection | None = None
        if store is not None:
            self.db = sqlite3.connect(store, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("CREATE TABLE messages (id TEXT PRIMARY KEY, text TEXT NOT NULL)")

    def answer(self, line: bytes) -> bytes:
        """How many messages are held, and when one first came (0 if it did not)."""
        with self.lock:
            held = self.seen.get(line[1:].strip().decode())
            return f"{len(self.seen)} {held.first if held else 0.0}\n".encode()

    def submit(self, key: str) -> None:
        """A client's message: durable here before the first copy goes out."""
        assert self.db is not None and self.store is not None
        now = time.time()
        self.db.execute("INSERT INTO messages VALUES (?, ?)", (key, "latency"))
        self.db.commit()
        wal = os.open(f"{self.store}-wal", os.O_RDONLY)
        try:
            os.fsync(wal)
        finally:
            os.close(wal)
        with self.lock:
            held = self.seen[key] = Held(now)
            self._record(key, "latency", held, (), now, now)

    def take(self, key: str, text: str, path: tuple[int, ...], sent: float) -> None:
        """A copy from a peer: its walk recorded, passed on where no copy went yet."""
        if self.number in path:
            return
        now = time.time()
        with self.lock:
            held = self.seen.get(key)
            if held is None:
                held = self.seen[key] = Held(now)
            self._record(key, text, held, path, sent, now)

    def _record(
        self, key: str, text: str, held: Held, path: tuple[int, ...], sent: float, now: float
    ) -> None:
        walk = (*path, self.number)
        held.walks.append((walk, now))
        targets = [p for p in self.peers if p.number not in walk and p.number not in held.sent_to]
        if not targets:
            return
        held.sent_to.update(p.number for p in targets)
        body = json.dumps({"id": key, "text": text, "path": walk, "relays": 1, "sent": sent})
        for peer in targets:
            peer.send_sealed(body.encode())


def serve(number: int, port: int, peers: dict[int, int], ready: Any, store: Path | None) -> None:
    """One process: its port once it serves, or why it could not (a port in use). Ended
    by its parent (SIGTERM), which a Ctrl-C reaches too: it leaves both to the parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        server = ShapeServer(number, port, peers, store)
    except OSError as exc:
        ready.put(f"port {port}: {exc.strerror or exc}")
        return
    ready.put(port)
    server.serve_forever()


def ask(port: int, key: str) -> tuple[int, float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"?{key}\n".encode())
        held, first = sock.makefile("rb").readline().split()
    return int(held), float(first)


def spread_latency(ports: list[int], key: str) -> float:
    """Milliseconds from the origin taking ``key`` (the first to hold it) until the last
    process got it, from the processes' own stamps, as ``benchmarks/run.py`` measures."""
    while True:  # look seldom, not to slow what is measured
        time.sleep(0.005)
        firsts = [first for _, first in (ask(port, key) for port in ports)]
        if all(firsts):
            return (max(firsts) - min(firsts)) * 1000


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=at_least(4), default=16)
    parser.add_argument("--messages", type=at_least(1), default=2000)
    parser.add_argument("--port-origin", type=at_least(1), default=31000)
    parser.add_argument("--essentials", action="store_true")
    options = parser.parse_args()
    if options.nodes % 2:
        parser.refuse(f"--nodes {options.nodes}: a 3-regular graph needs an even number of nodes")
    if options.port_origin + options.nodes + 1 > 65535:
        parser.refuse(
            f"--port-origin {options.port_origin}: ports up to "
            f"{options.port_origin + options.nodes + 1} do not exist: choose a lower one"
        )
    run(options)


def run(options: argparse.Namespace) -> None:
    """Start the processes, measure, and end them, whatever happens."""
    import networkx as nx

    graph = nx.random_regular_graph(3, options.nodes, seed=1)
    ports = {n: options.port_origin + 1 + n for n in graph.nodes}
    context = multiprocessing.get_context("fork")
    ready: Any = context.Queue()
    with tempfile.TemporaryDirectory(prefix="gossip-shape-") as stores:
        processes = [
            context.Process(
                target=serve,
                args=(
                    n,
                    ports[n],
                    {p: ports[p] for p in graph[n]},
                    ready,
                    Path(stores, f"{n}.db") if options.essentials else None,
                ),
                daemon=True,
            )
            for n in graph.nodes
        ]
        for process in processes:
            process.start()
        try:
            for _ in processes:
                try:
                    started = ready.get(timeout=10)
                except queue.Empty:
                    raise Failed("a process did not start within 10 s") from None
                if isinstance(started, str):
                    raise Failed(f"{started}: choose another --port-origin")
            measure(options, list(ports.values()))
        finally:
            with uninterrupted():
                for process in processes:
                    process.terminate()
                    process.join()


def measure(options: argparse.Namespace, ports: list[int]) -> None:
    """Print the latency of 200 messages, one at a time, then the flood's rate."""
    latencies = []
    with socket.create_connection(("127.0.0.1", ports[0])) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(200):
            key = f"latency-{i}"
            client.sendall(f"{'+' if options.essentials else ''}{key}\n".encode())
            latencies.append(spread_latency(ports, key))
        latencies.sort()
        what = "with the protocol's essentials" if options.essentials else "bare"
        print(f"the shape, {what}, {options.nodes} processes, random 3-regular graph:")
        if not options.essentials:
            held_before = min(ask(port, "")[0] for port in ports)
            began = time.perf_counter()
            client.sendall(b"".join(f"flood-{i}\n".encode() for i in range(options.messages)))
            while min(ask(port, "")[0] for port in ports) < held_before + options.messages:
                time.sleep(0.01)
            rate = options.messages / (time.perf_counter() - began)
            print(f"  delivered to all per second: {rate:.0f} /s")
    print(
        f"  origin took it -> every process holds it: p50 {statistics.median(latencies):.2f} ms,"
        f" p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} ms"
    )


if __name__ == "__main__":
    guarded(main)
