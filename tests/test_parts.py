"""``gossip.network.parts``: how ``status`` tells whether the live nodes hang together."""

from __future__ import annotations

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from gossip.network import parts


def test_one_part_when_connected_even_if_only_one_end_reports_a_link() -> None:
    assert parts({1: [2], 2: [], 3: [2]}) == [[1, 2, 3]]


def test_isolated_nodes_and_links_to_unknown_nodes() -> None:
    assert parts({1: [9], 2: [3], 3: [2], 4: []}) == [[2, 3], [1], [4]], "largest first"


def test_no_nodes_no_parts() -> None:
    assert parts({}) == []


@given(st.dictionaries(st.integers(1, 30), st.lists(st.integers(1, 30), max_size=4)))
def test_parts_match_networkx_components(links: dict[int, list[int]]) -> None:
    graph = nx.Graph()
    graph.add_nodes_from(links)
    graph.add_edges_from((a, b) for a, peers in links.items() for b in peers if b in links)
    expected = sorted(sorted(c) for c in nx.connected_components(graph))
    assert sorted(parts(links)) == expected
