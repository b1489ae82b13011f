"""How fast the design card's shape can go with no gossip logic in it: a calibration.

Each of N processes runs a ``socketserver.ThreadingTCPServer`` whose handler reads
lines, and reaches its peers (a random 3-regular graph) as a client over one long-lived
connection each, as gossip's nodes do. A line is ``<id>\\n``; a process that sees an id
for the first time stamps it and writes it to every peer, straight from the handler's
thread. No JSON, no seal, no path, no acknowledgement, no store: what is left is the
shape itself (a thread per connection, the interpreter lock, a system call per write).

    uv run python benchmarks/shape.py [--nodes 16] [--messages 2000] [--port-origin 31000]

It prints messages fully delivered per second (one client writing as fast as it can) and
the latency from submit until every process holds a message, p50 and p99 of 200.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import socketserver
import statistics
import threading
import time
from typing import Any


class Relay(socketserver.StreamRequestHandler):
    """One connection's lines: new ids are stamped and written to every peer."""

    server: ShapeServer

    def handle(self) -> None:
        server = self.server
        for line in self.rfile:
            if line.startswith(b"?"):  # the driver asks: how many held, and when was one
                wanted = line[1:].strip().decode()
                with server.lock:
                    reply = f"{len(server.seen)} {server.seen.get(wanted, 0.0)}\n"
                self.wfile.write(reply.encode())
                continue
            key = line.strip().decode()
            with server.lock:
                if key in server.seen:
                    continue
                server.seen[key] = time.time()
            for peer in server.peers:
                peer.send(line)


class Peer:
    """A long-lived connection to a peer; writes from many threads, one at a time."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()

    def send(self, line: bytes) -> None:
        with self.lock:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.sendall(line)


class ShapeServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, peers: list[int]) -> None:
        super().__init__(("127.0.0.1", port), Relay)
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.peers = [Peer(p) for p in peers]


def serve(port: int, peers: list[int], ready: Any) -> None:
    server = ShapeServer(port, peers)
    ready.put(port)
    server.serve_forever()


def ask(port: int, key: str) -> tuple[int, float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"?{key}\n".encode())
        held, when = sock.makefile("rb").readline().split()
    return int(held), float(when)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--port-origin", type=int, default=31000)
    options = parser.parse_args()
    import networkx as nx

    graph = nx.random_regular_graph(3, options.nodes, seed=1)
    ports = {n: options.port_origin + 1 + n for n in graph.nodes}
    ready: Any = multiprocessing.get_context("fork").Queue()
    processes = [
        multiprocessing.get_context("fork").Process(
            target=serve, args=(ports[n], [ports[p] for p in graph[n]], ready), daemon=True
        )
        for n in graph.nodes
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=10)
        origin = ports[0]
        with socket.create_connection(("127.0.0.1", origin)) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            latencies = []
            for i in range(200):
                key = f"latency-{i}"
                began = time.time()
                client.sendall(f"{key}\n".encode())
                while True:  # the processes stamp arrivals: look seldom, not to slow them
                    time.sleep(0.005)
                    answers = [ask(port, key) for port in ports.values()]
                    if all(when for _, when in answers):
                        break
                latencies.append((max(when for _, when in answers) - began) * 1000)
            held_before = min(ask(port, "")[0] for port in ports.values())
            began = time.perf_counter()
            client.sendall(b"".join(f"flood-{i}\n".encode() for i in range(options.messages)))
            while min(ask(port, "")[0] for port in ports.values()) < held_before + options.messages:
                time.sleep(0.01)
            elapsed = time.perf_counter() - began
        latencies.sort()
        print(f"the bare shape, {options.nodes} processes, random 3-regular graph:")
        print(f"  delivered to all per second: {options.messages / elapsed:.0f} /s")
        print(
            f"  submit -> every process holds it: p50 {statistics.median(latencies):.2f} ms,"
            f" p99 {latencies[int(0.99 * (len(latencies) - 1))]:.2f} ms"
        )
    finally:
        for process in processes:
            process.terminate()
            process.join()


if __name__ == "__main__":
    main()
