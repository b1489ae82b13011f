"""Start, stop and shrink a network from the command line's side.

Starting writes the plan to the run directory and launches ``gossip.supervisor`` in a
session of its own; the rest talks to the nodes as any client does.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import gossip
from gossip import state
from gossip.auth import new_secret
from gossip.client import GossipClient, NodeBusy, NodeUnreachable, Peer, farewell
from gossip.commands import Command
from gossip.conditions import conditions_from, kept, sides
from gossip.errors import GossipError, UsageError
from gossip.handover import HeldCopy, handed_over
from gossip.protocol import FrameError, MessageView, encode_frame
from gossip.repair import Introduce, Step, Swap, parts, plan_repair
from gossip.state import NetworkState, NodeEntry
from gossip.status import NodeStatus
from gossip.store import Store

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
STOP_ROUNDS = 5
"""Looks stop-network takes for processes of the network still running (a supervisor a
racing command started, and its nodes), each stopping what it finds."""
STEP_TIMEOUT = 2.0
"""Seconds a node gets to answer one step of a repair or a goodbye."""
HOLD = 3.0
"""Seconds remove-node asks the supervisor to leave the mending to it."""
READY_WAIT = 30.0
"""Seconds the supervisor gets to start a node that rejoins."""
JOIN_TIMEOUT = 5.0
"""Seconds a rejoining node gets to find peers before the command reports it anyway."""
EPHEMERAL_PORTS = "/proc/sys/net/ipv4/ip_local_port_range"
SURVEY_TIMEOUT = 2.0
"""Seconds a node gets to answer a survey (status, watching a spread); a hung one is down."""
SURVEY_WORKERS = 32
"""Most nodes a survey asks at once."""
HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""What waits while a command ends what must not be cut in half: from a node's leave
until the state says it is removed (an interrupted remove-node still finishes the
hand-over), and a start's deleting what the network it replaces left."""


def client_for(network: NetworkState, entry: NodeEntry) -> GossipClient:
    """A client of one of the network's nodes, whose errors name the node by its number."""
    if network.key is None and not network.insecure:
        secret = network.directory / state.SECRET_FILE
        try:
            gone = not secret.read_bytes().strip()
        except FileNotFoundError:
            gone = True
        except OSError:  # there, but not this user's to read
            gone = False
        if gone:
            raise GossipError(
                f"this network's secret {secret} is gone or empty, so no command can talk to "
                "its nodes: gossip stop-network stops them, and gossip start-network --resume "
                "brings them back with a new one"
            )
        raise GossipError(
            f"cannot read this network's secret ({state.SECRET_FILE} in its run directory "
            f"{network.directory}): run gossip as the user who started it"
        )
    return GossipClient(entry.address, network.key, name=f"node {entry.number}")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def plan(
    neighbours: dict[int, list[int]],
    port_origin: int,
    max_peers: int,
    description: str,
    insecure: bool = False,
) -> NetworkState:
    """The state of a network about to start: every node's port and starting peers."""
    last_port = port_origin + max(neighbours)
    if port_origin < 1 or last_port > 65535:
        raise UsageError(
            f"ports {port_origin + 1}-{last_port} do not exist: choose a --port-origin "
            f"between 1 and {65535 - max(neighbours)}"
        )
    nodes = {
        n: NodeEntry(number=n, host=HOST, port=port_origin + n, peers=peers)
        for n, peers in neighbours.items()
    }
    return NetworkState(port_origin, max_peers, description, nodes, insecure=insecure)


def start(network: NetworkState) -> Path:
    """Launch the planned network; return once every node accepts connections.

    Nothing stands in the way first: no process of an earlier network in this run
    directory, every port free. What a network stopped here left (its plan, secret, stores
    and logs) is set aside meanwhile, and deleted only once the new one runs: a start that
    fails puts it back.
    """
    directory = network.directory
    _check_free(directory, network)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # messages and logs are the user's business
    aside = directory / f".replaced-{os.getpid()}"
    aside.mkdir()
    for old in left_by(directory):
        old.rename(aside / old.name)
    done = False
    try:
        if not network.insecure:
            network.key = network.key or new_secret()  # a network file brings the shared one
            state.write_secret(directory / state.SECRET_FILE, network.key)
        network.started = time.time()
        state.save(network, directory)
        (directory / "supervisor.log").unlink(missing_ok=True)
        _own(directory, network, "start")
        with state.signals_held(*HELD):  # the start is done: what it replaces goes whole
            done = True
            shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        if done:  # interrupted as it ended: the network runs, and its command says so
            raise
        # Nothing ran here before (checked above), so what runs now is this start's: an
        # interrupt after its supervisor reported, before it was written down, leaves it
        # running where no command would think to stop it.
        stop_processes(directory)
        for new in [*directory.glob("node-*"), directory / state.SECRET_FILE]:
            new.unlink(missing_ok=True)
        for old in aside.iterdir():
            old.rename(directory / old.name)
        aside.rmdir()
        raise
    return directory


