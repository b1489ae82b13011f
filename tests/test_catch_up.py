"""Catch-up (anti-entropy) without sockets: the digest, the node's helpers, and whole rounds.

A round is the shipped ``gossip.catchup.Round``, held in a ``gossip.simulation.Simulation``:
each request goes through the wire format to the peer's ``gossip.answers.answer``, page by
page, as the server carries it, so these tests see what two real nodes would exchange.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import string
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gossip.answers import answer
from gossip.catchup import Round
from gossip.digest import BUCKETS, Digest, bucket_of
from gossip.journal import Journal, Message
from gossip.messages import LISTING_KEPT, MAX_LISTED_IDS, MAX_TRADED
from gossip.node import Node
from gossip.protocol import (
    Copy,
    Frame,
    FrameError,
    decode_frame,
    id_list,
    message_id_field,
    relay_fields,
)
from gossip.sends import CatchUp, Send
from gossip.simulation import STEP, Simulation, StillClock, address
from tests.core import TIMING, make_node

# Ids as a peer may send them: 1 to 64 ASCII letters, digits, - or _.
ids = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=64)


def held(message_id: str, *copies: tuple[tuple[int, ...], float], text: str = "t") -> Message:
    """A message as a node holds it, with these (path, arrival) copies."""
    return Message(message_id, text, 0.0, 1, [Copy(path, arrived) for path, arrived in copies])


def hex_ids(count: int, seed: int) -> list[str]:
    """Ids like the ones nodes make (32 hex digits), so they scatter over pages and buckets."""
    rng = random.Random(seed)
    return [rng.randbytes(16).hex() for _ in range(count)]


def pages(node: Node, buckets: Iterable[int], now: float) -> list[tuple[list[str], bool]]:
    """Every page of ``node``'s settled ids, each asked for after the last id of the one before."""
    listed, complete = node.messages.settled_ids(buckets, now)
    found = [(listed, complete)]
    while not complete:
        after = listed[-1]
        listed, complete = node.messages.settled_ids(buckets, now, after)
        assert all(i > after for i in listed), f"a page after {after} goes back"
        found.append((listed, complete))
    return found


# Digest


@given(st.lists(ids, unique=True).flatmap(lambda xs: st.tuples(st.just(xs), st.permutations(xs))))
def test_digest_ignores_order(pair: tuple[list[str], list[str]]) -> None:
    one, other = pair
    assert Digest(one).total == Digest(other).total
    assert Digest(one).bucket_hashes() == Digest(other).bucket_hashes()


@given(st.sets(ids), st.sets(ids))
def test_digest_total_equal_exactly_when_sets_equal(mine: set[str], theirs: set[str]) -> None:
    assert (Digest(mine).total == Digest(theirs).total) == (mine == theirs)


@given(st.sets(ids))
def test_digest_count_and_bucket_hashes(held_ids: set[str]) -> None:
    digest = Digest(held_ids)
    assert digest.count == len(held_ids)
    hashes = digest.bucket_hashes()
    assert len(hashes) == BUCKETS
    assert all(len(h) == 16 for h in hashes)
    assert digest.differing(hashes) == []


@given(st.sets(ids), st.sets(ids))
def test_differing_buckets_are_those_of_the_symmetric_difference(
    mine: set[str], theirs: set[str]
) -> None:
    expected = sorted({bucket_of(i) for i in mine ^ theirs})
    assert Digest(mine).differing(Digest(theirs).bucket_hashes()) == expected
    assert Digest(theirs).differing(Digest(mine).bucket_hashes()) == expected


def test_digest_adding_one_id_changes_its_bucket_only() -> None:
    digest = Digest(["a", "b"])
    before = digest.bucket_hashes()
    digest.add("c")
    assert digest.count == 3
    assert digest.differing(before) == [bucket_of("c")]
    assert digest.total == Digest(["c", "a", "b"]).total


@pytest.mark.parametrize("length", [0, 1, BUCKETS - 1, BUCKETS + 1])
def test_differing_names_every_bucket_for_a_malformed_list(length: int) -> None:
    digest = Digest(["a"])
    assert digest.differing(digest.bucket_hashes()[:1] * length) == list(range(BUCKETS))


# Message ids on the wire


@pytest.mark.parametrize(
    "value", ["0123456789abcdef0123456789abcdef", "a", "n1-1", "A_b-9", "x" * 64, "-", "_"]
)
def test_message_ids_of_the_documented_alphabet_pass(value: str) -> None:
    assert message_id_field({"id": value}, "id") == value
    assert id_list({"ids": [value]}, "ids", 1) == [value]


