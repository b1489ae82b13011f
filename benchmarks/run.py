"""Measure gossip on this machine: start-up, CLI wall time, latency, reads, memory, healing.

Starts its own network on a free port range with a private GOSSIP_HOME, stops it at the
end, and prints a table (and ``--json FILE`` writes the figures). Run by hand:

    uv run python benchmarks/run.py [--nodes N] [--messages M] [--throughput T]
        [--batch B] [--sizes 16,32,...] [--plot PNG] [--json FILE] [--compare FILE]
        [--no-healing] [--insecure]

``--compare FILE`` prints a previous run's ``--json`` figures beside this run's, with
the ratio of each. However the run ends (a failure, Ctrl-C, SIGTERM), its networks are
stopped and its scratch directory deleted (``harness.private_home``).
"""

from __future__ import annotations

import quiet  # noqa: F401  (first: a Ctrl-C while the rest imports)

# isort: split
import argparse
import json
import os
import platform
import signal
import socket
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import PICTURES, Failed, Parser, at_least, gossip, guarded, private_home, sizes

from gossip import state
from gossip.client import GossipClient
from gossip.errors import GossipError
from gossip.network import await_spread, live_links, parts, status, wait_until


def cli(*args: str) -> float:
    """Wall time of one real ``gossip`` command, in milliseconds; Failed if it fails."""
    began = time.perf_counter()
    gossip(*args)
    return (time.perf_counter() - began) * 1000


def until(condition: Callable[[], bool], timeout: float, interval: float, what: str) -> None:
    """Wait for ``condition``; Failed if ``what`` did not happen in ``timeout`` seconds (a
    figure timed to a deadline that passed would be a wrong one)."""
    if not wait_until(condition, timeout, interval):
        raise Failed(f"{what} did not happen within {timeout:g} s")


def free_origin(count: int) -> int:
    for origin in range(10000, 32768 - count, 1000):  # below the ephemeral ports
        try:
            for port in range(origin + 1, origin + count + 1):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return origin
        except OSError:
            continue
    raise Failed(f"no {count} free ports in a row below 32768: stop some networks first")


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


def latency(
    network: state.NetworkState, count: int, first_hops: list[float] | None = None
) -> list[float]:
    """Milliseconds from submit until the last node got each message (node timestamps).

    ``first_hops`` gets, for each, the milliseconds until its first peer got it: the
    origin's share (storing the message, flushing it to disk, sending the copies)."""
    latencies = []
    senders = network.live_numbers()
    for i in range(count):
        origin_node = senders[i % len(senders)]
        client = GossipClient(network.nodes[origin_node].address, network.key)
        message_id = client.post(f"latency {i}").id
        # Looking at every node competes with them for the 2 cores, and the nodes stamp
        # arrivals themselves: give the spread a head start and look seldom, more so the
        # larger the network, so the look does not slow what it measures.
        time.sleep(0.003 * len(senders))
        arrivals = await_spread(network, message_id, 180, interval=0.002 * len(senders))
        if len(arrivals) < len(senders):
            raise Failed(f"message {i} reached {len(arrivals)} of {len(senders)} nodes")
        latencies.append((max(arrivals.values()) - arrivals[origin_node]) * 1000)
        if first_hops is not None:
            peers = [t for n, t in arrivals.items() if n != origin_node]
            first_hops.append((min(peers) - arrivals[origin_node]) * 1000)
    return latencies


def counts(network: state.NetworkState) -> tuple[dict[int, int], int, int]:
    """Messages each node holds, copies received by all nodes together, and the request
    frames all nodes sent (their counters: relays, pings, catch-up, membership)."""
    reports = {n: GossipClient(e.address, network.key).status() for n, e in network.nodes.items()}
    held = {n: int(r["messages"]) for n, r in reports.items()}
    copies = sum(int(r["received"]) for r in reports.values())
    frames = sum(sum(r["counters"]["frames_out"].values()) for r in reports.values())
    return held, copies, frames


