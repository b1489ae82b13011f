"""Measure how fast gossip mends what local healing cannot: splits, lonely nodes, mass crashes.

Starts its own networks on free port ranges with a private GOSSIP_HOME, stops them at the
end, and prints a table of medians over ``--runs`` (``--json FILE`` writes every figure).
Run by hand:

    uv run python benchmarks/repair.py [--runs R] [--json FILE]

- bridge removed: ``remove-node`` of the only bridge between two halves (the network file of
  issue 12), until the live nodes are one graph again;
- bridge killed: ``kill -9`` of that bridge instead, until they are one graph (the supervisor
  mends it: local healing cannot cross the gap);
- lonely node: ``kill -9`` of all three peers of a node, until it is linked again;
- mass crash: ``kill -9`` of 8 of 16 nodes while 4 clients send, then ``restart-node`` of
  each, until the 16 are one graph and every acknowledged message is on every node.
"""

from __future__ import annotations

import quiet  # noqa: F401  (first: a Ctrl-C while the rest imports)

# isort: split
import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from harness import Failed, Parser, at_least, gossip, guarded, private_home
from run import free_origin, machine, until

from gossip import state
from gossip.client import GossipClient
from gossip.errors import GossipError
from gossip.mending import REPAIR_FIRST
from gossip.network import live_links, parts, status

TWO_HALVES = {
    1: [3, 5, 6], 2: [9, 10, 12], 3: [1, 13, 14], 4: [6, 7, 8], 5: [1, 15, 16], 6: [1, 4, 10],
    7: [4, 13, 15], 8: [4, 14, 16], 9: [2, 11, 12], 10: [2, 6, 11], 11: [9, 10, 12],
    12: [2, 9, 11], 13: [3, 7, 14], 14: [3, 8, 13], 15: [5, 7, 16], 16: [5, 8, 15],
}  # fmt: skip
"""Node 6 is the only link between 2, 9-12 and the rest."""

DEADLINE = 30.0
SETTLE = REPAIR_FIRST + 0.5
"""Seconds a new network runs before a fault: its supervisor's looks have begun, as in a
network that has been running a while."""


def one_part(network: state.NetworkState) -> bool:
    links = live_links([r for r in status(network) if not r.entry.removed])
    return len(parts(links)) == 1


def two_halves(home: Path) -> tuple[Path, state.NetworkState]:
    """Start the network file of two halves joined by node 6; its file and state."""
    origin = free_origin(16)
    folder = Path(tempfile.mkdtemp(dir=home))
    gossip("new-secret", str(folder / "halves.secret"))
    lines = ['name = "halves"', "max_peers = 3", 'secret = "halves.secret"', "[nodes]"]
    lines += [f'{n} = "127.0.0.1:{origin + n}"' for n in TWO_HALVES]
    lines += ["[peers]", *(f"{n} = {peers}" for n, peers in TWO_HALVES.items())]
    file = folder / "halves.toml"
    file.write_text("\n".join(lines) + "\n")
    gossip("start-network", "--config", str(file))
    network = state.load(state.run_dir("halves"))
    if network is None:
        raise Failed("the network started, but its state cannot be read")
    return file, network


def bridge_removed(home: Path) -> float:
    file, network = two_halves(home)
    try:
        began = time.perf_counter()
        gossip("remove-node", "6", "--config", str(file))
        network = state.load(state.run_dir("halves")) or network
        until(
            lambda: one_part(network),
            DEADLINE,
            0.01,
            "the two halves becoming one after remove-node 6",
        )
        return time.perf_counter() - began
    finally:
        gossip("stop-network", "--config", str(file))


def bridge_killed(home: Path) -> float:
    file, network = two_halves(home)
    try:
        time.sleep(SETTLE)
        os.kill(network.nodes[6].pid, signal.SIGKILL)
        began = time.perf_counter()
        until(
            lambda: one_part(network),
            DEADLINE,
            0.05,
            "the two halves becoming one after node 6's kill",
        )
        return time.perf_counter() - began
    finally:
        gossip("stop-network", "--config", str(file))


