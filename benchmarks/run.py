"""Measure gossip on this machine: start-up, CLI wall time, latency, memory, healing.

Starts its own network on a free port range with a private GOSSIP_HOME, stops it at the
end, and prints a table (and ``--json FILE`` writes the figures). Run by hand:

    uv run python benchmarks/run.py [--nodes N] [--messages M] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gossip import state
from gossip.client import GossipClient
from gossip.network import await_spread, live_links, parts, status, wait_until
from gossip.state import GossipError


def cli(*args: str) -> float:
    """Wall time of one real ``gossip`` command, in milliseconds."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gossip", *args], check=True, capture_output=True)
    return (time.perf_counter() - began) * 1000


def free_origin(count: int) -> int:
    for origin in range(30000, 60000, 1000):
        try:
            for port in range(origin + 1, origin + count + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return origin
        except OSError:
            continue
    raise SystemExit("no free port range")


def unique_memory_kib(pid: int) -> tuple[int, int]:
    """(USS, PSS) of a process in KiB, from /proc/<pid>/smaps_rollup."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Pss"]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def peers_of(network: state.NetworkState, number: int) -> set[int]:
    try:
        return {p.number for p in GossipClient(network.nodes[number].address).peers()}
    except GossipError:
        return set()


def kill(network: state.NetworkState, number: int) -> float:
    """SIGKILL a node; the moment it was sent (monotonic)."""
    os.kill(network.nodes[number].pid, signal.SIGKILL)
    return time.monotonic()


def healing(port: list[str], results: dict[str, float | str | int]) -> None:
    """Heal and catch-up times on a ring of 16 and a random 3-regular graph of 16."""
    cli("start-network", "circular", *port)
    try:
        _, ring = state.find_network(int(port[1]))
        detect, closed = [], []
        for victim in (3, 7, 11, 15):
            left, right = victim - 1, victim + 1
            began = kill(ring, victim)
            wait_until(
                lambda v=victim, a=left, b=right: v not in peers_of(ring, a) | peers_of(ring, b),
                10,
                0.005,
            )
            detect.append((time.monotonic() - began) * 1000)
            wait_until(lambda a=left, b=right: b in peers_of(ring, a), 10, 0.005)
            closed.append((time.monotonic() - began) * 1000)
        results["detect_dead_peer_ms"] = statistics.median(detect)
        results["ring_closed_after_crash_ms"] = statistics.median(closed)
        live = [n for n in ring.live_numbers() if n not in (3, 7, 11, 15)]
        missed = []
        for i in range(100):
            client = GossipClient(ring.nodes[live[i % len(live)]].address)
            missed.append(client.send(f"while node 3 was down {i}"))
        began = time.monotonic()
        cli("restart-node", "3", *port)
        results["restart_node_cli_ms"] = (time.monotonic() - began) * 1000
        holder = GossipClient(ring.nodes[3].address)
        wait_until(lambda: set(missed) <= {v.id for v in holder.fetch("all", peek=True)}, 30, 0.02)
        results["catch_up_100_messages_ms"] = (time.monotonic() - began) * 1000
    finally:
        cli("stop-network", *port)
    cli("start-network", "random", "--seed", "2", *port)
    try:
        _, graph = state.find_network(int(port[1]))
        heals = []
        for victim in (4, 9, 14):
            began = kill(graph, victim)

            def whole(gone: int = victim) -> bool:
                links = live_links(status(graph))
                one_way = any(a not in links.get(b, [a]) for a, ps in links.items() for b in ps)
                lost = any(gone in ps for ps in links.values())
                return not one_way and not lost and len(parts(links)) == 1

            wait_until(whole, 10, 0.005)
            heals.append((time.monotonic() - began) * 1000)
        results["random_graph_healed_ms"] = statistics.median(heals)
    finally:
        cli("stop-network", *port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=10, help="runs of each CLI command")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-healing", action="store_true", help="skip the crash measurements")
    options = parser.parse_args()

    os.environ["GOSSIP_HOME"] = tempfile.mkdtemp(prefix="gossip-bench-")
    origin = free_origin(options.nodes)
    port = ["--port-origin", str(origin)]
    results: dict[str, float | str | int] = {"machine": machine(), "nodes": options.nodes}

    starts = []
    for _ in range(3):
        starts.append(cli("start-network", "-n", str(options.nodes), "--seed", "1", *port))
        cli("stop-network", *port)
    results["start_network_ms"] = statistics.median(starts)
    cli("start-network", "-n", str(options.nodes), "--seed", "1", *port)
    try:
        _, network = state.find_network(origin)
        results["send_message_cli_ms"] = statistics.median(
            cli("send-message", "1", "benchmark", *port) for _ in range(options.repeat)
        )
        results["get_messages_cli_ms"] = statistics.median(
            cli("get-messages", "2", *port) for _ in range(options.repeat)
        )
        latencies = []
        senders = network.live_numbers()
        for i in range(options.messages):
            origin_node = senders[i % len(senders)]
            client = GossipClient(network.nodes[origin_node].address)
            message_id = client.send(f"latency {i}")
            # Polling all nodes competes with them for the 2 cores: give the spread a head start.
            time.sleep(0.05)
            arrivals = await_spread(network, message_id, 10, interval=0.02)
            if len(arrivals) < len(senders):
                raise SystemExit(f"message {i} did not reach every node")
            sent = arrivals[origin_node]
            latencies.append((max(arrivals.values()) - sent) * 1000)
        results["latency_all_nodes_p50_ms"] = percentile(latencies, 0.5)
        results["latency_all_nodes_p99_ms"] = percentile(latencies, 0.99)
        memory = [unique_memory_kib(e.pid) for e in network.nodes.values()]
        results["node_uss_mib"] = statistics.median(m[0] for m in memory) / 1024
        results["node_pss_mib"] = statistics.median(m[1] for m in memory) / 1024
    finally:
        cli("stop-network", *port)
    if not options.no_healing:
        healing(port, results)

    print(f"gossip benchmark on {results['machine']}")
    rows = [
        (
            f"start-network, {options.nodes} nodes, until all accept (median of 3)",
            "start_network_ms",
            "ms",
        ),
        (f"gossip send-message wall (median of {options.repeat})", "send_message_cli_ms", "ms"),
        (f"gossip get-messages wall (median of {options.repeat})", "get_messages_cli_ms", "ms"),
        ("submit -> every node holds it, p50", "latency_all_nodes_p50_ms", "ms"),
        ("submit -> every node holds it, p99", "latency_all_nodes_p99_ms", "ms"),
        ("memory per node, unique (USS), median", "node_uss_mib", "MiB"),
        ("memory per node, proportional (PSS), median", "node_pss_mib", "MiB"),
        ("kill -9 -> its ring neighbours dropped it (median of 4)", "detect_dead_peer_ms", "ms"),
        (
            "kill -9 -> the ring of 16 closed again (median of 4)",
            "ring_closed_after_crash_ms",
            "ms",
        ),
        ("kill -9 -> random graph whole again (median of 3)", "random_graph_healed_ms", "ms"),
        ("gossip restart-node wall", "restart_node_cli_ms", "ms"),
        ("restart-node -> holds the 100 messages it missed", "catch_up_100_messages_ms", "ms"),
    ]
    for label, key, unit in rows:
        if key not in results:
            continue
        print(f"| {label:<56} | {results[key]:>8.1f} {unit:<3} |")
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
