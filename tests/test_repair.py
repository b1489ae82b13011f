"""``gossip.repair``: one connected graph again, and nobody over ``max_peers`` on the way."""

from __future__ import annotations

import random
from itertools import combinations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.commands import Command
from gossip.protocol import encode_frame
from gossip.repair import (
    SHORT_LOOKS,
    Drop,
    Introduce,
    Step,
    Swap,
    Watch,
    apply,
    bridges,
    contacts,
    mends_here,
    parts,
    plan_repair,
)
from gossip.simulation import Simulation, address
from tests.core import ISSUE

Links = dict[int, list[int]]

# --- helpers -------------------------------------------------------------------------------------


def from_graph(graph: nx.Graph) -> Links:
    return {node: sorted(graph[node]) for node in sorted(graph)}


def ring(size: int) -> Links:
    return {n: sorted({(n - 2) % size + 1, n % size + 1}) for n in range(1, size + 1)}


def without(links: Links, gone: int, *, peers_notice: bool = True) -> Links:
    """The topology once `gone` leaves (its peers drop it) or dies (they still list it)."""
    return {
        node: [peer for peer in peers if peer != gone or not peers_notice]
        for node, peers in links.items()
        if node != gone
    }


def one_way(links: Links) -> set[tuple[int, int]]:
    """Links between live nodes that only one end lists."""
    return {
        (node, peer)
        for node, peers in links.items()
        for peer in peers
        if peer in links and node not in links[peer]
    }


def room(links: Links, node: int, max_peers: int) -> int:
    """Free slots once the peers that are gone are dropped."""
    return max_peers - sum(peer in links for peer in links[node])


def open_parts(links: Links, max_peers: int) -> list[list[int]]:
    """Parts that can still be joined to another: they have room somewhere, or a cycle."""
    graph = nx.Graph()
    graph.add_nodes_from(links)
    graph.add_edges_from(
        (a, b) for a, peers in links.items() for b in peers if b in links and a != b
    )
    return [
        part
        for part in parts(links)
        if any(room(links, node, max_peers) > 0 for node in part)
        or graph.subgraph(part).number_of_edges() >= len(part)
    ]


def aims(links: Links, max_peers: int, wanted: dict[int, int] | None) -> dict[int, int]:
    if wanted is None:
        return dict.fromkeys(links, max_peers)
    return {node: wanted.get(node, len(peers)) for node, peers in links.items()}


def check(links: Links, max_peers: int, wanted: dict[int, int] | None = None) -> Links:
    """Plan a repair, carry it out step by step, check the laws; the repaired topology."""
    steps = plan_repair(links, max_peers, wanted)
    state = links
    for step in steps:
        state = apply(state, [step], max_peers)
        assert all(len(peers) <= max_peers for peers in state.values()), (step, state)
    assert state == apply(links, steps, max_peers)
    after_parts = parts(state)
    for part in parts(links):  # no part is ever split
        assert any(set(part) <= set(whole) for whole in after_parts), (links, steps)
    assert one_way(state) <= one_way(links), (links, steps)
    assert len(open_parts(state, max_peers)) <= 1, (links, max_peers, steps)
    if max_peers >= 2:
        assert len(after_parts) <= 1, (links, max_peers, steps)
    goal = aims(links, max_peers, wanted)
    short = [n for n in state if len(state[n]) < min(goal[n], max_peers)]
    for a, b in combinations(short, 2):  # two nodes still short would have been paired
        assert b in state[a] or a in state[b], (links, steps, a, b)
    return state


# --- the cases from the issue --------------------------------------------------------------------


def test_removing_node_6_from_the_issue_network_keeps_it_whole() -> None:
    links = without(ISSUE, 6)
    assert parts(links) == [[1, 3, 4, 5, 7, 8, 13, 14, 15, 16], [2, 9, 10, 11, 12]]
    assert plan_repair(links, 3) == [Introduce(1, 10)]  # 1, 4 and 10 lost 6; 4 stays one short
    after = check(links, 3)
    assert parts(after) == [sorted(after)]
    assert not one_way(after)
    assert all(len(peers) <= 3 for peers in after.values())


