"""Pictures with matplotlib (Agg), imported only when a picture is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gossip.canvas import heading, pyplot, save
from gossip.spread import Arrival
from gossip.topology import Topology

EDGE = "#8a9bb0"
NODE = "#2f6db5"
ORIGIN = "#c0392b"
TREE = "#e67e22"
UNREACHED = "#c8ced6"


def _graph_and_layout(topology: Topology) -> tuple[Any, dict[int, Any]]:
    """The graph and node positions, laid out so each kind is recognisable."""
    import networkx as nx

    graph = nx.Graph(topology.edges())
    graph.add_nodes_from(topology.neighbours)
    if topology.kind == "circular":
        layout = nx.circular_layout(sorted(graph.nodes))
    elif topology.kind == "turan":
        parts = nx.connected_components(nx.complement(graph))
        partition = {n: i for i, part in enumerate(parts) for n in part}
        nx.set_node_attributes(graph, partition, "partition")
        layout = nx.multipartite_layout(graph, subset_key="partition")
    else:
        layout = nx.spring_layout(graph, seed=1)
    return graph, layout


def _figure() -> tuple[Any, Any, Any]:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 7), dpi=120)
    return plt, figure, axes


def _save(plt: Any, figure: Any, axes: Any, path: Path, title: str) -> Path:
    axes.set_title(heading(title))
    axes.set_axis_off()
    figure.tight_layout()
    return save(plt, figure, path)


def draw_topology(topology: Topology, path: Path, title: str) -> Path:
    """Write a PNG of the topology."""
    import networkx as nx

    graph, layout = _graph_and_layout(topology)
    plt, figure, axes = _figure()
    nx.draw_networkx_edges(graph, layout, ax=axes, edge_color=EDGE, width=1.4)
    nx.draw_networkx_nodes(graph, layout, ax=axes, node_color=NODE, node_size=520)
    nx.draw_networkx_labels(graph, layout, ax=axes, font_color="white", font_size=10)
    return _save(plt, figure, axes, path, title)


def draw_spread(topology: Topology, arrivals: list[Arrival], path: Path, title: str) -> Path:
    """Write a PNG of one message's spread over the topology.

    The first-arrival tree is drawn as arrows from each node to the ones it reached
    first; each node is labelled with its hop count and arrival time after sending.
    """
    import networkx as nx

    graph, layout = _graph_and_layout(topology)
    first = {a.node: a for a in arrivals if a.node in layout}
    tree = [(a.parent, a.node) for a in first.values() if a.parent in layout]
    colours = [
        UNREACHED if n not in first else ORIGIN if first[n].parent is None else NODE
        for n in graph.nodes
    ]
    plt, figure, axes = _figure()
    nx.draw_networkx_edges(graph, layout, ax=axes, edge_color=UNREACHED, width=1.0)
    nx.draw_networkx_nodes(graph, layout, ax=axes, node_color=colours, node_size=520)
    nx.draw_networkx_edges(
        nx.DiGraph(tree),
        layout,
        ax=axes,
        edge_color=TREE,
        width=2.6,
        arrows=True,
        arrowsize=16,
        node_size=520,
    )
    nx.draw_networkx_labels(graph, layout, ax=axes, font_color="white", font_size=10)
    for number, arrival in first.items():
        x, y = layout[number]
        hops = (
            "origin" if arrival.parent is None else f"{arrival.hops} hop{'s' * (arrival.hops > 1)}"
        )
        axes.annotate(
            f"{hops}\n+{arrival.delay_ms:.1f} ms",
            (x, y),
            xytext=(0, -22),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=7,
            color="#333333",
        )
    axes.margins(0.12)
    return _save(plt, figure, axes, path, title)
