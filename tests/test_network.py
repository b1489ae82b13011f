"""Integration tests: real node processes on loopback, driven through the real CLI and client."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gossip import network as mending_io
from gossip import state
from gossip.client import GossipClient
from gossip.errors import GossipError
from gossip.network import EPHEMERAL_PORTS, await_spread, holders_of, wait_until
from gossip.protocol import MAX_FRAME_BYTES
from gossip.repair import Step
from gossip.state import NetworkState, NodeEntry
from tests.networks import (
    Net,
    Networks,
    gossip_cli,
    gossip_processes,
    interrupted_after,
    peer_numbers,
    png_size,
    ports_free,
    run_python,
    send,
)


def edges_of(network: state.NetworkState) -> set[frozenset[int]]:
    return {frozenset((e.number, p)) for e in network.nodes.values() for p in e.peers}


def assert_valid_walk(path: tuple[int, ...], origin: int, node: int, edges: set) -> None:
    assert path[0] == origin and path[-1] == node, path
    assert len(set(path)) == len(path), f"path repeats a node: {path}"
    for a, b in itertools.pairwise(path):
        assert frozenset((a, b)) in edges, f"{a} -> {b} is not a link of the topology: {path}"


def live_peer_graph(net: Net) -> dict[int, set[int]]:
    """Every live node's current peers, as the nodes themselves report them."""
    return {n: peer_numbers(net, n) for n in net.state.live_numbers()}


def is_connected(graph: dict[int, set[int]]) -> bool:
    start = next(iter(graph))
    seen, todo = {start}, [start]
    while todo:
        for peer in graph[todo.pop()]:
            if peer not in seen:
                seen.add(peer)
                todo.append(peer)
    return seen == set(graph)


TOPOLOGIES = {
    "circular": ["circular"],
    "random": ["random", "--seed", "3"],
    "powerlaw": ["powerlaw", "--seed", "3", "--max-peers", "16"],
    "turan": ["turan", "4", "--max-peers", "12"],
}


@pytest.mark.parametrize("kind", TOPOLOGIES)
def test_messages_from_any_node_reach_all_16_along_valid_paths(
    networks: Networks, kind: str
) -> None:
    net = networks.start(*TOPOLOGIES[kind])
    network = net.state
    assert sorted(network.nodes) == list(range(1, 17))
    edges = edges_of(network)
    sent = {origin: send(net, origin, f"from {origin} on {kind}") for origin in (1, 8, 16)}
    for origin, message_id in sent.items():
        net.wait_delivered(message_id)
        for node in network.nodes:
            view = next(v for v in net.peek(node) if v.id == message_id)
            assert view.text == f"from {origin} on {kind}"
            for copy in view.copies:
                assert_valid_walk(copy.path, origin, node, edges)


def test_start_network_prints_every_node_with_its_peers(networks: Networks) -> None:
    net = networks.reserve()
    result = gossip_cli(
        "start-network", "circular", "-n", "5", "--port-origin", str(net.origin), cwd=net.cwd
    )
    assert result.code == 0, result.err
    o = net.origin
    assert result.out.splitlines()[:6] == [
        f"Started 5 nodes on ports {o + 1}-{o + 5}: circular, at most 3 peers each.",
        f"* Gossip-Node-1 (127.0.0.1:{o + 1})  peers: 2, 5",
        f"* Gossip-Node-2 (127.0.0.1:{o + 2})  peers: 1, 3",
        f"* Gossip-Node-3 (127.0.0.1:{o + 3})  peers: 2, 4",
        f"* Gossip-Node-4 (127.0.0.1:{o + 4})  peers: 3, 5",
        f"* Gossip-Node-5 (127.0.0.1:{o + 5})  peers: 1, 4",
    ]
    for entry in net.state.nodes.values():
        with socket.create_connection(entry.address, timeout=2):
            pass


def test_get_messages_shows_paths_in_the_original_format(networks: Networks) -> None:
    net = networks.start("circular", "-n", "6")
    message_id = send(net, 1, "Hello World")
    net.wait_copies(3, message_id, 2)
    header = "Fetched all messages from Gossip-Node-3; showing {} path(s):"
    shortest = "  ↳ 1 ➜ 2 ➜ 3"
    longest = "  ↳ 1 ➜ 6 ➜ 5 ➜ 4 ➜ 3"
    out = net.cli("get-messages", "3", "-p").out
    assert out == f"{header.format('shortest')}\n\n• Hello World\n{shortest}\n"
    out = net.cli("get-messages", "3", "-pp").out
    assert out == f"{header.format('longest')}\n\n• Hello World\n{longest}\n"
    lines = net.cli("get-messages", "3").out.splitlines()
    assert lines[:3] == [header.format("all"), "", "• Hello World"]
    assert sorted(lines[3:]) == sorted([shortest, longest])
    lines = net.cli("get-messages", "3", "-ppp").out.splitlines()
    assert lines[0] == header.format("shortest and longest")
    assert sorted(lines[3:]) == sorted([shortest, longest])