@pytest.mark.parametrize(("max_peers", "wanted"), [(2, None), (3, dict.fromkeys(range(1, 17), 2))])
def test_a_ring_missing_a_node_closes(max_peers: int, wanted: dict[int, int] | None) -> None:
    links = without(ring(16), 5)
    steps = plan_repair(links, max_peers, wanted)
    assert steps == [Introduce(4, 6)]
    after = apply(links, steps, max_peers)
    assert after == {**links, 4: [3, 6], 6: [7, 4]}


def test_nodes_missing_from_wanted_aim_at_what_they_have() -> None:
    links = without(ring(16), 5)
    assert plan_repair(links, 3, {}) == []
    assert plan_repair(links, 3, {4: 2, 6: 2}) == [Introduce(4, 6)]


# --- joins, one by one ---------------------------------------------------------------------------


def test_a_lone_node_joins_a_full_part_by_a_swap() -> None:
    links = {**from_graph(nx.complete_graph(range(1, 5))), 5: []}
    steps = plan_repair(links, 3)
    assert steps == [Swap(1, 2, 5), Drop(2, 1), Introduce(5, 1), Introduce(5, 2)]
    assert apply(links, steps, 3) == {
        1: [5, 3, 4],
        2: [3, 4, 5],
        3: [1, 2, 4],
        4: [1, 2, 3],
        5: [1, 2],
    }


def test_two_full_parts_cross_a_link_each() -> None:
    links = {
        **from_graph(nx.complete_graph(range(1, 5))),
        **from_graph(nx.complete_graph(range(5, 9))),
    }
    steps = plan_repair(links, 3)
    assert steps == [Swap(1, 2, 5), Swap(2, 1, 6), Swap(5, 6, 1), Swap(6, 5, 2)]
    after = check(links, 3)
    assert all(len(peers) == 3 for peers in after.values())


# Five nodes each listing the next two: full, and every link is one-way.
ONE_WAY_FULL: Links = {1: [2, 3], 2: [3, 4], 3: [4, 5], 4: [5, 1], 5: [1, 2]}


def test_full_parts_with_only_one_way_links_are_joined_too() -> None:
    steps = plan_repair({**ONE_WAY_FULL, 9: []}, 2)
    assert steps == [Swap(1, 2, 9), Introduce(9, 1)]  # 2 never listed 1: nothing to drop
    triangle = {6: [7, 8], 7: [6, 8], 8: [6, 7]}
    steps = plan_repair({**ONE_WAY_FULL, **triangle}, 2)
    assert steps == [Swap(1, 2, 6), Swap(6, 7, 1), Drop(7, 6)]
    assert check({**ONE_WAY_FULL, **triangle}, 2)[7] == [8]


def test_a_full_lone_node_drops_a_peer_that_is_gone_to_join() -> None:
    links = {1: [2, 50], 2: [1, 3], 3: [2], 4: [60, 61]}
    assert plan_repair(links, 2) == [Drop(4, 60), Introduce(3, 4)]


def test_peers_that_are_gone_are_dropped_only_where_a_slot_is_needed() -> None:
    assert plan_repair({1: [2, 50], 2: [1]}, 2) == []
    links = {1: [2, 50], 2: [1, 51], 3: [60]}
    assert plan_repair(links, 2) == [Drop(1, 50), Introduce(1, 3)]
    assert check(links, 2) == {1: [2, 3], 2: [1, 51], 3: [60, 1]}
    # a free slot is used before a slot held by a dead peer, even on a higher-numbered node
    assert plan_repair({1: [2, 50], 2: [1, 3], 3: [2], 4: []}, 2, {}) == [Introduce(3, 4)]


def test_with_one_peer_each_only_nodes_with_room_can_pair() -> None:
    links = {1: [2], 2: [1], 3: [4], 4: [3], 5: [], 6: [99], 7: []}
    assert plan_repair(links, 1) == [Drop(6, 99), Introduce(5, 6)]
    assert parts(check(links, 1)) == [[1, 2], [3, 4], [5, 6], [7]]


# --- parts, bridges and apply --------------------------------------------------------------------


def test_parts_are_ordered_largest_first_then_by_smallest_node() -> None:
    links = {1: [2], 2: [1], 3: [], 4: [5], 5: [], 6: [7], 7: [8], 8: [], 9: [42]}
    assert parts(links) == [[6, 7, 8], [1, 2], [4, 5], [3], [9]]
    assert parts({}) == []