def throughput(
    network: state.NetworkState, count: int, senders: int = 4, batch: int = 1
) -> dict[str, float]:
    """Submit ``count`` messages from parallel clients, ``batch`` per request
    (``GossipClient.post_all``); how fast all nodes hold them all."""
    held_before, received_before, frames_before = counts(network)
    numbers = network.live_numbers()

    def submit(first: int) -> None:
        mine = list(range(first, count, senders))
        for start in range(0, len(mine), batch):
            chunk = mine[start : start + batch]
            node = network.nodes[numbers[chunk[0] % len(numbers)]]
            client = GossipClient(node.address, network.key)
            client.timeout = 60.0  # a large network on 2 cores acknowledges slowly
            client.post_all([f"throughput {i}" for i in chunk])

    began = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(submit, range(senders)))
    submitted = time.perf_counter()

    def everywhere() -> bool:
        held, _, _ = counts(network)
        return all(held[n] - held_before[n] >= count for n in numbers)

    wait_until(everywhere, 120, 0.2)
    finished = time.perf_counter()
    held, received, frames = counts(network)
    lost = max(count - (held[n] - held_before[n]) for n in numbers)
    return {
        "throughput_messages": count,
        "submit_per_s": count / (submitted - began),
        "delivered_to_all_per_s": count / (finished - began),
        "messages_lost": lost,
        "transmissions_per_delivered_copy": (received - received_before)
        / (count * (len(numbers) - 1)),
        "copies_per_message": (received - received_before) / count,
        "frames_per_message": (frames - frames_before) / count,
    }


def fill(network: state.NetworkState, number: int, held: int, batch: int) -> None:
    """Submit messages to node ``number`` until every node holds at least ``held``."""
    client = GossipClient(network.nodes[number].address, network.key, timeout=60.0)
    have = min(counts(network)[0].values())
    while have < held:
        client.post_all([f"read {have + i}" for i in range(min(batch, held - have))])
        have += min(batch, held - have)
    until(lambda: min(counts(network)[0].values()) >= held, 60, 0.1, f"every node holding {held}")


def reads(network: state.NetworkState, port: list[str], held: int, repeat: int) -> dict[str, float]:
    """How long reading every message of a node holding ``held`` takes: through
    ``GossipClient.read_messages`` (median of ``repeat``), and ``get-messages --json``."""
    reader = GossipClient(network.nodes[2].address, network.key, timeout=60.0)
    timings = []
    for _ in range(repeat):
        began = time.perf_counter()
        got = len(reader.read_messages("all", peek=True))
        timings.append((time.perf_counter() - began) * 1000)
    if got < held:
        raise Failed(f"node 2 listed {got} messages, fewer than the {held} it holds")
    figures = {f"read_{held}_messages_ms": statistics.median(timings)}
    if held >= 10_000:
        figures[f"get_messages_json_{held}_ms"] = statistics.median(
            cli("get-messages", "2", "--json", *port) for _ in range(3)
        )
    return figures


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes used so far; those gone count nothing."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def idle_load(directory: Path, seconds: float = 10.0) -> float:
    """Percent of one core the network's processes (nodes and supervisor) use while idle."""
    pids = state.processes_of(directory)
    before, began = cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pids) - before) / (time.monotonic() - began)


def scaling(sizes: list[int], picture: Path | None, throughput_at: int = 256) -> dict[str, float]:
    """For growing networks: start-up, idle load, latency to every node, stop, and at
    ``throughput_at`` nodes the sustained rate; optionally a plot."""
    found: dict[str, float] = {}
    rows = []
    for size in sizes:
        origin = free_origin(size)
        port = ["--port-origin", str(origin)]
        print(f"scaling: {size} nodes", file=sys.stderr, flush=True)
        found[f"start_{size}_nodes_ms"] = cli(
            "start-network", "-n", str(size), "--seed", "1", *port
        )
        directory = state.run_dir(origin)
        try:
            _, network = state.find_network(origin)
            time.sleep(5 + size / 50)  # the start's bustle (first catch-up rounds) ends
            found[f"idle_{size}_nodes_percent_core"] = idle_load(directory)
            try:
                latencies = latency(network, 10 if size <= 256 else 3)
            except Failed as missed:  # say so, and go on with the other sizes
                print(f"scaling: {size} nodes: {missed}", file=sys.stderr, flush=True)
                continue
            if size == throughput_at:
                rate = throughput(network, 200, 4, 25)["delivered_to_all_per_s"]
                found[f"throughput_{size}_nodes_per_s"] = rate
        finally:
            found[f"stop_{size}_nodes_ms"] = cli("stop-network", *port)
            found[f"left_running_{size}_nodes"] = len(state.processes_of(directory))
        found[f"latency_{size}_nodes_p50_ms"] = percentile(latencies, 0.5)
        found[f"latency_{size}_nodes_p99_ms"] = percentile(latencies, 0.99)
        rows.append((size, percentile(latencies, 0.5), percentile(latencies, 0.99)))
    if picture is not None:
        draw_scaling(rows, found, picture)
    return found