def test_times_are_shown_at_three_levels(networks: Networks) -> None:
    net = networks.start("circular", "-n", "4")
    message_id = send(net, 1, "tick")
    net.wait_copies(2, message_id, 2)
    patterns = {
        "-t": r"  ↳ 1 ➜ 2  at \d\d:\d\d:\d\d$",
        "-tt": r"  ↳ 1 ➜ 2  at \d\d:\d\d:\d\d\.\d{3}$",
        "-ttt": r"  ↳ 1 ➜ 2  at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} "
        r"\(\+\d+\.\d{3} ms after sending\)$",
    }
    for flag, pattern in patterns.items():
        lines = net.cli("get-messages", "2", "-p", flag).out.splitlines()
        assert re.match(pattern, lines[3]), (flag, lines)


def test_read_and_unread_filters_and_marking(networks: Networks) -> None:
    net = networks.start("circular", "-n", "4")
    first = send(net, 1, "first")
    net.wait_delivered(first)
    out = net.cli("get-messages", "3", "unread", "-p").out
    assert "Fetched unread messages from Gossip-Node-3" in out and "• first" in out
    assert net.cli("get-messages", "3", "unread").out.endswith("No unread messages.\n")
    second = send(net, 2, "second")
    net.wait_delivered(second)
    unread = net.cli("get-messages", "3", "unread").out
    assert "• second" in unread and "• first" not in unread
    read = net.cli("get-messages", "3", "read").out
    assert read.index("• first") < read.index("• second")
    third = send(net, 4, "third")
    net.wait_delivered(third)
    read = net.cli("get-messages", "3", "read").out
    assert "• third" not in read
    everything = net.cli("get-messages", "3", "all").out
    assert [line for line in everything.splitlines() if line.startswith("•")] == [
        "• first",
        "• second",
        "• third",
    ]
    assert net.cli("get-messages", "3", "unread").out.endswith("No unread messages.\n")


@pytest.mark.parametrize(
    "as_json", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["text", "json"]
)
def test_messages_get_messages_could_not_print_stay_unread(
    networks: Networks, as_json: bool
) -> None:
    """A read whose output could not be written (a full disk here) marked its messages
    read all the same: a user never saw them, and they were no longer unread."""
    net = networks.start("circular", "-n", "3")
    message_id = send(net, 1, "to a full disk")
    net.wait_delivered(message_id)
    argv = [
        sys.executable, "-m", "gossip", "get-messages", "2", "unread",
        *(["--json"] if as_json else []), "--port-origin", str(net.origin),
    ]  # fmt: skip
    with open("/dev/full", "w") as full:
        failed = subprocess.run(
            argv, stdout=full, stderr=subprocess.PIPE, text=True, cwd=net.cwd, timeout=60
        )
    assert failed.returncode == 1 and "No space left on device" in failed.stderr, failed.stderr
    assert failed.stderr.count("\n") == 1
    assert [v.id for v in net.client(2).read_messages("unread", peek=True)] == [message_id]
    shown = net.cli("get-messages", "2", "unread")
    assert shown.code == 0 and "to a full disk" in shown.out
    assert net.client(2).read_messages("unread", peek=True) == []
    if as_json:
        return
    send_argv = [sys.executable, "-m", "gossip", "send-message", "1", "sent, unprinted"]
    with open("/dev/full", "w") as full:  # sent, then its receipt cannot be printed
        sent = subprocess.run(
            [*send_argv, "--port-origin", str(net.origin)],
            stdout=full, stderr=subprocess.PIPE, text=True, cwd=net.cwd, timeout=60,
        )  # fmt: skip
    assert sent.returncode == 1 and "send-message was done, but what it printed" in sent.stderr
    given = re.search(r"give --id (\w+)$", sent.stderr.strip())
    assert given, sent.stderr
    assert net.wait_delivered(given[1]), "it was sent: 'try again' would have sent it twice"


def test_list_peers_shows_the_peers_with_addresses(networks: Networks) -> None:
    net = networks.start("random", "--seed", "11")
    network = net.state
    entry = network.nodes[4]
    expected = [f"* Gossip-Node-{p} (127.0.0.1:{net.origin + p})" for p in sorted(entry.peers)]
    result = net.cli("list-peers", "4")
    assert result.code == 0
    assert result.out.splitlines() == ["Gossip-Node-4 has peers:", *expected]


def test_python_api_submit_and_get_messages(networks: Networks) -> None:
    net = networks.start("circular", "-n", "8")
    GossipClient.to_node(1, net.origin).submit_message("Apple")
    view = net.wait_copies(5, net.peek(1)[0].id, 1)
    messages = GossipClient(("127.0.0.1", net.origin + 5), key=net.state.key).get_messages()
    first_path = " -> ".join(f"Node {n}" for n in view.copies[0].path)
    assert messages == [f"Apple ({first_path})"]
    assert re.fullmatch(r"Apple \(Node 1( -> Node \d)+ -> Node 5\)", messages[0])


def test_same_text_twice_is_two_messages(networks: Networks) -> None:
    net = networks.start("circular", "-n", "4")
    ids = [send(net, 1, "same"), send(net, 1, "same")]
    assert ids[0] != ids[1]
    for message_id in ids:
        net.wait_delivered(message_id)
    assert [v.text for v in net.peek(3)] == ["same", "same"]


