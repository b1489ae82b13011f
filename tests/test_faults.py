"""The laws that hold under every fault (SPEC.md), checked on real node processes driven
through the real CLI: removals one after another, a mass kill -9 while messages flow, a
node left without peers, the supervisor killed, a full disk, a lost or corrupt store, a
stopped network resumed, a retried send.

After each fault the same laws are checked, not one expected outcome:

1. every acknowledged message reaches every live node;
2. the live nodes form one connected graph, every link two-way;
3. no node holds more than max-peers peers, at any look;
4. stop-network leaves no process, and a refused command deletes nothing;
5. the same message id twice is one message.

The seeded sweeps run a few seeds by default and many more with ``pytest -m slow``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import gossip.network
from gossip import state
from gossip.client import GossipClient
from gossip.errors import GossipError
from gossip.network import (
    _ask_owner,
    control_address,
    live_links,
    parts,
    remove,
    status,
    survey,
    surveyor,
    wait_until,
)
from gossip.state import NetworkState
from tests.core import ISSUE
from tests.networks import (
    Net,
    Networks,
    Result,
    free_origin,
    gossip_cli,
    gossip_processes,
    send,
)

HEAL_TIMEOUT = 10.0
"""Seconds after a fault within which the laws must hold again."""

MAX_PEERS = 3
NODES = 16


# The laws, as the nodes themselves report the network


def look(network: NetworkState) -> dict[int, list[int]]:
    """Every answering node and the peers it holds now, asked all at once."""
    return live_links(status(network))


def assert_within_max_peers(links: dict[int, list[int]], max_peers: int = MAX_PEERS) -> None:
    """Law 3 holds at every look, not only once the network has settled."""
    crowded = {n: sorted(p) for n, p in links.items() if len(set(p)) > max_peers}
    assert not crowded, f"nodes over max-peers {max_peers}: {crowded}"


def topology_problems(links: dict[int, list[int]], expected: set[int]) -> list[str]:
    """What breaks law 2: nodes missing, one-way links, links to nodes not up, parts."""
    found = []
    if set(links) != expected:
        found.append(f"nodes up: {sorted(links)}; expected {sorted(expected)}")
    for number, peers in sorted(links.items()):
        for peer in peers:
            if peer not in links:
                found.append(f"node {number} holds peer {peer}, which is not up")
            elif number not in links[peer]:
                found.append(f"link {number} -> {peer} is one-way")
    split = parts(links)
    if len(split) > 1:
        found.append(f"the live nodes are split into {len(split)} parts: {split}")
    return found


def held_ids(network: NetworkState, numbers: list[int]) -> dict[int, list[str]]:
    """The ids of the messages each node holds (one entry per message it holds)."""

    def ask(number: int) -> list[str]:
        try:
            return [v.id for v in surveyor(network, number).read_messages("all", peek=True)]
        except GossipError:
            return []

    return dict(zip(numbers, survey(numbers, ask), strict=True))


def assert_laws(
    net: Net,
    expected: Iterable[int],
    acknowledged: Iterable[str] = (),
    timeout: float = HEAL_TIMEOUT,
) -> dict[int, list[int]]:
    """Wait until the expected nodes are up, one two-way graph, each within max-peers
    (checked at every look), each holding every acknowledged message; that graph."""
    network = net.state
    nodes = set(expected)
    wanted = set(acknowledged)
    links: dict[int, list[int]] = {}
    problems = ["no look yet"]

    def hold() -> bool:
        links.clear()
        links.update(look(network))
        assert_within_max_peers(links, network.max_peers)
        problems[:] = topology_problems(links, nodes)
        if not problems and wanted:
            for number, ids in held_ids(network, sorted(nodes)).items():
                if lacking := wanted - set(ids):
                    problems.append(
                        f"node {number} lacks {len(lacking)} of {len(wanted)} acknowledged "
                        f"messages, such as {sorted(lacking)[:3]}"
                    )
        return not problems

    assert wait_until(hold, timeout, interval=0.1), "\n".join([*problems, f"links: {links}"])
    return links


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and text.endswith("\n")


def kill_all(pids: Iterable[int]) -> None:
    """kill -9 every one of them, all at once, and wait until they are gone."""
    pids = list(pids)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not any(state.pid_alive(p) for p in pids), 5), pids


def fingerprints(directory: Path) -> dict[str, str]:
    """What a user still needs in a run directory: the stores and the secret, by content."""
    files = [*directory.glob("node-*.db"), directory / state.SECRET_FILE]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.exists()}


class Sender(threading.Thread):
    """Sends messages to random nodes, as fast as they answer, until stopped; remembers
    the ids of those acknowledged (``post`` returned) with the node that took each."""

    def __init__(self, network: NetworkState, rng: random.Random, batch: int = 1) -> None:
        super().__init__(daemon=True)
        self.network = network
        self.rng = rng
        self.batch = batch
        """Messages a request: one (``post``), or a run of them (``post_all``)."""
        self.acknowledged: dict[str, int] = {}
        self.refused = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for i in range(1_000_000):
                if self.halt.is_set():
                    return
                target = self.rng.choice(sorted(self.network.nodes))
                entry = self.network.nodes[target]
                client = GossipClient(entry.address, self.network.key, timeout=5)
                texts = [f"load {i}.{j} to {target}" for j in range(self.batch)]
                try:
                    receipts = client.post_all(texts) if self.batch > 1 else [client.post(texts[0])]
                except GossipError:
                    self.refused += 1
                else:
                    self.acknowledged.update((r.id, target) for r in receipts)
                self.halt.wait(0.01)
        except BaseException as exc:  # surfaced by stop(), in the test's own thread
            self.error = exc

    def stop(self) -> dict[str, int]:
        self.halt.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the sender did not stop"
        if self.error is not None:
            raise self.error
        return dict(self.acknowledged)


class Flood:
    """Three clients sending runs of 20 messages to random nodes (``Sender``s), until
    stopped: copies then travel in runs, as in a real flood."""

    def __init__(self, network: NetworkState, seed: int) -> None:
        self.senders = [Sender(network, random.Random(seed * 10 + i), batch=20) for i in range(3)]
        for sender in self.senders:
            sender.start()

    def count(self) -> int:
        """Messages acknowledged so far."""
        return sum(len(sender.acknowledged) for sender in self.senders)

    def stop(self) -> dict[str, int]:
        """Stop every client; the ids acknowledged, with the node that took each."""
        acknowledged: dict[str, int] = {}
        for sender in self.senders:
            acknowledged.update(sender.stop())
        return acknowledged


# 1. The issue's case: the only bridge leaves


ISSUE_PEERS = ISSUE
"""Node 6 is the only bridge between nodes 2, 9, 10, 11, 12 and the rest (through 10)."""


@dataclass
class FileNet:
    """A network started from a network file with explicit peers, all on this host."""

    file: Path
    net: Net
    """Its run directory, for the state, the secret and peeking at nodes."""

    def cli(self, *args: str) -> Result:
        return gossip_cli(*args, "--config", str(self.file), cwd=self.net.cwd)


@contextlib.contextmanager
def file_network(
    name: str, peers: dict[int, list[int]], tmp_path: Path, home: Path, cwd: Path
) -> Iterator[FileNet]:
    """Write a network file (``max_peers = 3``, these peers, free loopback ports, a secret
    made with new-secret), start it, and stop it again whatever happens."""
    port = free_origin(len(peers))
    secret = tmp_path / f"{name}.secret"
    made = gossip_cli("new-secret", str(secret))
    assert made.code == 0, made.err
    lines = [f'name = "{name}"', "max_peers = 3", f'secret = "{secret.name}"', "", "[nodes]"]
    lines += [f'{n} = "127.0.0.1:{port + n}"' for n in peers]
    lines += ["", "[peers]", *(f"{n} = {p}" for n, p in peers.items())]
    file = tmp_path / f"{name}.toml"
    file.write_text("\n".join(lines) + "\n")
    network = FileNet(file, Net(0, home / f"network-{name}", cwd))
    try:
        started = network.cli("start-network")
        assert started.code == 0, started.err
        yield network
    finally:
        network.cli("stop-network")
    assert not gossip_processes(str(network.net.directory)), "stop-network left processes"


def message_id_of(result: Result) -> str:
    assert result.code == 0, result.err
    return result.out.rsplit("(id ", 1)[1].split(")", 1)[0]


def test_removing_the_only_bridge_leaves_the_rest_connected(
    tmp_path: Path, gossip_home: Path, networks: Networks
) -> None:
    with file_network("issue", ISSUE_PEERS, tmp_path, gossip_home, networks.cwd) as lab:
        net = lab.net
        assert_laws(net, ISSUE_PEERS)

        removed = lab.cli("remove-node", "6")
        assert removed.code == 0, removed.err
        lines = removed.out.splitlines()
        assert lines[0] == "Removed Gossip-Node-6.", removed.out
        assert lines[1] == "Its former peers: 1, 4, 10.", removed.out
        assert lines[2].startswith("New links: "), removed.out
        assert "parts" not in removed.out, removed.out
        # One part as soon as the command returns: nobody had to heal anything yet.
        links = look(net.state)
        assert_within_max_peers(links)
        assert len(parts(links)) == 1, f"split right after remove-node: {parts(links)}"
        rest = set(ISSUE_PEERS) - {6}
        assert_laws(net, rest, timeout=3)

        message_id = message_id_of(lab.cli("send-message", "1", "across the gap"))
        assert 9 in net.wait_delivered(message_id, nodes=sorted(rest))
        assert_laws(net, rest, [message_id])


# 2. Removals one after another


def remove_and_check(net: Net, victim: int, live: set[int], remove: Callable[..., Result]) -> None:
    """Remove ``victim`` with the CLI; the rest must be one part the moment it returns,
    within max-peers, and soon every link two-way."""
    removed = remove("remove-node", str(victim))
    assert removed.code == 0, removed.err
    assert removed.out.splitlines()[0] == f"Removed Gossip-Node-{victim}.", removed.out
    assert "parts that max-peers does not let join" not in removed.out, removed.out
    live.remove(victim)
    links = look(net.state)
    assert_within_max_peers(links)
    assert set(links) == live, f"after removing {victim}: up {sorted(links)}"
    assert len(parts(links)) == 1, f"after removing {victim}: {parts(links)}\n{removed.out}"
    assert_laws(net, live, timeout=3)


SWEEP_SEEDS = [
    1,
    *(pytest.param(seed, marks=pytest.mark.slow) for seed in range(2, 14)),
]


@pytest.mark.parametrize("seed", SWEEP_SEEDS)
def test_removing_half_the_nodes_one_by_one_never_splits_the_rest(
    networks: Networks, seed: int
) -> None:
    net = networks.start("random", "--seed", str(seed))
    rng = random.Random(seed)
    live = set(range(1, NODES + 1))
    for _ in range(NODES // 2):
        remove_and_check(net, rng.choice(sorted(live)), live, net.cli)
    message_id = send(net, rng.choice(sorted(live)), "to the eight left")
    assert set(net.wait_delivered(message_id, nodes=sorted(live))) == live
    assert_laws(net, live, [message_id])


def random_tree(rng: random.Random, count: int = NODES) -> dict[int, list[int]]:
    """A random tree of at most three peers a node: every inner node is a bridge."""
    peers: dict[int, list[int]] = {1: []}
    for number in range(2, count + 1):
        parent = rng.choice([n for n, p in peers.items() if len(p) < MAX_PEERS])
        peers[number] = [parent]
        peers[parent].append(number)
    return peers


def cut_vertices(links: dict[int, list[int]]) -> list[int]:
    """The nodes whose loss would split the rest."""
    return [
        victim
        for victim in sorted(links)
        if len(parts({n: [p for p in ps if p != victim] for n, ps in links.items() if n != victim}))
        > 1
    ]


TREE_SEEDS = [pytest.param(seed, marks=pytest.mark.slow) for seed in range(1, 13)]


@pytest.mark.parametrize("seed", TREE_SEEDS)
def test_removing_bridges_one_by_one_never_splits_the_rest(
    tmp_path: Path, gossip_home: Path, networks: Networks, seed: int
) -> None:
    """A tree, and each time a node whose loss would split it if one can be found: only
    a repair planned against the whole network keeps it in one piece."""
    rng = random.Random(seed)
    tree = random_tree(rng)
    with file_network(f"tree-{seed}", tree, tmp_path, gossip_home, networks.cwd) as lab:
        net = lab.net
        live = set(tree)
        assert_laws(net, live)
        for _ in range(NODES // 2):
            bridges = cut_vertices(look(net.state))
            victim = rng.choice(bridges or sorted(live))
            remove_and_check(net, victim, live, lab.cli)
        message_id = message_id_of(lab.cli("send-message", str(min(live)), "to the tree left"))
        assert set(net.wait_delivered(message_id, nodes=sorted(live))) == live
        assert_laws(net, live, [message_id])


# 3. Half the network killed at once while messages flow


CRASH_SEEDS = [
    # Seeds whose crash cuts survivors off from the rest, so the supervisor must join them
    # (with its repair turned off, seeds 7 and 8 fail; 8 runs with the slow sweeps).
    7,
    *(pytest.param(seed, marks=pytest.mark.slow) for seed in [*range(1, 7), *range(8, 15)]),
]


@pytest.mark.parametrize("seed", CRASH_SEEDS)
def test_a_mass_crash_loses_no_acknowledged_message(networks: Networks, seed: int) -> None:
    net = networks.start("random", "--seed", str(seed))
    network = net.state
    rng = random.Random(seed)
    victims = sorted(rng.sample(sorted(network.nodes), NODES // 2))
    sender = Sender(network, random.Random(seed + 1000))
    sender.start()
    try:
        assert wait_until(lambda: len(sender.acknowledged) >= 20, 10), "no message went out"
        kill_all(network.nodes[v].pid for v in victims)
        before = len(sender.acknowledged)
        assert wait_until(lambda: len(sender.acknowledged) >= before + 20, 10)
        for victim in victims:
            restarted = net.cli("restart-node", str(victim))
            assert restarted.code == 0, restarted.err
    finally:
        acknowledged = sender.stop()
    assert len(acknowledged) >= 60, f"{len(acknowledged)} acknowledged, {sender.refused} refused"
    assert_laws(net, network.nodes, acknowledged)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_removals_one_after_another_while_clients_send_runs_lose_no_acknowledged_message(
    networks: Networks, seed: int
) -> None:
    """A node that has said goodbye still listens until its process ends: a message it
    took then had no peer to go to, was acknowledged as held, and left with it."""
    net = networks.start("random", "--seed", str(seed))
    rng = random.Random(seed)
    live = set(net.state.nodes)
    flood = Flood(net.state, seed)
    try:
        assert wait_until(lambda: flood.count() >= 200, 20)
        for victim in rng.sample(sorted(live), 5):
            removed = net.cli("remove-node", str(victim))
            assert removed.code == 0, removed.err
            live.discard(victim)
    finally:
        acknowledged = flood.stop()
    assert len(acknowledged) >= 400, f"{len(acknowledged)} acknowledged"
    assert_laws(net, live, acknowledged)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_nodes_killed_during_a_flood_catch_up_within_seconds_of_their_restart(
    networks: Networks, seed: int
) -> None:
    """Two nodes and the supervisor die, then three clients send 2,000 messages in runs;
    the two come back lacking them all, and hold catch-up rounds back to back."""
    net = networks.start("random", "--seed", str(seed))
    rng = random.Random(seed)
    victims = rng.sample(sorted(net.state.nodes), 2)
    kill_all([net.state.supervisor_pid, *(net.state.nodes[v].pid for v in victims)])
    flood = Flood(net.state, seed)
    try:
        assert wait_until(lambda: flood.count() >= 2000, 30)
    finally:
        acknowledged = flood.stop()
    for victim in victims:
        restarted = net.cli("restart-node", str(victim))
        assert restarted.code == 0, restarted.err
    assert_laws(net, net.state.nodes, acknowledged)


# 4. A node with no peer to take the copy


def test_a_message_held_by_a_lone_node_reaches_the_others_once_linked(networks: Networks) -> None:
    net = networks.start("circular", "-n", "3")
    net.kill(2)
    net.kill(3)
    assert wait_until(lambda: not net.client(1).peers(), HEAL_TIMEOUT), net.client(1).peers()

    held = net.cli("send-message", "1", "nobody to tell")
    assert held.code == 0, held.err
    assert held.out.startswith("Held by Gossip-Node-1: 'nobody to tell' (id "), held.out
    assert "It has no peer to pass it to right now" in held.out, held.out
    message_id = held.out.split("(id ", 1)[1].split(")", 1)[0]

    for number in (2, 3):
        restarted = net.cli("restart-node", str(number))
        assert restarted.code == 0, restarted.err
    net.wait_delivered(message_id, nodes=[1, 2, 3])
    assert_laws(net, [1, 2, 3], [message_id])


# 5. The supervisor killed


def kill_supervisor(net: Net) -> None:
    pid = net.state.supervisor_pid
    assert state.pid_alive(pid), "the network has no live supervisor"
    kill_all([pid])


def test_a_killed_supervisor_leaves_the_nodes_serving_and_nothing_behind(
    networks: Networks,
) -> None:
    net = networks.start("circular", "-n", "6")
    first = send(net, 1, "before the supervisor died")
    net.wait_delivered(first)
    nodes = {n: e.pid for n, e in net.state.nodes.items()}
    kill_supervisor(net)

    # The nodes serve on, with nobody to own them (no command has adopted them yet).
    message_id = net.client(4).post("after the supervisor died").id
    net.wait_delivered(message_id)
    assert all(state.pid_alive(pid) for pid in nodes.values())

    kept = fingerprints(net.directory)
    assert {"secret", *(f"node-{n}.db" for n in nodes)} <= set(kept), kept
    again = net.cli("start-network", "circular", "-n", "6")
    assert again.code == 1, again.out
    assert one_line(again.err) and not again.out, again.err
    assert "already running" in again.err, again.err
    assert fingerprints(net.directory) == kept, "a refused start-network changed the stores"
    assert all(state.pid_alive(pid) for pid in nodes.values()), "a refused start killed nodes"
    assert_laws(net, nodes, [first, message_id])

    stopped = net.cli("stop-network")
    assert stopped.code == 0, stopped.err
    assert not gossip_processes(str(net.directory)), "stop-network left processes behind"
    assert not any(state.pid_alive(pid) for pid in nodes.values())

    fresh = net.cli("start-network", "circular", "-n", "6")
    assert fresh.code == 0, fresh.err
    assert_laws(net, nodes)


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if int((proc / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(proc.name))
    return found


# Slow, so one at a time: beside another worker, the command's supervisor once had not
# adopted the nodes 10 s after they were continued (a node's own adopter may have won the
# race; not confirmed). Alone, it has passed in every CI run.
@pytest.mark.slow
@pytest.mark.parametrize("interrupt", [signal.SIGINT, signal.SIGKILL])
def test_a_command_interrupted_while_its_supervisor_adopts_leaves_the_nodes_serving(
    networks: Networks, interrupt: signal.Signals
) -> None:
    """The supervisor dead, ``status`` starts one to adopt the nodes and waits for its
    report; Ctrl-C'd meanwhile, it ended that supervisor (and a killed one broke its
    report's pipe), which ended every node it had just taken over: no node was left."""
    net = networks.start("circular", "-n", "4")
    first = send(net, 1, "before the supervisor died")
    net.wait_delivered(first)
    nodes = {n: e.pid for n, e in net.state.nodes.items()}
    for pid in nodes.values():  # stopped, none of them starts an adopter of its own
        os.kill(pid, signal.SIGSTOP)
    try:
        kill_supervisor(net)
        with open(net.directory / state.LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the adopter waits, as behind a slow command
            command = [sys.executable, "-m", "gossip", "status", "--port-origin", str(net.origin)]
            looking = subprocess.Popen(
                command, cwd=net.cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                assert wait_until(lambda: bool(children_of(looking.pid)), 30), "no adopter"
                adopter = children_of(looking.pid)[0]
                looking.send_signal(interrupt)
                _, err = looking.communicate(timeout=30)
            finally:
                looking.kill()
                looking.wait()
        if interrupt == signal.SIGINT:
            assert looking.returncode == 130 and err == "gossip: interrupted\n", err
    finally:
        for pid in nodes.values():
            os.kill(pid, signal.SIGCONT)
    assert wait_until(lambda: net.state.supervisor_pid == adopter, 10), "it never adopted"
    later = send(net, 3, "after the interrupted command")
    assert_laws(net, nodes, [first, later])
    assert state.pid_alive(adopter), "the adopter left"
    assert all(state.pid_alive(pid) for pid in nodes.values()), "a node was ended"


def test_a_node_restarted_after_the_supervisor_died_is_owned_and_stopped(
    networks: Networks,
) -> None:
    net = networks.start("circular", "-n", "6")
    first = send(net, 2, "before the crashes")
    net.wait_delivered(first)
    kill_supervisor(net)
    net.kill(4)
    during = net.client(1).post("while node 4 was down").id

    restarted = net.cli("restart-node", "4")
    assert restarted.code == 0, restarted.err
    assert restarted.out.startswith("Restarted Gossip-Node-4 "), restarted.out
    assert state.pid_alive(net.state.supervisor_pid), "nobody adopted the network"
    assert_laws(net, range(1, 7), [first, during])

    pids = [e.pid for e in net.state.nodes.values()]
    stopped = net.cli("stop-network")
    assert stopped.code == 0, stopped.err
    assert not gossip_processes(str(net.directory)), "stop-network left processes behind"
    assert not any(state.pid_alive(pid) for pid in pids)


def test_the_adopting_supervisor_mends_a_split(networks: Networks) -> None:
    net = networks.start("circular", "-n", "8")
    first = send(net, 1, "before the split")
    net.wait_delivered(first)
    dead = net.state.supervisor_pid
    kill_supervisor(net)
    looked = net.cli("status")  # any command adopts the nodes
    assert looked.code == 0, looked.err
    adopter = net.state.supervisor_pid
    assert adopter != dead and state.pid_alive(adopter), "status did not adopt the network"

    # Two deaths cut the ring in two: 3-4-5 and 7-8-1; no walk can cross the gap.
    net.kill(2)
    net.kill(6)
    live = {1, 3, 4, 5, 7, 8}
    assert_laws(net, live, [first])
    message_id = send(net, 4, "across the mended split")
    assert_laws(net, live, [first, message_id])
    assert state.pid_alive(adopter)


# 6. A full disk


def mount_tmpfs(directory: Path, size: str) -> None:
    """A small filesystem of its own at ``directory``; skip the test where that cannot be."""
    if sys.platform != "linux":
        pytest.skip("a full disk is simulated with a tmpfs mount: Linux only")
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("needs the mount and umount commands")
    directory.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"this machine cannot mount a tmpfs: {done.stderr.strip()}")


def unmount(directory: Path) -> None:
    """Unmount, waiting a little for processes that still held files there to be gone."""

    def unmounted() -> bool:
        done = subprocess.run(["umount", str(directory)], capture_output=True, timeout=30)
        return done.returncode == 0

    if not wait_until(unmounted, 5, interval=0.1):
        subprocess.run(["umount", "-l", str(directory)], capture_output=True, timeout=30)


def fill(path: Path) -> None:
    """Write to ``path`` until the disk under it has no byte left."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = 1 << 20
        while chunk:
            try:
                os.write(descriptor, b"\0" * chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def on_a_small_disk(
    gossip_home: Path, cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Net, Path]]:
    """A ring of 5 whose run directory is on a 4 MiB tmpfs of its own (GOSSIP_HOME there),
    holding one message; the network and where to put a filler. Everything it started is
    stopped, and the tmpfs unmounted, whatever happens."""
    disk = gossip_home / "small-disk"
    mount_tmpfs(disk, "4m")
    try:
        monkeypatch.setenv("GOSSIP_HOME", str(disk))
        origin = free_origin()
        net = Net(origin, disk / f"network-{origin}", cwd)
        try:
            started = net.cli("start-network", "circular", "-n", "5")
            assert started.code == 0, started.err
            yield net, disk / "filler"
        finally:
            (disk / "filler").unlink(missing_ok=True)
            net.cli("stop-network")
            for pid in gossip_processes(str(disk)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    finally:
        unmount(disk)


def process_state(pid: int) -> str:
    """A process's state letter, as ps shows it: T once SIGSTOP held it."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def no_traceback(result: Result) -> bool:
    """Whatever happened, the user got at most one line about it, as every error is."""
    return "Traceback" not in result.err and result.err.count("\n") <= 1


def test_a_message_a_full_disk_cannot_store_is_refused_and_never_spreads(
    networks: Networks, gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with on_a_small_disk(gossip_home, networks.cwd, monkeypatch) as (net, filler):
        before = send(net, 1, "while there was room")
        net.wait_delivered(before)

        fill(filler)
        refused = net.cli("send-message", "2", "no room for this", "--id", "diskfull-1")
        assert refused.code == 1, refused.out
        assert one_line(refused.err) and not refused.out, refused.err
        assert "could not store the message" in refused.err, refused.err

        def anywhere() -> bool:
            held = held_ids(net.state, list(range(1, 6)))
            return any("diskfull-1" in ids for ids in held.values())

        assert not wait_until(anywhere, 2.5, interval=0.25), "a refused message spread"

        filler.unlink()
        sent = net.cli("send-message", "2", "no room for this", "--id", "diskfull-1")
        assert sent.code == 0, sent.err
        assert sent.out.startswith("Sent to Gossip-Node-2: 'no room for this' (id diskfull-1)")
        net.wait_delivered("diskfull-1")
        assert_laws(net, range(1, 6), [before, "diskfull-1"])
        for number, ids in held_ids(net.state, list(range(1, 6))).items():
            assert ids.count("diskfull-1") == 1, f"node {number} holds {ids}"


def test_on_a_full_disk_commands_fail_with_one_line_and_stop_network_stops_everything(
    networks: Networks, gossip_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with on_a_small_disk(gossip_home, networks.cwd, monkeypatch) as (net, filler):
        before = send(net, 1, "while there was room")
        net.wait_delivered(before)
        kept = fingerprints(net.directory)

        fill(filler)
        # Each is refused before it changes anything: it stopped (or started) the node, then
        # failed to write that down, and the state told the next command otherwise.
        removal = net.cli("remove-node", "3")
        assert no_traceback(removal) and removal.code == 1, removal.err
        assert "free some space" in removal.err, removal.err
        assert state.pid_alive(net.state.nodes[3].pid), "it stopped node 3 all the same"
        net.kill(3)
        for command in ("pause", "resume"):
            if command == "resume":  # a pause made while there was room
                filler.unlink()
                assert net.cli("pause", "2").code == 0
                fill(filler)
            changed = net.cli(command, "2")
            assert no_traceback(changed) and changed.code == 1, changed.err
            assert "free some space" in changed.err, changed.err
            stopped = process_state(net.state.nodes[2].pid) == "T"
            assert stopped == (command == "resume"), f"{command} acted all the same"
        running = set(gossip_processes(str(net.directory)))
        restart = net.cli("restart-node", "3")
        assert no_traceback(restart) and restart.code == 1, restart.err
        assert "free some space" in restart.err, restart.err
        assert set(gossip_processes(str(net.directory))) == running, "it started node 3"
        stopped = net.cli("stop-network")
        assert stopped.code == 0 and stopped.out.startswith("Stopped"), stopped.err
        assert not gossip_processes(str(net.directory)), "stop-network left processes behind"
        assert set(fingerprints(net.directory)) == set(kept), "a store or the secret is gone"

        filler.unlink()
        resumed = net.cli("start-network", "--resume")
        assert resumed.code == 0, resumed.err
        live = net.state.live_numbers()
        assert_laws(net, live, [before])


# 7. A lost or corrupt store


@pytest.mark.parametrize("damage", ["deleted", "corrupt"])
def test_a_node_that_lost_its_store_gets_back_even_its_own_messages(
    networks: Networks, damage: str
) -> None:
    net = networks.start("circular", "-n", "6")
    own = [send(net, 3, f"from node 3, #{i}") for i in range(3)]
    other = send(net, 5, "from node 5")
    for message_id in [*own, other]:
        net.wait_delivered(message_id)

    removed = net.cli("remove-node", "3")
    assert removed.code == 0, removed.err
    store = net.directory / "node-3.db"
    if damage == "deleted":
        for part in net.directory.glob("node-3.db*"):
            part.unlink()
    else:
        store.write_bytes(b"this is not an SQLite database\n" * 300)

    restarted = net.cli("restart-node", "3")
    assert restarted.code == 0, restarted.err
    assert restarted.out.startswith("Restarted Gossip-Node-3 "), restarted.out
    if damage == "corrupt":
        kept = list(net.directory.glob("node-3.db.corrupt-*"))
        assert kept, "the corrupt store was not kept"
        said = f"with an empty store: its own was damaged, and is kept as {net.directory}"
        assert said in restarted.out, restarted.out
    else:
        assert "with no message held" in restarted.out and "damaged" not in restarted.out, (
            restarted.out
        )

    everything = [*own, other]
    for message_id in everything:
        net.wait_delivered(message_id, nodes=[3])
    assert_laws(net, range(1, 7), everything)
    views = {v.id: v for v in net.peek(3)}
    for message_id in everything:
        origin = 3 if message_id in own else 5
        for copy in views[message_id].copies:
            assert copy.path[0] == origin and copy.path[-1] == 3, copy.path
            assert len(set(copy.path)) == len(copy.path), copy.path


# 8. A stopped network resumed


def test_a_stopped_network_resumes_with_its_messages(networks: Networks) -> None:
    net = networks.start("random", "-n", "8", "--seed", "5")
    sent = [send(net, n, f"kept #{n}") for n in (1, 4, 7)]
    for message_id in sent:
        net.wait_delivered(message_id)

    stopped = net.cli("stop-network")
    assert stopped.code == 0, stopped.err
    assert "Their messages are kept in" in stopped.out, stopped.out
    assert "start-network --resume" in stopped.out, stopped.out
    assert not gossip_processes(str(net.directory))
    for part in net.directory.glob("node-6.db-*"):  # the log would hold the pages whole
        part.unlink()
    (net.directory / "node-6.db").write_bytes(b"not a database\n" * 300)  # what it held is
    # on its peers too: it comes back empty and catches up, and the resume says so

    resumed = net.cli("start-network", "--resume")
    assert resumed.code == 0, resumed.err
    assert resumed.out.startswith("Resumed 8 nodes "), resumed.out
    assert "The store of node 6 was damaged: it is kept as " in resumed.out, resumed.out
    assert resumed.out.count("was damaged") == 1, resumed.out
    assert_laws(net, range(1, 9), sent)
    message_id = send(net, 8, "after the resume")
    net.wait_delivered(message_id)
    assert_laws(net, range(1, 9), [*sent, message_id])

    assert net.cli("stop-network").code == 0
    fresh = net.cli("start-network", "random", "-n", "8", "--seed", "5")
    assert fresh.code == 0, fresh.err
    assert all(not net.peek(n) for n in range(1, 9)), "a fresh start kept old messages"


# 9. A retried send


def test_the_same_id_twice_is_one_message(networks: Networks) -> None:
    net = networks.start("circular", "-n", "6")
    first = net.cli("send-message", "1", "hello", "--id", "abc")
    assert first.code == 0, first.err
    assert first.out.strip() == "Sent to Gossip-Node-1: 'hello' (id abc)", first.out
    again = net.cli("send-message", "1", "hello", "--id", "abc")
    assert again.code == 0, again.err
    assert "already had message abc: nothing more was sent" in again.out, again.out
    net.wait_delivered("abc")
    elsewhere = net.cli("send-message", "5", "hello", "--id", "abc")
    assert elsewhere.code == 0, elsewhere.err
    assert "already had message abc" in elsewhere.out, elsewhere.out

    assert_laws(net, range(1, 7), ["abc"])
    for number, ids in held_ids(net.state, list(range(1, 7))).items():
        assert ids.count("abc") == 1, f"node {number} holds {ids}"
    assert len(net.wait_copies(5, "abc", 1).copies) <= 2  # one flood: at most one per peer


def test_a_store_that_cannot_be_opened_stops_the_restart_and_is_kept(
    networks: Networks,
) -> None:
    """Not damaged, just unusable (a folder in its place): one line, and nothing moved."""
    net = networks.start("circular", "-n", "4")
    assert net.cli("remove-node", "3").code == 0
    for part in net.directory.glob("node-3.db*"):
        part.unlink()
    (net.directory / "node-3.db").mkdir()
    result = net.cli("restart-node", "3")
    assert result.code == 1
    assert result.err.startswith("gossip: could not start node 3: node 3: its store ")
    assert "cannot be opened" in result.err and result.err.count("\n") == 1
    assert (net.directory / "node-3.db").is_dir()
    assert not list(net.directory.glob("node-3.db.corrupt-*"))
    message_id = send(net, 1, "the others go on")
    net.wait_delivered(message_id, nodes=[1, 2, 4])


BAD_CONTROL_REQUESTS = [
    b'{"start": 1e400}\n',
    b'{"start": "2"}\n',
    b'{"start": true}\n',
    b'{"start": 99}\n',
    b'{"start": 2, "largest": "all"}\n',
    b'{"start": 2, "largest": [1.5]}\n',
    b'{"hold": 1.5}\n',
    b"[1, 2]\n",
    b"\xff\xfe not json\n",
    b"{" * 5000 + b"\n",
    b"",
]


def test_no_control_request_takes_the_supervisor_down(networks: Networks) -> None:
    net = networks.start("circular", "-n", "3")
    supervisor = net.state.supervisor_pid
    for line in BAD_CONTROL_REQUESTS:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
            control.settimeout(10)
            control.connect(control_address(net.directory))
            control.sendall(line)
            control.shutdown(socket.SHUT_WR)
            reply = control.makefile("rb").readline()
        assert b"error" in reply, (line[:40], reply)
        assert state.pid_alive(supervisor, net.directory), line[:40]
    message_id = send(net, 1, "still served")
    net.wait_delivered(message_id)
    assert net.cli("restart-node", "2").err.startswith("gossip: node 2 is running")


# Commands at once, a supervisor nobody replaces by hand, a hung node


def test_commands_run_at_once_keep_each_others_changes(networks: Networks) -> None:
    net = networks.start("random", "-n", "12", "--seed", "24")
    with ThreadPoolExecutor(max_workers=6) as pool:
        removals = list(pool.map(lambda n: net.cli("remove-node", str(n)), [2, 4, 6, 8]))
        additions = list(pool.map(lambda _: net.cli("add-node"), range(2)))
    assert all(r.code == 0 for r in [*removals, *additions]), [r.err for r in removals]
    network = net.state
    assert {n for n, e in network.nodes.items() if e.removed} == {2, 4, 6, 8}
    assert sorted(network.nodes) == list(range(1, 15)), "two new numbers, one each"
    for number in (13, 14):
        assert state.pid_alive(network.nodes[number].pid, net.directory)
    live = network.live_numbers()
    message_id = send(net, 1, "after the rush")
    assert_laws(net, live, [message_id])


@pytest.mark.slow  # about 6 s: five rounds of a kill and two commands at once
def test_a_restart_and_a_removal_of_one_node_at_once_leave_one_outcome(
    networks: Networks,
) -> None:
    """Both said they had done it, and once the state called the node removed while it
    ran: no command could reach it, or stop it, again."""
    net = networks.start("circular", "-n", "6")
    for _ in range(5):
        if state.pid_alive(net.state.nodes[3].pid, net.directory):
            net.kill(3)
        with ThreadPoolExecutor(max_workers=2) as pool:
            restart = pool.submit(net.cli, "restart-node", "3")
            removal = pool.submit(net.cli, "remove-node", "3")
            results = [restart.result(), removal.result()]
        assert all(no_traceback(r) for r in results), [r.err for r in results]
        entry = net.state.nodes[3]
        running = state.pid_alive(entry.pid, net.directory)
        assert running != entry.removed, f"removed={entry.removed} while running={running}"
        assert [r.code for r in results].count(0) >= 1, [r.err for r in results]
        if entry.removed:
            assert net.cli("restart-node", "3").code == 0
    assert_laws(net, range(1, 7), [send(net, 3, "node 3 is in")])


@pytest.mark.slow  # about 3 s
def test_a_node_started_for_a_command_killed_meanwhile_is_written_down(
    networks: Networks,
) -> None:
    """add-node killed once it asked for the node: the node ran, and the state gave it no
    pid, so pause, restart-node and an adopting supervisor took it for down."""
    net = networks.start("circular", "-n", "4")

    def answers(number: int) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", net.origin + number)) == 0

    # killed once the state lists the node; once the node listens, before the command
    # could write its pid down
    for number, moment in ((5, lambda n: n in net.state.nodes), (6, answers)):
        adding = subprocess.Popen(
            [sys.executable, "-m", "gossip", "add-node", "--port-origin", str(net.origin)],
            cwd=net.cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert wait_until(lambda n=number, m=moment: m(n), 20, interval=0.001)
        finally:
            adding.kill()
            adding.wait()

        def settled(n: int = number) -> bool:
            return not answers(n) or state.pid_alive(net.state.nodes[n].pid, net.directory)

        assert wait_until(settled, 20), f"node {number} runs, and the state has no pid for it"
        if not state.pid_alive(net.state.nodes[number].pid, net.directory):
            assert net.cli("restart-node", str(number)).code == 0
        assert not net.state.nodes[number].removed


def test_a_killed_supervisor_is_replaced_and_mends_without_a_command(
    networks: Networks,
) -> None:
    net = networks.start("circular", "-n", "8")
    supervisor = net.state.supervisor_pid
    os.kill(supervisor, signal.SIGKILL)
    net.kill(3)
    net.kill(7)  # a ring of 8 without 3 and 7 is two parts no walk can join

    def replaced() -> bool:
        latest = state.load(net.directory)
        return latest is not None and latest.supervisor_pid not in (0, supervisor)

    assert wait_until(replaced, HEAL_TIMEOUT), "no node started a supervisor"
    assert state.pid_alive(net.state.supervisor_pid, net.directory)
    acknowledged = [GossipClient(net.state.nodes[1].address, net.state.key).post("no command").id]
    assert_laws(net, [1, 2, 4, 5, 6, 8], acknowledged)
    stopped = net.cli("stop-network")
    assert stopped.code == 0 and "(6 nodes were running)" in stopped.out, stopped.out
    assert not gossip_processes(str(net.directory))


def test_stop_network_counts_the_orphaned_nodes_that_stop_at_its_mark(
    networks: Networks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes whose supervisor was killed stop by themselves once the network is marked
    stopped. Those that did so before stop-network looked for them went uncounted: it said
    "3 nodes were running" of 6 on a busy machine. Here they all stop before it looks."""
    net = networks.start("circular", "-n", "4")
    os.kill(net.state.supervisor_pid, signal.SIGKILL)
    nodes = [entry.pid for entry in net.state.nodes.values()]
    change = state.change
    marks: list[int] = []

    @contextlib.contextmanager
    def slow_to_look(directory: Path, network: NetworkState) -> Iterator[NetworkState]:
        with change(directory, network) as latest:
            yield latest
        marks.append(latest.supervisor_pid)
        if len(marks) == 1:  # the mark is written: the nodes read it and go
            assert wait_until(lambda: not any(state.pid_alive(p) for p in nodes), 10)

    monkeypatch.setattr(state, "change", slow_to_look)
    assert gossip.network.stop(net.directory, net.state) == 4
    assert marks[0] == state.STOPPED
    assert not gossip_processes(str(net.directory))


@pytest.mark.slow  # about 17 s: two takeovers, each after the supervisor's 3 s of silence
def test_a_stopped_supervisor_is_taken_for_hung_replaced_and_mends_a_split(
    networks: Networks,
) -> None:
    """SIGSTOP leaves the supervisor alive but deaf: it must not keep the network split
    (a stopped supervisor mends nothing, and it is still its nodes' parent)."""
    net = networks.start("circular", "-n", "8")
    supervisor = net.state.supervisor_pid
    os.kill(supervisor, signal.SIGSTOP)
    try:
        net.kill(3)
        net.kill(7)  # two parts no walk can join: only a supervisor sees the split
        acknowledged = [net.client(1).post("while the supervisor is stopped").id]

        def replaced() -> bool:
            latest = state.load(net.directory)
            return latest is not None and latest.supervisor_pid not in (0, supervisor)

        assert wait_until(replaced, HEAL_TIMEOUT), "no node took over from the stopped one"
        assert wait_until(lambda: not state.pid_alive(supervisor), 5), "the hung one lives on"
        assert state.pid_alive(net.state.supervisor_pid, net.directory)
        acknowledged.append(net.client(5).post("after the takeover").id)
        assert_laws(net, [1, 2, 4, 5, 6, 8], acknowledged)
        restarted = net.cli("restart-node", "3")
        assert restarted.code == 0, restarted.err
        assert_laws(net, [1, 2, 3, 4, 5, 6, 8], acknowledged)

        # The adopter is no node's parent: stopped, it is found out all the same.
        supervisor = net.state.supervisor_pid
        os.kill(supervisor, signal.SIGSTOP)
        net.kill(1)
        net.kill(5)  # 2-3-4 | 6 | 8: apart until a supervisor links them
        acknowledged.append(net.client(3).post("while the adopter is stopped").id)
        assert wait_until(replaced, HEAL_TIMEOUT), "no node took over from the adopter"
        assert_laws(net, [2, 3, 4, 6, 8], acknowledged)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(supervisor, signal.SIGCONT)
    stopped = net.cli("stop-network")
    assert stopped.code == 0 and "(5 nodes were running)" in stopped.out, stopped.out
    assert not gossip_processes(str(net.directory))


@pytest.mark.slow  # about 15 s
def test_a_stopped_supervisor_is_replaced_when_the_lowest_node_is_stopped_too(
    networks: Networks,
) -> None:
    """The lowest-numbered node acts for the host's nodes; stopped itself, it cannot, so
    the next one awake does."""
    net = networks.start("circular", "-n", "8")
    supervisor, first = net.state.supervisor_pid, net.state.nodes[1].pid
    os.kill(supervisor, signal.SIGSTOP)
    os.kill(first, signal.SIGSTOP)
    try:
        net.kill(5)  # 2-3-4 | 6-7-8 once node 1's peers drop it: only a supervisor joins them
        acknowledged = [net.client(2).post("with node 1 and the supervisor stopped").id]

        def replaced() -> bool:
            latest = state.load(net.directory)
            return latest is not None and latest.supervisor_pid not in (0, supervisor)

        assert wait_until(replaced, HEAL_TIMEOUT), "no awake node took over"
        assert_laws(net, [2, 3, 4, 6, 7, 8], acknowledged)
    finally:
        for pid in (first, supervisor):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.slow  # about 30 s: each race run three times
@pytest.mark.parametrize(
    "racers", [["add-node"], ["remove-node", "3"], ["remove-node", "3", "&", "add-node"]]
)
def test_stop_network_racing_other_commands_leaves_nothing_running(
    networks: Networks, racers: list[str]
) -> None:
    """stop-network kills the supervisor; a command started with it finds the supervisor
    gone and adopts the network: that must not bring the stopped network back to life."""
    commands: list[list[str]] = [[]]
    for word in racers:
        if word == "&":
            commands.append([])
        else:
            commands[-1].append(word)
    for _ in range(3):
        net = networks.start("-n", "6", "circular")
        with ThreadPoolExecutor(len(commands) + 1) as pool:
            stopping = pool.submit(net.cli, "stop-network")
            others = [pool.submit(net.cli, *command) for command in commands]
            results = [stopping.result(), *(f.result() for f in others)]
        assert results[0].code == 0, results[0].err
        for result in results:
            assert "Traceback" not in result.err, result.err
            assert result.code == 0 or len(result.err.strip().splitlines()) == 1, result.err
        directory = str(net.directory)
        assert wait_until(lambda: not gossip_processes(directory), 5), (  # noqa: B023
            f"still running after stop-network: {gossip_processes(directory)}"
        )
        resumed = net.cli("start-network", "--resume")
        assert resumed.code == 0, resumed.err
        assert net.cli("stop-network").code == 0
        assert not gossip_processes(directory)


def test_a_message_a_node_took_after_the_hand_over_does_not_leave_with_it(
    networks: Networks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """remove-node hands the rest what the node holds, then asks it to leave; a client's
    message acknowledged in between (held: the node has no peer) is handed over from the
    node's disk once it is gone, where every message it acknowledged is."""
    net = networks.start("circular", "-n", "5")
    assert _ask_owner(net.directory, net.state, {"hold": 10}, 2.0) == {"held": True}
    net.kill(2)
    net.kill(4)  # node 3's only peers
    assert wait_until(lambda: not net.client(3).peers(), HEAL_TIMEOUT)
    late: list[str] = []
    leave = GossipClient.remove

    def leave_after_a_late_message(self: GossipClient, introduce: bool = True) -> Any:
        receipt = net.client(3).post("taken just before the leave")
        assert receipt.held
        late.append(receipt.id)
        return leave(self, introduce)

    monkeypatch.setattr(GossipClient, "remove", leave_after_a_late_message)
    result = remove(net.directory, net.state, 3)
    assert result["handed_over"] == 1
    assert_laws(net, [1, 5], late)


@pytest.mark.slow  # about 6 s: the everyday run stays under five minutes
def test_a_hung_node_can_be_removed(networks: Networks) -> None:
    net = networks.start("circular", "-n", "5")
    pid = net.state.nodes[3].pid
    os.kill(pid, signal.SIGSTOP)
    try:
        result = net.cli("remove-node", "3")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert result.code == 0, result.err
    assert result.out.startswith("Removed Gossip-Node-3, which did not answer")
    assert wait_until(lambda: not state.pid_alive(pid), 5)
    message_id = send(net, 1, "without the hung one")
    assert_laws(net, [1, 2, 4, 5], [message_id])


@pytest.mark.slow  # about 8 s each
@pytest.mark.parametrize("hung", [False, True])
def test_ctrl_c_during_a_removal_waits_until_the_node_is_written_down_as_removed(
    networks: Networks, monkeypatch: pytest.MonkeyPatch, hung: bool
) -> None:
    """Ctrl-C once the node was told to leave (or killed, hung) used to leave it gone but
    shown as down, and what it alone held not handed over."""
    net = networks.start("circular", "-n", "4")
    pid = net.state.nodes[3].pid
    hand_over = gossip.network._hand_over

    def interrupted(*args: Any) -> int:
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, in the middle of it
        return hand_over(*args)

    monkeypatch.setattr(gossip.network, "_hand_over", interrupted)
    if hung:
        os.kill(pid, signal.SIGSTOP)
    with pytest.raises(KeyboardInterrupt, match="interrupted once node 3 was removed"):
        remove(net.directory, net.state, 3)
    assert state.load(net.directory).nodes[3].removed
    assert wait_until(lambda: not state.pid_alive(pid), 5)
    rows = net.cli("status", "--json")
    assert rows.code == 0 and '"removed"' in rows.out, rows.out
    message_id = send(net, 1, "after an interrupted removal")
    assert_laws(net, [1, 2, 4], [message_id])


def test_removing_the_only_holder_of_a_message_hands_it_over(networks: Networks) -> None:
    net = networks.start("circular", "-n", "5")
    # The supervisor would link node 3 again within a second, at times before node 3 even
    # dropped its dead peers, so it would never be seen alone: hold its mending for 10 s.
    assert _ask_owner(net.directory, net.state, {"hold": 10}, 2.0) == {"held": True}
    net.kill(2)
    net.kill(4)  # node 3's only peers
    assert wait_until(lambda: not net.client(3).peers(), HEAL_TIMEOUT)
    held = net.cli("send-message", "3", "only node 3 has it")
    assert held.code == 0, held.err
    message_id = held.out.rsplit("(id ", 1)[1].split(")")[0]
    removed = net.cli("remove-node", "3")
    assert removed.code == 0, removed.err
    assert_laws(net, [1, 5], [message_id])


# 8. A state file that cannot be read


@pytest.mark.parametrize(
    "damage",
    [  # about 5 s each, so with the slow ones
        pytest.param("{garbage", marks=pytest.mark.slow),
        pytest.param('{"supervisor_pid": "12"', marks=pytest.mark.slow),
        pytest.param('{"conditions": "bad"', marks=pytest.mark.slow),
        pytest.param('{"nodes": []', marks=pytest.mark.slow),
    ],
)
def test_a_running_network_whose_state_cannot_be_read_keeps_serving_and_stop_network_stops_it(
    networks: Networks, damage: str
) -> None:
    """A state file damaged or edited by hand: the supervisor took it for a deleted run
    directory and stopped every node, and stop-network, which could not read it, said no
    network was running and left every process (law 4)."""
    net = networks.start("circular", "-n", "4")
    before = send(net, 1, "before the damage")
    net.wait_delivered(before)
    file = net.directory / state.STATE_FILE
    good = json.loads(file.read_text())
    if damage.startswith('{"'):
        key, _, value = damage[1:].partition(": ")
        good[json.loads(key)] = json.loads(value)
        file.write_text(json.dumps(good))
    else:
        file.write_text(damage)
    running = set(gossip_processes(str(net.directory)))
    assert len(running) == 5
    told = net.cli("send-message", "2", "after the damage")
    assert told.code == 1 and one_line(told.err), told.err
    assert "its state file" in told.err and "stop-network" in told.err, told.err
    # the supervisor looks every second: it used to stop the nodes after three looks
    assert not wait_until(lambda: set(gossip_processes(str(net.directory))) != running, 4)
    stopped = net.cli("stop-network")
    assert stopped.code == 0, stopped.err
    assert stopped.out.startswith("Stopped the 5 processes of the network in"), stopped.out
    assert not gossip_processes(str(net.directory))
    assert all(state.store_path(net.directory, n).exists() for n in range(1, 5))


@pytest.mark.slow  # about 6 s
def test_orphaned_nodes_whose_state_cannot_be_read_keep_serving_and_stop_network_stops_them(
    networks: Networks,
) -> None:
    """With their supervisor killed, the nodes look at the state each second: one that
    could not be read used to stop them, as if the run directory had been deleted."""
    net = networks.start("circular", "-n", "4")
    network = net.state
    clients = [net.client(n) for n in range(1, 5)]
    (net.directory / state.STATE_FILE).write_text("{garbage")
    os.kill(network.supervisor_pid, signal.SIGKILL)
    assert wait_until(lambda: not state.pid_alive(network.supervisor_pid), 5)
    nodes = [network.nodes[n].pid for n in range(1, 5)]
    assert not wait_until(lambda: not all(map(state.pid_alive, nodes)), 4)
    receipt = clients[0].post("while orphaned, state unreadable")
    assert wait_until(
        lambda: all(receipt.id in {v.id for v in c.read_messages(peek=True)} for c in clients),
        HEAL_TIMEOUT,
    )
    stopped = net.cli("stop-network")
    assert stopped.code == 0, stopped.err
    assert not gossip_processes(str(net.directory))


@pytest.mark.slow  # about 8 s
def test_a_restart_whose_log_cannot_be_written_says_so(networks: Networks) -> None:
    """It said only "node 3 exited during start-up"; the reason was in the supervisor's log."""
    net = networks.start("circular", "-n", "3")
    net.kill(3)
    log_file = net.directory / "node-3.log"
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(log_file)], capture_output=True).returncode:
            pytest.skip("this file system has no immutable files, and root writes anything")
        undo = ["chattr", "-i", str(log_file)]
    else:
        log_file.chmod(0o444)
        undo = ["chmod", "644", str(log_file)]
    try:
        refused = net.cli("restart-node", "3")
    finally:
        subprocess.run(undo, check=True)
    assert refused.code == 1
    assert "node 3: cannot write its log node-3.log" in refused.err, refused.err
    assert net.cli("restart-node", "3").code == 0


@pytest.mark.slow
def test_the_last_live_node_holding_messages_is_not_removed(networks: Networks) -> None:
    """Removed, the last live node took the messages it held (acknowledged as held, for
    want of a peer) away from every node brought back after it: 120-279 of them in a
    sweep. Refused, it stays; with another node back, it leaves and hands them over."""
    net = networks.start("circular", "-n", "3")
    for number in (1, 2):
        assert net.cli("remove-node", str(number)).code == 0
    held = [net.client(3).post(f"held {i}").id for i in range(3)]
    refused = net.cli("remove-node", "3")
    assert refused.code == 1 and one_line(refused.err), refused.err
    assert "no other node is up to take the 3 messages node 3 holds: removed now" in refused.err
    assert "gossip restart-node 1 --port-origin" in refused.err, "as printed, it works"
    assert net.cli("restart-node", "1").code == 0
    assert net.cli("remove-node", "3").code == 0
    assert_laws(net, [1], held)
    assert net.cli("restart-node", "2").code == 0
    assert_laws(net, [1, 2], held)
