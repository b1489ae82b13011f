"""``gossip start-node``: one node in the foreground, as a container runs it, with no
supervisor, and ``gossip mend``, the process that looks at the whole network for them. The
nodes of a network file started this way find each other by host name, heal after kills,
catch up after a restart, and stop cleanly on SIGTERM; a split, which only a look at the
whole network mends, is mended by the mender, and waits for it while it is down. No node
ever knows more than ``max_peers`` other nodes."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossip import cli, config, mending, network, standalone
from gossip.auth import new_secret
from gossip.errors import GossipError
from gossip.state import NetworkState, write_secret
from tests.networks import free_origin

DEADLINE = 30.0
MENDER = "mender"
CONTACTS = re.compile(r"contacts \[([^\]]*)\]")
"""A node's first log line names the contacts it was given, as [2, 4]."""


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


def test_a_nodes_contacts_are_its_last_peers_else_its_peers_never_more_than_max_peers(
    tmp_path: Path,
) -> None:
    net = small_network(tmp_path)  # a ring of 4: node 3's peers in the file are 2 and 4
    contacts = standalone.contacts_of(3, net, [1])
    assert contacts == [(1, ("localhost", 41001))]  # its last peer, and nobody else
    assert [n for n, _ in standalone.contacts_of(3, net, [])] == [2, 4]  # it had none: the file's
    crowded = standalone.contacts_of(3, net, [4, 3, 2, 1, 9, 5])  # a store that says too much
    assert [n for n, _ in crowded] == [4, 2, 1] and len(crowded) == net.max_peers


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["start-node", "9"], {}, "node 9 does not exist: this network has nodes 1-4"),
        (["start-node", "auto"], {"HOSTNAME": "web"}, "ends in no -ORDINAL"),
        (["start-node", "auto"], {"HOSTNAME": "gossip-7"}, "makes node 8"),
        (["start-node", "x"], {}, "node must be a node's number or auto, not 'x'"),
        (["start-node", "1" * 5000], {}, "node must be a node's number or auto"),
        (["start-node", "1", "--listen", "127.0.0.1:5"], {}, "without a port, not '127.0.0.1:5'"),
        (["start-node", "1", "--listen", "::"], {}, "an IPv4 address or a host name"),
        (["start-node", "1", "--listen", "no such"], {}, "an IPv4 address or a host name"),
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
        '[nodes]\n1 = "gossip-0.gossip:7001"\n2 = "10.0.0.2:7002"\n'
    )
    assert config.load(path).nodes[1].address == ("gossip-0.gossip", 7001)
    path.write_text('insecure = true\n[nodes]\n1 = "no such host:7001"\n2 = "b:7002"\n')
    with pytest.raises(GossipError, match="neither an IP address nor a host name"):
        config.load(path)


@pytest.mark.parametrize("host", ["::1", "[::1]", "[fe80::1]", "2001:db8::7", "::ffff:10.0.0.1"])
def test_a_network_file_refuses_ipv6_when_read(tmp_path: Path, host: str) -> None:
    """Nodes listen on IPv4: an IPv6 address is refused with the file, not later at the
    bind, as a port that "cannot be used"."""
    path = tmp_path / "n.toml"
    path.write_text(f'insecure = true\n[nodes]\n1 = "{host}:7001"\n2 = "b:7002"\n')
    with pytest.raises(GossipError, match=r"node 1's host .* is an IPv6 address.*IPv4 only"):
        config.load(path)


@pytest.mark.parametrize(
    ("argv", "code", "expected"),
    [
        ([], 2, "mend needs its network file: give --config FILE or GOSSIP_CONFIG"),
        (["3"], 2, "'3' is one word too many; usage is gossip mend [--config FILE]"),
        (["--config", "/nonexistent/network.toml"], 1, "cannot read the network file"),
        (["--config", "{bad}"], 1, "is not valid TOML"),
        (["--config", "{no secret}"], 1, "names no secret"),
        (["--config", "{secret gone}"], 1, "cannot read the network's secret"),
    ],
)
def test_mend_refuses_bad_input_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    expected: str,
) -> None:
    monkeypatch.delenv("GOSSIP_CONFIG", raising=False)
    bad, no_secret, gone = (tmp_path / f"{n}.toml" for n in ("bad", "no-secret", "gone"))
    bad.write_text("[nodes\n1 = ")
    nodes = '[topology]\nkind = "circular"\n[nodes]\n1 = "a:7001"\n2 = "b:7002"\n'
    no_secret.write_text(nodes)
    gone.write_text(f'secret = "nonexistent"\n{nodes}')
    files = {"{bad}": str(bad), "{no secret}": str(no_secret), "{secret gone}": str(gone)}
    assert cli.main(["mend", *(files.get(a, a) for a in argv)]) == code
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and expected in err


