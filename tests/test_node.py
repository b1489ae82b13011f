"""The sans-IO node core, ``gossip.node.Node``, driven directly and in small simulations."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import networkx as nx
import pytest

from gossip.commands import Command
from gossip.conditions import PERFECT, Conditions
from gossip.journal import Message
from gossip.membership import LinkPlan, leave_plan
from gossip.messages import MAX_COPIES
from gossip.node import Node
from gossip.protocol import MAX_RELAYS, Copy, FrameError, decode_frame
from gossip.sends import Send, batched
from gossip.simulation import Simulation, address
from gossip.strategy import Strategy
from tests.core import graph_of, make_node, numbered, read, simulate


class FakeClock:
    """A clock that moves one second each time it is read."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def relay_payload(send: Send) -> dict:
    frame = decode_frame(send.frame)
    assert frame.command == "RELAY"
    return frame.payload


def sent_paths(sends: list[Send]) -> dict[int, tuple[int, ...]]:
    return {s.peer: tuple(relay_payload(s)["path"]) for s in sends}


# Submitting


def test_submit_records_origin_and_sends_one_relay_per_peer() -> None:
    # The node reads the clock once when it starts, at 1001.0.
    clock = FakeClock(1000.0)
    node = make_node(1, [2, 5, 9], clock)
    message_id, sends = node.submit("Apple", relays=2)
    assert message_id == "n1-1"
    message = node.messages[message_id]
    assert message.copies == [Copy((1,), 1002.0)]
    assert message.sent == 1002.0
    assert sorted(s.peer for s in sends) == [2, 5, 9]
    for send in sends:
        assert send.address == address(send.peer)
        assert relay_payload(send) == {
            "id": "n1-1",
            "text": "Apple",
            "path": [1],
            "relays": 2,
            "sent": 1002.0,
        }
    assert sorted(message.relayed) == [2, 5, 9]


def test_submit_without_peers_sends_nothing() -> None:
    node = make_node(1, [], FakeClock())
    message_id, sends = node.submit("alone", relays=1)
    assert sends == []
    assert [c.path for c in node.messages[message_id].copies] == [(1,)]


@pytest.mark.parametrize("relays", [0, -1, MAX_RELAYS + 1])
def test_submit_relays_out_of_range(relays: int) -> None:
    node = make_node(1, [2], FakeClock())
    with pytest.raises(FrameError, match="relays"):
        node.submit("x", relays)
    assert node.messages == {}


def test_submit_relays_bounds_accepted() -> None:
    node = make_node(1, [2], FakeClock())
    assert len(node.submit("a", 1)[1]) == 1
    assert len(node.submit("b", MAX_RELAYS)[1]) == 1
    assert len(node.messages) == 2


# Relaying


def test_relay_records_path_plus_self_and_skips_walk() -> None:
    node = make_node(5, [1, 3, 7, 9], FakeClock(50.0), max_peers=4)
    sends = node.relay("m1", "Apple", (1, 3), relays=1, sent=42.0)
    assert node.messages["m1"].copies == [Copy((1, 3, 5), 52.0)]
    assert node.messages["m1"].sent == 42.0
    assert sent_paths(sends) == {7: (1, 3, 5), 9: (1, 3, 5)}
    payload = relay_payload(sends[0])
    assert payload["id"] == "m1" and payload["text"] == "Apple"
    assert payload["relays"] == 1 and payload["sent"] == 42.0


def test_copies_that_took_the_same_walk_share_it_while_room_lasts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gossip.messages.MAX_SHARED_WALKS", 2)
    node = make_node(5, [1, 3], FakeClock())
    for n, path in enumerate([(1,), (3,), (1,), (1, 2), (3,), (1, 2)]):
        node.relay(f"m{n}", "Apple", path, relays=1, sent=0.0)
    walks = [node.messages[f"m{n}"].copies[0].path for n in range(6)]
    assert walks == [(1, 5), (3, 5), (1, 5), (1, 2, 5), (3, 5), (1, 2, 5)]
    assert walks[2] is walks[0] and walks[4] is walks[1], "kept and shared"
    assert walks[5] is not walks[3], "no room left for a third walk"