@pytest.mark.parametrize("relays", [1, 2])
def test_relays_bound_the_copies_each_node_sends_each_peer(networks: Networks, relays: int) -> None:
    net = networks.start("random", "--seed", "5")
    message_id = send(net, 1, "counted", "--relays", str(relays))
    net.wait_delivered(message_id)
    network = net.state
    # Copies stop coming once every node has used its budget; wait for the counts to settle.
    previous: list[int] = []

    def settled() -> bool:
        counts = [len(v.copies) for n in network.nodes for v in net.peek(n)]
        stable = counts == previous
        previous[:] = counts
        return stable

    assert wait_until(settled, 10, interval=0.3)
    most_from_one_peer = 0
    for node in network.nodes:
        view = next(v for v in net.peek(node) if v.id == message_id)
        senders = [c.path[-2] for c in view.copies if len(c.path) > 1]
        for sender in set(senders):
            most_from_one_peer = max(most_from_one_peer, senders.count(sender))
    assert most_from_one_peer <= relays
    if relays > 1:
        assert most_from_one_peer == relays, "--relays 2 should let some peer send twice"


def test_remove_node_closes_the_ring_and_messages_reach_the_rest(networks: Networks) -> None:
    net = networks.start("circular", "-n", "8")
    pid = net.state.nodes[4].pid
    result = net.cli("remove-node", "4")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Removed Gossip-Node-4.",
        "Its former peers: 3, 5.",
        "New links: 3 ⟷ 5.",
    ]
    assert not state.pid_alive(pid)
    graph = live_peer_graph(net)
    assert graph[3] == {2, 5} and graph[5] == {3, 6}
    assert all(len(peers) == 2 for peers in graph.values())
    message_id = send(net, 2, "after removal")
    seen = net.wait_delivered(message_id)
    assert set(seen) == {1, 2, 3, 5, 6, 7, 8}
    gone = net.cli("get-messages", "4")
    assert gone.code == 1
    assert gone.err == "gossip: node 4 was removed from this network: live nodes are 1-3, 5-8\n"


def test_remove_node_on_random_graph_keeps_max_peers_and_delivery(networks: Networks) -> None:
    net = networks.start("random", "--seed", "3")
    for number in (5, 11):
        assert net.cli("remove-node", str(number)).code == 0
    graph = live_peer_graph(net)
    assert all(len(peers) <= 3 for peers in graph.values())
    assert all(5 not in peers and 11 not in peers for peers in graph.values())
    assert is_connected(graph)
    message_id = send(net, 1, "still spreading")
    assert len(net.wait_delivered(message_id)) == 14


def test_a_dead_peer_does_not_stop_a_message(networks: Networks) -> None:
    net = networks.start("circular", "-n", "8")
    net.kill(3)
    message_id = send(net, 2, "around the gap")
    seen = net.wait_delivered(message_id, nodes=[1, 2, 4, 5, 6, 7, 8])
    assert 3 not in seen
    down = net.cli("get-messages", "3")
    assert down.code == 1 and down.err.count("\n") == 1
    assert down.err.startswith(f"gossip: node 3 at 127.0.0.1:{net.origin + 3} is not answering")


def test_stop_network_leaves_nothing_running(networks: Networks) -> None:
    net = networks.start("circular", "-n", "6")
    pids = [net.state.supervisor_pid, *(e.pid for e in net.state.nodes.values())]
    assert all(state.pid_alive(p) for p in pids)
    result = net.cli("stop-network")
    assert result.code == 0
    ports = f"{net.origin + 1}-{net.origin + 6}"
    stopped, kept = result.out.splitlines()
    assert stopped == f"Stopped the network on ports {ports} (6 nodes were running)."
    assert re.fullmatch(
        f"Their messages are kept in {re.escape(str(net.directory))}: (.+ )?gossip "
        f"start-network --resume --port-origin {net.origin} brings the network "
        "back with them; a fresh start-network there deletes them.",
        kept,
    ), kept
    assert not any(state.pid_alive(p) for p in pids)
    assert not gossip_processes(str(net.directory))
    again = net.cli("stop-network").err
    assert re.fullmatch(
        f"gossip: no network is running on port origin {net.origin}: (.+ )?gossip start-network "
        f"--resume --port-origin {net.origin} brings back the one stopped there with its "
        "messages \\(a fresh start-network deletes them\\)\n",
        again,
    ), again


def test_stop_network_counts_a_supervisor_the_state_missed_as_no_node(
    networks: Networks,
) -> None:
    net = networks.start("circular", "-n", "3")
    # A process with a supervisor's command line that the state does not record (one
    # started by a command that failed to write it down, say).
    stray = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            state.SUPERVISOR_MODULE,
            str(net.directory),
        ]
    )
    try:
        assert wait_until(lambda: stray.pid in gossip_processes(str(net.directory)), 10)
        result = net.cli("stop-network")
        assert result.code == 0
        assert "(3 nodes were running)" in result.out, result.out
        assert stray.wait(10) is not None
    finally:
        stray.kill()
        stray.wait()


def test_ports_in_use_give_a_clear_error_and_leave_nothing(networks: Networks) -> None:
    net = networks.reserve()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", net.origin + 3))
        squatter.listen()
        result = gossip_cli(
            "start-network", "circular", "-n", "6", "--port-origin", str(net.origin), cwd=net.cwd
        )
    assert result.code == 1
    assert result.err == (
        f"gossip: port {net.origin + 3} of 127.0.0.1 (node 3) is in use by another program: "
        "stop it, or choose another --port-origin\n"
    )
    assert "Traceback" not in result.err
    assert not gossip_processes(str(net.directory))