@pytest.mark.parametrize(
    "value", ["", "x" * 65, "é", "café", "a b", "a/b", "a\n", "\ud800", 5, None, True, ["a"]]
)
def test_message_ids_a_node_could_not_hold_or_list_are_refused(value: object) -> None:
    """Digest hashes ids as UTF-8 and pages compare them as text: keep them plain."""
    with pytest.raises(FrameError, match="message id"):
        message_id_field({"id": value}, "id")
    with pytest.raises(FrameError, match="message ids"):
        id_list({"ids": ["ok", value]}, "ids", 2)


def test_id_list_refuses_a_list_too_long_or_no_list() -> None:
    assert id_list({"ids": ["a", "b"]}, "ids", 2) == ["a", "b"]
    assert id_list({"ids": []}, "ids", 2) == []
    with pytest.raises(FrameError, match="at most 2"):
        id_list({"ids": ["a", "b", "c"]}, "ids", 2)
    for payload in ({}, {"ids": "ab"}, {"ids": None}):
        with pytest.raises(FrameError):
            id_list(payload, "ids", 2)


# Node helpers: settled_ids, compare, offer, digest


def test_settled_ids_only_held_long_enough_and_in_the_buckets() -> None:
    now = 10.0
    old = [f"old{i}" for i in range(40)]
    node = make_node(
        1,
        [],
        StillClock(),
        messages=[held(i, ((2, 1), now - TIMING.settle)) for i in old]
        + [held("young", ((2, 1), now - TIMING.settle / 2))]
        # Age counts from the first copy: a later one does not make the message young.
        + [held("again", ((2, 1), now - 5.0), ((3, 1), now))],
    )
    settled = sorted([*old, "again"])
    every = list(range(BUCKETS))
    assert node.messages.settled_ids(every, now) == (settled, True)
    some = sorted({bucket_of(i) for i in old[:5]})
    listed, complete = node.messages.settled_ids(some, now)
    assert complete
    assert listed == [i for i in settled if bucket_of(i) in some]
    assert node.messages.settled_ids([], now) == ([], True)


def test_a_kept_listing_still_says_what_has_settled_now() -> None:
    """A round's pages reuse one sorted listing for ``LISTING_KEPT``, but whether an id has
    settled is asked each time: one that settles meanwhile is listed (left out, the peer
    would push it again), one discarded is not, and other buckets get their own."""
    now = 10.0
    node = make_node(
        1,
        [],
        StillClock(),
        messages=[
            held("a", ((2, 1), now - TIMING.settle)),
            held("b", ((2, 1), now - TIMING.settle + 0.1)),
            held("c", ((2, 1), now - TIMING.settle - 1.0)),
        ],
    )
    every = range(BUCKETS)
    assert node.messages.settled_ids(every, now) == (["a", "c"], True)
    assert node.messages.settled_ids(every, now + 0.2) == (["a", "b", "c"], True)
    assert node.messages.compare([], True, every, now + 0.2) == ([], ["a", "b", "c"])
    half = range(BUCKETS // 2)
    assert node.messages.settled_ids(half, now + 0.2) == (
        [i for i in ["a", "b", "c"] if bucket_of(i) < BUCKETS // 2],
        True,
    )
    node.messages.discard("a")
    assert node.messages.settled_ids(every, now + 0.2) == (["b", "c"], True)
    assert TIMING.settle > LISTING_KEPT, "an id added since the listing cannot have settled"


def test_where_messages_settle_at_once_a_listing_is_never_kept() -> None:
    """Pull mode offers a message as soon as it is held (``settle`` 0): a listing kept
    even for an instant would leave out one that came since, and the peer would push it."""
    node = make_node(1, [], StillClock(), timing=dataclasses.replace(TIMING, settle=0.0))
    every = range(BUCKETS)
    assert node.messages.settled_ids(every, 5.0) == ([], True)
    node.relay("m1", "t", (2,), relays=1, sent=0.0)
    assert node.messages.settled_ids(every, 5.0) == (["m1"], True)


@pytest.mark.parametrize(
    ("count", "complete"), [(MAX_LISTED_IDS, True), (MAX_LISTED_IDS + 1, False)]
)
def test_settled_ids_caps_the_list_and_says_so(count: int, complete: bool) -> None:
    messages = [held(f"m{i}", ((2, 1), 0.0)) for i in range(count)]
    node = make_node(1, [], StillClock(), messages=messages)
    listed, done = node.messages.settled_ids(range(BUCKETS), 100.0)
    assert done is complete
    # In id order, not the order held: "m10" comes before "m2".
    assert listed == sorted(m.id for m in messages)[:MAX_LISTED_IDS]


def test_settled_ids_lists_only_ids_after_the_given_one() -> None:
    node = make_node(
        1, [], StillClock(), messages=[held(i, ((2, 1), 0.0)) for i in ["b", "d", "a", "c"]]
    )
    every = range(BUCKETS)
    assert node.messages.settled_ids(every, 10.0, "") == node.messages.settled_ids(every, 10.0)
    assert node.messages.settled_ids(every, 10.0, "b") == (["c", "d"], True)
    # The id paged from need not be held (the peer's last id, say).
    assert node.messages.settled_ids(every, 10.0, "bb") == (["c", "d"], True)
    assert node.messages.settled_ids(every, 10.0, "d") == ([], True)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (MAX_LISTED_IDS, [True]),
        (2 * MAX_LISTED_IDS, [False, True]),
        (2 * MAX_LISTED_IDS + 1, [False, False, True]),
    ],
)
def test_paging_through_settled_ids_sees_every_id_exactly_once(
    count: int, expected: list[bool]
) -> None:
    made = hex_ids(count + 50, seed=count)
    settled, young = made[:count], made[count:]
    node = make_node(
        1,
        [],
        StillClock(),
        messages=[held(i, ((2, 1), 0.0)) for i in settled]
        + [held(i, ((2, 1), 9.5)) for i in young],
    )
    found = pages(node, range(BUCKETS), 10.0)
    assert [complete for _, complete in found] == expected
    assert [i for listed, _ in found for i in listed] == sorted(settled)
    assert all(len(listed) == MAX_LISTED_IDS for listed, _ in found[:-1])
    # Some buckets only: still each of their ids once, and no other.
    some = range(0, BUCKETS, 3)
    paged = [i for listed, _ in pages(node, some, 10.0) for i in listed]
    assert paged == sorted(i for i in settled if bucket_of(i) in some)