def resume(directory: Path, key: bytes | None = None) -> NetworkState:
    """Start a stopped network again, each node with the messages and peers it had.

    ``key``: the secret a network file names, should the run directory have lost its copy.
    """
    network = state.load(directory)
    if network is None and state.processes_of(directory):
        raise GossipError(state.not_running(directory, None))  # it runs, unreadable
    if network is None and (directory / state.STATE_FILE).exists():
        raise GossipError(
            f"cannot resume: the network's state file {directory / state.STATE_FILE} cannot "
            "be read (damaged or edited?); its nodes' messages stay in their stores there: "
            "mend or restore the file, or start afresh with gossip start-network, which "
            "deletes them"
        )
    if network is None:
        raise GossipError(
            f"no stopped network to resume in {directory}: start one with gossip start-network"
        )
    local = [e for e in network.nodes.values() if e.local and not e.removed]
    if not any(state.store_path(directory, e.number).exists() for e in local):
        raise GossipError(
            f"the network stopped in {directory} kept no messages: start it afresh with "
            "gossip start-network"
        )
    _check_free(directory, network)
    if network.key is None and not network.insecure:  # lost: its nodes take another
        network.key = key or new_secret()
        state.write_secret(directory / state.SECRET_FILE, network.key)
    with state.change(directory, network) as latest:  # read by the supervisor it starts
        latest.started = time.time()
        for entry in local:  # a pause held the processes that stopped, not the new ones
            _unpause(latest, entry.number)
    try:
        _own(directory, network, "resume")
    except BaseException:  # as a start does: what an interrupt left running goes again
        stop_processes(directory)
        raise
    return network


def left_by(directory: Path) -> list[Path]:
    """What a network stopped in ``directory`` left there: its plan, secret, stores and
    logs (not the pictures drawn there, nor the supervisor's log and the locks)."""
    left = list(directory.glob("node-*"))
    return left + [
        p for p in (directory / state.SECRET_FILE, directory / state.STATE_FILE) if p.exists()
    ]


def forget(directory: Path) -> None:
    """Delete what a network stopped in ``directory`` left there, its supervisor's log and
    locks too, and the directory if nothing else is in it (a picture drawn there stays)."""
    rest = [directory / n for n in ("supervisor.log", state.LOCK_FILE, state.ACTING_LOCK_FILE)]
    for path in [*left_by(directory), *rest]:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: the user's files stay
        directory.rmdir()


def _check_free(directory: Path, network: NetworkState) -> None:
    """GossipError, saying what is in the way, if this network cannot start here now.

    What a start killed halfway had set aside is put back first.
    """
    for aside in directory.glob(".replaced-*"):
        if _process_lives(aside.name.removeprefix(".replaced-")):
            continue
        latest = state.load(directory)
        if latest is None or latest.supervisor_pid == 0:  # killed before its network ran
            kept = {old.name for old in aside.iterdir()}
            made = [*directory.glob("node-*"), directory / state.SECRET_FILE]
            for new in [*made, directory / state.STATE_FILE]:
                if new.name not in kept:
                    new.unlink(missing_ok=True)
            for old in aside.iterdir():
                os.replace(old, directory / old.name)  # over what the killed start made
        shutil.rmtree(aside, ignore_errors=True)
    if state.load(directory) is None and state.processes_of(directory):
        raise GossipError(state.not_running(directory, network))
    running = state.running(directory)
    if running is not None:
        raise GossipError(
            f"a network is already running {running.where()}: stop it with "
            f"gossip stop-network --port-origin {running.port_origin}, or choose another "
            "--port-origin"
            if not running.name
            else f"{running.label} already runs here: stop it with gossip stop-network --config "
            "and its network file"
        )
    for entry in network.nodes.values():
        if entry.local and not entry.removed and not _port_free(entry.address):
            raise GossipError(
                f"port {entry.port} of {entry.host} (node {entry.number}) is in use by "
                f"another program: stop it, or choose another --port-origin{hint(network)}"
            )