def test_same_origin_twice_is_refused_and_two_origins_run_side_by_side(
    networks: Networks,
) -> None:
    first = networks.start("circular", "-n", "4")
    again = gossip_cli(
        "start-network", "circular", "-n", "4", "--port-origin", str(first.origin), cwd=first.cwd
    )
    assert again.code == 1
    assert again.err.startswith(
        f"gossip: a network is already running on ports {first.origin + 1}-{first.origin + 4}"
    )
    second = networks.start("circular", "-n", "4")
    ambiguous = gossip_cli("list-peers", "1", cwd=first.cwd)
    assert ambiguous.code == 1 and "choose one with --port-origin" in ambiguous.err
    for net in (first, second):
        message_id = send(net, 1, f"on {net.origin}")
        net.wait_delivered(message_id)
        assert [v.text for v in net.peek(3)] == [f"on {net.origin}"]


def test_commands_find_the_only_network_without_port_origin(networks: Networks) -> None:
    net = networks.start("circular", "-n", "4")
    result = gossip_cli("list-peers", "2", cwd=net.cwd.parent)
    assert result.code == 0
    assert result.out.splitlines()[0] == "Gossip-Node-2 has peers:"


@pytest.mark.parametrize("kind", TOPOLOGIES)
def test_plot_writes_a_png_of_each_topology(networks: Networks, kind: str) -> None:
    net = networks.reserve()
    start = ["start-network", *TOPOLOGIES[kind], "-P", "--port-origin", str(net.origin)]
    result = gossip_cli(*start, cwd=net.cwd)
    assert result.code == 0, result.err
    line = next(x for x in result.out.splitlines() if x.startswith("Topology picture: "))
    picture = net.directory / "topology.png"
    assert line == f"Topology picture: {picture}"
    data = picture.read_bytes()
    assert png_size(data) == (840, 840)
    assert len(data) > 20_000