def draw_scaling(
    rows: list[tuple[int, float, float]], found: dict[str, float], picture: Path
) -> None:
    """Latency, start-up and idle load against network size, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r[0] for r in rows]
    started = sorted(int(k.split("_")[1]) for k in found if k.startswith("idle_"))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    left.plot(xs, [r[1] for r in rows], "o-", color="#2f6db5", label="p50")
    left.plot(xs, [r[2] for r in rows], "s--", color="#e67e22", label="p99 (slowest)")
    left.set_ylabel("submit until every node holds it (ms)")
    left.set_title("delivery latency")
    right.plot(
        started, [found[f"start_{x}_nodes_ms"] / 1000 for x in started], "o-", label="start (s)"
    )
    right.plot(
        started,
        [found[f"idle_{x}_nodes_percent_core"] for x in started],
        "s--",
        label="idle (% of a core)",
    )
    right.axhline(50, color="#999999", linewidth=0.8)
    right.set_title("start-up and idle load")
    for axes, ticks in ((left, xs), (right, started)):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xticks(ticks, [str(x) for x in ticks])
        axes.set_xlabel("nodes (random 3-regular graph)")
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle("gossip against network size, all nodes on one 2-core machine")
    figure.tight_layout()
    figure.savefig(picture)
    plt.close(figure)


def peers_of(network: state.NetworkState, number: int) -> set[int]:
    try:
        return {p.number for p in GossipClient(network.nodes[number].address, network.key).peers()}
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
            until(
                lambda v=victim, a=left, b=right: v not in peers_of(ring, a) | peers_of(ring, b),
                10,
                0.005,
                f"node {victim}'s neighbours dropping it",
            )
            detect.append((time.monotonic() - began) * 1000)
            until(lambda a=left, b=right: b in peers_of(ring, a), 10, 0.005, "the ring closing")
            closed.append((time.monotonic() - began) * 1000)
        results["detect_dead_peer_ms"] = statistics.median(detect)
        results["ring_closed_after_crash_ms"] = statistics.median(closed)
        live = [n for n in ring.live_numbers() if n not in (3, 7, 11, 15)]
        missed = []
        for i in range(100):
            client = GossipClient(ring.nodes[live[i % len(live)]].address, ring.key)
            missed.append(client.post(f"while node 3 was down {i}").id)
        began = time.monotonic()
        cli("restart-node", "3", *port)
        results["restart_node_cli_ms"] = (time.monotonic() - began) * 1000
        holder = GossipClient(ring.nodes[3].address, ring.key)
        until(
            lambda: set(missed) <= {v.id for v in holder.read_messages("all", peek=True)},
            30,
            0.02,
            "node 3 catching up",
        )
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

            until(whole, 10, 0.005, f"the graph healing after node {victim}'s kill")
            heals.append((time.monotonic() - began) * 1000)
        results["random_graph_healed_ms"] = statistics.median(heals)
    finally:
        cli("stop-network", *port)


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=at_least(4), default=16)
    parser.add_argument("--messages", type=at_least(1), default=100)
    parser.add_argument("--repeat", type=at_least(1), default=10, help="runs of each CLI command")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-healing", action="store_true", help="skip the crash measurements")
    parser.add_argument(
        "--throughput", type=at_least(1), default=2000, help="messages in the throughput run"
    )
    parser.add_argument(
        "--sizes",
        type=sizes,
        default="16,32,64,128,256,512,1024",
        help="network sizes for the scaling run (empty: none)",
    )
    parser.add_argument("--plot", type=Path, help="write latency against size to this PNG")
    parser.add_argument(
        "--only-sizes", action="store_true", help="run the scaling run alone (with --sizes)"
    )
    parser.add_argument(
        "--batch", type=at_least(1), default=25, help="messages per client request (post_all)"
    )
    parser.add_argument("--compare", type=Path, help="a previous --json run to print beside")
    parser.add_argument(
        "--insecure", action="store_true", help="main network without authentication"
    )
    options = parser.parse_args()
    options.earlier = earlier(parser, options.compare)
    parser.check_output(options.json)
    parser.check_output(options.plot, PICTURES)
    with private_home("gossip-bench-"):
        measure(options)


def earlier(parser: Parser, compare: Path | None) -> dict[str, object]:
    """``--compare``'s figures, read before the run: a file that is not one is said at
    once, not after the run's minutes."""
    if compare is None:
        return {}
    if not compare.is_file():
        parser.refuse(f"--compare {compare}: no such file (write one with --json)")
    try:
        figures = json.loads(compare.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        parser.refuse(f"--compare {compare}: not a --json file of this benchmark ({exc})")
    if not isinstance(figures, dict):
        parser.refuse(f"--compare {compare}: not a --json file of this benchmark")
    return figures


def measure(options: argparse.Namespace) -> None:
    """Every measurement the options ask for, then the table."""
    origin = free_origin(options.nodes)
    port = ["--port-origin", str(origin)]
    results: dict[str, float | str | int] = {"machine": machine(), "nodes": options.nodes}
    results["authentication"] = "off (--insecure)" if options.insecure else "on"
    starting = ["start-network", "-n", str(options.nodes), "--seed", "1", *port]
    starting += ["--insecure"] if options.insecure else []

    sizes = options.sizes
    if options.only_sizes:
        results.update(scaling(sizes, options.plot))
        report(results, [], sizes, options)
        return
    starts = []
    for _ in range(3):
        starts.append(cli(*starting))
        cli("stop-network", *port)
    results["start_network_ms"] = statistics.median(starts)
    cli(*starting)
    try:
        _, network = state.find_network(origin)
        results["send_message_cli_ms"] = statistics.median(
            cli("send-message", "1", "benchmark", *port) for _ in range(options.repeat)
        )
        results["get_messages_cli_ms"] = statistics.median(
            cli("get-messages", "2", *port) for _ in range(options.repeat)
        )
        first_hops: list[float] = []
        latencies = latency(network, options.messages, first_hops)
        results["latency_all_nodes_p50_ms"] = percentile(latencies, 0.5)
        results["latency_all_nodes_p99_ms"] = percentile(latencies, 0.99)
        results["latency_first_peer_p50_ms"] = percentile(first_hops, 0.5)
        fill(network, 1, 1000, options.batch)
        results.update(reads(network, port, 1000, 20))
        results.update(throughput(network, options.throughput, 4, options.batch))
        one = throughput(network, max(1, options.throughput // 2), 1, options.batch)
        results["one_client_delivered_to_all_per_s"] = one["delivered_to_all_per_s"]
        single = throughput(network, min(options.throughput, 400), 4, 1)
        results["unbatched_delivered_to_all_per_s"] = single["delivered_to_all_per_s"]
        memory = [unique_memory_kib(e.pid) for e in network.nodes.values()]
        results["node_uss_mib"] = statistics.median(m[0] for m in memory) / 1024
        results["node_pss_mib"] = statistics.median(m[1] for m in memory) / 1024
        fill(network, 1, 10_000, options.batch)
        results.update(reads(network, port, 10_000, 5))
    finally:
        cli("stop-network", *port)
    if not options.no_healing:
        healing(port, results)
    results.update(scaling(sizes, options.plot))
    report(results, main_rows(options), sizes, options)


def main_rows(options: argparse.Namespace) -> list[tuple[str, str, str]]:
    """The table's rows for the 16-node measurements: label, key, unit."""
    return [
        (
            f"start-network, {options.nodes} nodes, until all accept (median of 3)",
            "start_network_ms",
            "ms",
        ),
        (f"gossip send-message wall (median of {options.repeat})", "send_message_cli_ms", "ms"),
        (f"gossip get-messages wall (median of {options.repeat})", "get_messages_cli_ms", "ms"),
        ("submit -> every node holds it, p50", "latency_all_nodes_p50_ms", "ms"),
        ("submit -> every node holds it, p99", "latency_all_nodes_p99_ms", "ms"),
        ("  of which: submit -> its first peer holds it, p50", "latency_first_peer_p50_ms", "ms"),
        (
            f"sustained, 4 clients, {options.batch} per request: delivered to all per second",
            "delivered_to_all_per_s",
            "/s",
        ),
        (
            f"sustained, 1 client, {options.batch} per request: delivered to all per second",
            "one_client_delivered_to_all_per_s",
            "/s",
        ),
        (
            "sustained, 4 clients, 1 per request: delivered to all per second",
            "unbatched_delivered_to_all_per_s",
            "/s",
        ),
        ("sustained: messages submitted per second", "submit_per_s", "/s"),
        ("sustained: messages lost", "messages_lost", ""),
        ("transmissions per delivered copy", "transmissions_per_delivered_copy", ""),
        ("copies received network-wide per message", "copies_per_message", ""),
        ("messages per operation: frames sent network-wide per message", "frames_per_message", ""),
        (
            "GossipClient.read_messages(), node holding 1,000 (median of 20)",
            "read_1000_messages_ms",
            "ms",
        ),
        (
            "GossipClient.read_messages(), node holding 10,000 (median of 5)",
            "read_10000_messages_ms",
            "ms",
        ),
        (
            "gossip get-messages --json, node holding 10,000 (median of 3)",
            "get_messages_json_10000_ms",
            "ms",
        ),
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


TARGETS: dict[str, tuple[str, float]] = {
    "latency_all_nodes_p50_ms": ("<=", 3),
    "latency_all_nodes_p99_ms": ("<=", 8),
    "delivered_to_all_per_s": (">=", 1000),
    "one_client_delivered_to_all_per_s": (">=", 600),
    "messages_lost": ("<=", 0),
    "read_1000_messages_ms": ("<=", 5),
    "read_10000_messages_ms": ("<=", 50),
    "get_messages_json_10000_ms": ("<=", 500),
    "node_uss_mib": ("<=", 6),
    "detect_dead_peer_ms": ("<=", 200),
    "ring_closed_after_crash_ms": ("<=", 500),
    "catch_up_100_messages_ms": ("<=", 1500),
}
"""Issue 14's targets for the main network, as run by default (16 nodes, authentication
on): said beside each figure."""

SIZE_TARGETS: dict[str, tuple[str, float]] = {
    "latency_256_nodes_p50_ms": ("<=", 40),
    "start_256_nodes_ms": ("<=", 2000),
    "start_1024_nodes_ms": ("<=", 20_000),
    "idle_1024_nodes_percent_core": ("<=", 50),
}
"""The size sweep's targets (its networks are always authenticated)."""


def verdict(key: str, value: float, options: argparse.Namespace) -> str:
    """`` target <= 3: met |`` for a figure with a target, else nothing."""
    target = SIZE_TARGETS.get(key)
    if key.startswith("left_running_"):
        target = ("<=", 0)
    elif target is None and options.nodes == 16 and not options.insecure:
        target = TARGETS.get(key)
    if target is None:
        return ""
    sense, bound = target
    met = value <= bound if sense == "<=" else value >= bound
    return f" target {sense} {bound:g}: {'met' if met else 'missed'} |"


def report(
    results: dict[str, float | str | int],
    rows: list[tuple[str, str, str]],
    sizes: list[int],
    options: argparse.Namespace,
) -> None:
    """Print the table (beside ``--compare``'s figures) and write ``--json``."""
    print(f"gossip benchmark on {results['machine']}; authentication {results['authentication']}")
    for size in sizes:
        rows.append((f"start-network, {size} nodes", f"start_{size}_nodes_ms", "ms"))
        rows.append((f"{size} nodes: idle load", f"idle_{size}_nodes_percent_core", "%"))
        rows.append(
            (f"{size} nodes: submit -> all hold it, p50", f"latency_{size}_nodes_p50_ms", "ms")
        )
        rows.append(
            (f"{size} nodes: submit -> all hold it, p99", f"latency_{size}_nodes_p99_ms", "ms")
        )
        rows.append(
            (f"{size} nodes: delivered to all per second", f"throughput_{size}_nodes_per_s", "/s")
        )
        rows.append((f"stop-network, {size} nodes", f"stop_{size}_nodes_ms", "ms"))
        rows.append((f"{size} nodes: processes left after stop", f"left_running_{size}_nodes", ""))
    before = options.earlier
    for label, key, unit in rows:
        if key not in results:
            continue
        line = f"| {label:<64} | {results[key]:>8.1f} {unit:<3} |"
        old = before.get(key)
        if isinstance(old, int | float):
            ratio = f"{results[key] / old:.2f}x" if old else "-"
            line += f" {old:>8.1f} {unit:<3} | {ratio:>6} |"
        print(line + verdict(key, float(results[key]), options))
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    guarded(main)
