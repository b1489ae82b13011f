"""The one process that owns a host's node processes (``python -m gossip.supervisor``).

``gossip start-network`` writes the plan to the run directory and starts this process in
a session of its own, so the network outlives the command. It forks one process per node
with ``multiprocessing``, reports on stdout once every node listens (or why one could
not), then stays for the network's life:

- it starts nodes that rejoin (``restart-node``, ``add-node``) when the command line asks
  on its control socket, so every node of the host has this one owner;
- every ``REPAIR_EVERY`` seconds it asks every node of the network for its peers and,
  when the live nodes are split or a node stays short of peers that walks cannot find,
  it joins them (``gossip.repair``): the one party besides the CLI that sees it whole;
- on SIGTERM it stops every node it owns.

``python -m gossip.supervisor DIR MODE``: ``start`` (fresh nodes, the plan's peers),
``resume`` (each node from its store, with its stored peers: a stopped network comes back),
or ``adopt`` (start nothing: take over the nodes of a supervisor that died).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import logging
import multiprocessing
import os
import signal
import socket
import sqlite3
import struct
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from logging.handlers import RotatingFileHandler
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from gossip import repair, state
from gossip.client import GossipClient
from gossip.network import carry_out, control_address
from gossip.node import Node
from gossip.server import GossipServer
from gossip.state import GossipError, store_path
from gossip.store import Store

READY_TIMEOUT = 20.0
"""Seconds every node gets to bind its port before the start is given up."""

ORPHAN_CHECK = 0.5
"""Seconds between a node's checks that its supervisor still runs."""

REPAIR_EVERY = 1.0
"""Seconds between looks at the whole network."""

CONFIRM_AFTER = 0.3
"""Seconds to the next look once one found the network split: a split lasts, so a second
look soon after is enough to act on it."""

REPAIR_FIRST = 2.0
"""Seconds after the start before the first look: the nodes link up first."""

STATUS_TIMEOUT = 1.0

LOG_BYTES = 1 << 20
LOG_BACKUPS = 2
"""A node's log rotates at 1 MiB and keeps two old files: a flood of bad frames, one
line each, can't fill the disk."""

log = logging.getLogger("gossip.supervisor")


