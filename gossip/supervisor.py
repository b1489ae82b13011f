"""The one process that owns a host's node processes (``python -m gossip.supervisor``).

``gossip start-network`` writes the plan to the run directory and starts this process in
a session of its own, so the network outlives the command. It forks one process per node
with ``multiprocessing``, reports on stdout once every node listens (or why one could
not), then stays for the network's life:

- it starts nodes that rejoin (``restart-node``, ``add-node``) when the command line asks
  on its control socket, so every node of the host has this one owner;
- every ``REPAIR_EVERY`` seconds it asks every node of the network for its peers and,
  when the live nodes are split or a node stays short of peers that walks cannot find,
  it joins them (``gossip.mending``): the one party besides the CLI that sees it whole
  (``gossip mend`` takes the same look for a network with no supervisor);
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
import subprocess
import sys
import threading
import time
from logging.handlers import RotatingFileHandler
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from multiprocessing.queues import SimpleQueue
from pathlib import Path
from typing import Any, NamedTuple

from gossip import repair, state
from gossip.conditions import conditions_from
from gossip.errors import GossipError
from gossip.foreground import LOG_FORMAT
from gossip.mending import REPAIR_FIRST, STATUS_TIMEOUT, Mender
from gossip.network import control_address, reported, unpaused
from gossip.node import Node
from gossip.protocol import FrameError
from gossip.ranges import compress_ranges
from gossip.server import GossipServer, Waitable
from gossip.state import store_path
from gossip.store import DamagedLog, DamagedStore, Store, StoreError
from gossip.strategy import DEFAULT, Strategy, stored
from gossip.timing import Timing

SWITCH_INTERVAL = 0.0002
"""Seconds a node's thread may hold the interpreter before another gets a turn (Python's
default is 5 ms). A copy crosses several threads on its way (reader, lock, writer); at
the default, each hand-off could wait out a busy thread's whole turn."""

READY_TIMEOUT = 20.0
"""Seconds every node gets to bind its port before the start is given up."""

CORES = len(os.sched_getaffinity(0))
"""The cores this host's nodes share: a crowded host stretches its nodes' timings."""

ORPHAN_CHECK = 1.0
"""Seconds between a node's checks that its supervisor still runs: each check wakes an
idle process, which a 1,024-node network pays for a thousand times over."""

SERVE_POLL = 1.0
"""Seconds between the server loop's checks for a shutdown request: a node asked to
stop takes this long at most to end."""

ADOPT_EVERY = 5.0
"""Seconds between a node's tries to start a supervisor for its orphaned network."""

HUNG_AFTER = 3.0
"""Seconds a supervisor may stay stopped (SIGSTOP) before its nodes take it for hung, as
its peers take a paused node for gone after three or four: a stopped supervisor mends
nothing, so it is killed and adopted like a dead one."""

CONTROL_BYTES = 4096
"""Longest control request read."""

LOST_LOOKS = 3
"""Looks in a row without the network's state file after which the supervisor stops its
nodes: somebody deleted the run directory, and nothing could find them any more."""

HOLD_MAX = 10.0
"""Most seconds the command line may ask the supervisor to leave the mending to it."""

LOG_BYTES = 1 << 20
LOG_BACKUPS = 2
"""A node's log rotates at 1 MiB and keeps two old files: a flood of bad frames, one
line each, can't fill the disk."""

log = logging.getLogger("gossip.supervisor")


class NodeStart(NamedTuple):
    """What a node starts from, whoever starts it: a supervisor's fork (``node_main``) or
    ``gossip start-node`` (``gossip.standalone``), both through ``serving_node``."""

    entry: state.NodeEntry
    peers: dict[int, tuple[str, int]] | None
    """With peers: a fresh start (or a resume, its stored peers); None: it rejoins."""
    contacts: list[tuple[int, tuple[str, int]]]
    max_peers: int
    key: bytes | None
    directory: Path
    timing: Timing
    strategy: Strategy = DEFAULT
    conditions: dict[str, Any] | None = None
    """The lab's conditions in force (``Conditions.as_dict``): a node started while a
    partition or a delay holds is under it from the start, not from the next change."""