def test_compare_pulls_what_it_lacks_and_pushes_what_they_lack() -> None:
    now = 10.0
    node = make_node(
        1,
        [],
        StillClock(),
        messages=[
            held("both", ((1,), 0.0)),
            held("mine", ((1,), 0.0)),
            held("young", ((1,), now - TIMING.settle / 2)),
        ],
    )
    every = list(range(BUCKETS))
    assert node.messages.compare(["both", "theirs"], True, every, now) == (["theirs"], ["mine"])
    # Only the buckets asked about are pushed from.
    others = [b for b in range(BUCKETS) if b != bucket_of("mine")]
    assert node.messages.compare(["both"], True, others, now) == ([], [])


def test_compare_pushes_only_within_the_span_of_the_page() -> None:
    now = 10.0
    held_ids = ["a", "c", "e", "g", "i"]
    node = make_node(1, [], StillClock(), messages=[held(i, ((1,), 0.0)) for i in held_ids])
    every = list(range(BUCKETS))
    # A page that is not the last covers ids up to its last one only: past "e" the peer
    # may well hold "g" and "i", on a page still to come.
    assert node.messages.compare(["b", "e"], False, every, now) == (["b"], ["a", "c"])
    # A later page covers ids after the previous page's last one, up to its own last one.
    assert node.messages.compare(["f", "h"], False, every, now, "e") == (["f", "h"], ["g"])
    # The last page covers everything after the previous page's last one.
    assert node.messages.compare(["h"], True, every, now, "e") == (["h"], ["g", "i"])
    assert node.messages.compare([], True, every, now, "e") == ([], ["g", "i"])


def test_compare_caps_both_lists_at_max_traded() -> None:
    mine = [held(f"mine{i}", ((1,), 0.0)) for i in range(MAX_TRADED + 5)]
    theirs = sorted(f"theirs{i}" for i in range(MAX_TRADED + 5))
    node = make_node(1, [], StillClock(), messages=mine)
    lack, extra = node.messages.compare(theirs, True, range(BUCKETS), 10.0)
    assert lack == theirs[:MAX_TRADED]
    assert extra == sorted(m.id for m in mine)[:MAX_TRADED]


def test_comparing_page_by_page_finds_every_difference_exactly_once() -> None:
    # Each side lacks a few of 3000 ids, spread over the giver's three pages. In every
    # page's span the asker holds fewer ids than the page, so its own listing cap never
    # cuts in (see the next test).
    every_id = sorted(hex_ids(3000, seed=3))
    theirs_only = set(every_id[10::30]) | set(every_id[20::30])
    mine_only = set(every_id[::30])
    now = 10.0
    asker = make_node(
        1,
        [],
        StillClock(),
        messages=[held(i, ((1,), 0.0)) for i in every_id if i not in theirs_only],
    )
    giver = make_node(
        2, [], StillClock(), messages=[held(i, ((2,), 0.0)) for i in every_id if i not in mine_only]
    )
    every = range(BUCKETS)
    pulled: list[str] = []
    pushed: list[str] = []
    after = ""
    found = pages(giver, every, now)
    for listed, complete in found:
        lack, extra = asker.messages.compare(listed, complete, every, now, after)
        pulled += lack
        pushed += extra
        after = listed[-1]
    assert len(found) == 3
    assert pulled == sorted(theirs_only)
    assert pushed == sorted(mine_only)