def node_main(
    entry: state.NodeEntry,
    peers: dict[int, tuple[str, int]] | None,
    contacts: list[tuple[int, tuple[str, int]]],
    max_peers: int,
    key: bytes | None,
    directory: Path,
    ready: Any,
    go: Any,
    private: list[int],
) -> None:
    """Body of one node process: bind, say so, serve until removed or terminated.

    With ``peers`` the node starts with those peers (a fresh start: its store is new; a
    resume: its stored peers); without, it rejoins: it keeps the messages in its store
    and asks ``contacts`` (its last peers in the largest part first) to take it in.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    for descriptor in private:  # the supervisor's control socket: its address outlives it else
        with contextlib.suppress(OSError):
            os.close(descriptor)
    logging.basicConfig(
        handlers=[node_log(directory, entry.number)],
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,  # not the supervisor's log, which the fork inherited
    )
    store, messages, _, wanted = open_store(directory, entry.number)
    if peers is None:
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
        node = Node(
            entry.number,
            max_peers,
            dict(list(peers.items())[:max_peers]),
            address=entry.address,
            wanted=wanted,
            messages=messages,
            journal=store,
        )
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
    threading.Thread(target=_follow, args=(directory, server), daemon=True).start()
    threading.Thread(target=server.keep_house, args=(go,), daemon=True).start()
    with server:
        server.serve_forever()
    store.close()


def open_store(directory: Path, number: int) -> tuple[Store, list[Any], dict[int, Any], int | None]:
    """The node's store and what it holds; a store that cannot be read is moved aside
    (``node-N.db.corrupt-<time>``) and the node starts empty: catch-up refills it."""
    path = store_path(directory, number)
    try:
        store = Store(path)
        return (store, *store.load())
    except sqlite3.DatabaseError as exc:
        stamp = int(time.time())
        for part in directory.glob(f"{path.name}*"):
            if ".corrupt-" not in part.name:
                part.rename(part.with_name(f"{part.name}.corrupt-{stamp}"))
        logging.getLogger("gossip.node").error(
            "node %d: its store could not be read (%s); moved it aside and started empty",
            number,
            exc,
        )
        store = Store(path)
        return (store, *store.load())


def stored_peers(directory: Path, number: int) -> list[int]:
    """The peers a node's store last recorded (none if it has no readable store). Read
    and closed again before a fork: a database connection must not cross one."""
    path = store_path(directory, number)
    if not path.exists():
        return []
    try:
        store = Store(path)
    except sqlite3.DatabaseError:
        return []
    try:
        return sorted(store.load()[1])
    except sqlite3.DatabaseError:
        return []
    finally:
        store.close()


def node_log(directory: Path, number: int) -> RotatingFileHandler:
    """Where node ``number`` logs: ``node-<n>.log``, rotated, so its size stays bounded."""
    path = directory / f"node-{number}.log"
    return RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)


def _follow(directory: Path, server: GossipServer) -> None:
    """Stop serving once the network no longer counts this process as one of its nodes.

    A supervisor killed outright leaves its nodes serving (the network goes on, and the
    next command adopts them); but a node whose network was stopped, or whose run
    directory is gone, must not run on unseen.
    """
    supervisor = os.getppid()
    me = os.getpid()
    while True:
        time.sleep(ORPHAN_CHECK)
        if os.getppid() == supervisor:
            continue
        network = state.load(directory)
        if network is None or not any(e.pid == me for e in network.nodes.values()):
            break
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


class Supervisor:
    """Owns this host's nodes of one network: starts them, mends the network, stops them."""

    def __init__(self, directory: Path, plan: state.NetworkState) -> None:
        self.directory = directory
        self.plan = plan
        self.ctx = multiprocessing.get_context("fork")
        self.ready = self.ctx.SimpleQueue()
        self.go = self.ctx.Event()
        self.children: dict[int, BaseProcess] = {}
        self.adopted: dict[int, int] = {}
        """Nodes started by a supervisor that died: their pids (not children of this one)."""
        self.watch = repair.Watch()
        self.private: list[socket.socket] = []
        """The supervisor's own sockets, which a forked node closes."""
        self.next_repair = time.monotonic() + REPAIR_FIRST

    def start_nodes(self, numbers: list[int], resume: bool) -> dict[str, Any]:
        """Fork these nodes; the report for the CLI (``pids``, or ``error``)."""
        for number in numbers:
            entry = self.plan.nodes[number]
            if resume:
                stored = stored_peers(self.directory, number)
                nodes = self.plan.nodes
                peers = {p: nodes[p].address for p in stored if p in nodes and not nodes[p].removed}
            else:
                peers = {p: self.plan.nodes[p].address for p in entry.peers}
            self._fork(entry, peers, [])
        failure = self._await_ready(numbers)
        if failure:
            return failure
        return {"pids": {str(n): self.children[n].pid for n in numbers}}

    def _fork(
        self,
        entry: state.NodeEntry,
        peers: dict[int, tuple[str, int]] | None,
        contacts: list[tuple[int, tuple[str, int]]],
    ) -> None:
        # A node forked while SIGTERM is blocked gets it only once it has its own handler.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            process = self.ctx.Process(
                target=node_main,
                args=(
                    entry,
                    peers,
                    contacts,
                    self.plan.max_peers,
                    self.plan.key,
                    self.directory,
                    self.ready,
                    self.go,
                    [c.fileno() for c in self.private if c.fileno() >= 0],
                ),
                name=f"Gossip-Node-{entry.number}",
                daemon=True,
            )
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        self.children[entry.number] = process
        self.adopted.pop(entry.number, None)

    def _await_ready(self, numbers: list[int]) -> dict[str, Any] | None:
        """Wait until these nodes listen; the first failure, as reported to the CLI, or None."""
        waiting = set(numbers)
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting:
            if time.monotonic() > deadline:
                return {
                    "error": f"nodes {state.compress_ranges(sorted(waiting))} did not start in time"
                }
            if not self.ready.empty():
                number, failure = self.ready.get()
                if failure:
                    return failure
                waiting.discard(number)
                continue
            dead = [n for n in waiting if self.children[n].exitcode is not None]
            if dead:
                return {"error": f"node {dead[0]} exited during start-up"}
            time.sleep(0.01)
        return None

    def rejoin(self, number: int, largest: list[int]) -> dict[str, Any]:
        """Start node ``number`` again (or for the first time): it joins through its last
        peers that are in the network's largest part, else through a node of that part."""
        self.plan = state.load(self.directory) or self.plan
        entry = self.plan.nodes.get(number)
        if entry is None or not entry.local:
            return {"error": f"node {number} is not one of this host's nodes"}
        if self._running(number):
            return {"error": f"node {number} is running"}
        contacts = self._contacts(number, stored_peers(self.directory, number), largest)
        self._fork(entry, None, contacts)
        failure = self._await_ready([number])
        if failure:
            self.children.pop(number, None)
            return failure
        return {"pids": {str(number): self.children[number].pid}}

    def _contacts(
        self, number: int, last: list[int], largest: list[int]
    ) -> list[tuple[int, tuple[str, int]]]:
        body = set(largest)
        first = [p for p in last if p in body]
        rest = [p for p in last if p not in body]
        others = [n for n in largest if n not in last]
        order = [*first, *others[:3], *rest]
        nodes = self.plan.nodes
        return [(n, nodes[n].address) for n in order if n in nodes and n != number]

    def _running(self, number: int) -> bool:
        child = self.children.get(number)
        if child is not None and child.exitcode is None:
            return True
        return state.pid_alive(self.adopted.get(number, 0), self.directory)

    def serve(self, control: socket.socket) -> None:
        """Until SIGTERM: reap nodes, answer the control socket, mend the network."""
        with control:
            control.listen(8)
            while True:
                live = [p.sentinel for p in self.children.values() if p.exitcode is None]
                timeout = max(0.0, self.next_repair - time.monotonic())
                if control in wait([control, *live], timeout):
                    self._answer(control)
                for number in [n for n, p in self.children.items() if p.exitcode is not None]:
                    self.children.pop(number).join()
                if time.monotonic() >= self.next_repair:
                    try:
                        self.mend()
                    except Exception:  # a look that fails is tried again next round
                        log.exception("supervisor: could not look at the network")
                    pause = CONFIRM_AFTER if self.watch.split_looks else REPAIR_EVERY
                    self.next_repair = time.monotonic() + pause

    def _answer(self, control: socket.socket) -> None:
        connection, _ = control.accept()
        self.private.append(connection)
        with connection:
            connection.settimeout(5.0)
            credentials = connection.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
            )
            _, uid, _ = struct.unpack("3i", credentials)
            if uid not in (os.getuid(), 0):
                return
            try:
                request = json.loads(connection.makefile("rb").readline())
                number = int(request["start"])
                largest = [int(n) for n in request.get("largest", [])]
            except (OSError, ValueError, KeyError, TypeError):
                reply: dict[str, Any] = {"error": "malformed control request"}
            else:
                reply = self.rejoin(number, largest)
            with contextlib.suppress(OSError):
                connection.sendall(json.dumps(reply).encode() + b"\n")
        self.private.remove(connection)

    def mend(self) -> None:
        """Look at the whole network; join its parts, and nodes short of peers, if it is
        this host's turn (it holds the lowest-numbered node that answers)."""
        plan = self.plan = state.load(self.directory) or self.plan
        nodes = {n: e for n, e in plan.nodes.items() if not e.removed}
        reports = self._ask_all(nodes)
        if not reports or not nodes[min(reports)].local:
            self.watch.forget()  # another host's supervisor mends
            return
        links = {n: list(r.get("peers", [])) for n, r in reports.items()}
        wanted = {n: int(r.get("wanted", 0)) for n, r in reports.items()}
        steps = self.watch.look(links, plan.max_peers, wanted)
        if steps:
            log.warning("supervisor: mending the network %s: %s", links, steps)
        for step in steps:
            carry_out(step, plan)

    def _ask_all(self, nodes: dict[int, state.NodeEntry]) -> dict[int, dict[str, Any]]:
        """Every answering node's status, asked at once (the threads end before a fork)."""

        def ask(entry: state.NodeEntry) -> dict[str, Any] | None:
            client = GossipClient(entry.address, self.plan.key, STATUS_TIMEOUT)
            try:
                return client.status()
            except GossipError:
                return None

        with ThreadPoolExecutor(max_workers=min(32, len(nodes) or 1)) as pool:
            answers = dict(zip(nodes, pool.map(ask, nodes.values()), strict=True))
        return {n: a for n, a in answers.items() if a is not None}

    def stop(self) -> None:
        for process in self.children.values():
            if process.exitcode is None:
                process.terminate()
        for pid in self.adopted.values():
            if state.pid_alive(pid, self.directory):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for process in self.children.values():
            process.join(timeout=2)
            if process.exitcode is None:
                process.kill()
                process.join()


