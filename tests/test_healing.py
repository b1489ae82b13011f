"""Failure detection, healing walks and joins of ``gossip.node.Node``, without sockets.

The unit tests drive one or two nodes by hand. The simulations run whole networks in a
``gossip.simulation.Simulation`` on a shared fake clock: every frame goes through the
receiver's ``gossip.answers.answer`` and the outcome back through ``sent``/``failed``, as
the server carries them, so the nodes heal exactly as the shipped core decides, only
faster than real time.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import networkx as nx
import pytest

from gossip.commands import Command
from gossip.membership import ANY_SLOT_AFTER, MISSES_TO_DROP, WALK_HOPS, LinkPlan, Splice
from gossip.node import EAGER_SYNCS, Node
from gossip.protocol import encode_frame
from gossip.sends import CatchUp, Send
from gossip.simulation import STEP, Simulation, StillClock, address
from gossip.timing import Timing
from tests.core import (
    TIMING,
    graph_of,
    is_ring,
    links,
    make_node,
    numbered,
    payload,
    ring,
    sends_of,
    simulate,
)


def drain(node: Node) -> None:
    """Answer every pending link request with no, so the node holds only its peers."""
    for number in list(node.members.pending):
        node.members.finish_link(number, address(number), False)


# Failure detection


def test_tick_pings_each_peer_after_ping_every_of_silence() -> None:
    clock = StillClock(10.0)
    node = make_node(1, [2, 3], clock)
    assert sends_of(node.tick(10.0 + TIMING.ping_every - 0.01), "PING") == []
    pings = sends_of(node.tick(10.0 + TIMING.ping_every + 1e-6), "PING")
    assert sorted(s.peer for s in pings) == [2, 3]
    for ping in pings:
        assert ping.address == address(ping.peer)
        assert payload(ping, "PING") == {"node": 1}
    # Peer 2 answers well after; peer 3 stays silent and is pinged again alone. When peer
    # 2's turn comes, peer 3, silent for more than half the time, is pinged with it: one
    # wake-up of an idle node pings all its peers.
    t = 10.0 + TIMING.ping_every
    answered = t + 0.6 * TIMING.ping_every
    node.members.heard_from(2, answered)
    assert sends_of(node.tick(t + TIMING.ping_every - 0.01), "PING") == []
    assert [s.peer for s in sends_of(node.tick(t + TIMING.ping_every + 1e-6), "PING")] == [3]
    again = sends_of(node.tick(answered + TIMING.ping_every + 1e-6), "PING")
    assert sorted(s.peer for s in again) == [2, 3]


def test_next_due_is_when_tick_next_has_a_chore() -> None:
    clock = StillClock(10.0)
    node = make_node(1, [2, 3], clock)
    node.agree(2, node.messages.digest.total)
    node.agree(3, node.messages.digest.total)
    due = node.next_due()
    assert due == 10.0 + TIMING.ping_every
    assert sends_of(node.tick(due - 0.01), "PING") == []
    assert len(sends_of(node.tick(due), "PING")) == 2
    node.drop_peer(3)  # a lost peer brings the walk forward
    assert node.next_due() == clock() + TIMING.walk_first


def test_tick_does_not_ping_a_peer_just_linked() -> None:
    clock = StillClock(10.0)
    node = make_node(1, [], clock, wanted=1)
    clock.now = 50.0
    assert node.members.accept_link(2, address(2))
    assert sends_of(node.tick(50.0 + TIMING.ping_every - 0.01), "PING") == []
    assert [s.peer for s in sends_of(node.tick(50.0 + TIMING.ping_every + 1e-6), "PING")] == [2]


def test_missed_drops_a_peer_after_misses_in_a_row() -> None:
    clock = StillClock(10.0)
    node = make_node(1, [2, 3], clock)
    outcomes = [node.missed(2, 20.0 + i) for i in range(MISSES_TO_DROP)]
    assert outcomes == [False] * (MISSES_TO_DROP - 1) + [True]
    assert sorted(node.peers) == [3]
    assert 2 not in node.members.misses and 2 not in node.members.heard
    assert node.members.looking()


def test_heard_from_between_misses_starts_the_count_again() -> None:
    node = make_node(1, [2], StillClock(10.0))
    for _ in range(MISSES_TO_DROP - 1):
        assert not node.missed(2, 20.0)
    node.members.heard_from(2, 21.0)
    assert node.members.heard[2] == 21.0
    for _ in range(MISSES_TO_DROP - 1):
        assert not node.missed(2, 22.0)
    assert 2 in node.peers
    assert node.missed(2, 23.0)
    assert node.peers == {}


def test_missed_and_heard_from_ignore_strangers() -> None:
    node = make_node(1, [2], StillClock(10.0))
    for _ in range(MISSES_TO_DROP + 1):
        assert not node.missed(9, 20.0)
    node.members.heard_from(9, 20.0)
    assert 9 not in node.members.misses and 9 not in node.members.heard
    assert sorted(node.peers) == [2]


def test_failed_sends_drop_a_dead_peer_and_say_leave_to_it() -> None:
    clock = StillClock(10.0)
    node = make_node(1, [2, 3], clock)
    [ping] = [s for s in sends_of(node.tick(11.0), "PING") if s.peer == 2]
    answers = [node.failed(ping, 11.0 + i) for i in range(MISSES_TO_DROP)]
    assert answers[:-1] == [[]] * (MISSES_TO_DROP - 1)
    [leave] = answers[-1]
    assert (leave.peer, leave.address) == (2, address(2))
    assert payload(leave, "LEAVE") == {"node": 1, "silent": True}
    assert sorted(node.peers) == [3]
    # The goodbye to a dead peer fails too: nothing more follows from that.
    assert node.failed(leave, 15.0) == []


def test_sent_refreshes_the_peer_and_clears_its_misses() -> None:
    node = make_node(1, [2], StillClock(10.0))
    [ping] = sends_of(node.tick(11.0), "PING")
    node.failed(ping, 11.0)
    node.sent(ping, {"node": 2, "peer": True}, 12.0)
    assert node.members.misses[2] == 0 and node.members.heard[2] == 12.0
    assert sorted(node.peers) == [2]


def test_ping_reply_not_a_peer_drops_it_to_keep_links_two_way() -> None:
    node = make_node(1, [2, 3], StillClock(10.0))
    pings = {s.peer: s for s in sends_of(node.tick(11.0), "PING")}
    node.sent(pings[3], {"node": 3}, 11.0)  # a reply that says nothing keeps the link
    node.sent(pings[2], {"node": 2, "peer": False}, 11.0)
    assert sorted(node.peers) == [3]
    assert node.members.looking()


# Healing: slots, link requests, walks


def test_plan_link_reserves_a_slot_or_says_why_not() -> None:
    node = make_node(1, [2], StillClock(), max_peers=3)
    assert node.members.plan_link(2) is LinkPlan.ALREADY
    assert node.members.plan_link(1) is LinkPlan.ALREADY
    assert node.members.plan_link(5) is LinkPlan.TRY
    assert node.members.plan_link(6) is LinkPlan.TRY
    assert node.members.pending == {5, 6} and node.members.free_slots() == 0
    assert node.members.plan_link(7) is LinkPlan.FULL
    assert node.members.pending == {5, 6}


def test_finish_link_keeps_an_accepted_peer_only_if_it_asked() -> None:
    node = make_node(1, [2], StillClock(), wanted=3)
    node.members.plan_link(5)
    node.members.plan_link(6)
    node.members.finish_link(5, address(5), True)
    node.members.finish_link(6, address(6), False)
    node.members.finish_link(7, address(7), True)  # never asked: no slot was reserved for it
    assert node.peers == {2: address(2), 5: address(5)}
    assert node.members.pending == set()
    assert node.members.wanted == 3


def test_accept_link_only_with_a_free_slot_counting_pending() -> None:
    node = make_node(1, [2, 3], StillClock(), max_peers=3)
    assert not node.members.accept_link(1, address(1))
    assert node.members.accept_link(2, address(2))  # already a peer: yes, and still one link
    assert node.members.plan_link(7) is LinkPlan.TRY
    assert not node.members.accept_link(4, address(4))  # the last slot is reserved for 7
    drain(node)
    assert node.members.accept_link(4, address(4))
    assert not node.members.accept_link(5, address(5))
    assert sorted(node.peers) == [2, 3, 4]
    assert node.members.wanted == 3


def test_simultaneous_mutual_connect_makes_one_link_within_max_peers() -> None:
    clock = StillClock()
    a = make_node(1, [10, 11], clock, max_peers=3)
    b = make_node(2, [20, 21], clock, max_peers=3)
    assert a.members.plan_link(2) is LinkPlan.TRY and b.members.plan_link(1) is LinkPlan.TRY
    assert a.members.free_slots() == b.members.free_slots() == 0
    # Each request reaches the other before either answer comes back.
    assert b.members.accept_link(1, address(1))
    assert a.members.accept_link(2, address(2))
    a.members.finish_link(2, address(2), True)
    b.members.finish_link(1, address(1), True)
    assert sorted(a.peers) == [2, 10, 11] and sorted(b.peers) == [1, 20, 21]
    assert a.members.pending == b.members.pending == set()


def test_drop_peer_makes_the_node_look_for_another() -> None:
    node = make_node(1, [2, 3, 4], StillClock(), max_peers=3)
    assert not node.members.looking()
    assert not node.drop_peer(9)
    assert node.drop_peer(4)
    assert node.members.looking() and node.members.wanted == 3
    assert node.members.plan_link(5) is LinkPlan.TRY
    assert not node.members.looking()  # the pending link would fill the gap
    node.members.finish_link(5, address(5), False)
    assert node.members.looking()


def test_walks_back_off_and_then_accept_any_slot() -> None:
    clock = StillClock(100.0)
    node = make_node(1, [2, 3, 4], clock, max_peers=3)
    clock.now = 200.0
    node.drop_peer(4)
    assert 8 * TIMING.walk_every < TIMING.walk_max < 16 * TIMING.walk_every, (
        "the gaps below assume this"
    )
    gaps = [
        TIMING.walk_every,
        2 * TIMING.walk_every,
        4 * TIMING.walk_every,
        8 * TIMING.walk_every,
    ] + [TIMING.walk_max] * 4
    due = 200.0 + TIMING.walk_first
    walks = []
    for number, gap in enumerate(gaps, 1):
        assert sends_of(node.tick(due - 0.01), "WALK") == [], f"walk {number} came early"
        [walk] = sends_of(node.tick(due + 1e-6), "WALK")
        walks.append(walk)
        due += gap
    assert {w.peer for w in walks} == {2, 3}
    for walk in walks:
        assert walk.address == address(walk.peer)
    fields = [payload(w, "WALK") for w in walks]
    assert fields[0] == {
        "node": 1,
        "host": "127.0.0.1",
        "port": 7001,
        "hops": WALK_HOPS,
        "visited": [],
        "any": False,
    }
    assert [f["any"] for f in fields] == [False] * ANY_SLOT_AFTER + [True] * (
        len(gaps) - ANY_SLOT_AFTER
    )


def test_losing_another_peer_starts_the_walks_afresh() -> None:
    clock = StillClock(100.0)
    node = make_node(1, [2, 3, 4], clock, max_peers=3)
    node.drop_peer(4)
    for t in range(101, 120):
        node.tick(float(t))
    assert node.members.walks > ANY_SLOT_AFTER
    clock.now = 130.0
    node.drop_peer(3)
    assert sends_of(node.tick(130.0 + TIMING.walk_first - 0.01), "WALK") == []
    [walk] = sends_of(node.tick(130.0 + TIMING.walk_first + 1e-6), "WALK")
    assert walk.peer == 2 and payload(walk, "WALK")["any"] is False


def test_no_walk_once_the_gap_is_filled_or_without_peers() -> None:
    clock = StillClock(100.0)
    node = make_node(1, [2, 3], clock, max_peers=3)
    assert all(sends_of(node.tick(100.0 + t), "WALK") == [] for t in range(10))
    node.drop_peer(3)
    node.members.accept_link(5, address(5))
    assert all(sends_of(node.tick(110.0 + t), "WALK") == [] for t in range(10))
    node.drop_peer(2)
    node.drop_peer(5)
    assert node.members.looking()
    assert all(node.tick(120.0 + t) == [] for t in range(10))  # nobody to walk through


def test_walk_taken_by_a_looking_node_with_a_free_slot() -> None:
    node = make_node(5, [4, 6], StillClock(), max_peers=3, wanted=3)
    origin_address = ("10.0.0.9", 9009)
    [connect] = node.members.walk(9, origin_address, 10, [4], False)
    assert (connect.peer, connect.address) == (9, origin_address)
    assert payload(connect, "CONNECT") == {"node": 5, "host": "127.0.0.1", "port": 7005}
    assert node.members.pending == {9} and not node.members.looking()


def test_walk_at_a_node_not_looking_needs_any_slot() -> None:
    node = make_node(5, [4, 6], StillClock(), max_peers=3)
    [forward] = node.members.walk(9, address(9), 10, [4], False)
    assert forward.kind == "WALK" and node.members.pending == set()
    [connect] = node.members.walk(9, address(9), 10, [4], True)
    assert connect.kind == "CONNECT" and node.members.pending == {9}


def test_walk_forwarded_to_an_unvisited_peer_with_one_hop_less() -> None:
    targets = set()
    for seed in range(20):
        node = make_node(5, [1, 2, 3], StillClock(), max_peers=3, seed=seed)
        [forward] = node.members.walk(9, ("10.0.0.9", 9009), 10, [1], True)
        targets.add(forward.peer)
        assert forward.address == address(forward.peer)
        assert payload(forward, "WALK") == {
            "node": 9,
            "host": "10.0.0.9",
            "port": 9009,
            "hops": 9,
            "visited": [1, 5],
            "any": True,
        }
    assert targets == {2, 3}


def test_walk_falls_back_to_a_visited_peer_but_not_back() -> None:
    targets = set()
    for seed in range(20):
        node = make_node(5, [1, 2, 3], StillClock(), max_peers=3, seed=seed)
        [forward] = node.members.walk(9, address(9), 10, [1, 2, 3], False)
        targets.add(forward.peer)
    assert targets == {1, 2}  # never 3, which it came from


def test_walk_dropped_where_it_can_only_go_back() -> None:
    node = make_node(5, [3], StillClock(), max_peers=1)
    assert node.members.walk(9, address(9), 10, [3], True) == []
    assert node.members.pending == set()


def test_walk_at_a_node_linked_to_the_origin_passes_it_on() -> None:
    node = make_node(5, [9, 3], StillClock(), max_peers=3, wanted=3)
    [forward] = node.members.walk(9, address(9), 10, [], True)
    assert forward.kind == "WALK" and forward.peer == 3
    assert node.members.pending == set()
    # Not back to the origin, nor to the node it came from.
    assert node.members.walk(9, address(9), 10, [3], True) == []


def test_walk_at_a_node_with_a_pending_link_to_the_origin_passes_it_on() -> None:
    node = make_node(5, [3], StillClock(), max_peers=3, wanted=3)
    assert node.members.plan_link(9) is LinkPlan.TRY
    [forward] = node.members.walk(9, address(9), 10, [], True)
    assert forward.kind == "WALK" and node.members.pending == {9}


def test_walk_back_at_its_origin_is_dropped() -> None:
    node = make_node(9, [3], StillClock(), max_peers=3, wanted=3)
    assert node.members.walk(9, address(9), 10, [3], True) == []
    assert node.members.pending == set() and sorted(node.peers) == [3]


def test_walk_with_one_hop_left_is_taken_or_dropped() -> None:
    looking = make_node(5, [4], StillClock(), max_peers=3, wanted=2)
    assert [s.kind for s in looking.members.walk(9, address(9), 1, [], False)] == ["CONNECT"]
    full = make_node(6, [1, 2, 3], StillClock(), max_peers=3)
    assert full.members.walk(9, address(9), 1, [], True) == []
    assert [s.kind for s in full.members.walk(9, address(9), 2, [], True)] == ["WALK"]


def test_walk_at_a_full_node_is_passed_on() -> None:
    node = make_node(5, [1, 2, 3], StillClock(), max_peers=3, wanted=3)
    [forward] = node.members.walk(9, address(9), 10, [1], True)
    assert forward.kind == "WALK" and node.members.pending == set()


def test_walk_counts_pending_links_as_taken_slots() -> None:
    node = make_node(5, [1, 2], StillClock(), max_peers=3, wanted=3)
    [connect] = node.members.walk(8, address(8), 10, [1], False)
    assert connect.kind == "CONNECT" and node.members.pending == {8}
    [forward] = node.members.walk(9, address(9), 10, [1], True)
    assert forward.kind == "WALK" and node.members.pending == {8}
    assert len(node.peers) + len(node.members.pending) == node.members.max_peers


def test_walk_answered_by_connect_links_both_ends() -> None:
    clock = StillClock()
    origin = make_node(9, [8], clock, max_peers=3, wanted=2)
    walker = make_node(5, [4], clock, max_peers=3, wanted=2)
    [connect] = walker.members.walk(9, address(9), 10, [8], False)
    accepted = origin.members.accept_link(5, address(5))
    walker.sent(connect, {"accepted": accepted}, 1.0)
    assert sorted(origin.peers) == [5, 8] and sorted(walker.peers) == [4, 9]
    assert walker.members.pending == set()
    assert not origin.members.looking() and not walker.members.looking()


def test_walk_refused_by_a_full_origin_frees_the_slot() -> None:
    clock = StillClock()
    origin = make_node(9, [6, 7, 8], clock, max_peers=3)
    walker = make_node(5, [4], clock, max_peers=3, wanted=2)
    [connect] = walker.members.walk(9, address(9), 10, [8], False)
    walker.sent(connect, {"accepted": origin.members.accept_link(5, address(5))}, 1.0)
    assert (
        sorted(walker.peers) == [4] and walker.members.pending == set() and walker.members.looking()
    )
    # A walker that cannot reach the origin frees its slot as well.
    [connect] = walker.members.walk(9, address(9), 10, [8], False)
    assert walker.failed(connect, 2.0) == []
    assert walker.members.pending == set() and walker.members.looking()


# Joining: a node with no peers asks a contact to take it in


def join_node(clock: StillClock, contacts: Iterable[int] = (2, 3), **options: Any) -> Node:
    return make_node(9, [], clock, contacts=[(c, address(c)) for c in contacts], **options)


def test_tick_asks_one_contact_at_a_time() -> None:
    clock = StillClock(10.0)
    node = join_node(clock, contacts=(2, 9, 3), wanted=2)
    assert [c for c, _ in node.members.contacts] == [2, 3]  # never itself
    [join] = sends_of(node.tick(10.0), "JOIN")
    assert (join.peer, join.address) == (2, address(2))
    assert payload(join, "JOIN") == {
        "node": 9,
        "host": "127.0.0.1",
        "port": 7009,
        "prefer": [3, 2],
        "slots": 3,
    }
    # One JOIN at a time: none while the first is unanswered, however long that takes.
    assert all(node.tick(10.0 + t / 10) == [] for t in range(1, 30))
    assert node.failed(join, 13.0) == []
    [second] = sends_of(node.tick(13.0), "JOIN")
    assert second.peer == 3
    # A quick refusal: the next contact is asked TIMING.walk_every after the last JOIN, not sooner.
    node.sent(second, {"peers": []}, 13.05)
    assert sends_of(node.tick(13.0 + TIMING.walk_every - 0.01), "JOIN") == []
    [third] = sends_of(node.tick(13.0 + TIMING.walk_every + 1e-6), "JOIN")
    assert third.peer == 2


def test_join_answer_gives_the_node_its_peers_and_ends_the_joining() -> None:
    clock = StillClock(10.0)
    node = join_node(clock, wanted=2)
    [join] = sends_of(node.tick(10.0), "JOIN")
    clock.now = 10.1
    links = [[2, "127.0.0.1", 7002], [5, "127.0.0.1", 7005]]
    node.sent(join, {"peers": links}, 10.1)
    assert node.peers == {2: address(2), 5: address(5)}
    assert node.members.contacts == [] and not node.members.joining
    assert node.members.wanted == 2 and not node.members.looking()
    assert sends_of(node.tick(20.0), "JOIN") == []


def test_a_node_taken_in_catches_up_at_once_not_at_its_next_turn() -> None:
    """A node that joins (restarted, added) missed what was sent meanwhile: its first
    catch-up round is due as soon as it has peers, not after its random first wait."""
    clock = StillClock(10.0)
    node = join_node(clock, wanted=2)
    node.next_sync = 10.0 + TIMING.sync_every  # as if its random first wait were the longest
    [join] = sends_of(node.tick(10.0), "JOIN")
    node.sent(join, {"peers": [[2, "127.0.0.1", 7002]]}, 10.1)
    assert node.next_due() <= 10.1
    [round_] = [c for c in node.tick(10.1) if isinstance(c, CatchUp)]
    assert round_.peer == 2
    # Its peers offer what it missed once that settled: it asks again soon, for a while.
    eager = TIMING.sync_every / EAGER_SYNCS
    assert node.next_sync == pytest.approx(10.1 + eager)
    later = 10.1 + 2 * TIMING.settle
    node.next_sync = later
    assert [c for c in node.tick(later) if isinstance(c, CatchUp)]
    assert node.next_sync == pytest.approx(later + TIMING.sync_every), "then at the usual pace"
    refused = join_node(clock, wanted=2)
    refused.next_sync = 10.0 + TIMING.sync_every
    [join] = sends_of(refused.tick(10.0), "JOIN")
    refused.sent(join, {"peers": []}, 10.1)
    assert refused.next_sync == 10.0 + TIMING.sync_every, "no peer yet: nothing to catch up from"


def test_no_join_with_peers_or_without_contacts() -> None:
    clock = StillClock(10.0)
    alone = make_node(9, [], clock)
    linked = make_node(8, [1], clock, contacts=[(2, address(2))])
    assert all(alone.tick(10.0 + t) == [] for t in range(10))
    assert all(sends_of(linked.tick(10.0 + t), "JOIN") == [] for t in range(10))


def test_joined_ignores_malformed_entries_itself_and_known_peers() -> None:
    node = join_node(StillClock(), max_peers=3)
    node.members.joined(
        [
            "2 127.0.0.1 7002",
            [2, "127.0.0.1"],
            [2, "127.0.0.1", 7002, 0],
            ["2", "127.0.0.1", 7002],
            [2, 127, 7002],
            [2, "127.0.0.1", "7002"],
            {"node": 2},
            None,
            [9, "127.0.0.1", 7009],
        ]
    )
    assert node.peers == {} and len(node.members.contacts) == 2  # nothing usable: still joining
    node.members.joined([[4, "127.0.0.1", 7004], [4, "10.0.0.4", 4], [5, "127.0.0.1", 7005]])
    assert node.peers == {4: address(4), 5: address(5)}
    assert node.members.contacts == []


def test_joined_stops_at_max_peers() -> None:
    node = join_node(StillClock(), max_peers=2)
    node.members.joined([[n, "127.0.0.1", 7000 + n] for n in (4, 5, 6)])
    assert sorted(node.peers) == [4, 5]


def test_plan_join_hands_over_a_link_with_a_preferred_peer() -> None:
    contact = make_node(2, [1, 3, 4], StillClock(), max_peers=3)
    assert contact.members.plan_join(9, address(9), [7, 4, 3], slots=3) == Splice(4, address(4))
    assert contact.peers.keys() == {1, 3, 4} and contact.members.pending == set()


def test_plan_join_picks_any_partner_when_none_is_preferred() -> None:
    partners = set()
    for seed in range(20):
        contact = make_node(2, [1, 3, 4], StillClock(), max_peers=3, seed=seed)
        splice = contact.members.plan_join(9, address(9), [7], slots=2)
        assert splice is not None and splice.address == address(splice.partner)
        partners.add(splice.partner)
    assert partners == {1, 3, 4}


def test_plan_join_links_directly_or_refuses() -> None:
    clock = StillClock()
    loner = make_node(2, [], clock, max_peers=3)
    assert loner.members.plan_join(9, address(9), [], slots=3) == Splice()
    assert sorted(loner.peers) == [9]
    roomy = make_node(3, [1], clock, max_peers=3)
    assert roomy.members.plan_join(9, address(9), [], slots=1) == Splice()
    assert sorted(roomy.peers) == [1, 9]
    full = make_node(4, [1, 2, 3], clock, max_peers=3)
    assert full.members.plan_join(9, address(9), [], slots=1) is None
    assert full.members.plan_join(9, address(9), [], slots=0) is None
    assert full.members.plan_join(4, address(4), [], slots=3) is None
    assert sorted(full.peers) == [1, 2, 3]
    stale = make_node(5, [1, 9], clock, max_peers=2)  # still holds the restarted node
    assert stale.members.plan_join(9, address(9), [1], slots=3) == Splice()
    assert sorted(stale.peers) == [1, 9]


def test_swap_replaces_the_old_peer_by_the_newcomer() -> None:
    partner = make_node(4, [2, 5, 6], StillClock(), max_peers=3)
    assert not partner.swap(7, 9, address(9))  # 7 is not its peer
    assert not partner.swap(2, 5, address(5))  # 5 already is
    assert not partner.swap(2, 4, address(4))  # itself
    assert partner.swap(2, 9, address(9))
    assert partner.peers == {5: address(5), 6: address(6), 9: address(9)}
    assert 2 not in partner.members.heard and 2 not in partner.members.misses


def test_finish_join_names_the_newcomers_peers() -> None:
    clock = StillClock()
    contact = make_node(2, [1, 3, 4], clock, max_peers=3)
    splice = Splice(4, address(4))
    assert contact.members.finish_join(9, address(9), splice, swapped=True) == [
        (2, address(2)),
        (4, address(4)),
    ]
    assert sorted(contact.peers) == [1, 3, 9]
    # The partner refused the swap: a full contact keeps its link and cannot take the newcomer.
    full = make_node(2, [1, 3, 4], clock, max_peers=3)
    assert full.members.finish_join(9, address(9), splice, swapped=False) == []
    assert sorted(full.peers) == [1, 3, 4]
    roomy = make_node(2, [1, 4], clock, max_peers=3)
    assert roomy.members.finish_join(9, address(9), splice, swapped=False) == [(2, address(2))]
    assert sorted(roomy.peers) == [1, 4, 9]


def test_join_through_a_full_contact_changes_nobody_elses_peer_count() -> None:
    clock = StillClock()
    contact = make_node(2, [1, 3, 4], clock, max_peers=3)
    partner = make_node(4, [2, 5, 6], clock, max_peers=3)
    newcomer = join_node(clock, contacts=(2, 4))
    [join] = sends_of(newcomer.tick(0.0), "JOIN")
    fields = payload(join, "JOIN")
    splice = contact.members.plan_join(9, address(9), fields["prefer"], fields["slots"])
    assert splice == Splice(4, address(4))
    swapped = partner.swap(2, 9, address(9))
    linked = contact.members.finish_join(9, address(9), splice, swapped)
    newcomer.sent(join, {"peers": [[n, h, p] for n, (h, p) in linked]}, 1.0)
    assert sorted(newcomer.peers) == [2, 4]
    assert sorted(contact.peers) == [1, 3, 9] and sorted(partner.peers) == [5, 6, 9]


# Leaving


def test_a_left_node_does_nothing_and_takes_nothing() -> None:
    clock = StillClock(10.0)
    stayer, leaver = (make_node(1, [2], clock, contacts=[(5, address(5))]) for _ in "ab")
    for node in (stayer, leaver):
        node.drop_peer(2)  # with no peer left, it asks node 5 to take it in
    leaver.members.leave()
    assert sends_of(stayer.tick(10.5), "JOIN")
    assert not leaver.members.looking()
    assert all(leaver.tick(10.0 + t / 2) == [] for t in range(1, 30))
    assert not leaver.members.accept_link(4, address(4))
    assert leaver.members.walk(4, address(4), 10, [], True) == []
    assert leaver.members.plan_join(4, address(4), [], slots=3) is None
    assert not leaver.swap(2, 4, address(4))
    assert leaver.peers == {} and leaver.members.pending == set()


LATE_ANSWERS = ["connect answer", "join answer", "introduction"]


@pytest.mark.parametrize("route", LATE_ANSWERS)
def test_a_left_node_takes_no_peer_from_a_late_answer(route: str) -> None:
    clock = StillClock(10.0)
    node = make_node(1, [], clock, max_peers=3, wanted=2, contacts=[(5, address(5))])
    if route == "connect answer":
        [connect] = node.members.walk(7, address(7), 10, [], True)
        node.members.leave()
        node.sent(connect, {"accepted": True}, 11.0)
    elif route == "join answer":
        [join] = sends_of(node.tick(10.0), "JOIN")
        node.members.leave()
        node.sent(join, {"peers": [[5, "127.0.0.1", 7005], [6, "127.0.0.1", 7006]]}, 11.0)
    else:
        node.members.leave()
        if node.members.plan_link(7) is LinkPlan.TRY:
            node.members.finish_link(7, address(7), True)
    assert node.peers == {} and node.members.pending == set()


@pytest.mark.parametrize(
    "entry",
    [[True, "127.0.0.1", 7001], [0, "127.0.0.1", 7000], [-3, "127.0.0.1", 7003], [4, "h", 0]],
    ids=["bool", "zero", "negative", "port0"],
)
def test_joined_ignores_numbers_the_protocol_refuses(entry: list[Any]) -> None:
    node = join_node(StillClock())
    node.members.joined([entry])
    assert node.peers == {}


@pytest.mark.parametrize("peers", [None, 5])
def test_a_join_reply_without_a_list_of_peers_is_a_refusal(peers: object) -> None:
    clock = StillClock(10.0)
    node = join_node(clock)
    [join] = sends_of(node.tick(10.0), "JOIN")
    node.sent(join, {"peers": peers}, 10.1)
    assert node.peers == {} and not node.members.joining


# Simulations


def healthy(graph: nx.Graph, max_peers: int = 3, seed: int = 0) -> Simulation:
    """A network that has run for a second: every peer answered a ping, nothing changed."""
    sim = simulate(graph, max_peers, seed)
    sim.run(1.0)
    assert links(graph_of(sim)) == links(graph), "a healthy network changed its links"
    return sim


def settled(sim: Simulation) -> nx.Graph:
    """The live graph, checked: no dead peer held, no half-made link, nobody over max."""
    for number, node in sim.live().items():
        assert not node.peers.keys() & sim.dead, f"node {number} still holds a dead peer"
        assert node.members.pending == set(), f"node {number} still waits on {node.members.pending}"
        assert len(node.peers) <= node.members.max_peers
    return graph_of(sim)


def spread_reaches_everyone(sim: Simulation, origin: int) -> None:
    message_id, sends = sim.nodes[origin].submit("Apple", relays=1)
    for send in sends:
        sim.send(origin, send)
    missing = [n for n, node in sim.live().items() if message_id not in node.messages]
    assert missing == [], f"a message from node {origin} never reached {missing}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("victim", [1, 8, 16])
def test_ring_closes_around_a_killed_node(victim: int, seed: int) -> None:
    sim = healthy(ring(16), seed=seed)
    sim.kill(victim)
    sim.run(3.0)
    graph = settled(sim)
    assert sorted(graph) == sorted(set(range(1, 17)) - {victim})
    assert is_ring(graph)
    assert graph.has_edge((victim - 2) % 16 + 1, victim % 16 + 1)  # its neighbours closed it
    spread_reaches_everyone(sim, victim % 16 + 1)


@pytest.mark.parametrize("leaving", [1, 8])
def test_ring_closes_at_once_around_a_leaving_node(leaving: int) -> None:
    sim = healthy(ring(16))
    sim.remove(leaving)
    graph = settled(sim)
    assert is_ring(graph) and len(graph) == 15
    sim.run(3.0)
    assert links(settled(sim)) == links(graph)
    assert not any(node.members.looking() for node in sim.live().values())


@pytest.mark.parametrize(
    "seeds",
    [range(60), pytest.param(range(60, 200), marks=pytest.mark.slow)],
    ids=["seeds 0-59", "seeds 60-199"],
)
def test_random_regular_graph_stays_connected_through_four_kills(seeds: range) -> None:
    """Kill four nodes a second apart, on 200 graphs (60 by default, the rest with
    ``-m slow``); check three seconds after the last.

    A node that was a cut vertex of the live graph when it died splits the network for
    good: walks travel over links, so no walk can cross the gap. That happens in 5 of
    the 200 seeds (86, 90, 101, 127 and 153); every other seed must end connected.
    """
    unavoidable, partitioned = [], []
    for seed in seeds:
        sim = healthy(numbered(nx.random_regular_graph(3, 16, seed=seed)), seed=seed)
        kills = random.Random(seed)
        cut = False
        for _ in range(4):
            victim = kills.choice(sorted(sim.live()))
            cut = cut or victim in set(nx.articulation_points(graph_of(sim)))
            sim.kill(victim)
            sim.run(1.0)
        sim.run(3.0)
        graph = settled(sim)
        if cut:
            unavoidable.append(seed)
        elif not nx.is_connected(graph):
            partitioned.append(seed)
    assert partitioned == []
    assert len(unavoidable) < len(seeds) // 10, f"only {len(seeds) - len(unavoidable)} tested"


def test_restarted_node_takes_its_old_place_in_the_ring() -> None:
    sim = healthy(ring(16), seed=3)
    former = dict(sim.nodes[5].peers)
    sim.kill(5)
    sim.run(3.0)
    assert is_ring(settled(sim)) and len(sim.live()) == 15
    sim.start(5, wanted=len(former), contacts=list(former.items()))
    sim.run(2.0)
    graph = settled(sim)
    assert links(graph) == links(ring(16))
    assert sim.nodes[5].members.contacts == []  # it came in by joining, not by walks


@pytest.mark.parametrize("down", [0.0, 0.5, 1.0])
def test_node_restarted_before_the_ring_healed_rejoins_it(down: float) -> None:
    sim = healthy(ring(16), seed=4)
    former = dict(sim.nodes[5].peers)
    sim.kill(5)
    sim.run(down)
    sim.start(5, wanted=len(former), contacts=list(former.items()))
    sim.run(3.0)
    graph = settled(sim)
    assert is_ring(graph) and len(graph) == 16


@pytest.mark.parametrize("seed", range(5))
def test_new_node_joins_a_full_regular_graph(seed: int) -> None:
    sim = healthy(numbered(nx.random_regular_graph(3, 16, seed=seed)), seed=seed)
    contact = 1 + seed * 3
    sim.start(17, contacts=[(contact, address(contact))])
    sim.run(2.0)
    graph = settled(sim)
    assert graph.degree(17) == 2 and graph.has_edge(17, contact)
    assert all(degree == 3 for n, degree in graph.degree if n != 17)
    assert nx.is_connected(graph)


@pytest.mark.parametrize("seed", range(3))
def test_new_node_grows_a_ring_by_one(seed: int) -> None:
    sim = healthy(ring(16), seed=seed)
    sim.start(17, contacts=[(3, address(3)), (9, address(9))])
    sim.run(2.0)
    graph = settled(sim)
    assert is_ring(graph) and len(graph) == 17
    assert graph.has_edge(17, 3)


def test_new_node_asks_the_next_contact_when_one_is_dead() -> None:
    sim = healthy(ring(16))
    sim.kill(3)
    sim.start(17, contacts=[(3, address(3)), (9, address(9))])
    sim.run(TIMING.walk_every + 2 * STEP)
    peers = sim.nodes[17].peers
    assert 9 in peers and len(peers) == 2
    assert sim.nodes[17].members.contacts == []


@pytest.mark.parametrize("seed", range(4))
def test_ring_closes_after_three_neighbours_crash_at_once(seed: int) -> None:
    sim = healthy(ring(16), seed=seed)
    sim.dead.update({5, 6, 7})
    sim.run(3.0)
    graph = settled(sim)
    assert nx.is_connected(graph) and len(graph) == 13
    assert is_ring(graph) and graph.has_edge(4, 8)
    spread_reaches_everyone(sim, 12)


def test_a_send_lost_with_its_link_is_not_counted_again() -> None:
    """A broken link reports itself once; the sends it carried must not add a miss each."""
    node = make_node(1, [2, 3], StillClock(10.0))
    relay = Send(2, address(2), encode_frame(Command.PING, {"node": 1}), Command.PING)
    for _ in range(MISSES_TO_DROP):
        assert node.failed(relay, 11.0, counted=False) == []
    assert 2 in node.peers
    connect = Send(4, address(4), node.members.connect_frame(), Command.CONNECT)
    assert node.members.walk(4, address(4), 3, [], any_slot=True) == [connect]
    node.failed(connect, 11.0, counted=False)
    assert node.members.pending == set() and 4 not in node.peers


def test_a_crowded_host_stretches_pings_and_patience_alone() -> None:
    small, crowded = Timing.for_host(16, 2), Timing.for_host(1024, 2)
    assert small == Timing()
    assert crowded.ping_every == 4 * Timing.ping_every
    assert crowded.reply_timeout == 4 * Timing.reply_timeout
    assert crowded.walk_first == Timing.walk_first  # healing is as quick as ever
    assert Timing.for_host(1024, 8) == Timing()
