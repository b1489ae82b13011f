"""The network file (``gossip.config``): every node's address and the topology, over hosts.

Every host reads the same file, so every host must build the same network from it; and
whatever a user writes there, a mistake must come back as a ``GossipError`` whose one
line says what to fix, never as a traceback.
"""

from __future__ import annotations

import json
import math
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossip import config, state, topology
from gossip.auth import new_secret
from gossip.errors import GossipError
from gossip.state import NetworkState, NodeEntry, write_secret
from tests.networks import free_origin

HOSTS = ("10.0.0.1", "10.0.0.2")

VALID = """\
name = "lab"
max_peers = 3
secret = "lab.secret"

[topology]
kind = "random"
degree = 3
seed = 7

[nodes]
1 = "10.0.0.1:7001"
2 = "10.0.0.1:7002"
3 = "10.0.0.1:7003"
4 = "10.0.0.1:7004"
5 = "10.0.0.2:7001"
6 = "10.0.0.2:7002"
7 = "10.0.0.2:7003"
8 = "10.0.0.2:7004"
"""


def toml_value(value: Any) -> str:
    """``value`` as TOML (no None in TOML): strings quoted as JSON, which TOML reads the same
    but for the DEL character, which TOML wants escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"no TOML for {value!r}")


def toml(data: dict[str, Any]) -> str:
    return "".join(f"{toml_value(str(k))} = {toml_value(v)}\n" for k, v in data.items())


def write(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as the file ``path``, in TOML or JSON by its suffix."""
    path.write_text(json.dumps(data) if path.suffix == ".json" else toml(data))
    return path


def secret_file(directory: Path, name: str = "lab.secret") -> bytes:
    secret = new_secret()
    write_secret(directory / name, secret)
    return secret


def valid(tmp_path: Path) -> Path:
    secret_file(tmp_path)
    path = tmp_path / "lab.toml"
    path.write_text(VALID)
    return path


