"""``gossip start-node``: one node in the foreground, as a container runs it, with no
supervisor. The nodes of a network file started this way find each other by host name,
heal after kills (a split too, which only a look at the whole network mends), catch up
after a restart, and stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip import cli, config, network, standalone
from gossip.auth import new_secret
from gossip.errors import GossipError
from gossip.state import NetworkState, write_secret
from tests.networks import free_origin

DEADLINE = 30.0


def network_file(tmp_path: Path, origin: int, count: int, kind: str = "circular") -> Path:
    """A network file of ``count`` nodes on loopback, half named by host name."""
    write_secret(tmp_path / "secret", new_secret())
    lines = ['name = "standalone"', 'secret = "secret"', "[topology]", f'kind = "{kind}"']
    lines.append("[nodes]")
    for n in range(1, count + 1):
        host = "localhost" if n % 2 else "127.0.0.1"
        lines.append(f'{n} = "{host}:{origin + n}"')
    path = tmp_path / "network.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def small_network(tmp_path: Path) -> NetworkState:
    return config.load(network_file(tmp_path, 41000, 4))


def test_a_pods_ordinal_names_its_node(tmp_path: Path) -> None:
    net = small_network(tmp_path)
    assert standalone.node_from_hostname("gossip-0", net) == 1
    assert standalone.node_from_hostname("my-gossip-3", net) == 4
    with pytest.raises(GossipError, match="makes node 5, which the network file does not list"):
        standalone.node_from_hostname("gossip-4", net)
    with pytest.raises(GossipError, match="ends in no -ORDINAL"):
        standalone.node_from_hostname("gossip", net)


def test_a_node_alone_can_ask_every_node_of_the_file(tmp_path: Path) -> None:
    net = small_network(tmp_path)
    contacts = standalone.contacts_of(3, net, [1])
    assert [n for n, _ in contacts] == [1, 2, 4]  # last peer first, then the file's, then all
    assert contacts[0][1] == ("localhost", 41001)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["start-node", "9"], {}, "node 9 does not exist: this network has nodes 1-4"),
        (["start-node", "auto"], {"HOSTNAME": "web"}, "ends in no -ORDINAL"),
        (["start-node", "auto"], {"HOSTNAME": "gossip-7"}, "makes node 8"),
        (["start-node", "x"], {}, "node must be a node's number or auto, not 'x'"),
    ],
)
def test_start_node_refuses_bad_input_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    path = network_file(tmp_path, 41000, 4)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main([*argv, "--config", str(path)]) != 0
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and expected in err


def test_start_node_without_its_network_file_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["start-node", "1", "--config", "/nonexistent/network.toml"]) == 1
    assert capsys.readouterr().err.startswith("gossip: cannot read the network file")


def test_a_network_file_takes_host_names_but_not_nonsense(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        'insecure = true\n[topology]\nkind = "circular"\n'
        '[nodes]\n1 = "gossip-0.gossip:7001"\n2 = "[::1]:7002"\n'
    )
    assert config.load(path).nodes[1].address == ("gossip-0.gossip", 7001)
    path.write_text('insecure = true\n[nodes]\n1 = "no such host:7001"\n2 = "b:7002"\n')
    with pytest.raises(GossipError, match="neither an IP address nor a host name"):
        config.load(path)


class Nodes:
    """The start-node processes of one test, each logging to a file; all gone at the end."""

    def __init__(self, tmp_path: Path, path: Path) -> None:
        self.tmp_path = tmp_path
        self.path = path
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, number: int) -> None:
        log = (self.tmp_path / f"node-{number}.out").open("ab")
        store = self.tmp_path / f"store-{number}"
        command = ["start-node", str(number), "--config", str(self.path), "--listen", "127.0.0.1"]
        with log:
            self.processes[number] = subprocess.Popen(
                [sys.executable, "-m", "gossip", *command, "--store", str(store)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, number: int, how: signal.Signals = signal.SIGKILL) -> int:
        process = self.processes.pop(number)
        process.send_signal(how)
        return process.wait(timeout=DEADLINE)

    def stop_all(self) -> None:
        for number in list(self.processes):
            self.kill(number)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    started = Nodes(tmp_path, network_file(tmp_path, free_origin(8), 8))
    try:
        yield started
    finally:
        started.stop_all()


def connected(net: NetworkState, live: list[int]) -> bool:
    """Every listed node answers, and they form one connected graph."""
    rows = network.status(net)
    links = network.live_links(rows)
    return sorted(links) == live and len(network.parts(links)) == 1


def post(net: NetworkState, number: int, text: str) -> str:
    return network.client_for(net, net.nodes[number]).post(text).id


def reached(net: NetworkState, message_id: str, live: list[int]) -> bool:
    got = network.await_spread(net, message_id, DEADLINE, nodes=live, interval=0.05)
    return sorted(got) == live


@pytest.mark.slow
def test_nodes_without_a_supervisor_heal_and_catch_up(nodes: Nodes) -> None:
    net = config.load(nodes.path)
    everyone = list(range(1, 9))
    for number in everyone:
        nodes.start(number)
    assert network.wait_until(lambda: connected(net, everyone), DEADLINE, 0.1)
    sent = [post(net, n, f"before {n}") for n in (1, 4, 7)]
    assert all(reached(net, m, everyone) for m in sent)

    # Killing 2 and 5 cuts the ring in two: {3, 4} and {6, 7, 8, 1}. Walks cannot cross
    # a cut; node 1, the lowest that answers, sees it and joins the parts.
    nodes.kill(2)
    nodes.kill(5)
    live = [1, 3, 4, 6, 7, 8]
    assert network.wait_until(lambda: connected(net, live), DEADLINE, 0.2)
    sent.append(post(net, 3, "while 2 and 5 are down"))
    assert reached(net, sent[-1], live)

    nodes.start(2)
    nodes.start(5)
    assert network.wait_until(lambda: connected(net, everyone), DEADLINE, 0.2)
    assert all(reached(net, m, everyone) for m in sent)  # caught up with what they missed

    for number in everyone:
        assert nodes.kill(number, signal.SIGTERM) == 0
    out = (nodes.tmp_path / "node-2.out").read_text()
    assert "Traceback" not in out and out.rstrip().endswith(
        f"Node 2 stopped; its store is in {nodes.tmp_path / 'store-2'}."
    )
    assert os.path.getsize(nodes.tmp_path / "store-2" / "node-2.db") > 0


def test_gossip_config_names_the_network_file_a_command_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GOSSIP_CONFIG", raising=False)
    assert cli.main(["start-node", "1"]) == 2
    assert "give --config FILE or GOSSIP_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("GOSSIP_CONFIG", str(network_file(tmp_path, 41000, 4)))
    assert cli.main(["start-node", "9"]) == 1
    assert "node 9 does not exist: this network has nodes 1-4" in capsys.readouterr().err
    assert cli.main(["status", "--port-origin", "41900"]) == 1  # a port origin wins
    assert "no network is running on port origin 41900" in capsys.readouterr().err