def test_compare_pushes_from_past_its_own_first_max_listed_ids() -> None:
    """The last page covers every id after ``after``, not only this node's first 1000.

    Otherwise a round from this side never pushes "zz": every round lists the same page.
    """
    common = [f"c{i:04d}" for i in range(MAX_LISTED_IDS)]
    now = 10.0
    node = make_node(1, [], StillClock(), messages=[held(i, ((1,), 0.0)) for i in [*common, "zz"]])
    peer = make_node(2, [], StillClock(), messages=[held(i, ((2,), 0.0)) for i in common])
    listed, complete = peer.messages.settled_ids(range(BUCKETS), now)
    assert complete
    assert node.messages.compare(listed, complete, range(BUCKETS), now) == ([], ["zz"])


def test_offer_gives_the_first_path_avoiding_the_receiver() -> None:
    node = make_node(
        1,
        [],
        StillClock(),
        messages=[
            Message("x", "Apple", 3.5, 2, [Copy((9, 1), 4.0), Copy((7, 1), 5.0)]),
            held("via7", ((7, 1), 4.0), ((2, 7, 1), 5.0)),
            held("via2", ((4, 2, 1), 4.0)),
        ],
    )
    payloads = node.messages.offer(["unknown", "x", "via7"], 9)
    assert payloads == [
        {"id": "x", "text": "Apple", "path": [7, 1], "relays": 2, "sent": 3.5},
        {"id": "via7", "text": "t", "path": [7, 1], "relays": 1, "sent": 0.0},
    ]
    assert relay_fields(payloads[0]) == ("x", "Apple", (7, 1), 2, 3.5)
    # Every copy of via7 passed through node 7, which sent it (7 -> 1): a node 7 that lacks
    # it lost its store, and gets back the part of the path that led to it: none.
    assert [(p["id"], p["path"]) for p in node.messages.offer(["x", "via7"], 7)] == [
        ("x", [9, 1]),
        ("via7", []),
    ]
    assert relay_fields(node.messages.offer(["via7"], 7)[0])[2] == ()
    # Every copy of via2 passed through 2 after 4: node 2 gets back the path 4 -> 2.
    assert [(p["id"], p["path"]) for p in node.messages.offer(["via2"], 2)] == [("via2", [4])]
    assert node.messages.offer([], 7) == []


def test_node_digest_follows_its_messages() -> None:
    clock = StillClock()
    node = make_node(1, [2], clock, messages=[held("a", ((2, 1), 0.0)), held("b", ((3, 1), 0.0))])
    assert node.messages.digest.total == Digest(["a", "b"]).total
    submitted, _ = node.submit("hello", 1)
    node.relay("c", "t", (2,), 1, 0.0)
    node.relay("c", "t", (3,), 1, 0.0)
    node.relay("d", "t", (2, 1), 1, 0.0)  # passed through this node: not recorded
    assert node.messages.digest.total == Digest(["a", "b", submitted, "c"]).total
    assert node.messages.digest.count == len(node.messages) == 4


class Notes(Journal):
    """A journal that keeps what it was told, to show what a refused copy left behind."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def message_added(self, message: Message) -> None:
        self.notes.append(f"added {message.id}")

    def copy_added(self, message_id: str, copy: Copy) -> None:
        self.notes.append(f"copy of {message_id}")


def test_relay_frame_with_unencodable_id_is_refused_and_leaves_the_node_as_it_was() -> None:
    node = make_node(5, [1], StillClock(10.0))
    line = b'/RELAY {"id":"\\ud800","text":"hi","path":[1],"relays":1,"sent":1}'
    with pytest.raises(FrameError, match="not valid JSON"):  # JSON can write it; no UTF-8 can
        decode_frame(line)
    with pytest.raises(FrameError, match="message id"):  # nor a payload made in code
        node.relay(
            *relay_fields({"id": "\ud800", "text": "hi", "path": [1], "relays": 1, "sent": 1})
        )
    assert node.messages == {}
    assert node.messages.digest.total == Digest().total
    assert node.messages.settled_ids(range(BUCKETS), 100.0) == ([], True)


def test_node_relay_given_an_unencodable_id_leaves_no_trace() -> None:
    """Node.relay trusts its caller; still, a refused id must not leave a copy-less message."""
    notes = Notes()
    node = make_node(5, [1, 2], StillClock(10.0), journal=notes)
    with pytest.raises(ValueError):
        node.relay("\ud800", "hi", (1,), 1, 1.0)
    assert node.messages == {}
    assert notes.notes == []
    assert node.messages.digest.total == Digest().total
    # The node goes on as if it had never seen the id.
    assert [s.peer for s in node.relay("ok", "hi", (1,), 1, 1.0)] == [2]
    assert notes.notes == ["added ok", "copy of ok"]
    assert node.messages.digest.total == Digest(["ok"]).total
    assert node.messages.settled_ids(range(BUCKETS), 100.0) == (["ok"], True)


# One round between two nodes, each request answered by the other's gossip.answers.answer


def at(now: float) -> Simulation:
    """A simulation, empty until ``put`` adds nodes, at time ``now``."""
    sim = Simulation({})
    sim.clock.now = now
    return sim


def put(
    sim: Simulation, number: int, peers: Iterable[int], messages: Iterable[Message] = ()
) -> Node:
    """Node ``number`` as ``make_node`` makes it, on the simulation's clock, added to it."""
    node = make_node(number, peers, sim.clock, messages=messages)
    sim.nodes[number] = node
    return node