def node_main(
    start: NodeStart, ready: SimpleQueue, go: Waitable, private: list[int], owner: int
) -> None:
    """Body of one node process: bind, say so, serve until removed or terminated.

    With ``peers`` the node starts with those peers (a fresh start: its store is new; a
    resume: its stored peers); without, it rejoins: it keeps the messages in its store
    and asks ``contacts`` (its last peers in the largest part first) to take it in.
    """
    entry, directory = start.entry, start.directory
    sys.setswitchinterval(SWITCH_INTERVAL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    for descriptor in private:  # the supervisor's control socket: its address outlives it else
        with contextlib.suppress(OSError):
            os.close(descriptor)
    try:
        log_file = node_log(directory, entry.number)
    except OSError as exc:
        where = f"node-{entry.number}.log"
        reason = f"cannot write its log {where} ({exc.strerror}): make it writable"
        ready.put((entry.number, {"error": f"node {entry.number}: {reason}"}))
        return
    logging.basicConfig(
        handlers=[log_file],
        level=logging.INFO,
        format=LOG_FORMAT,
        force=True,  # not the supervisor's log, which the fork inherited
    )
    try:
        server, store = serving_node(start, entry.address)
    except StoreError as exc:
        ready.put((entry.number, {"error": f"node {entry.number}: {exc}"}))
        return
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        reason = "is in use" if in_use else f"cannot be used: {exc.strerror}"
        if exc.errno == errno.EADDRNOTAVAIL:  # --only named another machine
            reason = f"cannot be used: {entry.host} is not an address of this machine"
        error = f"port {entry.port} {reason}"
        ready.put((entry.number, {"error": error, "port_in_use": in_use}))
        return
    ready.put((entry.number, None))
    follow = (directory, server, entry.number, owner)
    threading.Thread(target=_follow, args=follow, daemon=True).start()
    threading.Thread(target=server.keep_house, args=(go,), daemon=True).start()
    with server:
        server.serve_forever(SERVE_POLL)
    store.close()


def serving_node(start: NodeStart, listen: tuple[str, int]) -> tuple[GossipServer, Store]:
    """A node built from its store and bound to ``listen``, not yet serving: the part of a
    node's start that a supervisor's fork and ``gossip start-node`` share.

    With ``peers`` the node starts with those peers and records them; without, it asks
    ``contacts`` to take it in. StoreError if its store cannot be opened, OSError if its
    port cannot be bound (the store is closed again then).
    """
    entry, peers, max_peers = start.entry, start.peers, start.max_peers
    store, messages, _, wanted = open_store(start.directory, entry.number)
    node = Node(
        entry.number,
        max_peers,
        dict(list((peers or {}).items())[:max_peers]),
        address=entry.address,
        wanted=wanted,
        messages=messages,
        contacts=start.contacts,
        journal=store,
        timing=start.timing,
        strategy=start.strategy,
    )
    if start.conditions:
        try:
            node.conditions = conditions_from(start.conditions)
        except FrameError as exc:  # a state file edited by hand: the next change tells it
            logging.getLogger("gossip.node").warning("node %d: %s", entry.number, exc)
    if peers is not None:
        store.peers_changed(node.peers, node.members.wanted)
        store.commit()
    try:
        server = GossipServer(node, listen, store, start.key)
    except OSError:
        store.close()
        raise
    named = "" if listen == entry.address else f" as {entry.host}:{entry.port}"
    logging.getLogger("gossip.node").info(
        "node %d: listening on %s:%d%s with peers %s, %d messages held, contacts %s",
        entry.number,
        *listen,
        named,
        sorted(node.peers),
        len(node.messages),
        [n for n, _ in node.members.contacts],
    )
    return server, store


DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
"""What SQLite calls a store that is not (or no longer) a database."""


def open_store(directory: Path, number: int) -> tuple[Store, list[Any], dict[int, Any], int | None]:
    """The node's store and what it holds.

    A damaged store is moved aside (``node-N.db.corrupt-<time>``) and the node starts empty:
    catch-up refills it. A store whose log alone is damaged keeps the rest: only the log
    is moved aside (``node-N.db-wal.corrupt-<time>``). Any other trouble (a full disk, no
    permission, a folder in its place) is a StoreError, and the store is left as it is.
    """
    path = store_path(directory, number)
    store: Store | None = None
    try:
        store = Store(path)
        loaded = store.load()
        if store.damaged_rows:
            logging.getLogger("gossip.node").error(
                "node %d: %d damaged rows of its store were left out; catch-up brings back "
                "what they held",
                number,
                store.damaged_rows,
            )
        return (store, *loaded)
    except (sqlite3.Error, OSError) as exc:
        if store is not None:
            with contextlib.suppress(sqlite3.Error):
                store.db.close()
        only_log = isinstance(exc, DamagedLog)
        whole = isinstance(exc, DamagedStore) or getattr(exc, "sqlite_errorname", "") in DAMAGED
        if not only_log and not whole:
            raise StoreError(f"its store {path} cannot be opened: {exc}") from exc
        stamp = int(time.time())
        log = [Path(f"{path}-wal"), Path(f"{path}-shm")]  # the shared index follows the log
        for part in log if only_log else directory.glob(f"{path.name}*"):
            if part.exists() and ".corrupt-" not in part.name:
                part.rename(part.with_name(f"{part.name}.corrupt-{stamp}"))
        what = "its store's log, and kept the rest" if only_log else "it, and started empty"
        logging.getLogger("gossip.node").error(
            "node %d: its store was damaged (%s); moved %s aside", number, exc, what
        )
        store = Store(path)
        return (store, *store.load())


def stored_peers(directory: Path, number: int) -> list[int]:
    """The peers a node's store last recorded (none if it has no readable store). Read
    and closed again before a fork: a database connection must not cross one."""
    path = store_path(directory, number)
    if not path.is_file():
        return []
    try:
        store = Store(path, writing=False)
    except sqlite3.Error:
        return []
    try:
        return store.peers()
    except sqlite3.Error:
        return []
    finally:
        with contextlib.suppress(sqlite3.Error):
            store.db.close()


def node_log(directory: Path, number: int) -> RotatingFileHandler:
    """Where node ``number`` logs: ``node-<n>.log``, rotated, so its size stays bounded."""
    path = directory / f"node-{number}.log"
    return RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)


