"""Helpers shared by the tests that drive the sans-IO core directly, without sockets.

Nodes are made as ``gossip.simulation.Simulation`` makes them (seeded, numbered, at
``address(number)``), so a node built by hand behaves as the same node in a simulation.
Graphs are NetworkX graphs numbered 1..N; ``simulate`` runs one as a ``Simulation``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx

from gossip.messages import Messages
from gossip.node import Node
from gossip.protocol import MessageView, decode_frame, messages_of
from gossip.sends import Send
from gossip.simulation import Simulation, address
from gossip.timing import Timing

TIMING = Timing()
"""The timings every node of these tests keeps: the defaults."""

ISSUE: dict[int, list[int]] = {
    1: [3, 5, 6],
    2: [9, 10, 12],
    3: [1, 13, 14],
    4: [6, 7, 8],
    5: [1, 15, 16],
    6: [1, 4, 10],
    7: [4, 13, 15],
    8: [4, 14, 16],
    9: [2, 11, 12],
    10: [2, 6, 11],
    11: [9, 10, 12],
    12: [2, 9, 11],
    13: [3, 7, 14],
    14: [3, 8, 13],
    15: [5, 7, 16],
    16: [5, 8, 15],
}
"""The network of issue 12: node 6 is the only bridge between two halves."""


def id_maker(prefix: str = "m") -> Callable[[], str]:
    """Predictable message ids: prefix1, prefix2, ..."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def make_node(
    number: int,
    peers: Iterable[int],
    clock: Callable[[], float],
    max_peers: int = 3,
    seed: int = 0,
    **options: Any,
) -> Node:
    """Node ``number`` linked to ``peers``, as a ``Simulation`` with ``seed`` makes it, but
    on ``clock`` and with predictable message ids (``n<number>-1``, ...)."""
    options.setdefault("new_id", id_maker(f"n{number}-"))
    return Node(
        number,
        max_peers,
        {p: address(p) for p in peers},
        address=address(number),
        clock=clock,
        rng=random.Random(seed * 1000 + number),
        **options,
    )


def read(messages: Messages, which: str, mark: bool = True) -> list[MessageView]:
    """What a client reading ``which`` gets: the node's listing, its frames decoded, and
    then written (marked read unless ``mark`` is off)."""
    listing = messages.listing(which, mark)
    views = [m for f in listing.frames() for m in messages_of(decode_frame(f).payload)]
    listing.written()
    return views


def payload(send: Send, command: str) -> dict[str, Any]:
    """The fields of ``send``'s frame, which must carry ``command``."""
    frame = decode_frame(send.frame)
    assert frame.command == command == send.kind
    return frame.payload


def sends_of(chores: Iterable[object], kind: str | None = None) -> list[Send]:
    """The sends among a node's chores (catch-up rounds left out), of one kind if given."""
    return [c for c in chores if isinstance(c, Send) and (kind is None or c.kind == kind)]


# Graphs


def numbered(graph: nx.Graph) -> nx.Graph:
    """``graph`` with its nodes 0..N-1 renumbered 1..N, as nodes are numbered."""
    return nx.relabel_nodes(graph, {n: n + 1 for n in graph.nodes})


def ring(size: int) -> nx.Graph:
    return numbered(nx.cycle_graph(size))


def is_ring(graph: nx.Graph) -> bool:
    """One cycle through every node: connected, and every node has exactly two links."""
    return nx.is_connected(graph) and all(degree == 2 for _, degree in graph.degree)


def links(graph: nx.Graph) -> set[frozenset[int]]:
    return {frozenset(edge) for edge in graph.edges}


def neighbours(graph: nx.Graph) -> dict[int, list[int]]:
    """Each node's peers, as ``Simulation`` takes them."""
    return {n: list(graph.neighbors(n)) for n in graph}


def simulate(graph: nx.Graph, max_peers: int = 3, seed: int = 0) -> Simulation:
    """The nodes of ``graph``, each linked to its neighbours, in a ``Simulation``."""
    return Simulation(neighbours(graph), max_peers, seed)


def graph_of(sim: Simulation) -> nx.Graph:
    """The live nodes and their links; ``Simulation.links`` checks each is two-way."""
    graph = nx.Graph()
    graph.add_nodes_from(sim.live())
    graph.add_edges_from(tuple(link) for link in sim.links())
    return graph