def test_the_mender_keeps_looking_while_no_node_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    net = config.load(network_file(tmp_path, free_origin(4), 4))  # nobody listens there
    monkeypatch.setattr(mending, "REPAIR_FIRST", 0.0)
    stop = threading.Event()
    looker = threading.Thread(target=mending.mend_until, args=(net, stop), daemon=True)
    with caplog.at_level(logging.INFO, logger="gossip.mend"):
        looker.start()
        try:
            seen = "mender: 0 of 4 nodes answer; down: 1, 2, 3, 4"
            assert network.wait_until(lambda: seen in caplog.text, DEADLINE)
        finally:
            stop.set()
            looker.join(timeout=DEADLINE)
    assert not looker.is_alive()
    assert "could not look" not in caplog.text and "mending the network" not in caplog.text


class Nodes:
    """The start-node processes of one test and its mend process, each logging to a file;
    all gone at the end."""

    def __init__(self, tmp_path: Path, path: Path) -> None:
        self.tmp_path = tmp_path
        self.path = path
        self.processes: dict[int | str, subprocess.Popen[bytes]] = {}

    def start(self, number: int) -> None:
        store = self.tmp_path / f"store-{number}"
        command = ["start-node", str(number), "--listen", "127.0.0.1", "--store", str(store)]
        self._run(number, f"node-{number}.out", command)

    def start_mender(self) -> None:
        self._run(MENDER, "mender.out", ["mend"])

    def _run(self, key: int | str, out: str, command: list[str]) -> None:
        with (self.tmp_path / out).open("ab") as log:
            self.processes[key] = subprocess.Popen(
                [sys.executable, "-m", "gossip", *command, "--config", str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self, key: int | str, how: signal.Signals = signal.SIGKILL) -> int:
        process = self.processes.pop(key)
        process.send_signal(how)
        return process.wait(timeout=DEADLINE)

    def stop_all(self) -> None:
        for key in list(self.processes):
            self.kill(key)

    def output(self, name: str) -> str:
        return (self.tmp_path / name).read_text()


class MostPeers:
    """Watches every node's peers in a thread of its own while a test runs: the most any
    node held at one look, and who."""

    def __init__(self, net: NetworkState) -> None:
        self.net = net
        self.most = 0
        self.who: dict[int, list[int]] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.done.wait(0.05):
            links = network.reported(self.net, 1.0).links
            for number, peers in links.items():
                if len(peers) > self.most:
                    self.most, self.who = len(peers), {number: peers}

    def __enter__(self) -> MostPeers:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=DEADLINE)


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


def peers_of(net: NetworkState, number: int) -> list[int]:
    return [p.number for p in network.client_for(net, net.nodes[number]).peers()]