def _follow(directory: Path, server: GossipServer, number: int, owner: int) -> None:
    """Once the supervisor is gone: start a new one, or stop serving.

    A supervisor killed outright leaves its nodes serving: the network goes on, and the
    lowest-numbered of its nodes here starts a supervisor that adopts them all (so the
    network is mended again without a command). A supervisor stopped for ``HUNG_AFTER``
    seconds is killed by that node first. A node whose network was stopped or removed
    it, or whose run directory is gone, must not run on unseen: it stops. One whose state
    file cannot be read serves on, unmended, until stop-network.
    """
    me = os.getpid()
    tried = 0.0
    hung = HungWatch()
    while True:
        time.sleep(ORPHAN_CHECK)
        if os.getppid() == owner:
            if hung.long_stopped(owner):
                _kill_if_first(directory, number, owner)
            continue
        network = state.load(directory)
        if network is None and (directory / state.STATE_FILE).exists():
            continue  # damaged, not gone: serve on, as a supervisor does (stop-network finds it)
        entry = network.nodes.get(number) if network is not None else None
        if network is None or entry is None or entry.removed:
            break
        if network.supervisor_pid == state.STOPPED:
            break  # stop-network is under way, and missed this node: it stops itself
        if entry.pid != me and state.pid_alive(entry.pid, directory):
            break  # another process serves as this node now
        if state.pid_alive(network.supervisor_pid, directory):  # an adopter, not our parent
            if hung.long_stopped(network.supervisor_pid):
                _kill_if_first(directory, number, network.supervisor_pid)
            continue
        if _first_awake(network, directory, number) == number and (
            time.monotonic() - tried >= ADOPT_EVERY
        ):
            tried = time.monotonic()
            _start_adopter(directory)
    server.shutdown()


class HungWatch:
    """How long the supervisor a node follows has been stopped, from its ``/proc`` stat,
    kept open: the node asks every second, and at 1,024 nodes an open each time costs."""

    def __init__(self) -> None:
        self.pid = 0
        self.stat = -1
        self.since: float | None = None

    def long_stopped(self, pid: int) -> bool:
        """Whether ``pid`` has been stopped for ``HUNG_AFTER`` seconds, looking now."""
        if pid != self.pid:
            if self.stat >= 0:
                os.close(self.stat)
            self.pid, self.stat, self.since = pid, -1, None
        if self.stat < 0:  # again next time if it failed (no descriptor free, say)
            with contextlib.suppress(OSError):
                self.stat = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        if self.stat < 0 or not state.stopped_at(self.stat):
            self.since = None
            return False
        now = time.monotonic()
        if self.since is None:
            self.since = now
        return now - self.since >= HUNG_AFTER