def catch_up(sim: Simulation, asker: int, giver: int) -> Round:
    """One ``gossip.catchup.Round`` of ``asker`` with its peer ``giver``, now; the gossip its
    copies set off waits in ``sim.queue`` as (sender, send)."""
    return sim.catch_up(asker, CatchUp(giver, address(giver)))


def alike(sim: Simulation, asker: int, giver: int) -> bool:
    """Whether a round finds the two alike: the digests agree, nothing is traded or sent."""
    queued = len(sim.queue)
    done = catch_up(sim, asker, giver)
    return (done.pulled, done.pushed, done.pages, len(sim.queue)) == ([], [], 0, queued)


def test_round_trades_both_ways_along_real_paths() -> None:
    sim = at(0.0)
    a = put(sim, 1, [2, 9])
    b = put(sim, 2, [1, 8])
    # The copies they sent each other were lost.
    a.relay("x", "from 7", (7, 9), 1, 0.0)
    b_own, _ = b.submit("from 2", 1)
    a.relay("z", "both", (9,), 1, 0.0)
    b.relay("z", "both", (8,), 1, 0.0)
    sim.clock.now = TIMING.settle
    done = catch_up(sim, 1, 2)
    assert (done.pulled, done.pushed, done.pages) == ([b_own], ["x"], 1)
    assert set(a.messages) == set(b.messages) == {"x", "z", b_own}
    assert a.messages.digest.total == b.messages.digest.total
    assert a.messages[b_own].copies == [Copy((2, 1), TIMING.settle)]
    assert b.messages["x"].copies == [Copy((7, 9, 1, 2), TIMING.settle)]
    # Each received copy goes on as gossip, to the peer not on its path.
    assert [(n, s.peer) for n, s in sim.queue] == [(1, 9), (2, 8)]
    sim.queue.clear()
    assert alike(sim, 1, 2)
    assert alike(sim, 2, 1)


def test_pulled_copy_extends_a_path_that_avoids_the_puller() -> None:
    sim = at(10.0)
    a = put(sim, 1, [2])
    b = put(
        sim,
        2,
        [1, 3],
        [
            held("w", ((1, 2), 0.0), ((4, 1, 2), 1.0), ((4, 3, 2), 2.0)),
            held("only-via-1", ((1, 2), 0.0)),
        ],
    )
    done = catch_up(sim, 1, 2)
    # Every copy of only-via-1 started at node 1, which lost it: it gets its own message
    # back, recorded as it was first: sent here.
    assert sorted(done.pulled) == ["only-via-1", "w"]
    assert sorted(a.messages) == ["only-via-1", "w"]
    assert a.messages["w"].copies == [Copy((4, 3, 2, 1), 10.0)]
    assert a.messages["only-via-1"].copies == [Copy((1,), 10.0)]
    for message in [*a.messages.values(), *b.messages.values()]:
        assert all(len(set(c.path)) == len(c.path) for c in message.copies)


def test_messages_younger_than_settle_wait_for_a_later_round() -> None:
    sim = at(0.0)
    a = put(sim, 1, [2])
    b = put(sim, 2, [1])
    a.relay("x", "t", (9,), 1, 0.0)
    sim.clock.now = 0.5
    b.relay("y", "t", (8,), 1, 0.0)
    sim.clock.now = 1.0
    a.relay("x2", "t", (9,), 1, 0.0)
    sim.clock.now = 1.2
    done = catch_up(sim, 1, 2)
    assert (done.pulled, done.pushed, list(sim.queue)) == ([], ["x"], [])
    assert "y" not in a.messages and "x2" not in b.messages
    sim.clock.now = 2.0
    done = catch_up(sim, 2, 1)
    assert (done.pulled, done.pushed) == (["x2"], ["y"])
    assert set(a.messages) == set(b.messages) == {"x", "x2", "y"}