def test_only_copies_passed_on_say_no_one_waits_on_their_answer() -> None:
    """A client's own copies are answered at once (its acknowledgement waits on one); a
    copy passed on says ``later``: its answer may come with the next ones."""
    node = make_node(5, [1, 3, 7], FakeClock())
    _, own = node.submit("Apple", 1)
    assert own and all("later" not in relay_payload(send) for send in own)
    passed_on = node.relay("m1", "Pear", (1,), relays=1, sent=0.0)
    assert passed_on and all(relay_payload(send)["later"] is True for send in passed_on)


def test_relay_path_containing_self_is_ignored() -> None:
    node = make_node(5, [1, 3], FakeClock())
    assert node.relay("m1", "Apple", (1, 5, 3), relays=1, sent=0.0) == []
    assert node.messages == {}
    node.relay("m1", "Apple", (1,), relays=1, sent=0.0)
    assert node.relay("m1", "Apple", (3, 5), relays=1, sent=0.0) == []
    assert [c.path for c in node.messages["m1"].copies] == [(1, 5)]


def test_relay_dedup_by_id_adds_path_not_message() -> None:
    node = make_node(5, [1, 2, 3], FakeClock())
    first = node.relay("m1", "Apple", (1,), relays=1, sent=0.0)
    assert sorted(s.peer for s in first) == [2, 3]
    second = node.relay("m1", "Apple", (2,), relays=1, sent=0.0)
    assert len(node.messages) == 1
    assert [c.path for c in node.messages["m1"].copies] == [(1, 5), (2, 5)]
    # Peers 2 and 3 already got their one copy; peer 1 is still owed one and gets it.
    assert sent_paths(second) == {1: (2, 5)}
    third = node.relay("m1", "Apple", (3,), relays=1, sent=0.0)
    assert third == []
    assert sorted(node.messages["m1"].relayed) == [1, 2, 3]


def test_relays_one_never_sends_a_peer_a_second_copy() -> None:
    node = make_node(5, [1, 2, 3, 4], FakeClock(), max_peers=4)
    total: Counter[int] = Counter()
    for path in [(1,), (2,), (3,), (4,), (1, 2), (9, 8), (7,)]:
        total.update(s.peer for s in node.relay("m1", "t", path, relays=1, sent=0.0))
    assert total == {1: 1, 2: 1, 3: 1, 4: 1}


@pytest.mark.parametrize("relays", [2, 3, MAX_RELAYS])
def test_relays_k_sends_at_most_k_copies_per_peer(relays: int) -> None:
    node = make_node(5, [1, 2, 3], FakeClock())
    total: Counter[int] = Counter()
    for origin in range(10, 10 + 3 * MAX_RELAYS):
        total.update(s.peer for s in node.relay("m1", "t", (origin,), relays=relays, sent=0.0))
    assert total == {1: relays, 2: relays, 3: relays}
    assert sorted(node.messages["m1"].relayed) == sorted([1, 2, 3] * relays)
    assert len(node.messages["m1"].copies) == 3 * MAX_RELAYS


def test_copy_skips_peer_on_its_path_but_later_copy_may_reach_it() -> None:
    node = make_node(5, [1, 2, 3], FakeClock())
    first = node.relay("m1", "t", (1, 2), relays=1, sent=0.0)
    assert sent_paths(first) == {3: (1, 2, 5)}
    second = node.relay("m1", "t", (1,), relays=1, sent=0.0)
    assert sent_paths(second) == {2: (1, 5)}


def test_relay_budget_is_that_of_the_first_copy() -> None:
    node = make_node(5, [2, 3], FakeClock())
    assert len(node.relay("m1", "t", (1,), relays=1, sent=0.0)) == 2
    assert node.relay("m1", "t", (9,), relays=5, sent=0.0) == []
    assert node.messages["m1"].relays == 1


def test_relay_different_text_same_id_raises() -> None:
    node = make_node(5, [1, 2], FakeClock())
    node.relay("m1", "Apple", (1,), relays=1, sent=0.0)
    with pytest.raises(FrameError, match="another text"):
        node.relay("m1", "Pear", (2,), relays=1, sent=0.0)
    assert node.messages["m1"].text == "Apple"
    assert len(node.messages["m1"].copies) == 1