def _kill_if_first(directory: Path, number: int, owner: int) -> None:
    """Kill the stopped supervisor ``owner`` if this is the lowest-numbered awake node of
    the host (one node does it; the others adopt with it once it is gone)."""
    network = state.load(directory)
    if network is None or network.supervisor_pid != owner:
        return
    if _first_awake(network, directory, number) == number:
        logging.getLogger("gossip.node").warning(
            "the supervisor (pid %d) has been stopped for %g s: killing it to adopt us",
            owner,
            HUNG_AFTER,
        )
        with contextlib.suppress(ProcessLookupError):
            os.kill(owner, signal.SIGKILL)


def _first_awake(network: state.NetworkState, directory: Path, number: int) -> int:
    """The lowest-numbered node of this host that runs and is not stopped (``gossip
    pause``, or a SIGSTOP by hand): the one to act for them all (``number`` if none is)."""
    paused = set(network.conditions.get("paused", []))
    return min(
        (
            n
            for n, e in network.nodes.items()
            if e.local
            and n not in paused
            and state.pid_alive(e.pid, directory)
            and not state.stopped(e.pid)
        ),
        default=number,
    )


def _start_adopter(directory: Path) -> None:
    """Start a supervisor that adopts this network's nodes, in a session of its own."""
    logging.getLogger("gossip.node").warning("the supervisor is gone: starting one to adopt us")
    with open(directory / "supervisor.log", "ab") as errors:
        subprocess.Popen(
            [sys.executable, "-m", state.SUPERVISOR_MODULE, str(directory), "adopt"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd=directory,
            start_new_session=True,
        )


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _report(result: dict[str, Any]) -> None:
    """Tell ``start-network`` how the start went, then let go of its pipe (OSError: the
    command is gone, and with it the pipe)."""
    try:
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    finally:
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
        self.mender = Mender("supervisor")
        self.lost_looks = 0
        """Looks in a row that found no state file: the run directory was deleted."""
        self.unreadable = False
        """The last look found a state file it could not read (said once in the log)."""
        self.hold_until = 0.0
        """Until then the command line mends (remove-node): the supervisor does not."""
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
                    NodeStart(
                        entry,
                        peers,
                        contacts,
                        self.plan.max_peers,
                        self.plan.key,
                        self.directory,
                        self.timing(),
                        stored(self.plan.strategy),
                        unpaused(self.plan.conditions, entry.number),
                    ),
                    self.ready,
                    self.go,
                    [c.fileno() for c in self.private if c.fileno() >= 0],
                    os.getpid(),
                ),
                name=f"Gossip-Node-{entry.number}",
                daemon=True,
            )
            process.start()
            self.children[entry.number] = process  # before a waiting SIGTERM ends this one
            self.adopted.pop(entry.number, None)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _await_ready(self, numbers: list[int]) -> dict[str, Any] | None:
        """Wait until these nodes listen; the first failure, as reported to the CLI, or None."""
        waiting = set(numbers)
        deadline = time.monotonic() + READY_TIMEOUT
        while waiting:
            if time.monotonic() > deadline:
                return {"error": f"nodes {compress_ranges(sorted(waiting))} did not start in time"}
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
        last = stored_peers(self.directory, number)
        contacts = repair.contacts(number, last, largest, self.plan.max_peers)
        addresses = [(n, self.plan.nodes[n].address) for n in contacts if n in self.plan.nodes]
        try:
            self._fork(entry, None, addresses)
        except OSError as exc:
            return {"error": f"could not fork node {number}: {exc.strerror or exc}"}
        failure = self._await_ready([number])
        if failure:
            self._end(self.children.pop(number))
            return failure
        pid = self.children[number].pid
        # Written down here too: the command that asked may not live to (Ctrl-C, a kill),
        # and a node the state called removed, or gave no pid, no command could reach.
        readable = state.load(self.directory) is not None  # else not this one's to write over
        with contextlib.suppress(GossipError), state.change(self.directory, self.plan) as latest:
            if readable and (written := latest.nodes.get(number)) is not None:
                written.pid = pid or 0
                written.removed = False
                latest.conditions = unpaused(latest.conditions, number)
        return {"pids": {str(number): pid}}

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
                    pause = self.mender.pause(len(self.plan.nodes))
                    self.next_repair = time.monotonic() + pause

    def _answer(self, control: socket.socket) -> None:
        """Answer one request on the control socket; no request can take the owner down."""
        try:
            connection, _ = control.accept()
        except OSError:
            return
        self.private.append(connection)
        try:
            with connection:
                connection.settimeout(5.0)
                credentials = connection.getsockopt(
                    socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
                )
                _, uid, _ = struct.unpack("3i", credentials)
                if uid not in (os.getuid(), 0):
                    return
                reply = self._obey(connection.makefile("rb").readline(CONTROL_BYTES))
                connection.sendall(json.dumps(reply).encode() + b"\n")
        except Exception:  # the requester went away, or a bug: log it, keep owning the nodes
            log.exception("supervisor: a control request failed")
        finally:
            self.private.remove(connection)

    def _obey(self, line: bytes) -> dict[str, Any]:
        """``{"start": N, "largest": [...]}``: start node N; ``{"hold": S}``: leave the
        mending to the command line for S seconds (it mends now itself)."""
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return {"error": "malformed control request"}
        until = request.get("until")
        if isinstance(until, int | float) and time.time() > until:
            return {"error": "the request waited too long: the command gave up on it"}
        if _whole(request.get("hold")) is not None:
            self.hold_until = time.monotonic() + min(request["hold"], HOLD_MAX)
            self.mender.forget()
            return {"held": True}
        number = _whole(request.get("start"))
        largest = request.get("largest", [])
        if number is None or not isinstance(largest, list) or None in map(_whole, largest):
            return {"error": "malformed control request"}
        return self.rejoin(number, largest)

    def timing(self) -> Timing:
        """The timings of this host's nodes: stretched when many share its cores. The
        supervisor's looks are as patient as the nodes."""
        return Timing.for_host(sum(e.local for e in self.plan.nodes.values()), CORES)

    def mend(self) -> None:
        """Look at the whole network; join its parts, and nodes short of peers, if it is
        this host's turn (it holds the lowest-numbered node that answers)."""
        loaded = state.load(self.directory)
        # Only a state file that is gone means the run directory went: one that cannot be
        # read (damaged, edited by hand) leaves the nodes serving, with the last plan.
        gone = loaded is None and not (self.directory / state.STATE_FILE).exists()
        self.lost_looks = self.lost_looks + 1 if gone else 0
        if loaded is None and not gone and not self.unreadable:
            log.warning(
                "supervisor: the network's state file cannot be read; the nodes go on "
                "with the last plan (gossip stop-network stops them)"
            )
        self.unreadable = loaded is None and not gone
        if self.lost_looks >= LOST_LOOKS:
            log.warning("supervisor: the network's state is gone; stopping its nodes")
            raise SystemExit(0)
        plan = self.plan = loaded or self.plan
        patience = self.timing().peer_timeout / Timing.peer_timeout
        look = reported(plan, STATUS_TIMEOUT * patience)  # its threads end before any fork
        if time.monotonic() < self.hold_until:
            self.mender.forget()  # the command line mends
            return
        local = {n for n, e in plan.nodes.items() if e.local and not e.removed}
        self.mender.mend(plan, look, local)

    def stop(self) -> None:
        """Stop every node this supervisor owns."""
        for process in self.children.values():
            if process.exitcode is None:
                process.terminate()
        for pid in self.adopted.values():
            if state.pid_alive(pid, self.directory):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        for process in self.children.values():
            self._end(process)

    @staticmethod
    def _end(process: BaseProcess) -> None:
        """Make sure a node process is gone: asked to stop, then killed after 2 s."""
        if process.exitcode is None:
            process.terminate()
        process.join(timeout=2)
        if process.exitcode is None:
            process.kill()
            process.join()


def _whole(value: object) -> int | None:
    """``value`` if it is a whole number (not a bool, not a float), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def supervise(directory: Path, mode: str) -> int:
    """Start the plan's nodes (``start``, ``resume``) or take them over (``adopt``), report,
    then own them until SIGTERM."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=LOG_FORMAT)
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
            alive = {
                n: plan.nodes[n].pid for n in local if state.pid_alive(plan.nodes[n].pid, directory)
            }
            try:
                with state.change(directory, plan) as latest:  # a node may have started it
                    stopping = latest.supervisor_pid == state.STOPPED
                    if not stopping:
                        latest.supervisor_pid = os.getpid()
            except GossipError as exc:  # the nodes serve on, and start another in a while
                _report({"error": str(exc)})
                return 1
            if stopping:
                _report({"error": "stop-network stopped it: there is nothing to take over"})
                return 1
            owner.adopted = alive  # its own from now on: ended with it
            owner.go.set()
            with contextlib.suppress(OSError):  # the command that started it left: adopt all
                # the same (ending here would end every node just taken over)
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
