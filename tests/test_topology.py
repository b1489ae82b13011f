"""Starting topologies: ``gossip.topology.build`` and ``Topology``."""

from __future__ import annotations

import networkx as nx
import pytest

from gossip.errors import GossipError
from gossip.topology import Topology, build


def check_shape(topology: Topology, nodes: int) -> None:
    """Numbered 1..N, sorted neighbour lists, symmetric, no self-loops."""
    assert list(topology.neighbours) == list(range(1, nodes + 1))
    for node, peers in topology.neighbours.items():
        assert peers == sorted(set(peers))
        assert node not in peers
        assert all(1 <= p <= nodes for p in peers)
        for peer in peers:
            assert node in topology.neighbours[peer]


def degrees(topology: Topology) -> list[int]:
    return [len(p) for p in topology.neighbours.values()]


@pytest.mark.parametrize("nodes", [3, 8, 16])
def test_circular(nodes: int) -> None:
    topology = build("circular", nodes, max_peers=2)
    check_shape(topology, nodes)
    assert set(degrees(topology)) == {2}
    assert topology.neighbours[1] == [2, nodes]
    assert topology.neighbours[nodes] == [1, nodes - 1]
    assert topology.kind == "circular"
    assert "circular" in topology.description
    assert topology.components() == 1
    assert len(topology.edges()) == nodes


def test_circular_two_nodes_is_one_link() -> None:
    topology = build("circular", 2, max_peers=1)
    assert topology.neighbours == {1: [2], 2: [1]}
    assert topology.edges() == [(1, 2)]


@pytest.mark.parametrize(("nodes", "degree"), [(16, 3), (10, 4), (8, 1), (6, 5)])
def test_random_regular(nodes: int, degree: int) -> None:
    topology = build("random", nodes, max_peers=degree, degree=degree, seed=1)
    check_shape(topology, nodes)
    assert set(degrees(topology)) == {degree}
    assert f"degree {degree}" in topology.description
    assert len(topology.edges()) == nodes * degree // 2


def test_random_default_degree_is_3() -> None:
    topology = build("random", 10, max_peers=3, seed=2)
    assert set(degrees(topology)) == {3}
    assert "degree 3" in topology.description


@pytest.mark.parametrize("kind", ["random", "powerlaw"])
def test_seed_is_reproducible(kind: str) -> None:
    first = build(kind, 30, max_peers=29, seed=1234)
    again = build(kind, 30, max_peers=29, seed=1234)
    assert first.neighbours == again.neighbours
    others = [build(kind, 30, max_peers=29, seed=s).neighbours for s in range(5)]
    assert any(o != first.neighbours for o in others)


@pytest.mark.parametrize(
    ("nodes", "partitions", "sizes"),
    [(6, 2, [3, 3]), (5, 2, [3, 2]), (7, 3, [3, 2, 2]), (4, 4, [1, 1, 1, 1]), (4, 1, [4])],
)
def test_turan(nodes: int, partitions: int, sizes: list[int]) -> None:
    topology = build("turan", nodes, max_peers=nodes, partitions=partitions)
    check_shape(topology, nodes)
    assert f"of {partitions} partition" in topology.description
    # Complete multipartite: non-neighbours (plus self) form the partitions.
    parts = {
        frozenset(set(range(1, nodes + 1)) - set(peers)) for peers in topology.neighbours.values()
    }
    assert sorted((len(p) for p in parts), reverse=True) == sizes
    assert sum(len(p) for p in parts) == nodes
    for node, peers in topology.neighbours.items():
        own = len(next(p for p in parts if node in p))
        assert len(peers) == nodes - own


def test_turan_default_two_partitions() -> None:
    topology = build("turan", 6, max_peers=3)
    assert set(degrees(topology)) == {3}
    assert "2 partitions" in topology.description


def test_powerlaw() -> None:
    topology = build("powerlaw", 20, max_peers=19, seed=3)
    check_shape(topology, 20)
    assert min(degrees(topology)) >= 2
    assert topology.components() == 1
    assert "powerlaw" in topology.description


def test_max_peers_violation_circular() -> None:
    with pytest.raises(GossipError) as caught:
        build("circular", 5, max_peers=1)
    assert str(caught.value) == (
        "node 1 would have 2 peers in this circular graph but --max-peers is 1: "
        "use --max-peers 2 or a sparser topology"
    )