def test_relay_of_own_message_id_with_other_text_raises() -> None:
    node = make_node(1, [2], FakeClock())
    message_id, _ = node.submit("Apple", 1)
    with pytest.raises(FrameError):
        node.relay(message_id, "Pear", (2,), relays=1, sent=0.0)


# Reading


def test_read_filters_and_marks() -> None:
    node = make_node(1, [], FakeClock())
    a, _ = node.submit("a", 1)
    b, _ = node.submit("b", 1)
    assert [v.text for v in read(node.messages, "unread")] == ["a", "b"]
    assert read(node.messages, "unread") == []
    c, _ = node.submit("c", 1)
    assert [v.text for v in read(node.messages, "read")] == ["a", "b"]
    assert [(v.text, v.read) for v in read(node.messages, "unread")] == [("c", False)]
    assert [(v.text, v.read) for v in read(node.messages, "all")] == [
        ("a", True),
        ("b", True),
        ("c", True),
    ]
    assert [v.id for v in read(node.messages, "all")] == [a, b, c]


def test_read_all_marks_every_message_read() -> None:
    node = make_node(1, [], FakeClock())
    node.submit("a", 1)
    node.submit("b", 1)
    assert [v.read for v in read(node.messages, "all")] == [False, False]
    assert read(node.messages, "unread") == []
    assert len(read(node.messages, "read")) == 2


def test_peek_does_not_mark() -> None:
    node = make_node(1, [], FakeClock())
    node.submit("a", 1)
    assert len(read(node.messages, "unread", mark=False)) == 1
    assert len(read(node.messages, "all", mark=False)) == 1
    assert read(node.messages, "read", mark=False) == []
    assert [v.text for v in read(node.messages, "unread")] == ["a"]


def test_read_oldest_first_with_every_copy() -> None:
    clock = FakeClock(0.0)
    node = make_node(5, [1, 2], clock)
    node.relay("x", "first", (1,), relays=1, sent=0.5)
    node.submit("second", 1)
    node.relay("x", "first", (2,), relays=1, sent=0.5)
    node.relay("y", "third", (2, 1), relays=1, sent=0.7)
    views = read(node.messages, "all")
    assert [v.text for v in views] == ["first", "second", "third"]
    assert views[0].copies == (Copy((1, 5), 2.0), Copy((2, 5), 4.0))
    assert views[0].sent == 0.5


# Peers and healing


def test_node_refuses_too_many_peers_or_itself() -> None:
    with pytest.raises(ValueError, match="max_peers is 2"):
        Node(1, 2, {2: address(2), 3: address(3), 4: address(4)})
    with pytest.raises(ValueError, match="own peer"):
        Node(1, 3, {1: address(1), 2: address(2)})
    assert len(Node(1, 2, {2: address(2), 3: address(3)}).peers) == 2


def test_node_copies_peer_dict() -> None:
    peers = {2: address(2)}
    node = Node(1, 2, peers)
    node.drop_peer(2)
    assert peers == {2: address(2)}


def test_drop_peer() -> None:
    node = make_node(1, [2, 3], FakeClock())
    assert node.drop_peer(2) is True
    assert node.drop_peer(2) is False
    assert node.drop_peer(9) is False
    assert node.peers == {3: address(3)}
    _, sends = node.submit("x", 1)
    assert [s.peer for s in sends] == [3]


def test_plan_link_already_and_self() -> None:
    node = make_node(1, [2], FakeClock(), max_peers=3)
    assert node.members.plan_link(2) is LinkPlan.ALREADY
    assert node.members.plan_link(1) is LinkPlan.ALREADY
    assert node.members.pending == set()