def lonely_node(home: Path) -> float:
    origin = free_origin(16)
    gossip("start-network", "--seed", "5", "--port-origin", str(origin))
    network = state.load(state.run_dir(origin))
    if network is None:
        raise Failed("the network started, but its state cannot be read")
    try:
        time.sleep(SETTLE)
        peers = [p.number for p in GossipClient(network.nodes[1].address, network.key).peers()]
        for peer in peers:
            os.kill(network.nodes[peer].pid, signal.SIGKILL)
        began = time.perf_counter()

        def linked() -> bool:
            alive = [p for p in GossipClient(network.nodes[1].address, network.key).peers()]
            return any(p.number not in peers for p in alive)

        until(linked, DEADLINE, 0.05, "the lonely node linking again")
        return time.perf_counter() - began
    finally:
        gossip("stop-network", "--port-origin", str(origin))


def mass_crash(seed: int) -> dict[str, float]:
    origin = free_origin(16)
    gossip("start-network", "--seed", str(seed), "--port-origin", str(origin))
    network = state.load(state.run_dir(origin))
    if network is None:
        raise Failed("the network started, but its state cannot be read")
    rng = random.Random(seed)
    acknowledged: list[str] = []
    done = threading.Event()

    def send(client: int) -> None:
        sender = random.Random(seed * 10 + client)
        while not done.is_set():
            entry = network.nodes[sender.choice(sorted(network.nodes))]
            with contextlib.suppress(GossipError):
                acknowledged.append(GossipClient(entry.address, network.key, 2).post("crash").id)

    clients = [threading.Thread(target=send, args=(c,)) for c in range(4)]
    try:
        for client in clients:
            client.start()
        for victim in rng.sample(sorted(network.nodes), 8):
            os.kill(network.nodes[victim].pid, signal.SIGKILL)
            time.sleep(0.05)
        done.set()
        for client in clients:
            client.join()
        began = time.perf_counter()
        for number in sorted(network.nodes):
            if not state.pid_alive(network.nodes[number].pid):
                gossip("restart-node", str(number), "--port-origin", str(origin))
        restarted = time.perf_counter()
        network = state.load(state.run_dir(origin)) or network
        until(lambda: one_part(network), DEADLINE, 0.05, "one network after the restarts")
        joined = time.perf_counter()
        wanted = set(acknowledged)

        def everywhere() -> bool:
            for entry in network.nodes.values():
                held = GossipClient(entry.address, network.key).read_messages("all", peek=True)
                if wanted - {v.id for v in held}:
                    return False
            return True

        until(everywhere, DEADLINE, 0.1, "every acknowledged message on every node")
        return {
            "restarts_s": restarted - began,
            "one_part_after_restarts_s": joined - restarted,
            "all_delivered_after_restarts_s": time.perf_counter() - restarted,
            "acknowledged": len(wanted),
        }
    finally:
        done.set()
        gossip("stop-network", "--port-origin", str(origin))


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=at_least(1), default=3)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    parser.check_output(options.json)
    with private_home("gossip-repair-") as home:
        figures: dict[str, list[float]] = {}
        for run in range(options.runs):
            figures.setdefault("bridge removed: one part again (s)", []).append(
                bridge_removed(home)
            )
            figures.setdefault("bridge killed: one part again (s)", []).append(bridge_killed(home))
            figures.setdefault("lonely node: linked again (s)", []).append(lonely_node(home))
            crash = mass_crash(run + 1)
            for key, value in crash.items():
                figures.setdefault(f"mass crash: {key}", []).append(value)
            print(f"run {run + 1} of {options.runs} done", file=sys.stderr)
    print(f"Machine: {machine()}")
    print(f"{'measure':<58} {'median':>8}  range")
    for key, values in figures.items():
        low, high = min(values), max(values)
        print(f"{key:<58} {statistics.median(values):8.2f}  {low:.2f}-{high:.2f}")
    if options.json:
        options.json.write_text(json.dumps({"machine": machine(), **figures}, indent=1))


if __name__ == "__main__":
    guarded(main)