def plain(**changes: Any) -> dict[str, Any]:
    """A small valid insecure network with explicit peers, changed as asked (None removes)."""
    data: dict[str, Any] = {
        "name": "lab",
        "max_peers": 3,
        "insecure": True,
        "nodes": {"1": "10.0.0.1:7001", "2": "10.0.0.2:7001", "3": "10.0.0.3:7001"},
        "peers": {"1": [2], "2": [3]},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def graph_of(network: NetworkState) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(network.nodes)
    graph.add_edges_from((n, p) for n, e in network.nodes.items() for p in e.peers)
    return graph


def check_shape(network: NetworkState) -> None:
    """What every loaded network must be: real addresses, two-way peers within max_peers."""
    addresses = [e.address for e in network.nodes.values()]
    assert len(set(addresses)) == len(addresses)
    assert network.max_peers >= 1
    for number, entry in network.nodes.items():
        assert entry.number == number >= 1
        assert entry.host and 0 < entry.port < 65536
        assert entry.peers == sorted(set(entry.peers))
        assert len(entry.peers) <= network.max_peers
        for peer in entry.peers:
            assert peer != number and number in network.nodes[peer].peers


def error(path: Path, only: str | None = None) -> str:
    """The message of the GossipError loading ``path`` raises; it must be one line."""
    with pytest.raises(GossipError) as caught:
        config.load(path, only)
    message = str(caught.value)
    assert message and "\n" not in message
    return message


# A valid file


def test_a_random_topology_file_gives_every_node_its_address_and_peers(tmp_path: Path) -> None:
    secret = secret_file(tmp_path)
    path = tmp_path / "lab.toml"
    path.write_text(VALID)
    network = config.load(path)
    assert network.name == "lab" and network.max_peers == 3
    assert sorted(network.nodes) == list(range(1, 9))
    assert network.nodes[1].address == ("10.0.0.1", 7001)
    assert network.nodes[6].address == ("10.0.0.2", 7002)
    assert network.topology == "random regular graph of degree 3"
    check_shape(network)
    assert all(len(e.peers) == 3 for e in network.nodes.values())  # 3-regular
    assert nx.is_connected(graph_of(network))
    assert network.key == secret.strip() and not network.insecure
    assert all(e.local for e in network.nodes.values())  # no --only: every node is here
    assert all(e.pid == 0 and not e.removed for e in network.nodes.values())
    assert network.directory.name == "network-lab"


def test_every_host_builds_the_same_graph(tmp_path: Path) -> None:
    """Two hosts, two copies of the file, one graph: the seed fixes it."""
    here, there = tmp_path / "here", tmp_path / "there"
    for directory in (here, there):
        directory.mkdir()
        valid(directory)
    first = config.load(here / "lab.toml", "10.0.0.1")
    second = config.load(there / "lab.toml", "10.0.0.2")
    assert {n: e.peers for n, e in first.nodes.items()} == {
        n: e.peers for n, e in second.nodes.items()
    }
    expected = topology.build("random", 8, 3, degree=3, seed=7).neighbours
    assert {n: e.peers for n, e in first.nodes.items()} == expected


def test_a_random_topology_without_a_seed_uses_the_default_seed(tmp_path: Path) -> None:
    path = valid(tmp_path)
    path.write_text(VALID.replace("seed = 7\n", ""))
    peers = [{n: e.peers for n, e in config.load(path).nodes.items()} for _ in range(3)]
    assert peers[0] == peers[1] == peers[2]
    assert peers[0] == topology.build("random", 8, 3, degree=3, seed=config.DEFAULT_SEED).neighbours


@pytest.mark.parametrize(
    ("table", "description"),
    [
        ({"kind": "circular"}, "circular"),
        ({"kind": "turan", "partitions": 4}, "turan graph of 4 partitions"),
        ({"kind": "turan", "partitions": 1}, "turan graph of 1 partition"),
        ({"kind": "powerlaw", "seed": 3}, "powerlaw cluster graph"),
        ({}, "random regular graph of degree 3"),
    ],
)
def test_every_topology_kind_can_be_generated(
    tmp_path: Path, table: dict[str, Any], description: str
) -> None:
    nodes = {str(n): f"10.0.0.{n}:7001" for n in range(1, 9)}
    network = config.load(
        write(tmp_path / "lab.toml", plain(nodes=nodes, peers=None, max_peers=7, topology=table))
    )
    assert network.topology == description
    check_shape(network)
    assert sorted(network.nodes) == list(range(1, 9))


@pytest.mark.parametrize("host", HOSTS)
def test_only_marks_exactly_the_nodes_on_that_host_local(tmp_path: Path, host: str) -> None:
    network = config.load(valid(tmp_path), only=host)
    local = {n for n, e in network.nodes.items() if e.local}
    assert local == {n for n, e in network.nodes.items() if e.host == host}
    assert len(local) == 4
    assert network.where() == "'lab' (4 of its 8 nodes on this host)"


def test_the_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    network = config.load(write(tmp_path / "my-lab.v2.toml", plain(name=None)))
    assert network.name == "my-lab.v2"
    assert network.directory.name == "network-my-lab.v2"


def test_max_peers_defaults_to_three(tmp_path: Path) -> None:
    assert config.load(write(tmp_path / "lab.toml", plain(max_peers=None))).max_peers == 3


def test_explicit_peers_listed_once_or_both_ways_are_the_same_links(tmp_path: Path) -> None:
    once = config.load(write(tmp_path / "once.toml", plain(name="x")))
    both = config.load(
        write(tmp_path / "both.toml", plain(name="x", peers={"1": [2], "2": [1, 3], "3": [2]}))
    )
    assert once == both
    assert {n: e.peers for n, e in once.nodes.items()} == {1: [2], 2: [1, 3], 3: [2]}
    assert once.topology == "peers from the file"


def test_a_node_the_peers_table_leaves_out_has_only_the_links_others_name(
    tmp_path: Path,
) -> None:
    network = config.load(write(tmp_path / "lab.toml", plain(peers={"1": [2, 3]})))
    assert {n: e.peers for n, e in network.nodes.items()} == {1: [2, 3], 2: [1], 3: [1]}
    empty = config.load(write(tmp_path / "lab.toml", plain(peers={})))
    assert all(e.peers == [] for e in empty.nodes.values())


def test_insecure_needs_no_secret(tmp_path: Path) -> None:
    network = config.load(write(tmp_path / "lab.toml", plain()))
    assert network.insecure and network.key is None


def test_a_json_file_gives_the_same_network_as_its_toml_twin(tmp_path: Path) -> None:
    from_toml = config.load(valid(tmp_path))
    secret = (tmp_path / "lab.secret").read_bytes()
    as_toml = tomllib.loads(VALID)
    from_json = config.load(write(tmp_path / "lab.json", as_toml))
    assert from_json == from_toml  # nodes, peers, max_peers, name, topology...
    assert from_json.key == from_toml.key == secret.strip()
    explicit = plain(peers={"1": [2, 3]})
    assert config.load(write(tmp_path / "p.json", explicit)) == config.load(
        write(tmp_path / "p.toml", explicit)
    )


def test_the_secret_is_found_next_to_the_file_not_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert config.load(valid(tmp_path)).key is not None


# Every mistake, as one clear line


def test_an_unreadable_file(tmp_path: Path) -> None:
    assert "cannot read the network file" in error(tmp_path / "nowhere.toml")
    assert "cannot read the network file" in error(tmp_path)  # a directory


@pytest.mark.parametrize("text", ["name = ", "[nodes", 'a = "b"\na = "c"', "= 1", "x = 'open"])
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    assert "is not valid TOML" in error(path)


@pytest.mark.parametrize("text", ["{", "", "{'a': 1}", '{"a": 1,}', "nan nan"])
def test_invalid_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lab.json"
    path.write_text(text)
    assert "is not valid JSON" in error(path)


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"lab"', "null", "true"])
def test_json_that_is_not_an_object(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lab.json"
    path.write_text(text)
    assert "must hold a table of settings" in error(path)


CASES: list[tuple[dict[str, Any], str]] = [
    *[
        (plain(name=name), "name must be 1-64 letters, digits, '.', '-' or '_'")
        for name in ["", "a b", "x" * 65, "lab/1", "été", 5, True, ["lab"]]
    ],
    *[
        (plain(max_peers=value), f"max_peers must be a whole number of at least 1, not {value!r}")
        for value in [0, -1, "x", True, 2.5, "3"]
    ],
    *[
        (plain(nodes=nodes), "needs a [nodes] table of at least 2 nodes")
        for nodes in [None, {}, {"1": "10.0.0.1:7001"}, ["10.0.0.1:7001", "10.0.0.2:7001"], "x"]
    ],
    *[
        (plain(nodes={"1": bad, "2": "10.0.0.2:7001"}), 'node 1 must have an address "HOST:PORT"')
        for bad in [
            "10.0.0.1",
            "10.0.0.1:0",
            "10.0.0.1:70000",
            "10.0.0.1:65536",
            ":7001",
            "10.0.0.1:",
            "10.0.0.1:-1",
            "10.0.0.1:7a",
            "10.0.0.1:\u0667\u0660",  # Arabic-Indic digits
            5,
            ["10.0.0.1", 7001],
        ]
    ],
    (
        plain(nodes={"1": "10.0.0.1:7001", "2": "10.0.0.2:7001", "3": "10.0.0.1:7001"}),
        "nodes 1 and 3 have the same address 10.0.0.1:7001",
    ),
    *[
        (
            plain(nodes={"1": "10.0.0.1:7001", key: "10.0.0.2:7001"}),
            f"node numbers must be whole numbers from 1, not {key!r}",
        )
        for key in ["a", "0", "-2", "1.5", "", "\u0661"]
    ],
    (
        plain(peers=None, topology={"kind": "ring"}),
        "topology kind must be circular, random, powerlaw or turan",
    ),
    (plain(peers=None, topology={"kind": 3}), "topology kind must be"),
    (plain(peers=None, topology="circular"), "[topology] must be a table with a kind"),
    (
        plain(
            peers=None,
            topology={"kind": "circular"},
            nodes={"1": "10.0.0.1:7001", "2": "10.0.0.2:7001", "4": "10.0.0.3:7001"},
        ),
        "a generated topology needs nodes numbered 1-3",
    ),
    (
        plain(peers=None, topology={"kind": "random", "degree": 0}),
        "degree must be a whole number of at least 1, not 0",
    ),
    (
        plain(peers=None, topology={"kind": "random", "degree": 2, "seed": -1}),
        "seed must be a whole number of at least 0, not -1",
    ),
    (
        plain(peers=None, topology={"kind": "turan", "partitions": "2"}),
        "partitions must be a whole number",
    ),
    (plain(max_peers=1), "node 2 has 2 peers but max_peers is 1"),
    (plain(peers={"1": [2, 3], "2": [3]}, max_peers=1), "peers but max_peers is 1"),
    (plain(peers={"9": [1]}), "peers of node 9 must list nodes of [nodes]"),
    (plain(peers={"1": [9]}), "node 1 lists 9, which is not a node"),
    (plain(peers={"1": [1]}), "node 1 lists itself as a peer"),
    (plain(peers={"1": ["2"]}), "peers of node 1 must list nodes of [nodes]"),
    (plain(peers={"1": [True]}), "peers of node 1 must list nodes of [nodes]"),
    (plain(peers={"1": 2}), "peers of node 1 must list nodes of [nodes]"),
    (plain(peers={"x": [2]}), "node numbers must be whole numbers from 1, not 'x'"),
    (plain(peers=[[1, 2]]), "[peers] must map node numbers to lists of node numbers"),
    (plain(insecure=None), 'names no secret: add secret = "FILE"'),
    (plain(insecure=False, secret=""), "names no secret"),
    (plain(insecure=False, secret=5), "names no secret"),
    (plain(insecure=False, secret="lab.secret"), "cannot read the network's secret"),
    (plain(insecure=False, secret="lab.secret"), "(copy it from a host of the network; for a"),
    # "yes", "no" and 0 were taken as false (a secure start the file did not ask for), and
    # true beside a secret started without it, with no word of either.
    *[
        (plain(insecure=value), f"insecure must be true or false, not {value!r}")
        for value in ["yes", "no", "false", 0, 1, [True]]
    ],
    (plain(secret="lab.secret"), "give a secret or insecure = true, not both"),
    *[
        (plain(strategy={key: value}), f"strategy: {key} must be a whole number, not {value!r}")
        for key, value in [("interval_ms", "100"), ("interval_ms", "100ms"), ("fanout", "2")]
    ],
    # A typo was ignored, and the network started with the default instead.
    ({**plain(), "max_peer": 1}, "unknown setting 'max_peer': use name, max_peers, secret"),
    ({**plain(), "Nodes": {}}, "unknown setting 'Nodes'"),
    (
        plain(peers=None, topology={"kind": "random", "sed": 5}),
        "unknown [topology] setting 'sed': use kind, degree, partitions, seed",
    ),
]


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize(("data", "fragment"), CASES)
def test_every_mistake_is_one_clear_line(
    tmp_path: Path, data: dict[str, Any], fragment: str, suffix: str
) -> None:
    message = error(write(tmp_path / f"lab{suffix}", data))
    assert fragment in message
    assert str(tmp_path) in message  # it names the file it is about


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (plain(peers=None, topology={"kind": "random"}), "degree 3 with 3 nodes"),
        (plain(peers=None, topology={"kind": "random", "degree": 1}), "3 x 1 is odd"),
        (plain(peers=None, topology={"kind": "turan", "partitions": 4}), "4 partitions, 3 nodes"),
        (
            plain(peers=None, max_peers=1, topology={"kind": "circular"}),
            "node 1 would have 2 peers in this circular graph",
        ),
    ],
)
def test_a_topology_that_cannot_be_built(
    tmp_path: Path, data: dict[str, Any], fragment: str
) -> None:
    """These come from ``gossip.topology``, shared with start-network's options."""
    assert fragment in error(write(tmp_path / "lab.toml", data))