def test_plan_link_reserves_slot_and_full_counts_pending() -> None:
    node = make_node(1, [2], FakeClock(), max_peers=3)
    assert node.members.free_slots() == 2
    assert node.members.plan_link(3) is LinkPlan.TRY
    assert node.members.pending == {3}
    assert node.members.free_slots() == 1
    assert node.members.plan_link(4) is LinkPlan.TRY
    assert node.members.free_slots() == 0
    assert node.members.plan_link(5) is LinkPlan.FULL
    assert node.members.pending == {3, 4}
    # A request from someone else finds no room either: the pending ones hold the slots.
    assert node.members.accept_link(6, address(6)) is False
    assert 6 not in node.peers


def test_finish_link_accepted_and_refused() -> None:
    node = make_node(1, [], FakeClock(), max_peers=2)
    assert node.members.plan_link(2) is LinkPlan.TRY
    assert node.members.plan_link(3) is LinkPlan.TRY
    node.members.finish_link(2, address(2), accepted=True)
    node.members.finish_link(3, address(3), accepted=False)
    assert node.peers == {2: address(2)}
    assert node.members.pending == set()
    assert node.members.free_slots() == 1
    assert node.members.plan_link(4) is LinkPlan.TRY


def test_accept_link() -> None:
    node = make_node(1, [2], FakeClock(), max_peers=2)
    assert node.members.accept_link(1, address(1)) is False
    assert node.members.accept_link(2, address(2)) is True
    assert node.members.accept_link(3, address(3)) is True
    assert node.peers == {2: address(2), 3: address(3)}
    assert node.members.accept_link(4, address(4)) is False
    assert node.members.accept_link(2, address(2)) is True
    assert len(node.peers) == 2


def test_simultaneous_mutual_link_request() -> None:
    a = make_node(1, [], FakeClock(), max_peers=1)
    b = make_node(2, [], FakeClock(), max_peers=1)
    assert a.members.plan_link(2) is LinkPlan.TRY
    assert b.members.plan_link(1) is LinkPlan.TRY
    # Each one's CONNECT reaches the other while both still wait for their own answer.
    assert a.members.accept_link(2, address(2)) is True
    assert b.members.accept_link(1, address(1)) is True
    a.members.finish_link(2, address(2), accepted=True)
    b.members.finish_link(1, address(1), accepted=True)
    for node, other in ((a, 2), (b, 1)):
        assert node.peers == {other: address(other)}
        assert node.members.pending == set()
        assert len(node.peers) <= node.members.max_peers
        assert node.members.free_slots() == 0


def test_leave_forgets_every_peer_and_returns_them_with_the_plan() -> None:
    node = make_node(1, [7, 2, 5], FakeClock())
    former, plan = node.members.leave()
    assert former == {7: address(7), 2: address(2), 5: address(5)}
    assert plan == [(2, 5), (5, 7), (2, 7)]
    assert node.peers == {}
    assert node.members.free_slots() == node.members.max_peers


def test_leave_plan_chains_the_peers_then_pairs_the_rest() -> None:
    assert leave_plan([]) == []
    assert leave_plan([4]) == []
    assert leave_plan({9: address(9), 3: address(3)}) == [(3, 9)]
    assert leave_plan([7, 2, 5, 3]) == [
        (2, 3),
        (3, 5),
        (5, 7),
        (2, 5),
        (2, 7),
        (3, 7),
    ]


# Simulations


def spread(
    sim: Simulation, origin: int, relays: int, rng: random.Random | None = None
) -> tuple[str, Counter[tuple[int, int]]]:
    """Submit at ``origin`` and deliver every copy, each answered by its receiver as any
    ``/RELAY``; return the id and the sends per (node, peer).

    Copies go through a queue in order, or in random order when ``rng`` is given.
    """
    message_id, first = sim.nodes[origin].submit("Apple", relays)
    sim.queue.extend((origin, s) for s in first)
    sends: Counter[tuple[int, int]] = Counter()
    while sim.queue:
        if rng is not None:
            sim.queue.rotate(-rng.randrange(len(sim.queue)))
        sender, send = sim.queue.popleft()
        sends[sender, send.peer] += 1
        assert send.address == address(send.peer)
        sim.exchange(send.peer, send.frame)  # queues the copies the receiver passes on
    return message_id, sends