@pytest.mark.slow
def test_nodes_heal_and_catch_up_and_the_mender_mends_a_split(nodes: Nodes) -> None:
    net = config.load(nodes.path)
    everyone = list(range(1, 9))
    nodes.start_mender()
    for number in everyone:
        nodes.start(number)
    with MostPeers(net) as most:
        assert network.wait_until(lambda: connected(net, everyone), DEADLINE, 0.1)
        sent = [post(net, n, f"before {n}") for n in (1, 4, 7)]
        assert all(reached(net, m, everyone) for m in sent)

        # The mender dies, then 2 and 5: the ring is cut in two, {3, 4} and {6, 7, 8, 1}.
        # Each part heals on its own (1 and 6 link up by a walk) and gossips, but no walk
        # crosses the cut: the split waits for the mender.
        assert nodes.kill(MENDER) == -signal.SIGKILL
        nodes.kill(2)
        nodes.kill(5)
        live = [1, 3, 4, 6, 7, 8]
        assert network.wait_until(lambda: 6 in peers_of(net, 1), DEADLINE, 0.1)
        assert network.parts(network.reported(net).links) == [[1, 6, 7, 8], [3, 4]]
        sent.append(post(net, 8, "while the mender is down"))
        assert reached(net, sent[-1], [1, 6, 7, 8])

        before = len(nodes.output("mender.out"))
        nodes.start_mender()  # back: it sees the split and joins the parts
        assert network.wait_until(lambda: connected(net, live), DEADLINE, 0.2)
        assert "mender: mending the network" in nodes.output("mender.out")[before:]
        sent.append(post(net, 3, "while 2 and 5 are down"))
        assert all(reached(net, m, live) for m in sent)

        nodes.start(2)
        nodes.start(5)
        assert network.wait_until(lambda: connected(net, everyone), DEADLINE, 0.2)
        assert all(reached(net, m, everyone) for m in sent)  # caught up with what they missed
    assert 0 < most.most <= net.max_peers, most.who

    for number in everyone:  # node 2 as its terminal closing stops it: as cleanly
        assert nodes.kill(number, signal.SIGHUP if number == 2 else signal.SIGTERM) == 0
    assert nodes.kill(MENDER, signal.SIGTERM) == 0
    for number in everyone:  # what each node was given to know besides its peers
        for known in CONTACTS.findall(nodes.output(f"node-{number}.out")):
            assert len(known.split(",")) <= net.max_peers, (number, known)
    out = nodes.output("node-2.out")
    assert "Traceback" not in out and out.rstrip().endswith(
        f"Node 2 stopped; its store is in {nodes.tmp_path / 'store-2'}."
    )
    assert os.path.getsize(nodes.tmp_path / "store-2" / "node-2.db") > 0
    out = nodes.output("mender.out")
    assert "Traceback" not in out and out.rstrip().endswith(
        "The mender of network 'standalone' stopped."
    )


def test_gossip_config_names_the_network_file_a_command_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GOSSIP_CONFIG", raising=False)
    assert cli.main(["start-node", "1"]) == 2
    assert "give --config FILE or GOSSIP_CONFIG" in capsys.readouterr().err
    monkeypatch.setenv("GOSSIP_CONFIG", str(network_file(tmp_path, 41000, 4)))
    assert cli.main(["start-node", "9"]) == 1
    assert "node 9 does not exist: this network has nodes 1-4" in capsys.readouterr().err
    monkeypatch.setenv("GOSSIP_CONFIG", "/nonexistent/mended.toml")
    assert cli.main(["mend"]) == 1
    assert "cannot read the network file /nonexistent/mended.toml" in capsys.readouterr().err
    assert cli.main(["status", "--port-origin", "41900"]) == 1  # a port origin wins
    assert "no network is running on port origin 41900" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("file", "is a file: give --store a folder"),
        ("file/below", "cannot make the store's folder"),
    ],
)
def test_start_node_with_a_store_that_cannot_be_a_folder_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str, expected: str
) -> None:
    (tmp_path / "file").write_text("not a folder")
    path = tmp_path / "n.toml"
    path.write_text(
        'insecure = true\n[topology]\nkind = "circular"\n'
        '[nodes]\n1 = "127.0.0.1:7001"\n2 = "127.0.0.1:7002"\n'
    )
    argv = ["start-node", "1", "--config", str(path), "--store", str(tmp_path / store)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("gossip: ") and expected in err and err.count("\n") == 1
    assert "--store" in err


def test_a_network_file_named_by_gossip_config_says_so_when_it_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOSSIP_CONFIG", str(tmp_path / "gone.toml"))
    assert cli.main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gossip: cannot read the network file ") and err.count("\n") == 1
    assert err.endswith("($GOSSIP_CONFIG names it)\n")
    assert cli.main(["status", "--config", str(tmp_path / "gone.toml")]) == 1
    assert "GOSSIP_CONFIG" not in capsys.readouterr().err, "given on the line: no more said"