@given(st.dictionaries(st.integers(1, 20), st.lists(st.integers(1, 20), max_size=4)))
def test_parts_match_networkx_components(links: Links) -> None:
    graph = nx.Graph()
    graph.add_nodes_from(links)
    graph.add_edges_from((a, b) for a, peers in links.items() for b in peers if b in links)
    found = parts(links)
    assert sorted(found) == sorted(sorted(c) for c in nx.connected_components(graph))
    assert [(-len(p), p[0]) for p in found] == sorted((-len(p), p[0]) for p in found)


@given(st.lists(st.tuples(st.integers(1, 15), st.integers(1, 15)), max_size=30))
def test_bridges_match_networkx(edges: list[tuple[int, int]]) -> None:
    graph = nx.Graph((a, b) for a, b in edges if a != b)
    adjacency = {node: set(graph[node]) for node in graph}
    assert bridges(adjacency) == {frozenset(edge) for edge in nx.bridges(graph)}


def test_introduce_links_both_ways_only_where_both_have_room() -> None:
    links = {1: [2], 2: [1], 3: [4, 5], 4: [3], 5: [3], 6: []}
    assert apply(links, [Introduce(1, 3)], 2) == links  # 3 is full: refused
    assert apply(links, [Introduce(1, 6)], 2) == {**links, 1: [2, 6], 6: [1]}
    assert apply(links, [Introduce(1, 2)], 2) == links  # already peers
    assert apply(links, [Introduce(1, 99), Introduce(99, 1), Introduce(6, 6)], 2) == links
    one_sided = {1: [2, 3], 2: [], 3: [1]}
    assert apply(one_sided, [Introduce(2, 1)], 2) == {1: [2, 3], 2: [1], 3: [1]}
    assert apply({1: [2, 3], 2: [4, 5], 3: [1]}, [Introduce(1, 2)], 2) == {
        1: [2, 3],
        2: [4, 5],
        3: [1],
    }


def test_swap_and_drop_are_one_sided_and_checked() -> None:
    links = {1: [2, 3], 2: [1], 3: [1], 4: []}
    assert apply(links, [Swap(1, 2, 4)], 2) == {**links, 1: [4, 3]}
    assert apply(links, [Swap(1, 4, 2)], 2) == links  # 4 is not a peer of 1
    assert apply(links, [Swap(1, 2, 3)], 2) == links  # 3 already is one
    assert apply(links, [Swap(1, 2, 1)], 2) == links  # not itself
    assert apply(links, [Drop(1, 2)], 2) == {**links, 1: [3]}
    assert apply(links, [Drop(1, 4), Drop(7, 1), Swap(7, 1, 2)], 2) == links
    assert links == {1: [2, 3], 2: [1], 3: [1], 4: []}  # the input is never changed


# --- sweeps --------------------------------------------------------------------------------------