def check_spread(
    graph: nx.Graph,
    sim: Simulation,
    message_id: str,
    origin: int,
    relays: int,
    sends: Counter[tuple[int, int]],
) -> None:
    nodes = sim.live()
    for number, node in nodes.items():
        assert message_id in node.messages, f"node {number} never got the message"
        for copy in node.messages[message_id].copies:
            path = copy.path
            assert path[0] == origin and path[-1] == number
            assert len(set(path)) == len(path), f"path {path} repeats a node"
            for a, b in itertools.pairwise(path):
                assert graph.has_edge(a, b), f"path {path} uses {a}-{b}, not an edge"
    for (sender, peer), count in sends.items():
        assert graph.has_edge(sender, peer)
        assert count <= relays, f"node {sender} sent {count} copies to {peer}"
        assert nodes[sender].messages[message_id].relayed.count(peer) == count
    # Every copy sent was recorded once (no sender sends to a peer already on the walk).
    recorded = sum(len(node.messages[message_id].copies) for node in nodes.values())
    assert recorded == sum(sends.values()) + 1


GRAPHS = {
    "cycle8": lambda: numbered(nx.cycle_graph(8)),
    "regular3x16": lambda: numbered(nx.random_regular_graph(3, 16, seed=7)),
}


@pytest.mark.parametrize("graph_name", sorted(GRAPHS))
@pytest.mark.parametrize("relays", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [False, True])
def test_simulated_spread(graph_name: str, relays: int, shuffle: bool) -> None:
    graph = GRAPHS[graph_name]()
    assert sorted(graph.nodes) == list(range(1, graph.number_of_nodes() + 1))
    sim = simulate(graph, max_peers=3)
    origin = 1
    rng = random.Random(relays) if shuffle else None
    message_id, sends = spread(sim, origin, relays, rng)
    check_spread(graph, sim, message_id, origin, relays, sends)
    assert [c.path for c in sim.nodes[origin].messages[message_id].copies] == [(origin,)]


def test_simulated_spread_on_cycle_relays_1_takes_both_ways() -> None:
    sim = simulate(numbered(nx.cycle_graph(8)), max_peers=2)
    message_id, sends = spread(sim, 1, relays=1)
    # Node 5, opposite node 1, hears from both sides; the others once each way round.
    paths_at_5 = sorted(c.path for c in sim.nodes[5].messages[message_id].copies)
    assert paths_at_5 == [(1, 2, 3, 4, 5), (1, 8, 7, 6, 5)]
    assert sends[1, 2] == sends[1, 8] == 1


def heal(sim: Simulation, leaving: int) -> list[tuple[int, int]]:
    """Remove ``leaving`` with ``/REMOVE``: goodbyes, then introductions. Every former peer
    heard the goodbye; the links the introductions made."""
    former = sorted(sim.nodes[leaving].peers)
    reply = sim.remove(leaving)
    assert reply is not None and reply["former_peers"] == former
    assert not any(leaving in sim.nodes[peer].peers for peer in former)
    return [(a, b) for a, b in reply["links"]]


def check_links(sim: Simulation) -> None:
    """Every link two-way; nobody over ``max_peers``, waiting on a link or holding a
    removed node."""
    sim.links()  # asserts each link is known to both ends
    for node in sim.live().values():
        assert len(node.peers) <= node.members.max_peers
        assert node.members.pending == set()
        assert not node.peers.keys() & sim.dead


@pytest.mark.parametrize("leaving", [1, 4, 8])
def test_leaving_a_ring_closes_it(leaving: int) -> None:
    sim = simulate(numbered(nx.cycle_graph(8)), max_peers=2)
    links = heal(sim, leaving)
    assert len(links) == 1
    graph = graph_of(sim)
    assert sorted(graph.nodes) == sorted(set(range(1, 9)) - {leaving})
    assert all(degree == 2 for _, degree in graph.degree)
    assert nx.is_connected(graph)
    assert graph.number_of_edges() == 7
    check_links(sim)


def test_ring_keeps_healing_down_to_three() -> None:
    sim = simulate(numbered(nx.cycle_graph(8)), max_peers=2)
    for leaving in [3, 7, 1, 5, 8]:
        heal(sim, leaving)
        graph = graph_of(sim)
        assert nx.is_connected(graph)
        assert all(degree == 2 for _, degree in graph.degree)
    assert sorted(sim.live()) == [2, 4, 6]