def test_a_generated_topology_over_max_peers_points_at_the_files_setting(tmp_path: Path) -> None:
    path = write(
        tmp_path / "lab.toml", plain(peers=None, max_peers=1, topology={"kind": "circular"})
    )
    message = error(path)
    assert "--max-peers" not in message
    assert str(path) in message and "max_peers" in message


def test_a_secret_too_short(tmp_path: Path) -> None:
    write_secret(tmp_path / "lab.secret", b"0123456789abcdef0123456789abcde")  # 31
    message = error(write(tmp_path / "lab.toml", plain(insecure=None, secret="lab.secret")))
    assert "is too short: make one with new-secret" in message
    write_secret(tmp_path / "lab.secret", b"0123456789abcdef0123456789abcdef")  # 32
    assert config.load(tmp_path / "lab.toml").key == b"0123456789abcdef0123456789abcdef"


def test_a_secret_of_blank_lines_is_too_short(tmp_path: Path) -> None:
    (tmp_path / "lab.secret").write_text(" " * 40 + "\n\n")
    message = error(write(tmp_path / "lab.toml", plain(insecure=None, secret="lab.secret")))
    assert "too short" in message


def test_a_missing_secret_says_how_to_make_one(tmp_path: Path) -> None:
    message = error(write(tmp_path / "lab.toml", plain(insecure=None, secret="lab.secret")))
    assert f"gossip new-secret {tmp_path / 'lab.secret'}" in message
    assert "No such file or directory" in message


