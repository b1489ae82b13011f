"""Starting topologies from NetworkX, relabelled 1..N and checked against ``max-peers``.

Only ``start-network`` (and drawing) imports this module: NetworkX is slow to import
and has no place on the path of ``send-message`` or inside a node.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from gossip.errors import GossipError

KINDS = ("circular", "random", "powerlaw", "turan")
DEFAULT_DEGREE = 3
DEFAULT_PARTITIONS = 2
POWERLAW_EDGES = 2
POWERLAW_TRIANGLES = 0.3


@dataclass(frozen=True)
class Topology:
    kind: str
    description: str
    neighbours: dict[int, list[int]]

    def edges(self) -> list[tuple[int, int]]:
        return [(a, b) for a, peers in self.neighbours.items() for b in peers if a < b]

    def components(self) -> int:
        graph = nx.Graph(self.edges())
        graph.add_nodes_from(self.neighbours)
        return nx.number_connected_components(graph)


def build(
    kind: str,
    nodes: int,
    max_peers: int,
    *,
    degree: int | None = None,
    partitions: int | None = None,
    seed: int | None = None,
) -> Topology:
    """The graph for ``kind``, or a GossipError saying why it cannot be built."""
    if nodes < 2:
        raise GossipError(f"a network needs at least 2 nodes, not {nodes}: use -n 2 or more")
    if kind == "circular":
        graph = nx.cycle_graph(nodes)
        description = "circular"
    elif kind == "random":
        degree = DEFAULT_DEGREE if degree is None else degree
        if not 1 <= degree < nodes:
            raise GossipError(
                f"random regular graph needs 1 <= degree < N: degree {degree} with {nodes} nodes"
                f"{'' if nodes < 2 else f': use a degree from 1 to {nodes - 1}'}"
            )
        if nodes * degree % 2:
            raise GossipError(
                f"random regular graph needs N x degree to be even: {nodes} x {degree} is odd: "
                "use an even number of nodes or an even degree"
            )
        graph = nx.random_regular_graph(degree, nodes, seed=seed)
        description = f"random regular graph of degree {degree}"
    elif kind == "powerlaw":
        if nodes <= POWERLAW_EDGES:
            raise GossipError(
                f"powerlaw graph needs more than {POWERLAW_EDGES} nodes: use -n 3 or more"
            )
        graph = nx.powerlaw_cluster_graph(nodes, POWERLAW_EDGES, POWERLAW_TRIANGLES, seed=seed)
        description = "powerlaw cluster graph"
    elif kind == "turan":
        partitions = DEFAULT_PARTITIONS if partitions is None else partitions
        if not 1 <= partitions <= nodes:
            raise GossipError(
                f"turan graph needs 1 <= partitions <= N: {partitions} partitions, {nodes} nodes"
            )
        graph = nx.turan_graph(nodes, partitions)
        description = f"turan graph of {partitions} partition{'' if partitions == 1 else 's'}"
    else:
        raise GossipError(f"unknown topology {kind!r}: choose one of {', '.join(KINDS)}")
    neighbours = {n + 1: sorted(p + 1 for p in graph.neighbors(n)) for n in sorted(graph.nodes)}
    busiest = max(neighbours, key=lambda n: (len(neighbours[n]), -n))
    if len(neighbours[busiest]) > max_peers:
        need = len(neighbours[busiest])
        raise GossipError(
            f"node {busiest} would have {need} peers in this {kind} graph but --max-peers is "
            f"{max_peers}: use --max-peers {need} or a sparser topology"
        )
    return Topology(kind, description, neighbours)