def without_gossip_on_the_path() -> dict[str, str]:
    """The environment of a fresh shell: not under ``uv run``, no ``gossip`` on the PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV")}
    folders = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(d for d in folders if d and not (Path(d) / "gossip").exists())
    return env


def test_demo_spreads_a_message_and_leaves_the_network_as_it_says(networks: Networks) -> None:
    net = networks.reserve()
    env = without_gossip_on_the_path()
    demo = ["-m", "gossip", "demo", "--port-origin", str(net.origin)]
    result = run_python(*demo, cwd=net.cwd, env=env)
    assert result.code == 0, result.err
    out = result.out
    assert "Every node holds it" in out
    arrivals = out.split("First arrivals, node (+ms after sending):\n")[1].split("\n\n")[0]
    assert re.match(r"  1 \(\+0\.0 ms\), \d+ \(\+", arrivals), arrivals
    assert len(re.findall(r"\d+ \(\+\d+\.\d ms\)", arrivals)) == 16
    assert "Fetched all messages from Gossip-Node-10; showing all path(s):" in out
    assert "\n• Hello World\n  ↳ 1 ➜ " in out
    for name in ("live-topology.png", "spread.png"):
        picture = net.directory / name
        assert str(picture) in out
        assert png_size(picture.read_bytes()) == (840, 840)
    assert "The network is still running." in out and "gossip stop-network" in out
    status = json.loads(net.cli("status", "--json").out)
    assert [n["state"] for n in status["nodes"]] == ["up"] * 16
    assert status["parts"] == [list(range(1, 17))]
    assert all(n["messages"] == 1 for n in status["nodes"])
    assert [v.text for v in net.peek(16)] == ["Hello World"]
    tried = out.split("Try:\n")[1].splitlines()
    run = f"{shlex.quote(sys.executable)} -m gossip"
    assert len(tried) == 7 and all(line.startswith(f"  {run} ") for line in tried), tried
    here = f" --port-origin {net.origin}"  # not the default network: each names it
    assert all(line.endswith(here) for line in tried), tried
    assert tried[-1] == f"  {run} stop-network{here}"
    status_line = next(line for line in tried if line.endswith(f" status{here}"))
    shown = subprocess.run(
        status_line,
        shell=True,
        cwd=net.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "16 of 16 nodes up" in shown.stdout


@pytest.mark.slow  # a few seconds on a real network
def test_a_demo_interrupted_once_its_network_runs_says_the_network_still_runs(
    networks: Networks,
) -> None:
    """The demo leaves its network running by design; a Ctrl-C while it watches the
    spread (node 16 is hung, so the watch goes on) must say so, and how to stop it."""
    net = networks.reserve()
    demo = [sys.executable, "-m", "gossip", "demo", "--port-origin", str(net.origin)]
    env = without_gossip_on_the_path()
    out, err = subprocess.PIPE, subprocess.PIPE
    runner = subprocess.Popen(demo, cwd=net.cwd, env=env, stdout=out, stderr=err, text=True)
    hung: list[int] = []
    try:
        assert runner.stdout is not None
        assert runner.stdout.readline().startswith("Started 16 nodes")
        hung.append(state.load(net.directory).nodes[16].pid)
        stop(hung)
        while not runner.stdout.readline().startswith("Sent 'Hello World'"):
            pass
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
        resume(hung)
    assert runner.returncode == 130
    stop_it = f"{shlex.quote(sys.executable)} -m gossip stop-network --port-origin {net.origin}"
    assert err == f"gossip: interrupted; the network it started still runs: {stop_it} stops it\n"
    assert "16 of 16 nodes up" in net.cli("status").out


@pytest.mark.parametrize("when", ["as the start returns", "before anything starts"])
def test_a_demo_interrupted_says_whether_its_network_runs(
    networks: Networks,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    when: str,
) -> None:
    """Interrupted the moment its network is up, before the demo took it on, it said
    only 'interrupted' and left the network running unmentioned; interrupted before,
    there is nothing to stop, and it says nothing of one."""
    from gossip import cli

    net = networks.reserve()
    if when == "as the start returns":
        monkeypatch.setattr(mending_io, "start", interrupted_after(mending_io.start))
    else:
        monkeypatch.setattr(mending_io, "start", interrupted_after(lambda plan: None))
    assert cli.main(["demo", "-n", "4", "--port-origin", str(net.origin)]) == 130
    err = capsys.readouterr().err
    if when == "as the start returns":
        assert err.startswith("gossip: interrupted; the network it started still runs: ")
        assert f"stop-network --port-origin {net.origin} stops it" in err
        assert "4 of 4 nodes up" in net.cli("status").out
    else:
        assert err == "gossip: interrupted\n"
        assert not state.processes_of(net.directory)


@pytest.mark.slow  # nine starts of six nodes
@pytest.mark.parametrize("running", [2, 4, 7])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_start_interrupted_at_any_moment_runs_whole_and_says_so_or_not_at_all(
    networks: Networks, signum: signal.Signals, running: int
) -> None:
    """Ctrl-C, ``timeout`` (SIGTERM) or a closed terminal (SIGHUP) while start-network
    starts (``running``: its processes so far, 7 once all six nodes are forked). SIGTERM
    and SIGHUP ended it on the spot: a network left running that no command could
    manage, and a --resume afterwards deleted its stores."""
    net = networks.reserve()
    start = [sys.executable, "-m", "gossip", "start-network", "-n", "6"]
    runner = subprocess.Popen(
        [*start, "--port-origin", str(net.origin)],
        cwd=net.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(gossip_processes(str(net.directory))) >= running, 30)
        runner.send_signal(signum)
        _, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    left = gossip_processes(str(net.directory))
    status = net.cli("status")
    if runner.returncode == 0:  # it had finished
        assert "6 of 6 nodes up" in status.out
        return
    assert runner.returncode == 130 and "Traceback" not in err, err
    if "still runs" in err:
        stop = f"stop-network --port-origin {net.origin} stops it"
        assert err.startswith("gossip: interrupted; the network it started still runs: ")
        assert err.rstrip().endswith(stop) and "6 of 6 nodes up" in status.out, status
    else:
        assert err == "gossip: interrupted\n"
        assert left == [] and status.code == 1, status
    assert not list(net.directory.glob(".replaced-*"))
    assert net.cli("stop-network").code == (0 if left else 1)
    assert gossip_processes(str(net.directory)) == []


def stop(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)


def resume(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


@pytest.mark.slow  # about 7 s: the everyday run stays under five minutes
def test_hung_nodes_do_not_hold_up_status_or_watching(networks: Networks) -> None:
    """Three SIGSTOPped nodes accept connections but never answer: a 10 s wait for each
    would take 30 s; asked at once with a short timeout, they cost one wait."""
    net = networks.start("circular", "-n", "8")
    message_id = send(net, 1, "before the hang")
    net.wait_delivered(message_id)
    network = net.state
    hung = [3, 5, 7]
    pids = [network.nodes[n].pid for n in hung]
    try:
        stop(pids)
        began = time.monotonic()
        result = net.cli("status", "--json")
        took = time.monotonic() - began
        assert result.code == 0, result.err
        states = {n["node"]: n["state"] for n in json.loads(result.out)["nodes"]}
        assert states == {n: "down" if n in hung else "up" for n in range(1, 9)}
        assert took < 8, f"status took {took:.1f} s with {len(hung)} hung nodes"

        began = time.monotonic()
        held = holders_of(network, "before the hang")
        took = time.monotonic() - began
        assert sorted(held) == [1, 2, 4, 6, 8]
        assert took < 8, f"holders_of took {took:.1f} s with {len(hung)} hung nodes"

        began = time.monotonic()
        seen = await_spread(network, message_id, 1.0)
        took = time.monotonic() - began
        assert sorted(seen) == [1, 2, 4, 6, 8]
        assert took < 8, f"await_spread took {took:.1f} s with {len(hung)} hung nodes"
    finally:
        resume(pids)


def test_nodes_outlive_a_killed_supervisor_and_the_next_command_adopts_them(
    networks: Networks,
) -> None:
    net = networks.start("circular", "-n", "4")
    net.kill(2)
    assert net.cli("restart-node", "2").code == 0  # forked by the running supervisor
    network = net.state
    os.kill(network.supervisor_pid, signal.SIGKILL)
    assert wait_until(lambda: not state.pid_alive(network.supervisor_pid), 5)
    result = net.cli("list-peers", "1")
    assert result.code == 0, result.err
    adopter = net.state.supervisor_pid
    assert adopter != network.supervisor_pid and state.pid_alive(adopter)
    node_pids = [e.pid for e in network.nodes.values()]
    assert all(state.pid_alive(p) for p in node_pids), "the nodes served on"
    net.kill(3)
    restarted = net.cli("restart-node", "3")  # the new supervisor's control socket answers
    assert restarted.code == 0, restarted.err
    assert net.cli("stop-network").code == 0
    assert not gossip_processes(str(net.directory))


def test_a_node_stops_when_its_network_is_gone_without_its_supervisor(
    networks: Networks,
) -> None:
    """A node whose supervisor died serves on only while the network still counts it."""
    net = networks.start("circular", "-n", "3")
    network = net.state
    os.kill(network.supervisor_pid, signal.SIGKILL)
    (net.directory / state.STATE_FILE).unlink()
    node_pids = [e.pid for e in network.nodes.values()]
    assert wait_until(lambda: not any(state.pid_alive(p) for p in node_pids), 10)


def test_a_node_answers_ping_and_refuses_unknown_commands(networks: Networks) -> None:
    net = networks.start("circular", "-n", "3")
    assert net.client(2).request("PING")[-1].payload == {"node": 2}
    with pytest.raises(GossipError, match="unknown command /FROB"):
        net.client(2).request("FROB")
    with socket.create_connection(net.state.nodes[2].address, timeout=5) as raw:
        assert raw.recv(4096).startswith(b"/HELLO ")
        raw.sendall(b"not a frame\n")
        assert raw.recv(4096).startswith(b"/ERR ")
    with socket.create_connection(net.state.nodes[2].address, timeout=5) as raw:
        assert raw.recv(4096).startswith(b"/HELLO ")
        try:
            raw.sendall(b"/NEW " + b"x" * (2 * MAX_FRAME_BYTES))
            answer = raw.recv(4096)
        except ConnectionResetError:
            answer = b"(reset)"
    assert answer.startswith(b"/ERR ") or answer == b"(reset)", answer
    assert net.client(2).request("PING")[-1].payload == {"node": 2}
    log = (net.directory / "node-2.log").read_text()
    assert "refused a frame" in log and "exceeds the" in log


def imported_modules(*args: str) -> str:
    """What ``python -X importtime`` reports for a command: every module it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=60
    )
    return done.stderr


