"""The process that owns a network's node processes (run as ``python -m gossip.supervisor``).

``gossip start-network`` writes the plan to the run directory and starts this process in
a session of its own, so the network outlives the command. It forks one process per node
with ``multiprocessing``, reports on stdout once every node listens (or why one could
not), then stays to reap nodes that leave and to stop them all on SIGTERM.
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
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from gossip import state
from gossip.node import Node
from gossip.server import GossipServer

READY_TIMEOUT = 20.0
"""Seconds every node gets to bind its port before the start is given up."""

ORPHAN_CHECK = 0.5
"""Seconds between a node's checks that its supervisor still runs."""


def node_main(
    entry: state.NodeEntry,
    peers: dict[int, tuple[str, int]],
    max_peers: int,
    log_path: Path,
    ready: Any,
) -> None:
    """Body of one node process: bind, say so, serve until removed or terminated."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    supervisor = os.getppid()
    logging.basicConfig(
        filename=log_path, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        server = GossipServer(Node(entry.number, max_peers, peers), entry.address)
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        reason = "is in use" if in_use else f"cannot be used: {exc.strerror}"
        ready.put((entry.number, {"error": f"port {entry.port} {reason}", "port_in_use": in_use}))
        return
    ready.put((entry.number, None))
    logging.getLogger("gossip.node").info(
        "node %d: listening on %s:%d with peers %s", entry.number, *entry.address, sorted(peers)
    )
    threading.Thread(target=_follow, args=(supervisor, server), daemon=True).start()
    with server:
        server.serve_forever()


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


def supervise(directory: Path) -> int:
    plan = state.load(directory)
    if plan is None:
        _report({"error": f"no readable plan in {directory}"})
        return 1
    signal.signal(signal.SIGTERM, _stop)
    gc.freeze()  # the collector would otherwise touch, and so copy, every inherited page
    ctx = multiprocessing.get_context("fork")
    ready = ctx.SimpleQueue()
    processes: dict[int, BaseProcess] = {}
    try:
        for number, entry in plan.nodes.items():
            peers = {p: plan.nodes[p].address for p in entry.peers}
            log_path = directory / f"node-{number}.log"
            process = ctx.Process(
                target=node_main,
                args=(entry, peers, plan.max_peers, log_path, ready),
                name=f"Gossip-Node-{number}",
                daemon=True,
            )
            process.start()
            processes[number] = process
        failure = _await_ready(processes, ready)
        if failure:
            _report(failure)
            return 1
        _report({"pids": {str(n): p.pid for n, p in processes.items()}})
        while live := [p.sentinel for p in processes.values() if p.exitcode is None]:
            wait(live)
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
    sys.exit(supervise(Path(sys.argv[1])))