def supervise(directory: Path, mode: str) -> int:
    """Start the plan's nodes (``start``, ``resume``) or take them over (``adopt``), report,
    then own them until SIGTERM."""
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    plan = state.load(directory)
    if plan is None:
        _report({"error": f"no readable plan in {directory}"})
        return 1
    if plan.key is None and not plan.insecure:
        _report({"error": f"the network's secret {directory / state.SECRET_FILE} is missing"})
        return 1
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        control.bind(control_address(directory))
    except OSError:
        _report({"error": f"another supervisor of the network in {directory} still runs"})
        return 1
    signal.signal(signal.SIGTERM, _stop)
    gc.freeze()  # the collector would otherwise touch, and so copy, every inherited page
    owner = Supervisor(directory, plan)
    owner.private.append(control)
    try:
        local = sorted(n for n, e in plan.nodes.items() if e.local and not e.removed)
        if mode == "adopt":
            owner.adopted = {
                n: plan.nodes[n].pid for n in local if state.pid_alive(plan.nodes[n].pid, directory)
            }
            owner.go.set()
            _report({"pids": {str(n): p for n, p in owner.adopted.items()}})
        else:
            result = owner.start_nodes(local, resume=mode == "resume")
            if "pids" not in result:
                _report(result)
                return 1
            owner.go.set()
            _report(result)
        owner.serve(control)
        return 0
    finally:
        owner.stop()


if __name__ == "__main__":
    sys.exit(supervise(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "start"))
