"""Pictures of a topology with matplotlib (Agg), imported only when a picture is asked for."""

from __future__ import annotations

from pathlib import Path

from gossip.topology import Topology


def draw_topology(topology: Topology, path: Path, title: str) -> Path:
    """Write a PNG of the topology, laid out so each kind is recognisable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
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
    figure, axes = plt.subplots(figsize=(7, 7), dpi=120)
    nx.draw_networkx_edges(graph, layout, ax=axes, edge_color="#8a9bb0", width=1.4)
    nx.draw_networkx_nodes(graph, layout, ax=axes, node_color="#2f6db5", node_size=520)
    nx.draw_networkx_labels(graph, layout, ax=axes, font_color="white", font_size=10)
    axes.set_title(title)
    axes.set_axis_off()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