@pytest.mark.parametrize("peers_notice", [True, False])
def test_removals_one_after_another_keep_a_regular_network_whole(peers_notice: bool) -> None:
    for seed in range(300):
        rng = random.Random(seed)
        size = rng.randrange(8, 42, 2)
        links = from_graph(nx.random_regular_graph(3, size, seed=rng.randrange(2**32)))
        for _ in range(rng.randint(1, size // 2)):
            links = without(links, rng.choice(sorted(links)), peers_notice=peers_notice)
            links = check(links, 3)
            assert len(parts(links)) == 1, seed
            assert not one_way(links), seed
            if not peers_notice:  # some nodes notice their dead peers before the next round
                links = {
                    node: [p for p in peers if p in links or rng.random() < 0.5]
                    for node, peers in links.items()
                }


def test_removals_from_a_ring_keep_a_ring() -> None:
    for seed in range(100):
        rng = random.Random(seed)
        links = ring(rng.randint(4, 30))
        while len(links) > 3:
            links = check(without(links, rng.choice(sorted(links))), 2)
            assert len(parts(links)) == 1 and all(len(peers) == 2 for peers in links.values())


def piece(rng: random.Random, max_peers: int) -> nx.Graph:
    """One part of a split network: lone, a pair, a path, a ring, full K(max+1) or regular."""
    kinds = ["lone", "complete", "path"] + (["ring", "regular"] if max_peers >= 2 else [])
    kind = rng.choice(kinds)
    if kind == "lone":
        return nx.empty_graph(1)
    if kind == "complete":
        return nx.complete_graph(max_peers + 1)
    if kind == "path":
        return nx.path_graph(rng.randint(2, 8) if max_peers >= 2 else 2)
    if kind == "ring":
        return nx.cycle_graph(rng.randint(3, 10))
    size = rng.randrange(max_peers + 1, 20)
    size += size * max_peers % 2
    return nx.random_regular_graph(max_peers, size, seed=rng.randrange(2**32))


def split_network(rng: random.Random, max_peers: int) -> Links:
    """2-5 parts, some links cut (free slots), some dead peers still listed."""
    graph = nx.disjoint_union_all([piece(rng, max_peers) for _ in range(rng.randint(2, 5))])
    cut = rng.choice([0.0, 0.0, 0.1, 0.3])
    graph.remove_edges_from([edge for edge in list(graph.edges) if rng.random() < cut])
    numbers = rng.sample(range(1, 200), len(graph))
    links = from_graph(nx.relabel_nodes(graph, dict(zip(graph, numbers, strict=True))))
    dead = iter(range(500, 1000))
    for peers in links.values():
        while len(peers) < max_peers and rng.random() < 0.3:
            peers.append(next(dead))
        rng.shuffle(peers)
    return links


@pytest.mark.parametrize("max_peers", [1, 2, 3, 4])
def test_split_networks_are_joined(max_peers: int) -> None:
    for seed in range(300):
        rng = random.Random(seed)
        links = split_network(rng, max_peers)
        after = check(links, max_peers)
        assert not one_way(after), seed
        if max_peers >= 2:
            assert len(parts(after)) == 1, seed


def test_disjoint_rings_become_one_ring() -> None:
    for seed in range(100):
        rng = random.Random(seed)
        graph = nx.disjoint_union_all(
            [nx.cycle_graph(rng.randint(3, 8)) for _ in range(rng.randint(2, 6))]
        )
        after = check(from_graph(graph), 2)
        assert len(parts(after)) == 1 and all(len(peers) == 2 for peers in after.values())


# --- any topology at all -------------------------------------------------------------------------


@st.composite
def topologies(draw: st.DrawFn) -> tuple[Links, int, dict[int, int] | None]:
    """Nodes 1-12, peers 1-15 (13-15 and missing numbers are dead), one-way links allowed."""
    max_peers = draw(st.integers(1, 4))
    live = sorted(draw(st.sets(st.integers(1, 12), min_size=1)))
    links = {
        node: draw(
            st.lists(
                st.sampled_from([p for p in range(1, 16) if p != node]),
                unique=True,
                max_size=max_peers,
            )
        )
        for node in live
    }
    if draw(st.booleans()):  # mostly two-way, as real networks are
        for node in live:
            for peer in links[node]:
                if peer in links and node not in links[peer] and len(links[peer]) < max_peers:
                    links[peer].append(node)
    wanted = draw(st.none() | st.dictionaries(st.integers(1, 12), st.integers(0, 4)))
    return links, max_peers, wanted


@settings(max_examples=600, deadline=None)
@given(topologies(), st.randoms(use_true_random=False))
def test_any_topology_is_repaired_as_far_as_max_peers_allows(
    case: tuple[Links, int, dict[int, int] | None], rng: random.Random
) -> None:
    links, max_peers, wanted = case
    check(links, max_peers, wanted)
    steps = plan_repair(links, max_peers, wanted)
    shuffled = {
        node: rng.sample(links[node], len(links[node]))
        for node in rng.sample(sorted(links), len(links))
    }
    assert plan_repair(shuffled, max_peers, wanted) == steps  # the same plan, whatever the order


# Watch: when the party that sees the whole network steps in


def test_watch_joins_a_split_only_once_it_has_lasted() -> None:
    split = {1: [2], 2: [1], 3: [4], 4: [3]}
    watch = Watch()
    assert watch.look(split, 3, {n: 2 for n in split}) == []
    steps = watch.look(split, 3, {n: 2 for n in split})
    assert steps and len(parts(apply(split, steps, 3))) == 1
    assert watch.look(split, 3, {n: 2 for n in split}) == [], "counting starts again after"


def test_watch_leaves_short_nodes_to_their_walks_for_a_while() -> None:
    ring = {1: [2], 2: [1, 3], 3: [2, 4], 4: [3]}  # a ring of four missing one link
    wanted = {n: 2 for n in ring}
    watch = Watch()
    looks = [watch.look(ring, 2, wanted) for _ in range(SHORT_LOOKS)]
    assert looks[:-1] == [[]] * (SHORT_LOOKS - 1)
    assert looks[-1] == [Introduce(1, 4)]


def test_watch_forgets_a_problem_that_went_away_or_another_party_took() -> None:
    split = {1: [], 2: []}
    whole = {1: [2], 2: [1]}
    watch = Watch()
    assert watch.look(split, 3, {1: 1, 2: 1}) == []
    assert watch.look(whole, 3, {1: 1, 2: 1}) == []
    assert watch.look(split, 3, {1: 1, 2: 1}) == [], "the count started again"
    watch.forget()
    assert watch.look(split, 3, {1: 1, 2: 1}) == []
    assert watch.look(split, 3, {1: 1, 2: 1}) == [Introduce(1, 2)]


# The planner's model of a step against the real node core


def carried_out_by_nodes(links: Links, steps: list[Step], max_peers: int) -> Links:
    """Carry the steps out with real nodes in a ``Simulation``, each one the frame a step
    stands for (``/INTRODUCE``, ``/SWAP``, ``/LEAVE``) answered by ``gossip.answers``; a
    number that is no node is dead. The peers the nodes hold afterwards (the simulation
    checks every node against ``max_peers`` after every frame)."""
    sim = Simulation(links, max_peers)
    sim.dead.update(n for peers in links.values() for n in peers if n not in links)
    for step in steps:
        if step.at not in links:
            continue
        if isinstance(step, Introduce):
            host, port = address(step.peer)
            frame = encode_frame(Command.INTRODUCE, {"node": step.peer, "host": host, "port": port})
        elif isinstance(step, Swap):
            host, port = address(step.new)
            swap = {"old": step.old, "node": step.new, "host": host, "port": port}
            frame = encode_frame(Command.SWAP, swap)
        else:
            frame = encode_frame(Command.LEAVE, {"node": step.peer})
        sim.call(step.at, frame)
    return {n: sorted(node.peers) for n, node in sim.nodes.items()}


@settings(max_examples=300, deadline=None)
@given(topologies(), st.randoms(use_true_random=False))
def test_nodes_carry_out_a_plan_as_the_planner_expects(
    case: tuple[Links, int, dict[int, int] | None], rng: random.Random
) -> None:
    links, max_peers, wanted = case
    links = {n: [p for p in dict.fromkeys(peers) if p != n] for n, peers in links.items()}
    steps = plan_repair(links, max_peers, wanted)
    expected = {n: sorted(peers) for n, peers in apply(links, steps, max_peers).items()}
    assert carried_out_by_nodes(links, steps, max_peers) == expected


def test_nodes_carry_out_the_issue_removal_as_planned() -> None:
    links = without(ISSUE, 6)
    steps = plan_repair(links, 3, dict.fromkeys(links, 3))
    assert len(parts(carried_out_by_nodes(links, steps, 3))) == 1


# Who mends, and whom a rejoining node asks


def test_the_host_with_the_lowest_answering_node_mends() -> None:
    assert mends_here([3, 1, 7], {1, 2})
    assert not mends_here([3, 7], {1, 2}), "node 1 is down: the host of node 3 mends"
    assert mends_here([3, 7], {3, 4})
    assert not mends_here([], {1, 2}), "nobody answers: nothing to mend"


def test_a_rejoining_node_asks_its_old_peers_in_the_largest_part_first() -> None:
    largest = [1, 2, 3, 4, 5, 6]
    assert contacts(9, [5, 12, 2], largest, 6) == [5, 2, 1, 3, 4, 6]
    assert contacts(9, [5, 12, 2], largest, 3) == [5, 2, 1]
    assert contacts(9, [12], [], 3) == [12], "nothing known alive: its last peers"
    assert contacts(9, [], largest, 3) == [1, 2, 3]
    assert contacts(2, [7], [1, 2, 3], 3) == [1, 3, 7], "never itself"
    assert contacts(9, [], [], 3) == []


@given(
    st.lists(st.integers(1, 30), unique=True, max_size=5),
    st.lists(st.integers(1, 30), unique=True, max_size=30),
    st.integers(1, 5),
)
def test_a_rejoining_node_never_knows_more_nodes_than_it_may_have_peers(
    last: list[int], largest: list[int], most: int
) -> None:
    asked = contacts(9, last, largest, most)
    assert len(asked) <= most and 9 not in asked and len(set(asked)) == len(asked)
    assert set(asked) <= set(last) | set(largest)