def test_leaving_a_star_pairs_up_leaves_within_max_peers() -> None:
    sim = simulate(numbered(nx.star_graph(5)), max_peers=5)
    for number, node in sim.nodes.items():
        node.members.max_peers = 5 if number == 1 else 2
    links = heal(sim, 1)
    assert links == [(2, 3), (3, 4), (4, 5), (5, 6), (2, 6)]
    check_links(sim)
    assert nx.number_connected_components(graph_of(sim)) == 1


def test_leaving_random_regular_stays_within_max_peers() -> None:
    sim = simulate(numbered(nx.random_regular_graph(3, 16, seed=11)), max_peers=3)
    for leaving in [1, 2, 3, 4]:
        heal(sim, leaving)
        check_links(sim)
    message_id, sends = spread(sim, 16, relays=2)
    reachable = nx.node_connected_component(graph_of(sim), 16)
    assert {n for n, node in sim.live().items() if message_id in node.messages} == reachable
    assert max(sends.values()) <= 2


def test_the_same_walk_twice_is_one_copy() -> None:
    """Catch-up can hand over a copy gossip already brought by the same walk: keep one."""
    node = make_node(5, [1, 3, 7], FakeClock())
    first = node.relay("m1", "Apple", (1, 3), relays=2, sent=1.0)
    assert node.relay("m1", "Apple", (1, 3), relays=2, sent=1.0) == []
    assert [c.path for c in node.messages["m1"].copies] == [(1, 3, 5)]
    assert {s.peer for s in first} == {7}
    again = node.relay("m1", "Apple", (3,), relays=2, sent=1.0)
    assert [c.path for c in node.messages["m1"].copies] == [(1, 3, 5), (3, 5)]
    assert {s.peer for s in again} == {1, 7}


def test_received_counts_every_copy_that_arrives_recorded_or_not() -> None:
    node = make_node(5, [1, 3], FakeClock())
    node.relay("m1", "Apple", (1,), relays=1, sent=1.0)
    node.relay("m1", "Apple", (1,), relays=1, sent=1.0)  # the same walk again
    node.relay("m1", "Apple", (3, 5, 1), relays=1, sent=1.0)  # passed through this node
    assert node.counters.copies == 3
    assert node.status()["received"] == 3
    assert len(node.messages["m1"].copies) == 1


def test_status_says_how_many_messages_the_node_started_with_apart_from_those_since() -> None:
    """restart-node reads it once catch-up has begun: "held" counted what it caught up on."""
    kept = Message("m0", "from the store", 1.0, 1, [Copy((2, 5), 1.5)])
    node = make_node(5, [1, 3], FakeClock(), messages=[kept])
    node.relay("m1", "Apple", (1,), relays=1, sent=1.0)
    assert (node.status()["loaded"], node.status()["messages"]) == (1, 2)


def test_batched_runs_each_peers_copies_together_in_order_and_leaves_the_rest() -> None:
    node = make_node(1, [2, 3], FakeClock())
    sends = [s for n in range(4) for s in node.relay(f"m{n}", f"t{n}", (9,), 1, 1.0)]
    ping = Send(2, address(2), b"/PING {}\n", Command.PING)
    out = batched([*sends, ping])
    assert ping in out
    for peer in (2, 3):
        (run,) = [s for s in out if s.peer == peer and s.kind == Command.RELAYS]
        ids = [c["id"] for c in decode_frame(run.frame).payload["copies"]]
        assert ids == ["m0", "m1", "m2", "m3"]
    assert batched(sends[:1]) == sends[:1], "a lone copy stays as it was"