HEAVY = ("networkx", "matplotlib", "numpy", "aiohttp", "prometheus_client")


def test_message_commands_and_nodes_import_nothing_heavy(networks: Networks) -> None:
    net = networks.start("circular", "-n", "3")
    origin = str(net.origin)
    send_report = imported_modules(
        "-m", "gossip", "send-message", "1", "hi", "--port-origin", origin
    )
    get_report = imported_modules("-m", "gossip", "get-messages", "2", "--port-origin", origin)
    node_report = imported_modules("-c", "import gossip.supervisor")
    cli_report = imported_modules("-c", "import gossip.cli")
    for report in (send_report, get_report, node_report, cli_report):
        assert "gossip.client" in report, "importtime reported nothing"
        for heavy in HEAVY:
            assert f" {heavy}" not in report, f"{heavy} imported"
    start_report = imported_modules("-c", "import gossip.topology")
    assert " networkx" in start_report, "the check above must be able to see networkx"
    web_report = imported_modules("-c", "import gossip.web.app")
    assert " aiohttp" in web_report and " prometheus_client" in web_report


def test_removing_a_dead_node_after_its_peers_healed_around_it(networks: Networks) -> None:
    net = networks.start("circular", "-n", "8")
    net.kill(5)
    assert wait_until(lambda: peer_numbers(net, 4) == {3, 6}, 10), peer_numbers(net, 4)
    result = net.cli("remove-node", "5")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "Removed Gossip-Node-5, which was already down.",
        "Its peers had already noticed and healed around it.",
    ]
    assert net.cli("list-peers", "5").code == 1
    message_id = send(net, 1, "ring closed again")
    assert set(net.wait_delivered(message_id)) == {1, 2, 3, 4, 6, 7, 8}


def test_ports_in_use_in_the_ephemeral_range_get_advice(networks: Networks) -> None:
    try:
        low, _ = map(int, Path(EPHEMERAL_PORTS).read_text().split())
    except OSError:
        pytest.skip("this system does not say which ports it uses for outgoing connections")
    origin = next(o for o in range(low, low + 2000, 40) if ports_free(o, 8))
    net = Net(origin, networks.home / f"network-{origin}", networks.cwd)
    networks.nets.append(net)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", origin + 2))
        squatter.listen()
        result = gossip_cli(
            "start-network", "circular", "-n", "6", "--port-origin", str(origin), cwd=net.cwd
        )
    assert result.code == 1
    # Port origin+2 is ours; in this range any other may be taken meanwhile by an outgoing
    # connection, which is what the advice is about.
    taken = re.match(r"gossip: port (\d+) of 127.0.0.1 \(node \d+\) is in use", result.err)
    assert taken and origin < int(taken.group(1)) <= origin + 6, result.err
    assert f"choose a --port-origin below {low - 6}" in result.err
    assert result.err.count("\n") == 1


