"""The process that owns node processes (run as ``python -m gossip.supervisor``).

``gossip start-network`` writes the plan to the run directory and starts this process in
a session of its own, so the network outlives the command. It forks one process per node
with ``multiprocessing``, reports on stdout once every node listens (or why one could
not), then stays to reap nodes that leave and to stop them all on SIGTERM.

``python -m gossip.supervisor DIR NODE [CONTACT]`` does the same for one node that
rejoins a running network (``restart-node``, ``add-node``): the node loads its history
from its store and asks its old peers, or else node CONTACT, to take it in. This
supervisor lives as long as its node.
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from gossip import state
from gossip.node import Node
from gossip.server import GossipServer
from gossip.store import Store, store_path

READY_TIMEOUT = 20.0
"""Seconds every node gets to bind its port before the start is given up."""

ORPHAN_CHECK = 0.5
"""Seconds between a node's checks that its supervisor still runs."""

LOG_BYTES = 1 << 20
LOG_BACKUPS = 2
"""A node's log rotates at 1 MiB and keeps two old files: a flood of bad frames, one
line each, can't fill the disk."""


def node_main(
    entry: state.NodeEntry,
    peers: dict[int, tuple[str, int]] | None,
    contact: tuple[int, tuple[str, int]] | None,
    max_peers: int,
    key: bytes | None,
    directory: Path,
    ready: Any,
    go: Any,
) -> None:
    """Body of one node process: bind, say so, serve until removed or terminated.

    With ``peers`` the node starts fresh with those peers; without, it rejoins: it keeps
    the messages in its store and asks its last peers (or ``contact``) to take it in.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    supervisor = os.getppid()
    logging.basicConfig(
        handlers=[node_log(directory, entry.number)],
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    store = Store(store_path(directory, entry.number))
    messages, last_peers, wanted = store.load()
    if peers is None:
        contacts = list(last_peers.items()) or ([contact] if contact else [])
        node = Node(
            entry.number,
            max_peers,
            {},
            address=entry.address,
            wanted=wanted,
            messages=messages,
            contacts=contacts,
            journal=store,
        )
    else:
        node = Node(entry.number, max_peers, peers, address=entry.address, journal=store)
        store.peers_changed(node.peers, node.wanted)
        store.commit()
    try:
        server = GossipServer(node, entry.address, store, key)
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        reason = "is in use" if in_use else f"cannot be used: {exc.strerror}"
        ready.put((entry.number, {"error": f"port {entry.port} {reason}", "port_in_use": in_use}))
        return
    ready.put((entry.number, None))
    logging.getLogger("gossip.node").info(
        "node %d: listening on %s:%d with peers %s, %d messages held, contacts %s",
        entry.number,
        *entry.address,
        sorted(node.peers),
        len(node.messages),
        [n for n, _ in node.contacts],
    )
    threading.Thread(target=_follow, args=(supervisor, server), daemon=True).start()
    threading.Thread(target=server.keep_house, args=(go,), daemon=True).start()
    with server:
        server.serve_forever()
    store.close()


def node_log(directory: Path, number: int) -> RotatingFileHandler:
    """Where node ``number`` logs: ``node-<n>.log``, rotated, so its size stays bounded."""
    path = directory / f"node-{number}.log"
    return RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)


def _follow(supervisor: int, server: GossipServer) -> None:
    """Stop serving once the supervisor is gone, so no node outlives its network."""
    while os.getppid() == supervisor:
        time.sleep(ORPHAN_CHECK)
    server.shutdown()


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _report(result: dict[str, Any]) -> None:
    """Tell ``start-network`` how the start went, then let go of its pipe."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _await_ready(processes: dict[int, BaseProcess], ready: Any) -> dict[str, Any] | None:
    """Wait until every node listens; the first failure, as reported to the CLI, or None."""
    waiting = set(processes)
    deadline = time.monotonic() + READY_TIMEOUT
    while waiting:
        if time.monotonic() > deadline:
            return {
                "error": f"nodes {state.compress_ranges(sorted(waiting))} did not start in time"
            }
        if not ready.empty():
            number, failure = ready.get()
            if failure:
                return failure
            waiting.discard(number)
            continue
        dead = [n for n in waiting if processes[n].exitcode is not None]
        if dead:
            return {"error": f"node {dead[0]} exited during start-up"}
        time.sleep(0.01)
    return None


def supervise(directory: Path, rejoin: int | None = None, contact: int | None = None) -> int:
    """Start the plan's nodes (or just node ``rejoin``), report, and reap them."""
    plan = state.load(directory)
    if plan is None:
        _report({"error": f"no readable plan in {directory}"})
        return 1
    if plan.key is None and not plan.insecure:
        _report({"error": f"the network's secret {directory / state.SECRET_FILE} is missing"})
        return 1
    signal.signal(signal.SIGTERM, _stop)
    gc.freeze()  # the collector would otherwise touch, and so copy, every inherited page
    ctx = multiprocessing.get_context("fork")
    ready = ctx.SimpleQueue()
    go = ctx.Event()
    processes: dict[int, BaseProcess] = {}
    local = [e for e in plan.nodes.values() if e.local]
    chosen = [plan.nodes[rejoin]] if rejoin is not None else local
    helper = (contact, plan.nodes[contact].address) if contact is not None else None
    # A node forked while SIGTERM is blocked gets it only once it has its own handler.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        for entry in chosen:
            peers = None if rejoin else {p: plan.nodes[p].address for p in entry.peers}
            process = ctx.Process(
                target=node_main,
                args=(entry, peers, helper, plan.max_peers, plan.key, directory, ready, go),
                name=f"Gossip-Node-{entry.number}",
                daemon=True,
            )
            process.start()
            processes[entry.number] = process
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        failure = _await_ready(processes, ready)
        if failure:
            _report(failure)
            return 1
        go.set()
        _report({"pids": {str(n): p.pid for n, p in processes.items()}})
        while live := [p.sentinel for p in processes.values() if p.exitcode is None]:
            wait(live)
        while rejoin is None:
            signal.pause()  # the network lives on, as nodes may rejoin, until stop-network
        return 0
    finally:
        for process in processes.values():
            if process.exitcode is None:
                process.terminate()
        for process in processes.values():
            process.join(timeout=2)
            if process.exitcode is None:
                process.kill()
                process.join()


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[2:4]]
    sys.exit(supervise(Path(sys.argv[1]), *numbers))
