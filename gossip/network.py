"""Start, stop and shrink a network from the command line's side.

Starting writes the plan to the run directory and launches ``gossip.supervisor`` in a
session of its own; the rest talks to the nodes as any client does.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gossip
from gossip import state
from gossip.auth import new_secret
from gossip.client import GossipClient, NodeUnreachable, Peer, farewell, introduce
from gossip.protocol import MessageView
from gossip.state import GossipError, NetworkState, NodeEntry

HOST = "127.0.0.1"
STOP_TIMEOUT = 10.0
JOIN_TIMEOUT = 5.0
"""Seconds a rejoining node gets to find peers before the command reports it anyway."""
EPHEMERAL_PORTS = "/proc/sys/net/ipv4/ip_local_port_range"


def client_for(network: NetworkState, entry: NodeEntry) -> GossipClient:
    """A client of one of the network's nodes, whose errors name the node by its number."""
    if network.key is None and not network.insecure:
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
        raise GossipError(
            f"ports {port_origin + 1}-{last_port} do not exist: choose a --port-origin "
            f"between 1 and {65535 - max(neighbours)}"
        )
    nodes = {
        n: NodeEntry(number=n, host=HOST, port=port_origin + n, peers=peers)
        for n, peers in neighbours.items()
    }
    return NetworkState(port_origin, max_peers, description, nodes, insecure=insecure)


def start(network: NetworkState) -> Path:
    """Launch the planned network; return once every node accepts connections."""
    directory = network.directory
    running = state.running(directory)
    if running is not None:
        raise GossipError(
            f"a network is already running {running.where()}: stop it with "
            f"gossip stop-network --port-origin {running.port_origin}, or choose another "
            "--port-origin"
            if not running.name
            else f"{running.label} already runs here: stop it with gossip stop-network --config"
        )
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # messages and logs are the user's business
    for old in [*directory.glob("node-*.log*"), *directory.glob("node-*.db*")]:
        old.unlink()
    (directory / state.SECRET_FILE).unlink(missing_ok=True)
    if not network.insecure:
        network.key = network.key or new_secret()  # a network file brings the shared one
        state.write_secret(directory / state.SECRET_FILE, network.key)
    network.started = time.time()
    state.save(network, directory)
    (directory / "supervisor.log").unlink(missing_ok=True)
    supervisor, result = _launch(directory, [])
    if "pids" not in result:
        (directory / state.STATE_FILE).unlink(missing_ok=True)
        advice = hint(network) if result.get("port_in_use") else ""
        raise GossipError(f"could not start the network: {result.get('error')}{advice}")
    network.supervisor_pid = supervisor
    for number, pid in result["pids"].items():
        network.nodes[int(number)].pid = int(pid)
    state.save(network, directory)
    return directory


def _launch(directory: Path, args: list[str]) -> tuple[int, dict[str, Any]]:
    """Start a supervisor in a session of its own; its pid and the report it gave.

    A report without ``pids`` says why the start failed; that supervisor is gone.
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

    It keeps whatever history its store holds and asks its last peers to take it in; a
    live node picked at random is its contact if it has none to ask.
    """
    entry = network.nodes[number]
    others = [n for n in network.live_numbers() if n != number and _may_run(network.nodes[n])]
    contact = [str(random.choice(others))] if others else []
    supervisor, result = _launch(directory, [str(number), *contact])
    if "pids" not in result:
        advice = hint(network) if result.get("port_in_use") else ""
        raise GossipError(f"could not start node {number}: {result.get('error')}{advice}")
    entry.pid = int(result["pids"][str(number)])
    entry.supervisor = supervisor
    entry.removed = False
    state.save(network, directory)
    wait_until(lambda: bool(_peers_of(network, entry)), JOIN_TIMEOUT, interval=0.02)
    return entry


def _peers_of(network: NetworkState, entry: NodeEntry) -> list[Peer]:
    try:
        return client_for(network, entry).peers()
    except GossipError:
        return []


def restart(directory: Path, network: NetworkState, number: int) -> NodeEntry:
    """Bring back a node that died or was removed, with the messages it held."""
    entry = network.nodes.get(number)
    if entry is None:
        raise GossipError(
            f"node {number} does not exist: this network has nodes {network.describe_numbers()}"
        )
    if not entry.local:
        raise GossipError(
            f"node {number} runs on host {entry.host}: restart it there, with the same command"
        )
    if state.pid_alive(entry.pid):
        raise GossipError(
            f"node {number} is running: stop it first with gossip remove-node {number}"
        )
    return rejoin(directory, network, number)


def _may_run(entry: NodeEntry) -> bool:
    """Whether a node may be running: its process lives, or it runs on another host."""
    return not entry.local or state.pid_alive(entry.pid)


def add(directory: Path, network: NetworkState) -> NodeEntry:
    """Grow the network by one node, numbered and placed after the last one."""
    if network.name:
        raise GossipError(
            f"add-node grows a network started by port origin; {network.label} comes from a "
            "network file: add the node to the file and start the network again"
        )
    number = max(network.nodes) + 1
    port = network.port_origin + number
    if port > 65535:
        raise GossipError(f"node {number} would need port {port}, which does not exist")
    if not any(state.pid_alive(network.nodes[n].pid) for n in network.live_numbers()):
        raise GossipError("no node of this network is running for a new node to join")
    network.nodes[number] = NodeEntry(number=number, host=HOST, port=port, peers=[])
    state.save(network, directory)
    try:
        return rejoin(directory, network, number)
    except GossipError:
        del network.nodes[number]
        state.save(network, directory)
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
    """Stop every node and the supervisor; return how many nodes were still running.

    What only a running network needs goes with it (its state, secret and stores); the
    logs stay, for a look at what happened, until the next start on these ports.
    """
    pids = [e.pid for e in network.nodes.values() if state.pid_alive(e.pid)]
    supervisors = {network.supervisor_pid, *(e.supervisor for e in network.nodes.values())}
    everyone = [*sorted(supervisors - {0}), *pids]
    for pid in everyone:
        _signal(pid, signal.SIGTERM)
    if not wait_until(lambda: not any(state.pid_alive(p) for p in everyone), STOP_TIMEOUT):
        for pid in everyone:
            _signal(pid, signal.SIGKILL)
    for spent in [directory / state.STATE_FILE, directory / state.SECRET_FILE]:
        spent.unlink(missing_ok=True)
    for store in directory.glob("node-*.db*"):
        store.unlink()
    return len(pids)