@pytest.mark.slow  # it watches for quiet seconds
def test_an_idle_network_trades_no_digests_until_a_message_comes(networks: Networks) -> None:
    """Catch-up rounds stop once neighbours agree, and start again for a new message."""
    net = networks.start("-n", "8")
    network = net.state

    def syncs() -> int:
        reports = [GossipClient(e.address, network.key).status() for e in network.nodes.values()]
        return sum(r["counters"]["frames_out"].get("SYNC", 0) for r in reports)

    deadline, before = time.monotonic() + 20.0, syncs()
    while True:
        time.sleep(2.0)  # a window to watch for rounds: two quiet seconds, not a condition
        quiet = syncs()
        if quiet == before:
            break
        assert time.monotonic() < deadline, "catch-up rounds went on in an idle network"
        before = quiet
    message_id = send(net, 1, "wake up")
    net.wait_delivered(message_id)
    assert wait_until(lambda: syncs() > quiet, 10.0, 0.2)


def test_mending_after_a_removal_keeps_to_each_side_of_a_partition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """remove-node mends what it leaves; under the lab's partition it plans each side on
    its own, as the supervisor does: a link across it, the nodes would refuse. The
    partition is the one the nodes hold: made on another host, it is in no state here."""
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in range(1, 5)}
    net = NetworkState(7000, 3, "two pairs", nodes, 0, 1.0)
    links = {1: [2], 2: [1], 3: [4], 4: [3]}
    held: list[list[int]] = [[1, 2], [3, 4]]
    look = lambda _: mending_io.Look(links, dict.fromkeys(links, 3), held)  # noqa: E731
    monkeypatch.setattr(mending_io, "reported", look)
    asked: list[Step] = []
    monkeypatch.setattr(mending_io, "carry_out", lambda step, _: asked.append(step))
    assert net.conditions == {}
    assert mending_io.mend(net) == [] and asked == []
    held = []
    steps = mending_io.mend(net)
    assert steps and asked == steps, "with no partition, the two pairs are joined"


def test_a_look_holds_the_partition_most_nodes_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the menders plan within: the nodes' partition, not this host's state's; a
    report whose conditions are not a partition counts as none."""
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in range(1, 6)}
    net = NetworkState(7000, 3, "five", nodes, 0, 1.0)
    cut = {"groups": [[1, 2], [3, 4, 5]]}
    said: dict[int, object] = {1: cut, 2: cut, 3: {}, 4: {"groups": "1-2 3-5"}, 5: cut}

    class Answers:
        timeout = 0.0

        def __init__(self, number: int) -> None:
            self.number = number

        def status(self) -> dict[str, object]:
            return {"peers": [], "wanted": 3, "conditions": said[self.number]}

    monkeypatch.setattr(mending_io, "client_for", lambda _, entry: Answers(entry.number))
    look = mending_io.reported(net)
    assert look.groups == [[1, 2], [3, 4, 5]] and look.partition(net) == look.groups
    said.update({1: {}, 2: {}})
    assert mending_io.reported(net).groups == []
    net.conditions = {"groups": [[1], [2, 3, 4, 5]]}
    assert mending_io.Look({}, {}, []).partition(net) == [[1], [2, 3, 4, 5]], "none answered"


def test_a_node_that_answers_wrongly_is_failing_and_the_others_still_show(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nodes = {n: NodeEntry(n, "127.0.0.1", 7000 + n, []) for n in range(1, 4)}
    net = NetworkState(7000, 3, "three", nodes, 0, 1.0)

    class Answers:
        def __init__(self, number: int) -> None:
            self.number = number

        def status(self) -> dict[str, object]:
            if self.number == 2:
                raise GossipError("cannot talk to node 2: its seal is wrong")
            return {"peers": [], "started": 1.0}

    monkeypatch.setattr(mending_io, "surveyor", lambda _, number: Answers(number))
    rows = {r.entry.number: r for r in mending_io.status(net)}
    assert [rows[n].state for n in (1, 2, 3)] == ["up", "failing", "up"]
    assert rows[2].report == {"error": "cannot talk to node 2: its seal is wrong"}


@pytest.mark.slow  # about 5 s: the send waits on a 2-second delay
def test_an_interrupted_send_says_how_to_send_it_again_once(networks: Networks) -> None:
    """Ctrl-C while the node had the message gave no id: sending again made two."""
    net = networks.start("circular", "-n", "4")
    assert net.cli("netem", "--delay", "2000ms").code == 0  # the copies, so the answer, wait
    sending = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gossip",
            "send-message",
            "1",
            "cut short",
            "--port-origin",
            str(net.origin),
        ],
        cwd=net.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: any(v.text == "cut short" for v in net.peek(1)), 10)
        sending.send_signal(signal.SIGINT)
        _, err = sending.communicate(timeout=10)
    finally:
        sending.kill()
    assert sending.returncode == 130, err
    said = re.fullmatch(
        r"gossip: interrupted; Gossip-Node-1 may have taken the message: send it again with "
        r"--id ([0-9a-f]{32}) to be sure it is sent once\n",
        err,
    )
    assert said, err
    assert net.cli("netem", "--off").code == 0
    again = net.cli("send-message", "1", "cut short", "--id", said.group(1))
    assert again.code == 0 and "already had message" in again.out, again.out
    assert [v.text for v in net.peek(1)].count("cut short") == 1


def set_aside_by_a_dead_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The run directory of port origin 20000 under ``tmp_path``, and the folder where a
    start, whose process is gone, set aside what was there."""
    monkeypatch.setenv("GOSSIP_HOME", str(tmp_path))
    directory = state.run_dir(20000)
    directory.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = directory / f".replaced-{dead.pid}"
    aside.mkdir()
    return directory, aside