def _process_lives(pid: str) -> bool:
    """Whether the process of this id (as text) still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _port_free(address: tuple[str, int]) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
    return True


def _own(directory: Path, network: NetworkState, mode: str) -> None:
    """Launch the supervisor that owns this host's nodes (``start``, ``resume``, ``adopt``)
    and record it and its nodes' pids."""
    supervisor, result = _launch(directory, [mode])
    if "pids" not in result:
        if mode == "start":
            (directory / state.STATE_FILE).unlink(missing_ok=True)
        advice = hint(network) if result.get("port_in_use") else ""
        what = {"start": "start", "resume": "resume", "adopt": "take over the nodes of"}[mode]
        raise GossipError(f"could not {what} the network: {result.get('error')}{advice}")
    with state.change(directory, network) as latest:
        if mode == "adopt" and latest.supervisor_pid == state.STOPPED:
            # stop-network will find this adopter and end it
            raise _stopped_meanwhile(network, directory)
        latest.supervisor_pid = supervisor
        for number, pid in result["pids"].items():
            latest.nodes[int(number)].pid = int(pid)


def _launch(directory: Path, args: list[str]) -> tuple[int, dict[str, Any]]:
    """Start a supervisor in a session of its own; its pid and the report it gave.

    A report without ``pids`` says why the start failed; that supervisor is gone. One
    interrupted while it starts nodes is ended, and ends them; one that adopts running
    nodes is left to: ended, it ended every node it had taken over.
    """
    env = dict(os.environ)
    package_root = str(Path(gossip.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with open(directory / "supervisor.log", "ab") as errors:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", state.SUPERVISOR_MODULE, str(directory), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=directory,
            env=env,
            start_new_session=True,
        )
    try:
        assert supervisor.stdout is not None
        line = supervisor.stdout.readline()
        supervisor.stdout.close()
    except BaseException:
        if args[:1] != ["adopt"]:
            supervisor.terminate()
            supervisor.wait()
        raise
    try:
        result: dict[str, Any] = json.loads(line)
    except ValueError:
        result = {"error": f"the supervisor stopped; see {directory / 'supervisor.log'}"}
    if "pids" not in result:
        try:
            supervisor.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            supervisor.kill()
    return supervisor.pid, result


def rejoin(directory: Path, network: NetworkState, number: int) -> NodeEntry:
    """Start node ``number`` again (or for the first time, for add-node) in the running network.

    The supervisor that owns the host's nodes forks it, so it has the same owner as the
    rest. It keeps whatever history its store holds and joins the largest part of the
    network: through its last peers there, else through another node of that part.
    """
    rows = status(network)
    split = parts(live_links(rows))
    largest = max(split, key=len) if split else []
    result = _ask_owner(directory, network, {"start": number, "largest": largest})
    if "pids" not in result:
        advice = hint(network) if result.get("port_in_use") else ""
        raise GossipError(f"could not start node {number}: {result.get('error')}{advice}")
    with state.change(directory, network) as latest:
        latest.nodes[number].pid = int(result["pids"][str(number)])
        latest.nodes[number].removed = False
        _unpause(latest, number)
    entry = network.nodes[number]
    wait_until(lambda: bool(_peers_of(network, entry)), JOIN_TIMEOUT, interval=0.02)
    return entry


def _unpause(network: NetworkState, number: int) -> None:
    """Node ``number``'s process was removed or started anew: a pause held the old one,
    not this, so the conditions stop saying it is paused (nodes never read it: they need
    not be told)."""
    network.conditions = unpaused(network.conditions, number)


def unpaused(conditions: dict[str, Any], number: int) -> dict[str, Any]:
    """``conditions`` (``Conditions.as_dict``) without node ``number`` paused: what a new
    process of it starts under, and what the state says once it started."""
    paused = conditions.get("paused", [])
    if number not in paused:
        return conditions
    return {**conditions, "paused": [n for n in paused if n != number]}


def _ask_owner(
    directory: Path, network: NetworkState, request: dict[str, Any], timeout: float = READY_WAIT
) -> dict[str, Any]:
    """Send a request to the supervisor that owns the host's nodes; start one (adopting the
    nodes still running) if it died."""
    for attempt in range(2):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
                control.settimeout(timeout)
                control.connect(control_address(directory))
                late = {"until": time.time() + timeout}  # a hung supervisor must not act later
                control.sendall(json.dumps({**request, **late}).encode() + b"\n")
                line = control.makefile("rb").readline()
                if not line:  # it ended before answering (killed as hung, say): it is gone
                    raise ConnectionResetError
                reply: dict[str, Any] = json.loads(line)
                return reply
        except (ConnectionRefusedError, ConnectionResetError, FileNotFoundError):
            if attempt:
                break
            adopt(directory, network)
        except (OSError, ValueError) as exc:
            return {"error": f"the network's supervisor did not answer ({exc})"}
    return {"error": "the network's supervisor could not be started"}


def _stopped_meanwhile(network: NetworkState, directory: Path) -> GossipError:
    """Why a network marked stopped is not taken over: stopped, or on its way."""
    if state.processes_of(directory):
        return GossipError(
            f"the network {network.where()} is being stopped or started (stop-network or "
            "start-network --resume is under way, or was cut short): try again, and if it "
            "stays so, run gossip stop-network"
        )
    return GossipError(
        f"the network {network.where()} was stopped meanwhile: gossip start-network --resume "
        "brings it back"
    )


def adopt(directory: Path, network: NetworkState) -> None:
    """Start a supervisor for a network whose supervisor died: it takes over the nodes
    still running, mends the network and stops them all on stop-network. Not one that
    stop-network is stopping: that one stays stopped."""
    if state.pid_alive(network.supervisor_pid, directory):
        return
    if (state.load(directory) or network).supervisor_pid == state.STOPPED:
        raise _stopped_meanwhile(network, directory)
    try:
        _own(directory, network, "adopt")
    except GossipError:  # another command, or a node, may have adopted them just now
        if (state.load(directory) or network).supervisor_pid == state.STOPPED:
            raise _stopped_meanwhile(network, directory) from None

        def adopted() -> bool:
            latest = state.load(directory)
            return latest is not None and state.pid_alive(latest.supervisor_pid, directory)

        if not wait_until(adopted, STEP_TIMEOUT):
            raise
        network.supervisor_pid = (state.load(directory) or network).supervisor_pid


def _peers_of(network: NetworkState, entry: NodeEntry) -> list[Peer]:
    try:
        return client_for(network, entry).peers()
    except GossipError:
        return []


def restart(directory: Path, network: NetworkState, number: int) -> tuple[NodeEntry, Path | None]:
    """Bring back a node that died or was removed, with the messages it held; and where its
    store was kept aside if the node found it damaged (it then started empty)."""
    with state.acting(directory, network):
        return _restart(directory, network, number)


def _restart(directory: Path, network: NetworkState, number: int) -> tuple[NodeEntry, Path | None]:
    entry = network.nodes.get(number)
    if entry is None:
        raise GossipError(
            f"node {number} does not exist: this network has nodes {network.describe_numbers()}"
        )
    if not entry.local:
        raise GossipError(
            f"node {number} runs on host {entry.host}, not under a supervisor here: restart "
            f"it there with gossip restart-node {number}, or, if gossip start-node runs "
            f"it, with gossip start-node {number} again"
        )
    if state.pid_alive(entry.pid, directory):
        raise GossipError(
            f"node {number} is running: stop it first with gossip remove-node {number}"
        )
    writable(directory, network)
    # Killed a moment ago (kill -9, then restart-node): its port is free once it exited.
    wait_until(lambda: state.released(entry.pid, directory), STOP_TIMEOUT)
    began = time.time()
    entry = rejoin(directory, network, number)
    return entry, state.damaged_stores(directory, began).get(number)


def readmit(directory: Path, network: NetworkState, number: int) -> None:
    """Node ``number`` runs on another host, and this host's state says it was removed:
    if it answers, its own host restarted it since (each host keeps its own state, and
    that host's said so), so it is live again here too."""
    entry = network.nodes[number]
    client = surveyor(network, number)
    try:
        client.request(Command.PING)
    except GossipError:
        return
    entry.removed = False
    if any(e.local for e in network.nodes.values()):  # else a network file's view: no state
        with contextlib.suppress(GossipError), state.change(directory, network) as latest:
            latest.nodes[number].removed = False


def writable(directory: Path, network: NetworkState) -> None:
    """GossipError now if the state cannot be written (a full disk), before a command
    changes the network: else it would start or stop a node, then fail to say so, and
    the state would tell the next command otherwise."""
    with state.change(directory, network):
        pass


def add(directory: Path, network: NetworkState) -> NodeEntry:
    """Grow the network by one node, numbered and placed after the last one."""
    with state.acting(directory, network):
        return _add(directory, network)


def _add(directory: Path, network: NetworkState) -> NodeEntry:
    if network.name:
        raise GossipError(
            f"add-node grows a network started by port origin; {network.label} comes from a "
            "network file: add the node to the file and start the network again"
        )
    if not any(state.pid_alive(network.nodes[n].pid, directory) for n in network.live_numbers()):
        raise GossipError(
            "no node of this network is running for a new node to join: bring one back "
            "with gossip restart-node N first"
        )
    with state.change(directory, network) as latest:  # two add-nodes at once: two numbers
        number = max(latest.nodes) + 1
        port = latest.port_origin + number
        if port > 65535:
            raise GossipError(f"node {number} would need port {port}, which does not exist")
        latest.nodes[number] = NodeEntry(number=number, host=HOST, port=port, peers=[])
    try:
        return rejoin(directory, network, number)
    except GossipError:
        with state.change(directory, network) as latest:
            latest.nodes.pop(number, None)
        raise


def hint(network: NetworkState) -> str:
    """Advice for a start that failed on ports the kernel also hands to outgoing connections."""
    try:
        low, high = map(int, Path(EPHEMERAL_PORTS).read_text().split())
    except (OSError, ValueError):
        return ""
    ports = [e.port for e in network.nodes.values()]
    if max(ports) < low or min(ports) > high:
        return ""
    return (
        f" (ports {low}-{high} also serve outgoing connections here: "
        f"choose a --port-origin below {low - len(ports)})"
    )


def stop(directory: Path, network: NetworkState) -> int:
    """Stop every process of the network on this host; how many nodes were running.

    Its supervisor and every node it started go, found by their command lines, whether
    the supervisor still lives or not. The stores, the secret and the plan stay, so
    ``start-network --resume`` brings the network back with its messages; the logs stay
    too, for a look at what happened. A fresh start here replaces them all.
    """
    supervisors = {network.supervisor_pid} - {0, state.STOPPED}
    recorded = {e.pid for e in network.nodes.values() if e.local}
    # Looked up before the mark too: a node whose supervisor was killed stops by itself
    # once it reads the mark, and was running all the same.
    found = set(state.processes_of(directory))
    try:
        with state.change(directory, network) as latest:  # first: nothing adopts it now
            supervisors |= {latest.supervisor_pid} - {0, state.STOPPED}
            recorded |= {e.pid for e in latest.nodes.values() if e.local}
            latest.supervisor_pid = state.STOPPED
    except GossipError:  # the state cannot be written (a full disk): stop all the same
        pass
    everyone = {*supervisors, *found, *state.processes_of(directory)}
    # Nodes and supervisors share a command line. A node is written down, or forked by
    # another of the network's processes; a supervisor the state missed is neither.
    nodes = {p for p in everyone - supervisors if p in recorded or state.parent_of(p) in everyone}
    _end_all(everyone, directory)
    # On a full disk the pids stay written down: harmless, as a pid counts as the network's
    # only while its command line says so. The network is stopped all the same.
    with contextlib.suppress(GossipError), state.change(directory, network) as latest:
        latest.supervisor_pid = state.STOPPED
        for entry in latest.nodes.values():
            if entry.local:
                entry.pid = 0
    return len(nodes)


def unreadable(directory: Path | None) -> Path | None:
    """The run directory (``directory``, or the only one here when nothing else runs)
    of a network whose processes run but whose state cannot be read; None if there is
    no such network."""
    if directory is None:
        found = state.unreadable_running()
        if len(found) != 1 or state.running_networks():
            return None
        directory = found[0]
    if state.load(directory) is not None or not state.processes_of(directory):
        return None
    return directory


def stop_processes(directory: Path) -> int:
    """Stop every process of a run directory's network: how many there were. Found by
    their command lines, as ``stop`` finds them, so its state need not be readable (nor
    written yet, for a start cut short); the stores stay."""
    everyone = set(state.processes_of(directory))
    _end_all(everyone, directory)
    return len(everyone)


def _end_all(everyone: set[int], directory: Path) -> None:
    """Stop these processes of the run directory's network, then any found since."""
    for _ in range(STOP_ROUNDS):
        if not everyone:
            break
        _end(everyone, directory)
        # A command that found the supervisor gone just before the network was marked may
        # have started one meanwhile, and it a node: look again until nothing is left.
        everyone = set(state.processes_of(directory))


def _end(pids: set[int], directory: Path) -> None:
    """Stop these processes: SIGTERM, and SIGKILL for those still there after a while."""

    def gone() -> bool:
        return all(state.released(p, directory) for p in pids)

    for pid in pids:
        _signal(pid, signal.SIGTERM, directory)
        _signal(pid, signal.SIGCONT, directory)  # a paused node (gossip pause) stops too
    if not wait_until(gone, STOP_TIMEOUT):
        for pid in pids:
            _signal(pid, signal.SIGKILL, directory)
        wait_until(gone, STOP_TIMEOUT)


def _signal(pid: int, signum: int, directory: Path) -> None:
    if state.pid_alive(pid, directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def remove(directory: Path, network: NetworkState, number: int) -> dict[str, Any]:
    """Take a node out; return once its process is gone, the state says so, and the rest
    are mended: the new links are planned against the whole live network, so a node that
    was the only bridge between two parts leaves them joined (``gossip.repair``)."""
    if not any(e.local for e in network.nodes.values()):  # a network file's view: no state
        return _remove(directory, network, number)
    with state.acting(directory, network):
        return _remove(directory, network, number)


def _remove(directory: Path, network: NetworkState, number: int) -> dict[str, Any]:
    entry = network.node(number)
    if any(e.local for e in network.nodes.values()):  # else a network file's view: no state
        writable(directory, network)
    rows = [r for r in status(network) if not r.entry.removed]
    _refuse_last(directory, network, entry, rows)
    kept = {e for e in _edges(live_links(rows)) if number not in e}
    try:
        with contextlib.ExitStack() as committed:
            former, dead, hung, handed = _take_out(directory, network, entry, rows, committed)
    except KeyboardInterrupt:
        if not entry.removed:
            raise
        raise KeyboardInterrupt(
            f"interrupted once node {number} was removed; the rest link up by themselves "
            "(see gossip status)"
        ) from None
    mend(network)
    now = _live(network)
    return {
        "node": number,
        "former_peers": former,
        "links": sorted(list(edge) for edge in _edges(now) - kept),
        "given_up": sorted(list(edge) for edge in kept - _edges(now) if set(edge) <= set(now)),
        "parts": len(parts(now)),
        "handed_over": handed,
        "dead": dead,
        "hung": hung,
    }


def _refuse_last(
    directory: Path, network: NetworkState, entry: NodeEntry, rows: list[NodeStatus]
) -> None:
    """GossipError if no other node is up to take what the leaving node holds: removed,
    its messages (acknowledged, some as held for want of a peer) reached no node started
    after it, and the law is that they reach every one."""
    number = entry.number
    if any(r.state == "up" and r.entry.number != number for r in rows):
        return
    leaving = next((r for r in rows if r.entry.number == number), None)
    if leaving is not None and leaving.state == "up":
        holds = int(leaving.report.get("messages") or 0)
    else:
        holds = len(_stored(directory, number)) if entry.local else 0
    if holds:
        other = next((n for n in sorted(network.nodes) if n != number), number)
        messages = "1 message" if holds == 1 else f"{holds} messages"
        raise GossipError(
            f"no other node is up to take the {messages} node {number} holds: removed now, "
            f"they would reach no node started after it; bring another back first (gossip "
            f"restart-node {other}), or stop the network (gossip stop-network keeps them)"
        )


def _take_out(
    directory: Path,
    network: NetworkState,
    entry: NodeEntry,
    rows: list[NodeStatus],
    committed: contextlib.ExitStack,
) -> tuple[list[int], bool, bool, int]:
    """Have the node leave (or kill it), hand over what it alone held, and write it down as
    removed: its former peers, whether it was dead, or hung, and how many messages were
    handed over. From the leave on, Ctrl-C and SIGTERM wait (``committed``): a node gone
    but not written down as removed showed as down, and what it alone held was lost."""
    number = entry.number
    handed = 0
    try:
        if entry.local:
            _ask_owner(directory, network, {"hold": HOLD}, STEP_TIMEOUT)  # this command mends
        node = client_for(network, entry)
        node.timeout = STEP_TIMEOUT
        node.request(Command.PING)  # a hung node is found out in seconds, not at the leave's end
        node.timeout = STOP_TIMEOUT
        leaving = next((r.report for r in rows if r.entry.number == number), {})
        if leaving.get("messages") and not entry.local:  # a local one's store is read below
            held = node.read_messages("all", peek=True)
            handed = _hand_over(network, _as_copies(held), number, rows)
        committed.enter_context(state.signals_held(*HELD))
        reply = node.remove(introduce=False)
        former = [int(n) for n in reply.get("former_peers", [])]
        dead = hung = False
    except NodeUnreachable as exc:
        hung = entry.local and state.pid_alive(entry.pid, directory)
        if hung and exc.refused:
            raise  # it runs but does not listen: not ours to judge
        committed.enter_context(state.signals_held(*HELD))
        if hung:
            _signal(entry.pid, signal.SIGKILL, directory)  # it cannot leave by itself
        others = {n: network.nodes[n].address for n in network.live_numbers() if n != number}
        former = sorted(farewell(number, others, network.key, STEP_TIMEOUT))
        dead = True
    if entry.local and not wait_until(lambda: state.released(entry.pid, directory), STOP_TIMEOUT):
        _signal(entry.pid, signal.SIGKILL, directory)
    if entry.local:  # once gone, all it acknowledged is on its disk, to the last message
        with contextlib.suppress(GossipError):
            handed = _hand_over(network, _stored(directory, number), number, rows)
    entry.removed = True
    if any(e.local for e in network.nodes.values()):  # else a network file's view: no state
        with state.change(directory, network) as latest:
            latest.nodes[number].removed = True
            _unpause(latest, number)
    return former, dead, hung, handed


def _hand_over(
    network: NetworkState, held: list[HeldCopy], number: int, rows: list[NodeStatus]
) -> int:
    """Give the rest the messages a leaving node holds that they lack (``handed_over``),
    through the first live node on its side of a partition (a copy handed across went
    through the cut), else the first live node: the message must reach every node once
    the network can carry it, and none would carry it from a side of no live node. How
    many were handed over."""
    others = [r for r in rows if r.state == "up" and r.entry.number != number]
    if not others or not held:
        return 0
    cut = kept(network.conditions)
    others.sort(key=lambda r: cut.blocked(number, r.entry.number))  # its side first
    receiver = client_for(network, others[0].entry)
    theirs = {v.id for v in receiver.read_messages("all", peek=True)}
    copies = handed_over(held, theirs, others[0].entry.number)
    for copy in copies:
        receiver.request(Command.RELAY, copy)
    return len(copies)


def _as_copies(views: list[MessageView]) -> list[HeldCopy]:
    """A running node's messages as it hands them over (its reply to a read)."""
    return [(v.id, v.text, v.copies[0].path, v.sent) for v in views]


def _stored(directory: Path, number: int) -> list[HeldCopy]:
    """What a node that is gone holds on its disk, where every message it acknowledged
    is: a hand-over read from the running node would miss one it took before its leave.
    Nothing if the store cannot be read."""
    path = state.store_path(directory, number)
    if not path.exists():
        return []
    try:
        store = Store(path, writing=False)
        try:
            messages = store.load()[0]
        finally:
            store.close()
    except (sqlite3.Error, OSError):
        return []
    return [(m.id, m.text, m.copies[0].path, m.sent) for m in messages]


def mend(network: NetworkState) -> list[Step]:
    """Join the live nodes into one graph and pair up nodes short of peers, now, as
    planned against the whole network (``gossip.repair``); the steps asked for. Under the
    lab's partition each side is mended on its own, never across it, as the supervisor
    does: the nodes would refuse a link across it."""
    look = reported(network)
    links, wanted, groups = look.links, look.wanted, look.partition(network)
    steps = [
        step
        for side in (sides(links, groups) if groups else [links])
        for step in plan_repair(side, network.max_peers, wanted)
    ]
    for step in steps:
        carry_out(step, network)
    return steps


def _live(network: NetworkState) -> dict[int, list[int]]:
    """The topology as the nodes not removed report it now."""
    return reported(network).links


class Look(NamedTuple):
    """What the nodes not removed said, all asked at once (``reported``)."""

    links: dict[int, list[int]]
    """Each one's peers."""
    wanted: dict[int, int]
    """How many peers each aims for."""
    groups: list[list[int]]
    """The lab's partition most of them hold (none: []): what they refuse links across.
    On several hosts a partition made on another host reached the nodes and that host's
    state only, so a mender that planned from its own state would fight it."""

    def partition(self, network: NetworkState) -> list[list[int]]:
        """The partition to mend within: the nodes', else (none answered) the state's."""
        return self.groups if self.links else network.conditions.get("groups") or []


def reported(network: NetworkState, timeout: float = SURVEY_TIMEOUT) -> Look:
    """What the nodes not removed say, all asked at once. A node that does not answer in
    ``timeout`` (or refuses) is left out: it is down as far as mending goes. The CLI and
    the supervisor both plan from this."""
    numbers = sorted(n for n, e in network.nodes.items() if not e.removed)

    def ask(number: int) -> dict[str, Any] | None:
        try:
            node = client_for(network, network.nodes[number])
            node.timeout = timeout
            return node.status()
        except GossipError:
            return None

    answers = dict(zip(numbers, survey(numbers, ask), strict=True))
    reports = {n: r for n, r in answers.items() if r is not None}
    links = {n: _numbers(r.get("peers")) for n, r in reports.items()}
    wanted = {n: w if type(w := r.get("wanted")) is int else 0 for n, r in reports.items()}
    held = Counter(_groups(r.get("conditions")) for r in reports.values()).most_common(1)
    return Look(links, wanted, [list(g) for g in held[0][0]] if held else [])


def _groups(conditions: Any) -> tuple[tuple[int, ...], ...]:
    """The partition a node's report holds (a report is read as carefully as any frame:
    one that is not a partition is none)."""
    try:
        return conditions_from(conditions if isinstance(conditions, dict) else {}).groups
    except FrameError:
        return ()


def _numbers(listed: Any) -> list[int]:
    """A node's list of peers as its report gives it; what is not a node number is left
    out (a report is read as carefully as any frame)."""
    return [n for n in listed if type(n) is int] if isinstance(listed, list) else []


def _edges(links: dict[int, list[int]]) -> set[tuple[int, int]]:
    """The two-way links of a reported topology."""
    return {
        (min(a, b), max(a, b)) for a, peers in links.items() for b in peers if a in links.get(b, [])
    }


def carry_out(step: Step, network: NetworkState) -> None:
    """Ask a node to make its part of a repair step. One that fails is left: the next look
    of the supervisor plans again from what the nodes then report."""
    nodes = network.nodes
    if isinstance(step, Introduce):
        host, port = nodes[step.peer].address
        frame = encode_frame(Command.INTRODUCE, {"node": step.peer, "host": host, "port": port})
    elif isinstance(step, Swap):
        host, port = nodes[step.new].address
        frame = encode_frame(
            Command.SWAP, {"old": step.old, "node": step.new, "host": host, "port": port}
        )
    else:
        frame = encode_frame(Command.LEAVE, {"node": step.peer})
    node = GossipClient(nodes[step.at].address, network.key, STEP_TIMEOUT, f"node {step.at}")
    with contextlib.suppress(GossipError):
        node.exchange(frame)


def control_address(directory: Path) -> bytes:
    """The control socket of a run directory's supervisor (Linux abstract namespace: no
    file, so no length limit; SO_PEERCRED lets only the same user in)."""
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:32]
    return b"\0gossip-supervisor-" + digest.encode()


def await_spread(
    network: NetworkState,
    message_id: str,
    timeout: float,
    nodes: list[int] | None = None,
    interval: float = 0.01,
    progress: Callable[[dict[int, float]], None] | None = None,
) -> dict[int, float]:
    """Watch a message spread until every listed node (default: every live one) holds it.

    Returns when each first got it, by node: all of them, or those that had it when
    ``timeout`` ran out. Peeks, so watching leaves the message unread. ``progress`` is
    called after each look.
    """
    expected = set(network.live_numbers() if nodes is None else nodes)
    seen: dict[int, float] = {}

    def look(number: int) -> list[MessageView]:
        try:
            return surveyor(network, number).read_messages("all", peek=True)
        except GossipError:
            return []

    def everywhere() -> bool:
        waiting = sorted(expected - set(seen))
        for number, views in zip(waiting, survey(waiting, look), strict=True):
            seen.update((number, v.copies[0].arrived) for v in views if v.id == message_id)
        if progress:
            progress(seen)
        return expected <= set(seen)

    wait_until(everywhere, timeout, interval)
    return seen


def survey(numbers: list[int], ask: Callable[[int], Any]) -> list[Any]:
    """``ask(number)`` for every listed node, up to SURVEY_WORKERS at once; the answers in
    the order listed. An exception ``ask`` raises comes out here."""
    if len(numbers) <= 1:
        return [ask(n) for n in numbers]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SURVEY_WORKERS, len(numbers))) as pool:
        return list(pool.map(ask, numbers))