def test_only_a_host_the_file_does_not_name(tmp_path: Path) -> None:
    message = error(valid(tmp_path), only="10.0.0.9")
    assert message.endswith("has no node on host 10.0.0.9: its hosts are 10.0.0.1, 10.0.0.2")


# Known mistakes that escape as something else than a GossipError


@pytest.mark.parametrize("name", ["lab.toml", "lab.json"])
def test_a_file_that_is_not_text(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xff\xfe\x00 not text \x89PNG")
    assert "lab" in error(path)


@pytest.mark.parametrize(
    ("name", "text"), [("lab.json", "[" * 100_000), ("lab.toml", "a = " + "[" * 100_000)]
)
def test_a_deeply_nested_file(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    assert "is not valid" in error(path)


@pytest.mark.parametrize(
    "nodes",
    [
        {"1": "10.0.0.1:" + "1" * 5000, "2": "10.0.0.2:7001"},
        {"1" * 5000: "10.0.0.1:7001", "2": "10.0.0.2:7001"},
    ],
)
def test_a_number_of_thousands_of_digits(tmp_path: Path, nodes: dict[str, str]) -> None:
    assert "node" in error(write(tmp_path / "lab.toml", plain(nodes=nodes, peers={})))


def test_a_secret_setting_with_a_nul_character(tmp_path: Path) -> None:
    message = error(write(tmp_path / "lab.toml", plain(insecure=None, secret="lab\x00.secret")))
    assert "secret" in message


def test_one_node_number_written_two_ways(tmp_path: Path) -> None:
    nodes = {"1": "10.0.0.1:7001", "01": "10.0.0.2:7001"}
    message = error(write(tmp_path / "lab.toml", plain(nodes=nodes, peers={})))
    assert "1" in message


# find: the file's view from a host where none of it runs


def test_find_without_a_network_running_here_gives_the_files_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GOSSIP_HOME", str(home))
    directory, network = config.find(valid(tmp_path))
    assert directory == home / "network-lab"
    assert sorted(network.nodes) == list(range(1, 9))
    assert not any(e.local for e in network.nodes.values())
    assert network.key is not None and network.name == "lab"
    assert network.where() == "'lab' (0 of its 8 nodes on this host)"


def test_find_ignores_the_state_of_a_network_that_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GOSSIP_HOME", str(home))
    path = valid(tmp_path)
    stale = config.load(path, only="10.0.0.1")
    stale.supervisor_pid = 0  # nobody runs it any more
    state.save(stale, home / "network-lab")
    directory, network = config.find(path)
    assert directory == home / "network-lab"
    assert not any(e.local for e in network.nodes.values())


def test_find_with_this_hosts_part_running_gives_its_state(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_supervisor: Callable[..., subprocess.Popen[bytes]],
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("GOSSIP_HOME", str(home))
    path = valid(tmp_path)
    running = config.load(path, only="10.0.0.2")
    running.supervisor_pid = fake_supervisor(home / "network-lab").pid
    running.nodes[5].pid = 4242
    state.save(running, home / "network-lab")
    directory, network = config.find(path)
    assert directory == home / "network-lab"
    assert network == running
    assert {n for n, e in network.nodes.items() if e.local} == {5, 6, 7, 8}


# Whatever the file holds: a NetworkState or a GossipError, nothing else

FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def texts(max_size: int, exclude: str = "") -> st.SearchStrategy[str]:
    """Text a file can hold: no lone surrogates, which no UTF-8 file has (a file that is
    not UTF-8 is test_a_file_that_is_not_text's)."""
    chars = st.characters(exclude_categories=("Cs",), exclude_characters=exclude)
    return st.text(chars, max_size=max_size)


scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    texts(12),
)
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts(6), inner, max_size=4),
    max_leaves=20,
)
_fuzz_dirs: dict[int, Path] = {}