def test_a_fresh_start_killed_halfway_gives_back_what_it_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start killed (SIGKILL, SIGHUP) after it set the stopped network's files aside left
    its own empty stores in their place; the next start put back only the names that were
    free, then deleted the rest: the stopped network's messages and secret were gone."""
    old = NetworkState(20000, 3, "circular", {1: NodeEntry(1, "127.0.0.1", 20001, [])})
    directory, aside = set_aside_by_a_dead_start(tmp_path, monkeypatch)
    state.save(old, aside)
    (aside / state.SECRET_FILE).write_bytes(b"old secret")
    (aside / "node-1.db").write_bytes(b"old messages")
    new = NetworkState(
        20000, 3, "circular", {n: NodeEntry(n, "127.0.0.1", 20000 + n, []) for n in (1, 2)}
    )
    state.save(new, directory)  # what the killed start had made
    (directory / state.SECRET_FILE).write_bytes(b"new secret")
    (directory / "node-1.db").write_bytes(b"")
    (directory / "node-2.db").write_bytes(b"")
    mending_io._check_free(directory, old)
    assert (directory / "node-1.db").read_bytes() == b"old messages"
    assert (directory / state.SECRET_FILE).read_bytes() == b"old secret"
    assert state.load(directory) == old
    assert not (directory / "node-2.db").exists() and not aside.exists()


def test_what_a_start_that_went_through_set_aside_is_not_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start killed while it deleted what it had set aside, once its network ran: that
    network's stores were later swapped for the older network's."""
    directory, aside = set_aside_by_a_dead_start(tmp_path, monkeypatch)
    (aside / "node-1.db").write_bytes(b"the older network's")
    ran = NetworkState(20000, 3, "circular", {1: NodeEntry(1, "127.0.0.1", 20001, [])})
    ran.supervisor_pid = state.STOPPED  # it ran, and was stopped since
    state.save(ran, directory)
    (directory / "node-1.db").write_bytes(b"the newer network's")
    mending_io._check_free(directory, ran)
    assert (directory / "node-1.db").read_bytes() == b"the newer network's"
    assert not aside.exists()


def test_a_bare_stop_network_stops_a_network_it_cannot_read_only_if_nothing_else_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two readable networks running and one not, it stopped the unreadable one
    instead of asking which network to stop."""
    damaged = tmp_path / "network-20000"
    readable = (tmp_path / "network-21000", state.load)
    monkeypatch.setattr(state, "unreadable_running", lambda: [damaged])
    monkeypatch.setattr(state, "load", lambda directory: None)
    monkeypatch.setattr(state, "processes_of", lambda directory: [4242])
    monkeypatch.setattr(state, "running_networks", lambda: [readable, readable])
    assert mending_io.unreadable(None) is None, "two others run: the user must choose"
    monkeypatch.setattr(state, "running_networks", lambda: [])
    assert mending_io.unreadable(None) == damaged
    assert mending_io.unreadable(damaged) == damaged, "named, it is the one"


@pytest.mark.parametrize(
    ("max_peers", "note"),
    [
        ("1", "with --max-peers 1 a node links to one other only: they stay apart"),
        pytest.param("3", "the supervisor joins them within seconds", marks=pytest.mark.slow),
    ],
)
def test_a_start_in_parts_says_whether_they_will_be_joined(
    networks: Networks, max_peers: str, note: str
) -> None:
    """With at most one peer each, 4 nodes can only be two pairs: promising that the
    supervisor joins them was wrong."""
    net = networks.reserve()
    started = net.cli("start-network", "random", "1", "-n", "4", "--max-peers", max_peers)
    assert started.code == 0, started.err
    assert "Note: this graph has 2 separate parts" in started.out and note in started.out


def test_a_resume_of_an_unreadable_state_says_what_is_there(
    gossip_home: Path, fake_supervisor: Callable[..., subprocess.Popen[bytes]]
) -> None:
    """It said "no stopped network to resume: start one", which deletes the stores, of a
    network whose state file was damaged, stopped or even running."""
    directory = state.run_dir(7300)
    directory.mkdir(parents=True)
    (directory / state.STATE_FILE).write_text("{damaged")
    (directory / "node-1.db").write_bytes(b"")
    with pytest.raises(GossipError, match=r"cannot resume: the network's state file .* cannot be"):
        mending_io.resume(directory)
    fake_supervisor(directory)
    assert wait_until(lambda: bool(state.processes_of(directory)), 10)  # just exec'd
    with pytest.raises(GossipError, match=r"runs, but its state file .* cannot be read: gossip st"):
        mending_io.resume(directory)