def test_a_frame_of_copies_that_contradict_is_refused_and_none_is_taken() -> None:
    node = make_node(1, [2, 3], FakeClock())
    node.relay("held", "one text", (2,), 1, 1.0)
    contradicting = [
        [("new", "a", (2,), 1, 1.0), ("held", "another text", (3,), 1, 1.0)],
        [("new", "a", (2,), 1, 1.0), ("new", "b", (3,), 1, 1.0)],
    ]
    for copies in contradicting:
        with pytest.raises(FrameError, match="another text"):
            node.relay_all(copies)
        assert set(node.messages) == {"held"} and len(node.messages["held"].copies) == 1
    sends = node.relay_all([("new", "a", (2,), 1, 1.0), ("held", "one text", (3,), 1, 1.0)])
    assert set(node.messages) == {"held", "new"} and len(node.messages["held"].copies) == 2
    assert sorted((s.peer, s.kind) for s in sends) == [(2, Command.RELAY), (3, Command.RELAY)]


# Copies that can wait


def test_only_a_copy_of_a_message_held_under_the_default_strategy_and_no_conditions_can_wait() -> (
    None
):
    node = make_node(5, [1, 3, 7], FakeClock())
    assert not node.copy_can_wait("m1"), "a first copy carries the message on"
    node.relay("m1", "Apple", (1,), relays=1, sent=0.0)
    assert node.copy_can_wait("m1")
    node.conditions = Conditions(loss=0.5)
    assert not node.copy_can_wait("m1"), "a lost first send makes a later copy matter"
    node.conditions = PERFECT
    node.strategy = Strategy(fanout=1)
    assert not node.copy_can_wait("m1"), "a fanout leaves peers a later copy may reach"


@pytest.mark.parametrize("seed", range(200))
def test_a_copy_that_can_wait_only_goes_to_peers_that_hold_the_message_or_were_sent_it(
    seed: int,
) -> None:
    """Why such a copy can wait: taking it late delays no first copy of a node that was
    a peer when the first copy came."""
    rng = random.Random(seed)
    others = list(range(1, 30))
    peers = rng.sample(others, rng.randint(1, 5))
    node = make_node(30, peers, FakeClock(), max_peers=5)
    relays = rng.randint(1, MAX_RELAYS)
    first = (*rng.sample(others, rng.randint(0, 4)), rng.choice(peers))
    first = tuple(dict.fromkeys(first))
    holding = set(first)
    for send in node.relay("m1", "Apple", first, relays=relays, sent=0.0):
        holding.add(send.peer)
    for _ in range(rng.randint(1, 12)):
        assert node.copy_can_wait("m1")
        walk = tuple(dict.fromkeys((*rng.sample(others, rng.randint(0, 4)), rng.choice(peers))))
        for send in node.relay("m1", "Apple", walk, relays=relays, sent=0.0):
            assert send.peer in holding, f"{send.peer} neither holds m1 nor was sent it"
        holding.update(walk)


def test_a_copy_whose_onward_frame_would_not_fit_is_refused_and_nothing_kept() -> None:
    """It was answered with an error, yet kept: a message no one could be passed, traded
    in catch-up or listed, which broke catch-up with every peer for good."""
    node = make_node(1, [2, 3], clock=lambda: 5.0)
    text = "\x01" * 8000  # 6 bytes a character once escaped: the frame's largest text
    long_walk = tuple(range(1_000_000_000, 1_000_001_700))  # 1,700 nodes of 10 digits
    with pytest.raises(FrameError, match="exceeds"):
        node.relay("big", text, long_walk, 1, 1.0)
    assert "big" not in node.messages and node.messages.digest.count == 0
    # passed on to no one (its one peer is on the walk), it is refused all the same
    lone = make_node(1, [2], clock=lambda: 5.0)
    with pytest.raises(FrameError, match="exceeds"):
        lone.relay("big", text, (*long_walk, 2), 1, 1.0)
    assert "big" not in lone.messages
    # the same text on a short walk is taken and passed on
    assert [s.peer for s in node.relay("fits", text, (4, 2), 1, 1.0)] == [3]


def test_copies_of_one_message_are_recorded_up_to_a_limit() -> None:
    """A peer that sends thousands of walks of one message held the node's lock for
    seconds: each new walk was checked against every one recorded."""
    node = make_node(1, [2], clock=lambda: 5.0)
    for hop in range(MAX_COPIES + 50):
        node.relay("many", "x", (2, 10 + hop), 1, 1.0)
    assert len(node.messages["many"].copies) == MAX_COPIES