def surveyor(network: NetworkState, number: int) -> GossipClient:
    """A client of node ``number`` that waits at most SURVEY_TIMEOUT for each answer."""
    client = client_for(network, network.nodes[number])
    client.timeout = SURVEY_TIMEOUT
    return client


def status(network: NetworkState) -> list[NodeStatus]:
    """Ask every node of the network how it is, all at once; the rows in node order.

    A node that does not answer within SURVEY_TIMEOUT (a hung one too) is down; one that
    turns the connection away, as every connection it serves at once is open, is busy;
    one whose answer is wrong (another network's secret on its port, say) is failing, and
    the others are still shown.
    """

    def row(number: int) -> NodeStatus:
        entry = network.nodes[number]
        client = surveyor(network, number)  # a secret this user cannot read fails them all
        try:
            report = client.status()
        except NodeUnreachable:
            return NodeStatus(entry, "removed" if entry.removed else "down", {})
        except NodeBusy:
            return NodeStatus(entry, "busy", {})
        except GossipError as exc:
            return NodeStatus(entry, "failing", {"error": str(exc)})
        return NodeStatus(entry, "up", report)

    return survey(sorted(network.nodes), row)


def live_links(rows: list[NodeStatus]) -> dict[int, list[int]]:
    """The topology as the live nodes report it: each up node and the peers it holds."""
    return {r.entry.number: list(r.report.get("peers", [])) for r in rows if r.state == "up"}


def holders_of(
    network: NetworkState, text: str, numbers: list[int] | None = None
) -> dict[int, MessageView]:
    """Every answering node's record of the newest message with this text, by node: of
    the listed nodes, by default every live one.

    Peeks, so looking leaves the message unread. Empty if no node holds such a message.
    """

    def look(number: int) -> list[MessageView] | None:
        try:
            views = surveyor(network, number).read_messages("all", peek=True)
        except GossipError:
            return None  # not answering: not a holder
        return [v for v in views if v.text == text]

    numbers = network.live_numbers() if numbers is None else numbers
    answers = zip(numbers, survey(numbers, look), strict=True)
    found = {number: views for number, views in answers if views is not None}
    candidates = [v for views in found.values() for v in views]
    if not candidates:
        return {}
    newest = max(candidates, key=lambda v: v.sent).id
    return {n: v for n, views in found.items() for v in views if v.id == newest}