def _fuzz_dir(factory: pytest.TempPathFactory) -> Path:
    """One directory for all examples, with a good secret in it (so files get that far)."""
    key = id(factory)
    if key not in _fuzz_dirs:
        directory = factory.mktemp("fuzz")
        secret_file(directory)
        _fuzz_dirs[key] = directory
    return _fuzz_dirs[key]


def load_or_refuse(path: Path, only: str | None = None) -> NetworkState | None:
    """The property: a NetworkState of the right shape, or a one-line GossipError."""
    try:
        network = config.load(path, only)
    except GossipError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None
    assert isinstance(network, NetworkState)
    check_shape(network)
    assert all(isinstance(e, NodeEntry) for e in network.nodes.values())
    return network


@FUZZ
@given(text=texts(1000))
def test_any_text_as_toml(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = _fuzz_dir(tmp_path_factory) / "lab.toml"
    path.write_text(text)
    load_or_refuse(path)


@FUZZ
@given(cut=st.tuples(st.integers(0, len(VALID)), st.integers(0, len(VALID))), junk=texts(20))
def test_a_valid_file_with_a_piece_replaced(
    tmp_path_factory: pytest.TempPathFactory, cut: tuple[int, int], junk: str
) -> None:
    """Near misses reach further than random text: a valid file with a span replaced."""
    directory = _fuzz_dir(tmp_path_factory)
    start, end = sorted(cut)
    path = directory / "lab.toml"
    path.write_text(VALID[:start] + junk + VALID[end:])
    load_or_refuse(path)


@FUZZ
@given(value=json_values)
def test_any_json_value(tmp_path_factory: pytest.TempPathFactory, value: Any) -> None:
    path = _fuzz_dir(tmp_path_factory) / "lab.json"
    path.write_text(json.dumps(value))
    load_or_refuse(path)


def mostly(
    good: st.SearchStrategy[Any], other: st.SearchStrategy[Any], odds: int = 5
) -> st.SearchStrategy[Any]:
    """``good``, but ``other`` one time in ``odds``: files near enough to valid to get far."""
    return st.sampled_from([good] * (odds - 1) + [other]).flatmap(lambda chosen: chosen)


numbers = mostly(st.integers(1, 9).map(str), st.one_of(st.integers(-1, 9).map(str), texts(3)), 20)
addresses = st.builds(
    "{}:{}".format,
    mostly(st.sampled_from(HOSTS), st.sampled_from(["", "h", "10.0.0.1:1"]), 20),
    mostly(st.integers(7001, 7010), st.integers(-2, 70000), 20),
)
files = st.builds(
    lambda base, nodes, peers, top, use_peers, use_top: {
        **base,
        "nodes": nodes,
        **({"peers": peers} if use_peers else {}),
        **({"topology": top} if use_top else {}),
    },
    st.fixed_dictionaries(
        {"insecure": mostly(st.just(True), json_values)},
        optional={
            "name": mostly(st.sampled_from(["lab", "x.y-z_1"]), json_values, 10),
            "max_peers": mostly(st.integers(1, 8), json_values, 10),
            # No NUL: that one is test_a_secret_setting_with_a_nul_character's.
            "secret": mostly(
                st.sampled_from(["lab.secret", "nowhere", "", "."]),
                texts(8, exclude="\x00"),
            ),
        },
    ),
    mostly(
        st.sampled_from(range(2, 10)).map(
            lambda n: {str(i): f"{HOSTS[i % 2]}:{7000 + i}" for i in range(1, n + 1)}
        ),
        st.dictionaries(numbers, mostly(addresses, json_values, 20), max_size=9) | json_values,
        10,
    ),
    mostly(
        st.dictionaries(
            numbers, mostly(st.lists(st.integers(1, 9), max_size=3), json_values, 20), max_size=9
        ),
        json_values,
        10,
    ),
    mostly(
        st.fixed_dictionaries(
            {},
            optional={
                "kind": mostly(st.sampled_from(topology.KINDS), json_values),
                "degree": mostly(st.integers(1, 4), json_values),
                "partitions": mostly(st.integers(1, 4), json_values),
                "seed": mostly(st.integers(0, 2**64), json_values),
            },
        ),
        json_values,
    ),
    st.booleans(),
    st.booleans(),
)


def strip_none(value: Any) -> Any:
    """TOML has no null: drop it from tables and lists."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value if v is not None]
    return value


@FUZZ
@given(
    data=files,
    suffix=st.sampled_from([".toml", ".json"]),
    only=st.sampled_from([None, "10.0.0.1", "x"]),
)
def test_any_tables_under_nodes_peers_and_topology(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any], suffix: str, only: str | None
) -> None:
    directory = _fuzz_dir(tmp_path_factory)
    path = directory / f"lab{suffix}"
    if suffix == ".toml":
        data = strip_none(data)
        path.write_text(toml(data))
        assert tomllib.loads(path.read_text()) == data  # the writer wrote what was meant
    else:
        path.write_text(json.dumps(data))
    network = load_or_refuse(path, only)
    if network is not None:
        assert network.insecure or network.key is not None
        if only is not None:
            assert {n for n, e in network.nodes.items() if e.local} == {
                n for n, e in network.nodes.items() if e.host == only
            }


def test_the_toml_writer_round_trips() -> None:
    """The fuzz tests trust ``toml`` to write what they meant; check it on awkward values."""
    data = {
        "name": 'a "quoted"\\ \x7f\x00\n\tname ü',
        "": [1, -2.5, 1e300, -0.0, True, "x", [], {}],
        "nodes": {"1": "10.0.0.1:7001", "a.b": {"c d": [math.inf]}},
    }
    assert tomllib.loads(toml(data)) == data


def test_max_peers_past_what_the_command_line_takes_is_refused(tmp_path: Path) -> None:
    """5e18 was taken, and the start then failed: 'no readable plan'."""
    file = tmp_path / "big.toml"
    file.write_text(
        'max_peers = 5000000000000000000\ninsecure = true\n[nodes]\n1 = "127.0.0.1:7001"\n'
        '2 = "127.0.0.1:7002"\n'
    )
    with pytest.raises(GossipError, match="max_peers must be at most 10000"):
        config.load(file)


def test_a_command_to_a_network_file_stopped_here_says_so_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped on this host, its nodes refuse connections: the command said 'node 1 is not
    answering; if it died, take it out with remove-node', as for one dead node."""
    from gossip import cli

    home = tmp_path / "home"
    monkeypatch.setenv("GOSSIP_HOME", str(home))
    origin = free_origin(4)
    path = tmp_path / "lab.toml"
    nodes = "".join(f'{n} = "127.0.0.1:{origin + n}"\n' for n in range(1, 5))
    path.write_text(
        f'name = "lab"\ninsecure = true\n[topology]\nkind = "circular"\n[nodes]\n{nodes}'
    )
    stopped = config.load(path)
    stopped.supervisor_pid = 0
    state.save(stopped, home / "network-lab")
    (home / "network-lab" / "node-1.db").write_bytes(b"kept")
    assert cli.main(["send-message", "1", "hi", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gossip: the network 'lab' is not running on this host: ")
    assert "start-network --resume --config " in err and "remove-node" not in err
    (home / "network-lab" / "node-1.db").unlink()  # nothing kept: a node of it is down
    assert cli.main(["send-message", "1", "hi", "--config", str(path)]) == 1
    assert "if it died, take it out with " in capsys.readouterr().err