def test_round_between_identical_nodes_changes_nothing() -> None:
    sim = at(10.0)
    a = put(sim, 1, [2], [held(f"m{i}", ((3, 1), 0.0)) for i in range(30)])
    b = put(sim, 2, [1], [held(f"m{i}", ((4, 2), 0.0)) for i in reversed(range(30))])
    before = (
        [m.copies[:] for m in a.messages.values()],
        [m.copies[:] for m in b.messages.values()],
    )
    assert alike(sim, 1, 2)
    # Even listing every bucket finds nothing to trade.
    listed, complete = b.messages.settled_ids(range(BUCKETS), sim.now)
    assert a.messages.compare(listed, complete, range(BUCKETS), sim.now) == ([], [])
    after = ([m.copies for m in a.messages.values()], [m.copies for m in b.messages.values()])
    assert after == before


def test_more_than_max_traded_takes_several_rounds() -> None:
    sim = at(10.0)
    missing = 2 * MAX_TRADED + MAX_TRADED // 2
    a = put(sim, 1, [2])
    b = put(sim, 2, [1], [held(f"m{i}", ((2,), 0.0)) for i in range(missing)])
    pulled = [len(catch_up(sim, 1, 2).pulled) for _ in range(4)]
    assert pulled == [MAX_TRADED, MAX_TRADED, MAX_TRADED // 2, 0]
    assert a.messages.digest.total == b.messages.digest.total


def test_a_round_that_traded_all_it_may_brings_the_next_round_to_now() -> None:
    """A node back after a while lacks thousands: it holds rounds back to back until it has
    them, not one a second."""
    sim = at(10.0)
    a = put(sim, 1, [2])
    put(sim, 2, [1], [held(f"m{i}", ((2,), 0.0)) for i in range(MAX_TRADED + 1)])
    a.next_sync = 11.0
    catch_up(sim, 1, 2)
    assert a.next_sync == 10.0, "a backlog: the next round at once"
    a.next_sync = 11.0
    catch_up(sim, 1, 2)  # the last one
    assert a.next_sync == 11.0, "no backlog: the next round as planned"


def test_round_pages_on_until_max_traded_were_traded() -> None:
    # a lacks a run of 0.6 MAX_TRADED of b's ids on each of b's three pages. A round reads
    # page after page until MAX_TRADED were traded, and stops there, within a page if
    # need be.
    sim = at(10.0)
    gap = MAX_TRADED * 6 // 10
    b_ids = [f"m{i:04d}" for i in range(2400 + gap + 100)]
    gaps = [b_ids[start : start + gap] for start in (0, 1200, 2400)]
    lacking = {i for gap in gaps for i in gap}
    a = put(sim, 1, [2], [held(i, ((1,), 0.0)) for i in b_ids if i not in lacking])
    b = put(sim, 2, [1], [held(i, ((2,), 0.0)) for i in b_ids])
    buckets = a.messages.digest.differing(b.messages.digest.bucket_hashes())
    assert len(pages(b, buckets, sim.now)) == 3
    first = catch_up(sim, 1, 2)
    cut = MAX_TRADED - len(gaps[0])
    assert (first.pulled, first.pages) == ([*gaps[0], *gaps[1][:cut]], 2)
    # Fewer buckets differ now, so b's pages are fewer and longer; the round reads them all.
    buckets = a.messages.digest.differing(b.messages.digest.bucket_hashes())
    second = catch_up(sim, 1, 2)
    assert second.pulled == [*gaps[1][cut:], *gaps[2]]
    assert second.pages == len(pages(b, buckets, sim.now)) > 1
    assert alike(sim, 1, 2)
    assert a.messages.digest.total == b.messages.digest.total


@pytest.mark.parametrize(("common", "new", "rounds"), [(1500, 100, 2), (2500, 30, 1)])
def test_catch_up_converges_when_the_differing_buckets_hold_many_ids(
    common: int, new: int, rounds: int
) -> None:
    # After a partition: many messages in common, a few new on each side. The new ones
    # fall in most buckets, so the ids listed there fill more than one page: a round
    # that trades little reads on, and with 30 new on each side one round is enough.
    sim = at(10.0)
    shared = hex_ids(common, seed=1)

    def holding(number: int, own: list[str]) -> Node:
        return put(sim, number, [3 - number], [held(i, ((number,), 0.0)) for i in [*shared, *own]])

    a_own, b_own = hex_ids(new, seed=2), hex_ids(new, seed=3)
    a, b = holding(1, a_own), holding(2, b_own)
    buckets = a.messages.digest.differing(b.messages.digest.bucket_hashes())
    assert len(pages(b, buckets, sim.now)) > 1
    done: list[Round] = []
    for _ in range(rounds):
        done.append(catch_up(sim, 1, 2))
        sim.clock.now += TIMING.sync_every  # with one peer, that is how often a node catches up
    assert set(a.messages) == set(b.messages)
    # Each new message crossed once, in the one direction it had to.
    assert sorted(i for r in done for i in r.pulled) == sorted(b_own)
    assert sorted(i for r in done for i in r.pushed) == sorted(a_own)
    assert alike(sim, 1, 2)


# A ring of nodes, two of them cut off for a while


RING = 8
CUT_OFF = {3, 4}


def ring_peers(number: int) -> set[int]:
    return {(number - 2) % RING + 1, number % RING + 1}


def deliver(sim: Simulation, lost: set[int]) -> None:
    """Deliver every queued copy, and those it sets off, except to the nodes in ``lost``;
    each is answered by its receiver as any ``/RELAY``."""
    while sim.queue:
        _, send = sim.queue.popleft()
        if send.peer not in lost:
            sim.exchange(send.peer, send.frame)


@pytest.mark.parametrize("forward", [False, True], ids=["catch-up-alone", "with-gossip"])
def test_ring_catches_up_nodes_that_were_cut_off(forward: bool) -> None:
    sim = at(0.0)
    nodes = {n: put(sim, n, ring_peers(n)) for n in range(1, RING + 1)}
    origins: dict[str, int] = {}
    for origin in itertools.islice(itertools.cycle(sorted(set(nodes) - CUT_OFF)), 20):
        sim.clock.now += 0.01
        message_id, sends = nodes[origin].submit(f"from {origin}", 1)
        origins[message_id] = origin
        sim.queue.extend((origin, s) for s in sends)
        deliver(sim, lost=CUT_OFF)
    for number, node in nodes.items():
        assert set(node.messages) == (set() if number in CUT_OFF else set(origins))

    # Catch-up alone: the gossip a received copy sets off is lost too.
    lost = set() if forward else set(nodes)
    spread_until = sim.now
    while any(set(node.messages) != set(origins) for node in nodes.values()):
        assert sim.now - spread_until < TIMING.settle + 2 * TIMING.sync_every, (
            "catch-up did not converge"
        )
        sim.clock.now += 0.05
        for number, node in nodes.items():
            for chore in node.tick(sim.now):  # pings are dropped: every node stays up
                if isinstance(chore, CatchUp):
                    sim.catch_up(number, chore)
                    deliver(sim, lost)
    assert len(sim.rounds) <= 3 * RING

    for number, node in nodes.items():
        assert node.messages.digest.total == Digest(origins).total
        for message_id, message in node.messages.items():
            for copy in message.copies:
                path = copy.path
                assert path[0] == origins[message_id] and path[-1] == number
                assert len(set(path)) == len(path), f"{path} repeats a node"
                assert all(b in ring_peers(a) for a, b in itertools.pairwise(path)), path


def test_rounds_skip_a_peer_found_in_agreement_until_the_digest_changes() -> None:
    """An idle network trades no digests; a new message starts the rounds again, and a
    peer that got something the node lacks starts them from its side (its digest moved)."""
    clock = StillClock(10.0)
    node = make_node(1, [2, 3], clock)

    def rounds(since: float, seconds: int) -> list[int]:
        ticks = (node.tick(since + k * TIMING.sync_every) for k in range(1, seconds + 1))
        return [c.peer for chores in ticks for c in chores if isinstance(c, CatchUp)]

    assert sorted(set(rounds(10.0, 4))) == [2, 3]
    node.agree(2, node.messages.digest.total)
    node.agree(3, node.messages.digest.total)
    assert rounds(20.0, 4) == []
    assert node.next_due() == node.members.next_due()  # pings are due, rounds are not
    node.submit("news", 1)
    assert node.next_due() <= node.next_sync
    assert sorted(set(rounds(30.0, 4))) == [2, 3]
    node.agree(3, node.messages.digest.total)
    assert set(rounds(40.0, 4)) == {2}


def test_a_round_that_finds_the_same_digest_records_the_agreement() -> None:
    clock = StillClock(10.0)
    node, peer = make_node(1, [2], clock), make_node(2, [1], clock)
    chore = CatchUp(2, address(2))
    talk = Round(node, chore)
    sync = talk.request()
    assert sync is not None
    replies = answer(peer, decode_frame(sync.frame), clock()).replies
    talk.take([decode_frame(r) for r in replies], clock())
    assert node.agreed == {2: node.messages.digest.total}


def test_a_message_taken_while_the_sync_is_out_is_not_agreed() -> None:
    """The node asks its peer (``/SYNC``), takes a message while the question is out (its
    copy to the peer lost), and the peer answers "the same": the agreement is with what the
    node held when it asked, so the next round goes ahead and brings the peer the message."""
    sim = at(10.0)
    node, peer = put(sim, 1, [2]), put(sim, 2, [1])
    talk = Round(node, CatchUp(2, address(2)))
    sync = talk.request()
    assert sync is not None
    asked = node.messages.digest.total
    news, _ = node.submit("news", 1)  # its copy to the peer is lost
    talk.take(sim.exchange(2, sync.frame), sim.now)
    sim.queue.clear()
    assert node.agreed == {2: asked}
    sim.clock.now += TIMING.settle
    assert [c.peer for c in node.tick(sim.now) if isinstance(c, CatchUp)] == [2]
    sim.catch_up(1, CatchUp(2, address(2)))
    assert news in peer.messages


Step = tuple[str, int]
"""One event between two linked nodes: a client's message at one of them (its copy to the
other lost), one of them asking or being answered in a catch-up round, or time passing."""

STEPS = st.lists(
    st.tuples(st.sampled_from(["message", "ask", "answer", "wait"]), st.sampled_from([1, 2])),
    max_size=40,
)


@settings(max_examples=1000)
@given(STEPS)
def test_two_nodes_agree_at_last_however_messages_and_rounds_interleave(steps: list[Step]) -> None:
    """Whatever the order of messages and the steps of rounds from either end, with every
    copy between the two lost, their own rounds bring them to the same messages: no round
    records an agreement that does not hold."""
    sim = at(10.0)
    nodes = {1: put(sim, 1, [2]), 2: put(sim, 2, [1])}
    talks: dict[int, tuple[Round, Send]] = {}
    made: set[str] = set()

    def answered(number: int) -> None:
        talk, asked = talks.pop(number)
        talk.take(sim.exchange(3 - number, asked.frame), sim.now)
        sim.queue.clear()  # the gossip a round sets off is lost too
        if (following := talk.request()) is not None:
            talks[number] = (talk, following)

    for kind, number in steps:
        if kind == "message":
            made.add(nodes[number].submit(f"from {number} at {sim.now}", 1)[0])
        elif kind == "ask" and number not in talks:
            talk = Round(nodes[number], CatchUp(3 - number, address(3 - number)))
            talks[number] = (talk, talk.request())
        elif kind == "answer" and number in talks:
            answered(number)
        elif kind == "wait":
            sim.clock.now += TIMING.settle / 2
    while talks:
        answered(min(talks))

    deadline = sim.now + TIMING.settle + 20 * TIMING.sync_every
    while any(set(node.messages) != made for node in nodes.values()):
        assert sim.now < deadline, "the rounds stopped before the two agreed"
        sim.clock.now += STEP
        for number, node in nodes.items():
            for chore in node.tick(sim.now):
                if isinstance(chore, CatchUp):
                    sim.catch_up(number, chore)
                    sim.queue.clear()


def _twice_with_another_text(frames: list[Frame]) -> None:
    first = next(f for f in frames if f.command == "COPY")
    frames.insert(-1, Frame("COPY", {**first.payload, "text": "another text"}))


def _bad_field(name: str, value: object) -> Callable[[list[Frame]], None]:
    def spoil(frames: list[Frame]) -> None:
        [f for f in frames if f.command == "COPY"][-1].payload[name] = value

    return spoil


@pytest.mark.parametrize(
    "spoil",
    [_twice_with_another_text, _bad_field("relays", "many"), _bad_field("path", [0])],
    ids=["one id with two texts", "bad relays", "bad path"],
)
def test_a_pull_with_one_bad_copy_takes_none_of_it(
    spoil: Callable[[list[Frame]], None],
) -> None:
    """A copy refused midway used to leave those before it taken but never passed on
    (their budget spent, their onward copies dropped with the round)."""
    clock = StillClock(10.0)
    node, peer = make_node(1, [2, 3], clock), make_node(2, [1], clock)
    for text in ("one", "two", "three"):
        peer.submit(text, 1)
    clock.now += 100.0
    talk = Round(node, CatchUp(2, address(2)))
    spoiled = False
    with pytest.raises(FrameError):
        while (request := talk.request()) is not None:
            reply = answer(peer, decode_frame(request.frame), clock())
            frames = [decode_frame(r) for r in reply.replies]
            if any(f.command == "COPY" for f in frames):
                spoil(frames)
                spoiled = True
            talk.take(frames, clock())
    assert spoiled
    assert not node.messages, "none of the pull was taken"