def test_max_peers_violation_names_busiest_node() -> None:
    # turan(5, 2): the two nodes of the smaller partition have 3 peers, the others 2.
    busiest = [n for n, p in build("turan", 5, max_peers=4).neighbours.items() if len(p) == 3]
    with pytest.raises(GossipError) as caught:
        build("turan", 5, max_peers=2)
    assert str(caught.value) == (
        f"node {min(busiest)} would have 3 peers in this turan graph but --max-peers is 2: "
        "use --max-peers 3 or a sparser topology"
    )


def test_max_peers_violation_random() -> None:
    with pytest.raises(GossipError) as caught:
        build("random", 10, max_peers=3, degree=4, seed=0)
    assert str(caught.value) == (
        "node 1 would have 4 peers in this random graph but --max-peers is 3: "
        "use --max-peers 4 or a sparser topology"
    )


def test_max_peers_exactly_enough() -> None:
    assert set(degrees(build("random", 10, max_peers=4, degree=4, seed=0))) == {4}


def test_max_peers_violation_powerlaw_names_a_node_of_top_degree() -> None:
    loose = build("powerlaw", 30, max_peers=29, seed=5)
    top = max(degrees(loose))
    with pytest.raises(GossipError) as caught:
        build("powerlaw", 30, max_peers=top - 1, seed=5)
    first = min(n for n, p in loose.neighbours.items() if len(p) == top)
    assert str(caught.value) == (
        f"node {first} would have {top} peers in this powerlaw graph but --max-peers is "
        f"{top - 1}: use --max-peers {top} or a sparser topology"
    )


def test_random_odd_product() -> None:
    with pytest.raises(GossipError) as caught:
        build("random", 15, max_peers=3, degree=3)
    assert str(caught.value) == (
        "random regular graph needs N x degree to be even: 15 x 3 is odd: "
        "use an even number of nodes or an even degree"
    )


@pytest.mark.parametrize("degree", [0, -1, 8, 9])
def test_random_degree_out_of_range(degree: int) -> None:
    with pytest.raises(GossipError) as caught:
        build("random", 8, max_peers=10, degree=degree)
    assert str(caught.value) == (
        f"random regular graph needs 1 <= degree < N: degree {degree} with 8 nodes: "
        "use a degree from 1 to 7"
    )


@pytest.mark.parametrize("kind", ["circular", "random", "powerlaw", "turan"])
@pytest.mark.parametrize("nodes", [1, 0, -3])
def test_too_few_nodes(kind: str, nodes: int) -> None:
    with pytest.raises(GossipError) as caught:
        build(kind, nodes, max_peers=4)
    assert str(caught.value) == (f"a network needs at least 2 nodes, not {nodes}: use -n 2 or more")


def test_powerlaw_too_few_nodes() -> None:
    with pytest.raises(GossipError, match="powerlaw graph needs more than 2 nodes"):
        build("powerlaw", 2, max_peers=4)


@pytest.mark.parametrize("partitions", [0, 7])
def test_turan_partitions_out_of_range(partitions: int) -> None:
    with pytest.raises(GossipError) as caught:
        build("turan", 6, max_peers=6, partitions=partitions)
    assert str(caught.value) == (
        f"turan graph needs 1 <= partitions <= N: {partitions} partitions, 6 nodes"
    )


def test_unknown_kind() -> None:
    with pytest.raises(GossipError) as caught:
        build("mesh", 4, max_peers=4)
    assert str(caught.value) == (
        "unknown topology 'mesh': choose one of circular, random, powerlaw, turan"
    )


def test_components_and_edges() -> None:
    topology = Topology("x", "x", {1: [2], 2: [1], 3: [4], 4: [3], 5: []})
    assert topology.edges() == [(1, 2), (3, 4)]
    assert topology.components() == 3
    assert Topology("x", "x", {1: [], 2: []}).components() == 2
    assert build("random", 12, max_peers=3, seed=9).components() == nx.number_connected_components(
        nx.random_regular_graph(3, 12, seed=9)
    )
    assert build("turan", 6, max_peers=6, partitions=1).components() == 6