def _signal(pid: int, signum: int) -> None:
    if state.pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def remove(directory: Path, network: NetworkState, number: int) -> dict[str, Any]:
    """Ask a node to leave; return once its process is gone and the state says so."""
    entry = network.node(number)
    try:
        result = client_for(network, entry).remove()
    except NodeUnreachable:
        if state.pid_alive(entry.pid):
            raise
        result = stand_in_for_dead(network, number)
    if not wait_until(lambda: not state.pid_alive(entry.pid), STOP_TIMEOUT):
        _signal(entry.pid, signal.SIGKILL)
    entry.removed = True
    if network.supervisor_pid:  # a network file's view, on a host running none of it: no state
        state.save(network, directory)
    return result


def stand_in_for_dead(network: NetworkState, number: int) -> dict[str, Any]:
    """Do what a dead node can no longer do when it is removed: say goodbye for it.

    Only the command line knows every node, so it asks each live one to drop the dead
    node; those that had it as a peer are its former peers, and get introduced to each
    other just as a leaving node would introduce them.
    """
    from gossip.node import leave_plan  # the node core is not needed by everyday commands

    others = {n: network.nodes[n].address for n in network.live_numbers() if n != number}
    former = farewell(number, others, network.key)
    links = introduce(former, leave_plan(former), network.key)
    links += bridge(network, number)
    return {"node": number, "former_peers": sorted(former), "links": links, "dead": True}


def bridge(network: NetworkState, gone: int) -> list[list[int]]:
    """Join the parts a dead node left the live nodes split into; the links made.

    Nodes heal by walking over the links they have, so when the dead node was the only
    bridge between two parts, they cannot find each other. The command line knows every
    node: it introduces a node with a free slot in each part to one in the next.
    """
    rows = [r for r in status(network) if r.entry.number != gone]
    split = parts(live_links(rows))
    free = {
        r.entry.number: r.entry.address
        for r in rows
        if r.state == "up" and len(r.report.get("peers", [])) < network.max_peers
    }
    links = []
    for here, there in itertools.pairwise(split):
        a = next((n for n in here if n in free), None)
        b = next((n for n in there if n in free), None)
        if a is not None and b is not None:
            links += introduce({a: free[a], b: free[b]}, [(a, b)], network.key)
    return links


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

    def everywhere() -> bool:
        for number in expected - set(seen):
            try:
                views = client_for(network, network.nodes[number]).fetch("all", peek=True)
            except GossipError:
                continue
            seen.update((number, v.copies[0].arrived) for v in views if v.id == message_id)
        if progress:
            progress(seen)
        return expected <= set(seen)

    wait_until(everywhere, timeout, interval)
    return seen


@dataclass(frozen=True)
class NodeStatus:
    """One row of ``gossip status``: what the node says of itself, or that it is down."""

    entry: NodeEntry
    state: str
    """``up``, ``down`` (not answering) or ``removed``."""
    report: dict[str, Any]


def status(network: NetworkState) -> list[NodeStatus]:
    """Ask every node of the network how it is, in node order."""
    rows = []
    for number in sorted(network.nodes):
        entry = network.nodes[number]
        try:
            report = client_for(network, entry).status()
        except NodeUnreachable:
            rows.append(NodeStatus(entry, "removed" if entry.removed else "down", {}))
        else:
            rows.append(NodeStatus(entry, "up", report))
    return rows


def live_links(rows: list[NodeStatus]) -> dict[int, list[int]]:
    """The topology as the live nodes report it: each up node and the peers it holds."""
    return {r.entry.number: list(r.report.get("peers", [])) for r in rows if r.state == "up"}


def parts(links: dict[int, list[int]]) -> list[list[int]]:
    """The connected parts of a reported topology, a link counting whichever end reports it."""
    around: dict[int, set[int]] = {n: set() for n in links}
    for node, peers in links.items():
        for peer in peers:
            if peer in around:
                around[node].add(peer)
                around[peer].add(node)
    found: list[list[int]] = []
    unseen = set(around)
    while unseen:
        part, frontier = set(), [min(unseen)]
        while frontier:
            node = frontier.pop()
            if node not in part:
                part.add(node)
                frontier.extend(around[node] - part)
        unseen -= part
        found.append(sorted(part))
    return found


def holders_of(network: NetworkState, text: str) -> dict[int, MessageView]:
    """Every answering node's record of the newest message with this text, by node.

    Peeks, so looking leaves the message unread. Empty if no node holds such a message.
    """
    found: dict[int, list[MessageView]] = {}
    for number in network.live_numbers():
        try:
            views = client_for(network, network.nodes[number]).fetch("all", peek=True)
        except GossipError:
            continue
        found[number] = [v for v in views if v.text == text]
    candidates = [v for views in found.values() for v in views]
    if not candidates:
        return {}
    newest = max(candidates, key=lambda v: v.sent).id
    return {n: v for n, views in found.items() for v in views if v.id == newest}
